"""`ragtune eval` on a tiny model over two sample chapters: questions, scoring, buckets, the report, --compare."""

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import ingest_cfg

DATA = Path(__file__).parent / "data"  # report.json: a report as eval wrote it before the report was a record


def default_k() -> int:
    from ragtune.core.config import load_config
    from ragtune.engine.config import AskConfig

    return load_config(AskConfig).k


QUESTIONS = [
    {"id": "a", "question": "Which command indexes documents?", "answers": ["ragtune ingest"], "doc": "01-overview.md", "type": "factoid"},
    {"id": "b", "question": "Where does all state live?", "answers": ["one work directory", "./.ragtune"], "type": "factoid"},
    {"id": "c", "question": "Which Python version does ragtune require?", "answers": ["Python 3.11 or newer"], "type": "factoid"},
    {
        "id": "d",
        "question": "What does ragtune demo do?",
        "answers": ["the whole job on the bundled sample corpus"],
    },  # the classifier's call
    {
        "id": "e",
        "question": "What happens if I press Ctrl-C while a model is training?",
        "type": "open",
        "answers": ["Ctrl-C saves a checkpoint and exits cleanly. The run can then be continued with ragtune train --resume."],
        "keys": [["checkpoint"], ["exits cleanly"]],
    },
]


def write_questions(path, rows, extra_lines=()):
    path.write_text("\n".join([json.dumps(r) for r in rows] + list(extra_lines)) + "\n")
    return path


def eval_cfg(workdir, model, **overrides):
    from ragtune.core.config import load_config
    from ragtune.evals.config import EvalConfig

    return load_config(
        EvalConfig,
        {"workdir": str(workdir), "ask.model.model": str(model), "ask.decoding.max_new_tokens": 6, "resamples": 200, **overrides},
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, sample_docs):
    from ragtune.rag.ingest import ingest

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
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def report(workdir, tiny_model, adapter, tmp_path_factory):
    from ragtune.evals.run import evaluate

    qfile = write_questions(
        tmp_path_factory.mktemp("q") / "questions.jsonl", QUESTIONS, ["{not json", json.dumps({"question": "no answers"})]
    )
    stages = []
    out = evaluate(
        eval_cfg(workdir, tiny_model, questions=str(qfile), **{"ask.adapter": str(adapter)}),
        progress=lambda stage, done, total: stages.append((stage, done, total)),
    )
    out["_stages"] = stages
    return out


# Questions ---------------------------------------------------------------------------------------


def test_bad_question_lines_are_skipped_with_their_line_numbers(tmp_path):
    from ragtune.evals.questions import read_questions

    path = write_questions(
        tmp_path / "q.jsonl",
        QUESTIONS[:2],
        ["{oops", "[1, 2]", json.dumps({"question": "?", "answers": "x"}), json.dumps({"question": "none"})],
    )
    qs = read_questions(path)
    assert [q.id for q in qs.questions] == ["a", "b"]
    assert [s.split(":")[1] for s in qs.skipped] == ["3", "4", "5", "6"]
    assert "not JSON" in qs.skipped[0] and "not a JSON object" in qs.skipped[1] and "not a list of strings" in qs.skipped[2]
    assert "--unanswerable" in qs.skipped[3]
    assert read_questions(path, unanswerable=True).questions[-1].answers == ()


def test_skipped_lines_are_named_up_to_ten(tmp_path):
    from ragtune.evals.questions import read_questions, skipped_lines

    path = write_questions(tmp_path / "q.jsonl", QUESTIONS[:1], ["{oops"] * 12)
    shown = skipped_lines(read_questions(path).skipped)
    assert shown[0] == "12 question lines skipped:"
    assert shown[1:3] == ["  q.jsonl:2: not JSON (Expecting property name enclosed in double quotes)"] + [
        "  q.jsonl:3: not JSON (Expecting property name enclosed in double quotes)"
    ]
    assert shown[10] == "  q.jsonl:11: not JSON (Expecting property name enclosed in double quotes)"
    assert shown[-1] == "  ... and 2 more" and len(shown) == 12
    assert skipped_lines([]) == [] and skipped_lines(["q.jsonl:4: no question"]) == ["1 question line skipped:", "  q.jsonl:4: no question"]


