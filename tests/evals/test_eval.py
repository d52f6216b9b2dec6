"""`ragtune eval` on a tiny model over two sample chapters: questions, scoring, buckets, the report, --compare."""

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import ROOT, ingest_cfg

QUESTIONS = [
    {"id": "a", "question": "Which command indexes documents?", "answers": ["ragtune ingest"], "doc": "01-overview.md"},
    {"id": "b", "question": "Where does all state live?", "answers": ["one work directory", "./.ragtune"]},
    {"id": "c", "question": "Which Python version does ragtune require?", "answers": ["Python 3.11 or newer"]},
    {"id": "d", "question": "What does ragtune demo do?", "answers": ["the whole job on the bundled sample corpus"]},
]


def write_questions(path, rows, extra_lines=()):
    path.write_text("\n".join([json.dumps(r) for r in rows] + list(extra_lines)) + "\n")
    return path


def eval_cfg(workdir, model, **overrides):
    from core.config import load_config
    from evals.config import EvalConfig

    return load_config(EvalConfig, {"workdir": str(workdir), "ask.model.model": str(model), "ask.decoding.max_new_tokens": 6,
                                    "resamples": 200, **overrides})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, sample_docs):
    from rag.ingest import ingest

    wd = tmp_path_factory.mktemp("eval")
    ingest(ingest_cfg(wd, [sample_docs / "01-overview.md", sample_docs / "05-training.txt"]))
    return wd


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """Random, not zero, LoRA weights: ft answers and perplexities differ from base ones."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("eval-adapter")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def report(workdir, tiny_model, adapter, tmp_path_factory):
    from evals.run import evaluate

    qfile = write_questions(tmp_path_factory.mktemp("q") / "questions.jsonl", QUESTIONS, ["{not json", json.dumps({"question": "no answers"})])
    stages = []
    out = evaluate(eval_cfg(workdir, tiny_model, questions=str(qfile), **{"ask.adapter": str(adapter)}),
                   progress=lambda stage, done, total: stages.append((stage, done, total)))
    out["_stages"] = stages
    return out


# Questions ---------------------------------------------------------------------------------------


def test_bad_question_lines_are_skipped_with_their_line_numbers(tmp_path):
    from evals.questions import read_questions

    path = write_questions(tmp_path / "q.jsonl", QUESTIONS[:2], ["{oops", "[1, 2]", json.dumps({"question": "?", "answers": "x"}),
                                                                  json.dumps({"question": "none"})])
    qs = read_questions(path)
    assert [q.id for q in qs.questions] == ["a", "b"]
    assert [s.split(":")[1] for s in qs.skipped] == ["3", "4", "5", "6"]
    assert "not JSON" in qs.skipped[0] and "not a JSON object" in qs.skipped[1] and "not a list of strings" in qs.skipped[2]
    assert "--unanswerable" in qs.skipped[3]
    assert read_questions(path, unanswerable=True).questions[-1].answers == ()


def test_a_missing_or_empty_questions_file_is_one_clear_error(tmp_path):
    from evals.questions import read_questions

    with pytest.raises(ValueError, match="no such file"):
        read_questions(tmp_path / "nope.jsonl")
    (tmp_path / "bad.jsonl").write_text("{bad\n")
    with pytest.raises(ValueError, match=r"bad.jsonl: no usable questions \(1 lines skipped\)"):
        read_questions(tmp_path / "bad.jsonl")


def test_the_sample_is_fixed_by_its_seed_and_a_large_limit_takes_all(tmp_path):
    from evals.questions import QuestionSet, Question, sample

    qs = QuestionSet("x", [Question(str(i), f"q{i}?", ("a",)) for i in range(50)], 50)
    a, b, c = sample(qs, 10, 0), sample(qs, 10, 0), sample(qs, 10, 1)
    assert [q.id for q in a.questions] == [q.id for q in b.questions] != [q.id for q in c.questions]
    assert len(a.questions) == 10 and a.total == 50
    assert sample(qs, 500, 0).questions == qs.questions


def test_the_eval_split_takes_one_wording_of_each_held_out_fact(tmp_path):
    from evals.questions import eval_split

    pairs = [{"id": "1", "question": "Q1?", "answer": "A1", "split": "eval", "kind": "original"},
             {"id": "2", "question": "Q1 again?", "answer": "A1", "split": "eval", "kind": "paraphrase"},
             {"id": "3", "question": "Q3?", "answer": "A3", "split": "train", "kind": "original"}]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    qs = eval_split(tmp_path)
    assert [(q.question, q.answers) for q in qs.questions] == [("Q1?", ("A1",))]


# Scoring -----------------------------------------------------------------------------------------


def _answer(text, latency=0.1):
    return SimpleNamespace(text=text, latency_s=latency, generated_tokens=3, prompt_tokens=10, gold_perplexity=2.0, sources=[])


@pytest.mark.parametrize("said, hit, bucket", [
    ("Nikola Tesla", True, None),                       # right
    ("I don't know", True, "abstained"),
    ("it was Nikola Tesla who did it, in 1891", True, "verbose"),
    ("Edison", False, "retrieval miss"),
    ("Edison", True, "wrong span"),                     # Edison is in the retrieved text
    ("Marconi", True, "hallucinated"),                  # in no retrieved chunk
])
def test_wrong_answers_fall_in_the_first_bucket_that_fits(said, hit, bucket):
    from evals.questions import Question
    from evals.run import _score

    context = "tesla and edison worked together" + (" nikola tesla" if hit else "")
    row = _score(Question("q", "Who?", ("Nikola Tesla",)), _answer(said), {"hit": hit, "context": context}, "I don't know", 50)
    assert row["bucket"] == bucket
    assert row["correct"] == (bucket is None)


def test_closed_book_wrong_answers_are_hallucinated_and_unanswerables_want_abstention():
    from evals.questions import Question
    from evals.run import _score

    assert _score(Question("q", "Who?", ("Tesla",)), _answer("Edison"), None, "I don't know", 50)["bucket"] == "hallucinated"
    unanswerable = Question("u", "Who?", ())
    assert _score(unanswerable, _answer("I don't know."), None, "I don't know", 50)["f1"] == 100
    assert _score(unanswerable, _answer("Edison"), None, "I don't know", 50)["f1"] == 0


def test_the_verdict_names_the_best_mode_and_whether_gains_are_more_than_luck():
    from evals.run import verdict

    f1 = lambda m: {"f1": {"mean": m}}  # noqa: E731
    report = {"questions": {"asked": 200}, "summary": {"base": f1(10.0), "rag": f1(35.0), "ft": f1(12.0), "ft-rag": f1(47.5)},
              "comparisons": [{"a": "ft-rag", "b": "rag", "delta": 12.5, "p": 0.001, "key": True},
                              {"a": "ft", "b": "base", "delta": 2.0, "p": 0.3, "key": True},
                              {"a": "rag", "b": "base", "delta": 25.0, "p": 0.001, "key": False}]}
    assert verdict(report) == ("On these 200 questions ft-rag answers best (F1 47.5); ft-rag beats rag by +12.5 F1, p=0.001; "
                               "ft and base differ by +2.0 F1, within chance (p=0.3).")


# The whole run -----------------------------------------------------------------------------------


def test_every_mode_answers_every_question_with_one_shared_retrieval(report):
    assert report["modes"] == ["base", "rag", "ft", "ft-rag"] and not report["skipped_modes"]
    assert report["questions"]["asked"] == 4 and len(report["questions"]["skipped"]) == 2
    assert [s for s, *_ in report["_stages"]].count("retrieve") == 4  # once per question, not once per rag mode
    for row in report["per_question"]:
        assert set(row["modes"]) == {"base", "rag", "ft", "ft-rag"}
        rag, ft_rag = row["modes"]["rag"], row["modes"]["ft-rag"]
        assert [s["chunk_id"] for s in rag["sources"]] == [s["chunk_id"] for s in ft_rag["sources"]] == row["retrieval"]["sources"]
        assert row["modes"]["base"]["sources"] == []
    q = report["per_question"][0]  # "ragtune ingest" is in the overview chunk
    assert q["retrieval"]["hit"] and q["retrieval"]["recall"] == 100


def test_the_summary_has_intervals_latency_and_perplexity_per_mode(report):
    for mode, s in report["summary"].items():
        for key in ("exact", "f1", "contains", "rouge_l"):
            assert s[key]["low"] <= s[key]["mean"] <= s[key]["high"], (mode, key)
        assert 0 < s["latency_s"]["p50"] <= s["latency_s"]["p95"]
        assert 1 <= s["gold_perplexity"]["low"] <= s["gold_perplexity"]["mean"] <= s["gold_perplexity"]["high"]
    # The adapter changes the model: its gold perplexities are not the base model's
    assert report["summary"]["ft"]["gold_perplexity"] != report["summary"]["base"]["gold_perplexity"]
    keys = [(c["a"], c["b"]) for c in report["comparisons"]]
    assert keys[:2] == [("ft-rag", "rag"), ("ft", "base")] and len(keys) == 6
    assert report["retrieval"]["k"] == 2 and 0 <= report["retrieval"]["hit_at_k"]["mean"] <= 100
    v = report["versions"]
    assert v["adapter"] and v["index"]["version"] and v["index"]["chunks"] > 0 and v["model_params"] > 0


def test_gold_perplexity_is_the_models_own_probability_of_the_answer(workdir, tiny_model):
    """Checked against a plain forward pass over prompt + answer + end token."""
    import torch

    from engine.answer import Answerer

    from conftest import ask_cfg

    answerer = Answerer(ask_cfg(workdir, tiny_model, **{"decoding.max_new_tokens": 4}))
    a = answerer.answer_batch(["Which command indexes documents?"], "base", golds=[["ragtune ingest", "zzz qqq xxx"]])[0]
    e, prompt = answerer.engine, answerer.prepare("Which command indexes documents?", "base").prompt
    best = math.inf
    for gold in ("ragtune ingest", "zzz qqq xxx"):
        n = len(e.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        ids = e.tokenizer(prompt + gold, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = torch.cat([ids, torch.tensor([[e.tokenizer.eos_token_id]])], 1)
        with torch.inference_mode():
            logp = torch.log_softmax(e.model(ids).logits[0].float(), -1)
        nll = -sum(logp[i - 1, ids[0, i]].item() for i in range(n, ids.shape[1]))
        best = min(best, math.exp(nll / (ids.shape[1] - n)))
    assert a.gold_perplexity == pytest.approx(best, rel=1e-3)


def test_the_report_folder_holds_json_markdown_and_a_chart(report, tmp_path):
    from evals import report as R

    out = R.write(report, tmp_path / "run", examples=2)
    saved = json.loads((out / "report.json").read_text())
    assert saved["verdict"] == report["verdict"] and len(saved["per_question"]) == 4
    md = (out / "report.md").read_text()
    assert report["verdict"] in md and "## Error analysis" in md and "| ft-rag vs rag |" not in md  # key pairs are bold
    assert "**ft-rag vs rag**" in md and "hit@2" in md
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.tmp*"))


def test_compare_prints_the_deltas_of_two_runs(report):
    import copy

    from evals import report as R

    b = copy.deepcopy(report)
    b["summary"]["rag"]["f1"]["mean"] += 5
    b["versions"]["adapter"] = "/other/adapter"
    lines = R.compare(report, b)
    assert any(line.startswith("adapter: ") and "/other/adapter" in line for line in lines)
    rag = next(line for line in lines if line.startswith("rag "))
    assert "12.5 ->  17.5 ( +5.0)" in rag
    assert next(line for line in lines if line.startswith("base ")).count("( +0.0)") == 4


def test_ft_modes_without_an_adapter_are_skipped_with_a_note(tmp_path, workdir, tiny_model):
    from evals.run import evaluate

    qfile = write_questions(tmp_path / "q.jsonl", QUESTIONS[:2])
    cfg = eval_cfg(workdir, tiny_model, questions=str(qfile), modes=["base", "ft"])  # this work dir has no adapters/
    out = evaluate(cfg)
    assert out["modes"] == ["base"] and "needs an adapter" in out["skipped_modes"]["ft"]


@pytest.mark.parametrize("overrides, message", [
    ({"modes": ["base", "finetune"]}, "--modes: finetune; valid: base, rag, ft, ft-rag"),
    ({"limit": -1}, "--limit must be"),
    ({"split": "train", "questions": None}, "--split must be eval"),
    ({"split": "eval"}, "--questions and --split name two question sets"),
])
def test_bad_settings_name_their_flag(tmp_path, overrides, message):
    from core.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        eval_cfg(tmp_path, "packaged", **{"questions": "q.jsonl", **overrides})


def test_the_cli_writes_a_report_and_compares_two(tmp_path, workdir, tiny_model, adapter):
    qfile = write_questions(tmp_path / "q.jsonl", QUESTIONS[:2])
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "cli.py"), "eval", *a], capture_output=True, text=True, cwd=tmp_path)  # noqa: E731
    base = ["--workdir", str(workdir), "--model", str(tiny_model), "--questions", str(qfile), "--max-new-tokens", "4"]
    one = run(*base, "--modes", "base,rag", "--out", str(tmp_path / "one"), "--json")
    assert one.returncode == 0, one.stderr
    summary = json.loads(one.stdout)
    assert summary["modes"] == ["base", "rag"] and summary["out"] == str(tmp_path / "one")
    two = run(*base, "--modes", "rag,ft-rag", "--adapter", str(adapter), "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    assert "Report: " in two.stdout and "ft-rag" in two.stdout
    cmp = run("--compare", str(tmp_path / "one"), str(tmp_path / "two"))
    assert cmp.returncode == 0 and "adapter: None -> " in cmp.stdout and cmp.stdout.count("\nrag ") == 1
    bad = run(*base, "--adapter", str(tmp_path / "missing"))
    assert bad.returncode == 1 and bad.stderr.strip() == f"ragtune: error: --adapter {tmp_path / 'missing'}: no such folder"
    unknown = run(*base, "--modes", "base,finetune")
    assert unknown.returncode == 2 and "--modes: finetune" in unknown.stderr