def test_keys_and_type_are_read_and_malformed_ones_skipped_with_the_line_named(tmp_path):
    from ragtune.evals.questions import read_questions

    good = {"question": "How?", "answers": ["By hashing."], "keys": [["content hash", " sha-256 "], ["upsert"]], "type": "open"}
    bad = [
        {**good, "keys": "content hash"},
        {**good, "keys": [["content hash"], []]},
        {**good, "keys": [["ok", 3]]},
        {**good, "keys": [["  "]]},
        {**good, "keys": ["content hash"]},
        {**good, "type": "essay"},
    ]
    qs = read_questions(write_questions(tmp_path / "open.jsonl", [good, *bad]))
    assert [(q.keys, q.type) for q in qs.questions] == [((("content hash", "sha-256"), ("upsert",)), "open")]
    assert qs.skipped == [f"open.jsonl:{n}: keys must be a list of lists of strings" for n in range(2, 7)] + [
        "open.jsonl:7: type must be factoid or open, got 'essay'"
    ]
    plain = read_questions(write_questions(tmp_path / "plain.jsonl", QUESTIONS[:1])).questions[0]
    assert plain.keys == () and plain.type == "factoid"


def test_a_missing_or_empty_questions_file_is_one_clear_error(tmp_path):
    from ragtune.evals.questions import read_questions

    with pytest.raises(ValueError, match="no such file"):
        read_questions(tmp_path / "nope.jsonl")
    (tmp_path / "bad.jsonl").write_text("{bad\n")
    with pytest.raises(ValueError, match=r"bad.jsonl: no usable questions; 1 question line skipped: bad.jsonl:1: not JSON"):
        read_questions(tmp_path / "bad.jsonl")


def test_the_sample_is_fixed_by_its_seed_and_a_large_limit_takes_all(tmp_path):
    from ragtune.evals.questions import Question, QuestionSet, sample

    qs = QuestionSet("x", [Question(str(i), f"q{i}?", ("a",)) for i in range(50)], 50)
    a, b, c = sample(qs, 10, 0), sample(qs, 10, 0), sample(qs, 10, 1)
    assert [q.id for q in a.questions] == [q.id for q in b.questions] != [q.id for q in c.questions]
    assert len(a.questions) == 10 and a.total == 50
    assert sample(qs, 500, 0).questions == qs.questions


def test_the_eval_split_takes_one_wording_of_each_held_out_fact(tmp_path):
    from ragtune.evals.questions import eval_split

    pairs = [
        {"id": "1", "question": "Q1?", "answer": "A1", "split": "eval", "kind": "original"},
        {"id": "2", "question": "Q1 again?", "answer": "A1", "split": "eval", "kind": "paraphrase"},
        {"id": "3", "question": "Q3?", "answer": "A3", "split": "train", "kind": "original"},
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    qs = eval_split(tmp_path)
    assert [(q.question, q.answers) for q in qs.questions] == [("Q1?", ("A1",))]


# Scoring -----------------------------------------------------------------------------------------


def _answer(text, span="", form="", cites=(), latency=0.1):
    """An Answer as the engine returns it; `cites` are the texts of the chunks it cites, as [1], [2], ..."""
    from ragtune.core.records import Answer, Citation, Source

    sources = [Source(f"c{n}", "doc.md", None, "", 1.0, n, t) for n, t in enumerate(cites, 1)]
    citations = [Citation(n, f"c{n}", "doc.md", None, "") for n in range(1, len(cites) + 1)]
    return Answer(
        "Q?",
        "rag",
        text,
        sources,
        prompt_tokens=10,
        generated_tokens=3,
        latency_s=latency,
        gold_perplexity=2.0,
        form=form,
        span=span,
        citations=citations,
    )


@pytest.mark.parametrize(
    "said, hit, bucket",
    [
        ("Nikola Tesla", True, None),  # right
        ("I don't know", True, "abstained"),
        ("it was Nikola Tesla who did it, in 1891", True, "verbose"),
        ("Edison", False, "retrieval miss"),
        ("Edison", True, "wrong span"),  # Edison is in the retrieved text
        ("Marconi", True, "hallucinated"),  # in no retrieved chunk
    ],
)
def test_wrong_answers_fall_in_the_first_bucket_that_fits(said, hit, bucket):
    from ragtune.evals.questions import Question
    from ragtune.evals.run import _score

    context = "tesla and edison worked together" + (" nikola tesla" if hit else "")
    row = _score(Question("q", "Who?", ("Nikola Tesla",)), _answer(said), {"hit": hit, "context": context}, "I don't know", 50, "factoid")
    assert row["bucket"] == bucket
    assert row["correct"] == (bucket is None)


def test_retrieval_of_an_open_question_is_judged_by_its_key_facts():
    from ragtune.evals.questions import Question
    from ragtune.evals.run import _retrieval

    hits = [
        SimpleNamespace(chunk=SimpleNamespace(id=f"c{i}", text=t))
        for i, t in enumerate(["Chunks are upserted by content hash.", "Trains run hourly."])
    ]
    reference = "Each chunk's id is a content hash, so re-ingesting upserts it and adds nothing."  # in no chunk verbatim
    open_q = Question(
        "o", "How does ingest avoid duplicates?", (reference,), keys=(("content hash", "sha-256"), ("upsert", "upserted"), ("unchanged",))
    )
    r = _retrieval(open_q, hits)
    assert r["hit"] and round(r["recall"], 1) == 66.7, "a chunk holds a key fact; two of the three are retrieved"
    assert not _retrieval(Question("f", "Who?", (reference,)), hits)["hit"], "without keys, the reference itself must be in a chunk"


def test_closed_book_wrong_answers_are_hallucinated_and_unanswerables_want_abstention():
    from ragtune.evals.questions import Question
    from ragtune.evals.run import _score

    assert _score(Question("q", "Who?", ("Tesla",)), _answer("Edison"), None, "I don't know", 50, "factoid")["bucket"] == "hallucinated"
    unanswerable = Question("u", "Who?", ())
    assert _score(unanswerable, _answer("I don't know."), None, "I don't know", 50, "factoid")["f1"] == 100
    assert _score(unanswerable, _answer("Edison"), None, "I don't know", 50, "factoid")["f1"] == 0
    row = _score(unanswerable, _answer("Edison [1]", cites=["Edison lived."]), None, "I don't know", 50, "factoid")
    assert row["token_f1"] is row["token_recall"] is row["citation_precision"] is row["key_recall"] is None and row["cited"]


def test_a_factoid_is_scored_on_its_span_and_an_open_answer_on_keys_overlap_and_citations():
    from ragtune.evals.questions import Question
    from ragtune.evals.run import _score

    tesla = Question("q", "Who built it?", ("Nikola Tesla",))
    quoted = _answer(
        'Nikola Tesla: "Nikola Tesla built it in 1891." [1]', span="Nikola Tesla", form="factoid", cites=["Nikola Tesla built it in 1891."]
    )
    row = _score(tesla, quoted, None, "I don't know", 50, "factoid")
    assert (row["exact"], row["f1"], row["form"], row["type"], row["cited"], row["citation_precision"]) == (
        100,
        100,
        "factoid",
        "factoid",
        True,
        100,
    )
    assert row["answer"] == quoted.text and row["words"] == 8  # the whole answer is kept and counted, markers aside
    no_span = _score(tesla, _answer('Nikola Tesla: "Nikola Tesla built it in 1891." [1]'), None, "I don't know", 50, "factoid")
    assert no_span["exact"] == 0 and no_span["f1"] < 50 and no_span["contains"] == 100 and no_span["bucket"] == "verbose"

    dedup = Question(
        "o",
        "How does ingest avoid duplicates?",
        ("Chunk ids are content hashes so re-ingesting upserts.",),
        keys=(("content hash", "content hashes"), ("upsert", "upserts")),
    )
    said = _answer(
        "Chunk ids are content hashes [1]. Re-ingesting upserts them [2].",
        form="open",
        cites=["Chunk ids are content hashes of the text.", "Nothing relevant here."],
    )
    row = _score(dedup, said, None, "I don't know", 50, "open")
    # 7 of the 8 tokens on each side are shared ("so" and "them" are not); the [n] are no tokens
    assert (row["key_recall"], row["token_f1"], row["token_recall"], row["words"]) == (100, 87.5, 87.5, 8)
    assert (row["cited"], row["citation_precision"], row["form"], row["type"]) == (True, 50, "open", "open")
    bare = _score(dedup, _answer("content hashes"), None, "I don't know", 50, "open")
    assert (bare["key_recall"], bare["words"], bare["cited"], bare["citation_precision"]) == (50, 2, False, None)


def _small_run():
    """Two modes on one factoid and two open questions, scored by `_score` from hand-made answers."""
    from ragtune.evals.questions import Question
    from ragtune.evals.run import _score

    questions = [
        (Question("f", "Who built it?", ("Nikola Tesla",), type="factoid"), "factoid"),
        (
            Question(
                "o1",
                "How does ingest avoid duplicates?",
                ("Chunk ids are content hashes so re-ingesting upserts.",),
                keys=(("content hash", "content hashes"), ("upsert", "upserts")),
                type="open",
            ),
            "open",
        ),
        (Question("o2", "Why install the CPU torch first?", ("Else the CUDA build is pulled in.",), keys=(("cuda build",),)), "open"),
    ]
    answers = {
        "rag": [
            _answer('Nikola Tesla: "Nikola Tesla built it." [1]', "Nikola Tesla", "factoid", ["Nikola Tesla built it."]),
            _answer(
                "Chunk ids are content hashes [1]. Re-ingesting upserts them [2].",
                form="open",
                cites=["Chunk ids are content hashes of the text.", "Nothing relevant here."],
            ),
            _answer("CUDA build", form="open"),
        ],
        "ft-rag": [
            _answer("Edison", "Edison", "factoid"),
            _answer("I don't know", form="abstain"),
            _answer("The CUDA build would be pulled in otherwise [1].", form="open", cites=["Torch's CUDA build is large."]),
        ],
    }
    results = {m: [_score(q, a, None, "I don't know", 50, t) for (q, t), a in zip(questions, said)] for m, said in answers.items()}
    return results, [t for _, t in questions]


def test_the_by_type_summary_and_the_verdict_on_a_small_run():
    from ragtune.evals.run import _by_type, _summarize, verdict

    results, kinds = _small_run()
    cfg = SimpleNamespace(resamples=200, seed=0)
    by_type = _by_type(results, kinds, ["rag", "ft-rag"], cfg)
    assert list(by_type) == ["factoid", "open"]
    f, o = by_type["factoid"], by_type["open"]
    assert f["rag"]["n"] == 1 and f["rag"]["f1"]["mean"] == 100 and f["ft-rag"]["f1"]["mean"] == 0 and f["rag"]["key_recall"] is None
    assert f["rag"]["exact"] == _summarize(results["rag"][:1], cfg)["exact"]  # today's summary keys, over the type's questions
    rag, ft = o["rag"], o["ft-rag"]
    assert rag["n"] == 2 and rag["key_recall"]["mean"] == 100 and ft["key_recall"]["mean"] == 50
    assert rag["cited"]["mean"] == ft["cited"]["mean"] == 50
    assert rag["citation_precision"] == {"mean": 50, "low": 50, "high": 50}  # over the one answer that cites
    assert ft["citation_precision"]["mean"] == 100
    assert (rag["words_p50"], rag["short_rate"]) == (5, 50)  # "CUDA build" is a bare span
    assert (ft["words_p50"], ft["short_rate"]) == (5.5, 0)  # "I don't know" is short, but an abstention
    for key in ("f1", "key_recall", "token_f1", "token_recall", "citation_precision", "cited"):
        assert rag[key]["low"] <= rag[key]["mean"] <= rag[key]["high"], key
    report = {
        "questions": {"asked": 3},
        "summary": {m: _summarize(r, cfg) for m, r in results.items()},
        "by_type": by_type,
        "comparisons": [{"a": "ft-rag", "b": "rag", "delta": -40.0, "p": 0.01, "key": True}],
    }
    assert verdict(report) == (
        "On these 3 questions rag answers the 1 factoid one best (F1 100.0) and rag answers the 2 open ones best "
        "(key-fact recall 100.0); ft-rag trails rag by -40.0 F1, p=0.01."
    )
    del report["by_type"]["factoid"]
    for m in o:
        o[m]["key_recall"] = None  # an open set without keys is judged by token F1
    assert verdict(report).startswith(f"On these 3 questions rag answers best (token F1 {o['rag']['token_f1']['mean']:.1f}); ")


def test_the_cli_prints_a_table_per_question_type(capsys):
    from ragtune import cli
    from ragtune.evals.run import _by_type, _summarize

    results, kinds = _small_run()
    cfg = SimpleNamespace(resamples=200, seed=0)
    report = {
        "modes": ["rag", "ft-rag"],
        "questions": {"asked": 3},
        "summary": {m: _summarize(r, cfg) for m, r in results.items()},
        "by_type": _by_type(results, kinds, ["rag", "ft-rag"], cfg),
        "retrieval": None,
        "verdict": "V.",
        "elapsed_s": 1.0,
    }
    cli._print_scores(report, "/tmp/run")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "factoid questions (1):" and lines[1].split() == [
        "mode",
        "EM",
        "F1",
        "contains",
        "ROUGE-L",
        "abstain",
        "gold",
        "ppl",
        "p50",
        "s",
    ]
    assert lines[2].split()[:3] == ["rag", "100.0", "100.0"]
    assert lines[4:6] == ["", "open questions (2):"] and lines[6].split()[:4] == ["mode", "key", "rec", "tok"]
    assert lines[7].split() == ["rag", "100.0", "68.8", "60.4", "50.0%", "50.0", "5", "50.0%"]  # token F1 (87.5 + 50) / 2
    assert lines[8].split()[:2] == ["ft-rag", "50.0"]


def test_the_verdict_names_the_best_mode_and_whether_gains_are_more_than_luck():
    from ragtune.evals.run import verdict

    f1 = lambda m: {"f1": {"mean": m}}  # noqa: E731
    report = {
        "questions": {"asked": 200},
        "summary": {"base": f1(10.0), "rag": f1(35.0), "ft": f1(12.0), "ft-rag": f1(47.5)},
        "comparisons": [
            {"a": "ft-rag", "b": "rag", "delta": 12.5, "p": 0.001, "key": True},
            {"a": "ft", "b": "base", "delta": 2.0, "p": 0.3, "key": True},
            {"a": "rag", "b": "base", "delta": 25.0, "p": 0.001, "key": False},
        ],
    }
    assert verdict(report) == (
        "On these 200 questions ft-rag answers best (F1 47.5); ft-rag beats rag by +12.5 F1, p=0.001; "
        "ft and base differ by +2.0 F1, within chance (p=0.3)."
    )


# The whole run -----------------------------------------------------------------------------------


def test_every_mode_answers_every_question_with_one_shared_retrieval(report):
    assert report["modes"] == ["base", "rag", "ft", "ft-rag"] and not report["skipped_modes"]
    assert report["questions"]["asked"] == 5 and len(report["questions"]["skipped"]) == 2
    assert [s for s, *_ in report["_stages"]].count("retrieve") == 5  # once per question, not once per rag mode
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
    assert report["retrieval"]["k"] == default_k() and 0 <= report["retrieval"]["hit_at_k"]["mean"] <= 100
    v = report["versions"]
    assert v["adapter"] and v["index"]["version"] and v["index"]["chunks"] > 0 and v["model_params"] > 0


def test_every_answer_is_scored_by_type_and_summarised_per_type(report):
    rows = [(q, m, r) for q in report["per_question"] for m, r in q["modes"].items()]
    assert [q["type"] for q in report["per_question"]][:3] == ["factoid"] * 3 and report["per_question"][4]["type"] == "open"
    assert report["per_question"][3]["type"] in ("factoid", "open")  # the classifier's call
    assert report["per_question"][4]["keys"] == [["checkpoint"], ["exits cleanly"]] and "keys" not in report["per_question"][0]
    for q, m, r in rows:
        assert {"key_recall", "token_f1", "token_recall", "words", "citation_precision", "cited", "form", "type"} <= set(r)
        assert r["type"] == q["type"] and (r["key_recall"] is None) == ("keys" not in q)
        assert 0 <= r["token_f1"] <= 100 and 0 <= r["token_recall"] <= 100 and r["words"] >= 0
        assert r["cited"] == (r["citation_precision"] is not None)
        if m in ("base", "ft"):
            assert r["form"] == "" and not r["cited"]
    by_type = report["by_type"]
    assert set(by_type) == {"factoid", "open"} and sum(next(iter(s.values()))["n"] for s in by_type.values()) == 5
    for summaries in by_type.values():
        assert list(summaries) == report["modes"]
        for s in summaries.values():
            assert s["f1"]["low"] <= s["f1"]["mean"] <= s["f1"]["high"] and s["cited"]["mean"] >= 0
            assert s["words_p50"] >= 0 and 0 <= s["short_rate"] <= 100
    assert by_type["open"]["rag"]["key_recall"]["mean"] >= 0 and by_type["factoid"]["rag"]["key_recall"] is None
    assert by_type["open"]["base"]["citation_precision"] is None  # the bare model cites nothing
    assert " factoid one" in report["verdict"] and " open one" in report["verdict"]


def test_gold_perplexity_is_the_models_own_probability_of_the_answer(workdir, tiny_model):
    """Checked against a plain forward pass over prompt + answer + end token."""
    import torch

    from helpers import ask_cfg
    from ragtune.engine.answer import Answerer

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
    from ragtune.evals import report as R

    out = R.write(report, tmp_path / "run", examples=2)
    saved = json.loads((out / "report.json").read_text())
    assert saved["verdict"] == report["verdict"] and len(saved["per_question"]) == 5
    md = (out / "report.md").read_text()
    assert report["verdict"] in md and "## Error analysis" in md and "| ft-rag vs rag |" not in md  # key pairs are bold
    assert "**ft-rag vs rag**" in md and f"hit@{default_k()}" in md
    n = {t: next(iter(s.values()))["n"] for t, s in report["by_type"].items()}
    assert f"### Factoid questions ({n['factoid']})\n\n| mode | EM | F1 | contains | ROUGE-L |" in md
    assert (
        f"### Open questions ({n['open']})\n\n| mode | key recall | token F1 | token recall | cited % | cite prec | words p50 | ≤3 words |"
        in md
    )
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.tmp*"))


def test_compare_prints_the_deltas_of_two_runs(report):
    import copy

    from ragtune.evals import report as R

    b = copy.deepcopy(report)
    b["summary"]["rag"]["f1"]["mean"] += 5
    b["versions"]["adapter"] = "/other/adapter"
    lines = R.compare(report, b)
    assert any(line.startswith("adapter: ") and "/other/adapter" in line for line in lines)
    rag, x = next(line for line in lines if line.startswith("rag ")), report["summary"]["rag"]["f1"]["mean"]
    assert f"{x:6.1f} -> {x + 5:5.1f} ( +5.0)" in rag
    assert next(line for line in lines if line.startswith("base ")).count("( +0.0)") == 4
    assert f"paired on the {len(report['per_question'])} questions both runs asked (b minus a, F1):" in lines
    assert "  rag       +0.0 [+0.0, +0.0], p = 1" in lines  # the answers themselves did not change

    first = b["per_question"][0]["modes"]["rag"]
    first["f1"] += 50  # one question better by 50: the mean by 50 / n, and no longer certain to be zero
    paired = next(line for line in R.compare(report, b) if line.startswith("  rag "))
    assert paired.startswith(f"  rag      {50 / len(report['per_question']):+5.1f} [")


def test_ft_modes_without_an_adapter_are_skipped_with_a_note(tmp_path, workdir, tiny_model):
    from ragtune.evals.run import evaluate

    qfile = write_questions(tmp_path / "q.jsonl", QUESTIONS[:2])
    cfg = eval_cfg(workdir, tiny_model, questions=str(qfile), modes=["base", "ft"])  # this work dir has no adapters/
    out = evaluate(cfg)
    assert out["modes"] == ["base"] and "needs an adapter" in out["skipped_modes"]["ft"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"modes": ["base", "finetune"]}, "--modes: finetune; valid: base, rag, ft, ft-rag"),
        ({"limit": -1}, "--limit must be"),
        ({"split": "train", "questions": None}, "--split must be eval"),
        ({"split": "eval"}, "--questions and --split name two question sets"),
    ],
)
def test_bad_settings_name_their_flag(tmp_path, overrides, message):
    from ragtune.core.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        eval_cfg(tmp_path, "packaged", **{"questions": "q.jsonl", **overrides})


def test_the_cli_writes_a_report_and_compares_two(tmp_path, workdir, tiny_model, adapter):
    qfile = write_questions(tmp_path / "q.jsonl", QUESTIONS[:2])
    run = lambda *a: subprocess.run([sys.executable, "-m", "ragtune.cli", "eval", *a], capture_output=True, text=True, cwd=tmp_path)  # noqa: E731
    base = ["--workdir", str(workdir), "--model", str(tiny_model), "--questions", str(qfile), "--max-new-tokens", "4"]
    one = run(*base, "--modes", "base,rag", "--out", str(tmp_path / "one"), "--json")
    assert one.returncode == 0, one.stderr
    summary = json.loads(one.stdout)
    assert summary["modes"] == ["base", "rag"] and summary["out"] == str(tmp_path / "one")
    two = run(*base, "--modes", "rag,ft-rag", "--adapter", str(adapter), "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    assert "Report: " in two.stdout and "ft-rag" in two.stdout
    assert two.stdout.startswith("factoid questions (2):\nmode  ") and "open questions" not in two.stdout  # a factoid set: today's table
    cmp = run("--compare", str(tmp_path / "one"), str(tmp_path / "two"))
    assert cmp.returncode == 0 and "adapter: None -> " in cmp.stdout and cmp.stdout.count("\nrag ") == 1
    bad = run(*base, "--adapter", str(tmp_path / "missing"))
    assert bad.returncode == 1 and bad.stderr.strip() == f"ragtune: error: --adapter {tmp_path / 'missing'}: no such folder"
    unknown = run(*base, "--modes", "base,finetune")
    assert unknown.returncode == 2 and "--modes: finetune" in unknown.stderr


# The report as a record --------------------------------------------------------------------------


def test_the_report_record_writes_an_existing_report_json_back_byte_for_byte(tmp_path):
    from ragtune.core.records import EvalReport
    from ragtune.evals import report as R

    written = (DATA / "report.json").read_bytes()
    report = EvalReport.from_json(json.loads(written))
    assert report.modes == ["base", "rag"] and report.retrieval["k"] == 2 and len(report.per_question) == 2
    out = R.write(report, tmp_path / "run")
    assert (out / "report.json").read_bytes() == written
    assert (out / "report.md").read_text() == R.markdown(json.loads(written))


def test_evaluate_report_returns_the_record_report_json_holds(tmp_path, workdir, tiny_model):
    from dataclasses import replace

    from ragtune.core.records import EvalReport
    from ragtune.evals import report as R
    from ragtune.evals.run import evaluate_report

    qfile = write_questions(tmp_path / "q.jsonl", QUESTIONS[:2])
    report = evaluate_report(eval_cfg(workdir, tiny_model, questions=str(qfile), modes=["base", "rag"]))
    assert isinstance(report, EvalReport) and report.modes == ["base", "rag"] and report.retrieval["k"] == default_k()
    assert report.verdict.startswith("On these 2 questions ") and report.elapsed_s > 0
    saved = json.loads((R.write(report, tmp_path / "run") / "report.json").read_text())
    assert EvalReport.from_json(saved) == replace(report, config=saved["config"])  # the config's paths are written as strings
