"""`ragtune synth` with the extractive generator, on two of the sample documents in a real index."""

import dataclasses
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from helpers import ingest_cfg
from ragtune.core.config import ConfigError, load_config
from ragtune.core.records import Chunk, Draft
from ragtune.rag.ingest import ingest
from ragtune.synth.config import SynthConfig

CLI = [sys.executable, "-m", "ragtune.cli"]
DATA = Path(__file__).parent / "data"  # dataset.json: a card as synth wrote it before the card was a record


def synth_cfg(workdir, **overrides) -> SynthConfig:
    return load_config(SynthConfig, {"workdir": str(workdir), **overrides})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, sample_docs):
    wd = tmp_path_factory.mktemp("synth") / "w"
    ingest(ingest_cfg(wd, [sample_docs / "01-overview.md", sample_docs / "05-training.txt", sample_docs / "03-search.html"]))
    return wd


@pytest.fixture(scope="module")
def dataset(workdir):
    from ragtune.synth.pipeline import synthesize

    card = synthesize(synth_cfg(workdir, eval_fraction=0.25, format="alpaca"))
    return card, _read(card["path"], "pairs.jsonl")


def _ingested(tmp_path, files: dict[str, str]) -> Path:
    """A work dir holding these documents, ingested."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in files.items():
        (docs / name).write_text(text)
    ingest(ingest_cfg(tmp_path / "w", [docs]))
    return tmp_path / "w"


def _read(folder, name):
    from pathlib import Path

    return [json.loads(line) for line in (Path(folder) / name).read_text().splitlines()]


# The extractive generator ------------------------------------------------------------------------------


def test_extractive_questions_ask_for_a_span_of_their_sentence():
    from ragtune.synth.extractive import ExtractiveGenerator

    text = (
        "In 1889 the Eiffel Tower was completed by the company of Gustave Eiffel. "
        "The company has 300 employees. Peyton Manning won his second title in Denver."
    )
    drafts = ExtractiveGenerator(synth_cfg("/tmp/unused", pairs_per_chunk=8, paraphrases=2)).generate(
        [Chunk("c", text, "s", "h", "", 0, 40)]
    )[0]
    pairs = {(d.question, d.answer) for d in drafts}
    assert ("When was the Eiffel Tower completed by the company of Gustave Eiffel?", "1889") in pairs
    assert ("How many employees does the company have?", "300") in pairs
    assert ("Who won his second title in Denver?", "Peyton Manning") in pairs
    # paraphrases worded as people ask: shorter, the kind of answer named, the scene set first
    wide = ExtractiveGenerator(synth_cfg("/tmp/unused", pairs_per_chunk=8, paraphrases=5)).generate(
        [Chunk("c", text, "s", "h", "", 0, 40)]
    )[0]
    wordings = {d.question for d in wide if d.answer == "1889"}
    assert wordings == {
        "When was the Eiffel Tower completed by the company of Gustave Eiffel?",
        "When was the Eiffel Tower completed?",
        "In what year was the Eiffel Tower completed by the company of Gustave Eiffel?",
    }
    assert ("Which company was the Eiffel Tower completed by in 1889?", "the company of Gustave Eiffel") in {
        (d.question, d.answer) for d in wide
    }
    assert ("In 1889, what was the Eiffel Tower completed by?", "the company of Gustave Eiffel") in {(d.question, d.answer) for d in wide}
    assert not any(d.question.startswith(("By ", "Do you know", "According to")) for d in wide)
    for d in drafts:
        assert d.question.endswith("?") and d.answer in text and d.evidence in text and not d.error
        assert d.answer.lower() not in d.question.lower()
    groups = Counter(d.group for d in drafts)
    assert all(1 <= n <= 3 for n in groups.values())  # the original and at most 2 paraphrases
    assert all(len({d.answer for d in drafts if d.group == g}) == 1 for g in groups)  # one fact per group


def test_a_chunk_with_no_usable_sentence_yields_no_drafts():
    from ragtune.synth.extractive import ExtractiveGenerator

    gen = ExtractiveGenerator(synth_cfg("/tmp/unused"))
    assert gen.generate([Chunk("c", "| a | b |\n|---|---|\n| 1 | 2 |", "s", "h", "", 0, 9), Chunk("d", "Hello?", "s", "h", "", 1, 2)]) == [
        [],
        [],
    ]


def test_a_question_names_its_document_when_it_would_be_ambiguous_without():
    from ragtune.synth.extractive import ExtractiveGenerator
    from ragtune.synth.subject import with_subject

    text = "Net sales increased 12% to $3.7 billion in fiscal 2023. Reed Hastings founded Netflix in California in 1997."
    gen = ExtractiveGenerator(synth_cfg("/tmp/unused", pairs_per_chunk=8, paraphrases=0))
    filing = Chunk("c", text, "s", "h", "", 0, 40, title="Netflix, Inc. Form 10-K (fiscal year ended December 31, 2017)")
    asked = {d.answer: d.question for d in gen.generate([filing])[0]}
    assert (
        asked["fiscal 2023"]
        == "In Netflix, Inc. Form 10-K (fiscal year ended December 31, 2017), when did net sales increase 12% to $3.7 billion?"
    )
    assert asked["1997"] == "When did Reed Hastings found Netflix in California?"  # it names its own subject
    plain = {d.answer: d.question for d in gen.generate([dataclasses.replace(filing, title="Search and retrieval")])[0]}
    assert plain["fiscal 2023"] == "When did net sales increase 12% to $3.7 billion?"  # a title that names nothing adds nothing
    subject, name = "Acme Corp annual report", ("acme",)
    assert with_subject("What did our board approve for Jane Doe?", subject, name, ["Jane Doe"]) == (
        "In Acme Corp annual report, what did our board approve for Jane Doe?"
    )
    assert with_subject("What did Boeing deliver?", subject, name, []) == "In Acme Corp annual report, what did Boeing deliver?"
    assert with_subject("What did Jane Doe sign?", subject, name, ["Jane Doe"]) == "What did Jane Doe sign?"  # a person is specific
    assert with_subject("What did Acme's board approve?", subject, name, []) == "What did Acme's board approve?"
    assert (
        with_subject("Net sales rose by what percentage?", subject, name, [])
        == "In Acme Corp annual report, Net sales rose by what percentage?"
    )


def test_a_place_named_makes_a_question_specific_in_an_article_but_not_in_a_companys_filing():
    from ragtune.synth.extractive import ExtractiveGenerator
    from ragtune.synth.subject import COMPANY_NAMING, NAMING

    gen = ExtractiveGenerator(synth_cfg("/tmp/unused", pairs_per_chunk=8, paraphrases=0))
    assert gen.subjects.of("Warsaw")[2] == NAMING and gen.subjects.of("Netflix, Inc. Form 10-K")[2] == COMPANY_NAMING
    text = "The university moved to Krakow in 1997."
    article = {d.answer: d.question for d in gen.generate([Chunk("a", text, "s", "h", "", 0, 12, title="Warsaw")])[0]}
    assert article["1997"] == "When did the university move to Krakow?"
    filing = {d.answer: d.question for d in gen.generate([Chunk("f", text, "s", "h", "", 0, 12, title="Netflix, Inc. Form 10-K")])[0]}
    assert filing["1997"] == "In Netflix, Inc. Form 10-K, when did the university move to Krakow?"


def test_a_table_row_gives_one_question_per_figure_and_no_sentence_of_its_own():
    from ragtune.synth.extractive import ExtractiveGenerator

    text = (
        "Supplemental Financial Information (in millions)\n"
        "Net Revenue: Europe | 12 Weeks Ended 3/25/2023: 1,886 | 12 Weeks Ended 3/19/2022: 1,797\n"
        "Net Revenue: Total | 12 Weeks Ended 3/25/2023: $ 17,846 | Change: n/m"
    )
    gen = ExtractiveGenerator(synth_cfg("/tmp/unused", pairs_per_chunk=8, paraphrases=1))
    drafts = gen.generate([Chunk("t", text, "s", "h", "", 0, 60)])[0]
    asked = {d.answer: d.question for d in drafts if d.kind == "original"}
    assert asked == {
        "1,886": "What was Net Revenue: Europe for 12 Weeks Ended 3/25/2023?",
        "1,797": "What was Net Revenue: Europe for 12 Weeks Ended 3/19/2022?",
        "$ 17,846": "What was Net Revenue: Total for 12 Weeks Ended 3/25/2023?",
    }  # "n/m" is no figure
    assert all(d.evidence.startswith("Net Revenue: ") for d in drafts)
    assert sum(d.kind == "paraphrase" for d in drafts) == 3 and not any(" | " in d.question for d in drafts)


# Filters -------------------------------------------------------------------------------------------------


def test_grounding_and_the_per_draft_filters():
    from ragtune.synth.filters import check, grounded

    cfg = synth_cfg("/tmp/unused")
    text = "The Normans were led by Rollo, who swore fealty to King Charles III in 911."
    assert grounded("rollo", text, 0.8) and grounded("King Charles III.", text, 0.8)
    assert grounded("Charles III of France", text, 0.5) and not grounded("Charles III of France", text, 0.8)
    assert not grounded("William the Conqueror", text, 0.8) and not grounded("", text, 0.8)
    # punctuation parts words (SQuAD's normalisation glues "$40,000/year" into one): two SQuAD drafts it dropped
    assert grounded("40,000", "Salary ranges from $40,000/year to $90,000/yr.", 0.8)
    assert grounded("Marconi", "he may have intercepted Marconi's European experiments", 0.8)
    assert check(Draft("Who led the Normans?", "Rollo"), text, cfg) is None
    assert check(Draft("Who led the Normans?", "William"), text, cfg) == "ungrounded"
    assert check(Draft("Did Rollo lead the Normans?", "Rollo"), text, cfg) == "answer_in_question"
    assert check(Draft("Who?", "Rollo"), text, cfg) == "length"
    assert check(Draft("", "", error="malformed output: no Q line"), text, cfg) == "malformed"


def test_duplicates_go_but_paraphrases_of_one_fact_stay():
    import numpy as np

    from ragtune.synth.filters import Keyed, exact_duplicates, near_duplicates

    items = [
        Keyed(Draft("Who led the Normans?", "Rollo"), "c", "c:0"),
        Keyed(Draft("who led the normans", "Rollo"), "c", "c:0"),
        Keyed(Draft("Who was the leader of the Normans?", "Rollo"), "c", "c:0"),
        Keyed(Draft("Who was the Normans' leader?", "Rollo"), "d", "d:0"),
        Keyed(Draft("When?", "911"), "d", "d:1"),
    ]
    counts = Counter()
    items = exact_duplicates(items, counts)
    assert counts["duplicate"] == 1 and len(items) == 4
    v = np.array([[1, 0], [0.99, 0.141], [0.99, 0.141], [0, 1]], dtype=np.float32)
    keep = near_duplicates(items, v, 0.95, counts)
    assert keep.tolist() == [True, True, False, True]  # same group: kept; another fact's near-copy: dropped
    assert counts["near_duplicate"] == 1


def test_noise_changes_the_question_but_never_the_answer_words():
    from ragtune.synth.augment import noisy

    rng = random.Random(0)
    q = "When was the Eiffel Tower completed by the company?"
    for kind in ("delete", "insert", "swap", "case", "order"):
        for _ in range(20):
            out = noisy(q, "Eiffel Tower", kind, rng)
            assert out != q and out.endswith("?")
            if kind != "order":
                assert "Eiffel Tower" in out


def _pair(pid, question, answer, chunk, evidence, split="train", kind="original"):
    from ragtune.core.records import Pair

    return Pair(pid, question, answer, chunk, "doc.md", None, "", "extractive", {}, f"{chunk}:0", kind, split, evidence, ("d1",))


def test_a_fact_is_asked_again_in_the_words_of_another_chunks_fact_with_the_same_answer():
    from ragtune.synth.cross import cross_pairs

    p1 = _pair("p1", "Who set the base rate for an advertisement?", "CBS", "c1", "CBS set the base rate for a Super Bowl advertisement.")
    p2 = _pair("p2", "What broadcast Super Bowl 50?", "CBS", "c2", "CBS broadcast Super Bowl 50 in the U.S.")  # shares "super", "bowl"
    p3 = _pair("p3", "Who set up a network?", "CBS", "c3", "CBS set up a network.")  # shares one word ("set"): too few
    p4 = _pair("p4", "Who set the rate?", "CBS", "c4", p1.evidence)  # the same sentence (overlapping chunks): never p1's partner
    p5 = _pair("p5", "What aired the Super Bowl advertisement?", "CBS", "c5", "CBS aired the Super Bowl advertisement.", split="eval")
    p6 = _pair("p6", "Who broadcast the Super Bowl?", "CBS", "c1", "CBS broadcast the Super Bowl advertisement.")  # p1's chunk
    p7 = _pair("p7", "What broadcast Super Bowl 50 in 2016?", "CBS", "c2", "CBS broadcast Super Bowl 50.", kind="paraphrase")
    p8 = _pair("p8", "How many teams played Super Bowl 50?", "two", "c7", "Two teams played Super Bowl 50 on CBS.")  # no name, no figure
    p9 = _pair("p9", "How many teams played the Super Bowl?", "two", "c8", "Two teams played the Super Bowl on CBS.")
    out = {(p.chunk_id, p.evidence): p for p in cross_pairs([p1, p2, p3, p4, p5, p6, p7, p8, p9], lambda c, q, a: f"{c}|{q}")}
    cross = out["c1", p1.evidence]  # p1 asked with p2's question: the partner sharing most words, in another chunk
    assert (cross.question, cross.kind, cross.answer, cross.split, cross.group, cross.distractors) == (
        p2.question,
        "cross",
        "CBS",
        "train",
        p1.group,
        p1.distractors,
    )
    assert cross.id == f"c1|{p2.question}"
    asked = {k: p.question for k, p in out.items()}
    assert asked == {
        ("c1", p1.evidence): p2.question,
        ("c2", p2.evidence): p6.question,  # "broadcast", "super", "bowl"; p4 shares two, p1 two
        ("c4", p4.evidence): p6.question,  # "super", "bowl", "advertisement"
        ("c1", p6.evidence): p2.question,  # three each with p2 and p4: the first
    }, "p3 shares too few words, p5 is eval, p7 a paraphrase, p8 and p9 ask for neither a name nor a figure"


def test_cross_questions_get_a_raft_row_and_no_closed_book_row(tmp_path):
    from ragtune.synth.pipeline import synthesize

    workdir = _ingested(
        tmp_path,
        {
            "tower.md": "# The Eiffel Tower\n\nThe Eiffel Tower is a lattice tower in Paris. Its iron frame was designed by Gustave Eiffel in 1887.\n",
            "statue.md": "# The Statue of Liberty\n\nThe Statue of Liberty stands in New York Harbor. "
            "Its iron frame was designed by Gustave Eiffel for the statue.\n",
        },
    )
    card = synthesize(synth_cfg(workdir, eval_fraction=0.0, cross_questions=True))
    pairs, train = _read(card["path"], "pairs.jsonl"), _read(card["path"], "train.jsonl")
    cross = [p for p in pairs if p["kind"] == "cross"]
    assert len(cross) == 2 and card["pairs"]["by_kind"]["cross"] == 2  # "Gustave Eiffel", asked over the other chunk
    asked = {(p["question"], p["answer"]): p["chunk_id"] for p in pairs if p["kind"] == "original" and p["split"] == "train"}
    for p in cross:
        assert p["split"] == "train" and asked[p["question"], p["answer"]] != p["chunk_id"]
        assert [(r["kind"], r["reader"]["evidence"]) for r in train if r["pair_id"] == p["id"]] == [("raft", p["evidence"])]


# RAFT rows ------------------------------------------------------------------------------------------------


def _rollo():
    """Prompt templates, an oracle chunk, three distractors and the pair asked of the oracle."""
    from ragtune.core.records import Pair
    from ragtune.engine.prompts import load_templates

    oracle = Chunk("oracle", "Rollo led the Normans.", "/d/a.md", "h", "History", 0, 5)
    others = [Chunk(f"x{i}", f"Distractor text number {i}.", "/d/b.md", "h", "", i, 4) for i in range(3)]
    pair = Pair(
        "p",
        "Who led the Normans?",
        "Rollo",
        "oracle",
        "/d/a.md",
        None,
        "History",
        "extractive",
        {},
        "oracle:0",
        "original",
        "train",
        "Rollo led the Normans.",
        ("x0", "x1", "x2"),
    )
    return load_templates("prompts.yaml"), oracle, others, pair


def test_raft_rows_hold_the_oracle_with_probability_p_and_never_as_a_distractor():
    from ragtune.synth.rows import closed_book_row, raft_row

    t, oracle, others, pair = _rollo()
    rng = random.Random(0)
    rows = [raft_row(pair, oracle, others, t, rng, 0.7, True, False) for _ in range(1000)]
    share = sum(r["oracle_in_context"] for r in rows) / len(rows)
    assert 0.65 < share < 0.75
    for r in rows[:50]:
        user = r["messages"][-2]["content"]
        assert ("Rollo led the Normans." in user) == r["oracle_in_context"]
        assert user.count('<document id="') == 3 + r["oracle_in_context"]
        assert r["messages"][-1] == {"role": "assistant", "content": "Rollo"} and r["messages"][0]["role"] == "system"
        assert r["oracle_chunk_id"] == "oracle" and r["split"] == "train" and r["kind"] == "raft"
    cot = raft_row(pair, oracle, others, t, random.Random(1), 1.0, False, True)
    assert cot["messages"][-1]["content"] == '"Rollo led the Normans."\nAnswer: Rollo'
    closed = closed_book_row(pair, t)
    assert [m["role"] for m in closed["messages"]] == ["system", "user", "assistant"] and "<document" not in json.dumps(closed)


def test_raft_rows_fit_the_token_budget_by_dropping_the_weakest_distractors_never_the_oracle():
    from ragtune.synth.rows import _estimate_tokens, raft_row

    t, _, _, pair = _rollo()
    oracle = Chunk("oracle", "Rollo led the Normans. " * 20, "/d/a.md", "h", "History", 0, 100)
    others = [Chunk(f"x{i}", f"Distractor number {i} says nothing useful. " * 12, "/d/b.md", "h", "", i, 100) for i in range(3)]
    unbounded = raft_row(pair, oracle, others, t, random.Random(0), 1.0, False, False)
    assert unbounded["chunks"] == 4
    budget = _estimate_tokens(unbounded["messages"]) - 50  # one distractor too many
    for seed in range(20):
        row = raft_row(pair, oracle, others, t, random.Random(seed), 1.0, True, False, max_tokens=budget)
        user = row["messages"][-2]["content"]
        assert row["chunks"] == 3 and row["oracle_in_context"] and "Rollo led the Normans." in user
        assert "number 2" not in user and "number 0" in user and "number 1" in user  # the weakest one went
        assert _estimate_tokens(row["messages"]) <= budget and row["messages"][0]["role"] == "system"
    tiny = raft_row(pair, oracle, others, t, random.Random(0), 1.0, False, False, max_tokens=64)
    assert tiny["chunks"] == 1 and "Rollo led the Normans." in tiny["messages"][-2]["content"]  # never cut below the oracle
    no_oracle = raft_row(pair, oracle, others, t, random.Random(0), 0.0, False, False, max_tokens=64)
    assert no_oracle["chunks"] == 1 and not no_oracle["oracle_in_context"] and "number 0" in no_oracle["messages"][-2]["content"]


def test_single_chunk_rows_hold_one_chunk_the_oracle_answers_and_a_distractor_does_not():
    from ragtune.synth.rows import single_chunk_row

    t, oracle, others, pair = _rollo()
    rng = random.Random(0)
    rows = [single_chunk_row(pair, oracle, others, t, rng, 0.7, False) for _ in range(1000)]
    assert 0.65 < sum(r["oracle_in_context"] for r in rows) / len(rows) < 0.75
    for r in rows[:50]:
        user, answer = r["messages"][-2]["content"], r["messages"][-1]["content"]
        assert user.count('<document id="') == 1 and r["chunks"] == 1 and r["kind"] == "raft"
        if r["oracle_in_context"]:
            assert "Rollo led the Normans." in user and answer == "Rollo"
        else:  # the hardest distractor alone, answered as the reader should answer it
            assert "number 0" in user and answer == t.abstain
    twice = Chunk("x0", "Some say Rollo was Danish.", "/d/b.md", "h", "", 0, 5)  # the retriever found the fact twice
    assert single_chunk_row(pair, oracle, [twice], t, random.Random(0), 0.0, False)["messages"][-1]["content"] == "Rollo"
    broken = Chunk("x1", "Some say Rollo the\n  Walker was Danish.", "/d/b.md", "h", "", 0, 5)  # the answer split by a line break
    walker = dataclasses.replace(pair, answer="Rollo the Walker")
    assert single_chunk_row(walker, oracle, [broken], t, random.Random(0), 0.0, False)["messages"][-1]["content"] == "Rollo the Walker"
    longer = Chunk("x2", "Rollonia was Danish.", "/d/b.md", "h", "", 0, 4)  # a longer word is not the answer
    assert single_chunk_row(pair, oracle, [longer], t, random.Random(0), 0.0, False)["messages"][-1]["content"] == t.abstain
    alone = single_chunk_row(pair, oracle, [], t, random.Random(0), 0.0, False)  # no distractor: the oracle it is
    assert alone["oracle_in_context"] and alone["messages"][-1]["content"] == "Rollo"


# The whole pipeline ------------------------------------------------------------------------------------


def test_the_dataset_is_grounded_split_by_chunk_and_traceable(dataset, workdir):
    card, pairs = dataset
    assert card["pairs"]["total"] == len(pairs) > 50
    assert card["grounding_rate_after_filters"] == 1.0 and card["chunks"]["coverage"] > 0.8
    train_chunks = {p["chunk_id"] for p in pairs if p["split"] == "train"}
    eval_chunks = {p["chunk_id"] for p in pairs if p["split"] == "eval"}
    assert train_chunks and eval_chunks and not train_chunks & eval_chunks
    assert 0 <= card["leakage"]["max_eval_train_similarity"] <= 1
    for p in pairs:
        assert p["chunk_id"] not in p["distractors"] and len(p["distractors"]) == 3
    rows = _read(card["path"], "train.jsonl")
    assert Counter(r["kind"] for r in rows) == {"closed_book": card["pairs"]["train"], "raft": card["pairs"]["train"]}
    by_id = {p["id"]: p for p in pairs}
    for r in rows:
        assert by_id[r["pair_id"]]["chunk_id"] == r["oracle_chunk_id"] and r["messages"][-1]["content"] == r["answer"]


def test_exports_load_with_datasets(dataset):
    import datasets

    card, _ = dataset
    for name in ("train.jsonl", "train.alpaca.jsonl", "eval.jsonl"):
        ds = datasets.load_dataset("json", data_files=f"{card['path']}/{name}", split="train")
        assert len(ds) > 0 and "oracle_chunk_id" in ds.column_names
    alpaca = datasets.load_dataset("json", data_files=f"{card['path']}/train.alpaca.jsonl", split="train")
    assert {"instruction", "input", "output", "system", "history"} <= set(alpaca.column_names)


def test_a_re_run_is_safe_and_an_interrupted_run_resumes(workdir, dataset, monkeypatch):
    from ragtune.synth import generators, pipeline

    card, pairs = dataset
    again = pipeline.synthesize(synth_cfg(workdir, eval_fraction=0.25, format="alpaca"))
    assert again["path"] == card["path"] and _read(card["path"], "pairs.jsonl") == pairs  # nothing duplicated

    out = workdir / "interrupted"
    real_build = generators.build

    class Dies:
        def __init__(self, cfg):
            self.inner, self.calls = real_build(cfg), 0
            self.name, self.settings = self.inner.name, self.inner.settings

        def generate(self, chunks):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("killed")
            return self.inner.generate(chunks)

    monkeypatch.setattr(generators, "build", Dies)
    cfg = synth_cfg(workdir, eval_fraction=0.25, out=str(out), batch_size=4)
    with pytest.raises(RuntimeError, match="killed"):
        pipeline.synthesize(cfg)
    assert len((out / "drafts.jsonl").read_text().splitlines()) == 4  # the first batch is kept
    with (out / "drafts.jsonl").open("a") as f:
        f.write('{"chunk_id": "torn li')  # a kill in the middle of a line
    monkeypatch.setattr(generators, "build", real_build)
    resumed = pipeline.synthesize(cfg)
    drafts = [json.loads(line)["chunk_id"] for line in (out / "drafts.jsonl").read_text().splitlines()]
    assert len(drafts) == len(set(drafts)) == resumed["chunks"]["total"]
    assert [p["question"] for p in _read(out, "pairs.jsonl")] == [p["question"] for p in pairs]
    # A damaged folder (a copy: later tests use this one) gives a one-line error naming the file.
    damaged = workdir / "damaged"
    shutil.copytree(out, damaged)
    lines = (damaged / "drafts.jsonl").read_text().splitlines()
    (damaged / "drafts.jsonl").write_text("\n".join([lines[0], "{damaged", *lines[2:]]) + "\n")
    with pytest.raises(RuntimeError, match=r"drafts.jsonl:2: not a line ragtune wrote"):
        pipeline.synthesize(synth_cfg(workdir, eval_fraction=0.25, out=str(damaged), batch_size=4))
    (damaged / "config.json").write_text("{damaged")
    with pytest.raises(RuntimeError, match=r"config.json: damaged"):
        pipeline.synthesize(synth_cfg(workdir, eval_fraction=0.25, out=str(damaged), batch_size=4))


def test_boilerplate_chunks_are_not_asked_about_but_may_be_distractors(tmp_path):
    from ragtune.synth.pipeline import synthesize

    workdir = _ingested(
        tmp_path,
        {
            "results.md": "# Acme results\n\nAcme sold 300 trucks in Ohio in 2023. The plant in Toledo opened in 1998 and employs 450 workers.\n",
            "cover.md": "# Cover\n\nIndicate by check mark whether the registrant has filed all reports required by Section 13 in 2023. "
            "Acme employs 300 people in Ohio.\n",
        },
    )
    card = synthesize(synth_cfg(workdir, eval_fraction=0.0, distractors=1))
    pairs = _read(card["path"], "pairs.jsonl")
    assert card["chunks"]["total"] == 1 and card["chunks"]["boilerplate"] == 1
    assert pairs and {p["source"].rsplit("/", 1)[-1] for p in pairs} == {"results.md"}


def test_bad_settings_and_an_empty_index(tmp_path, workdir):
    from ragtune.synth.pipeline import synthesize

    for key, value, flag in (
        ("oracle_p", 1.5, "--oracle-p"),
        ("eval_fraction", 1.0, "--eval-fraction"),
        ("generator", "magic", "--generator"),
        ("noise_kinds", "typo", "--noise-kinds"),
        ("raft_context", "both", "--raft-context"),
    ):
        with pytest.raises(ConfigError, match=flag):
            synth_cfg(workdir, **{key: value})
    with pytest.raises(RuntimeError, match="empty: run `ragtune ingest PATH` first"):
        synthesize(synth_cfg(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="other settings"):
        synthesize(synth_cfg(workdir, out=str(workdir / "interrupted"), seed=7))


def test_the_cli_prints_a_summary_and_json(workdir, dataset):
    run = subprocess.run(
        CLI + ["synth", "--workdir", str(workdir), "--eval-fraction", "0.25", "--format", "alpaca", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    card = json.loads(run.stdout)
    assert card["path"] == dataset[0]["path"] and card["pairs"] == dataset[0]["pairs"]
    bad = subprocess.run(CLI + ["synth", "--workdir", str(workdir), "--oracle-p", "2"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--oracle-p must be between 0 and 1" in bad.stderr
    # The RAFT flags reach the rows: one chunk each, and the budget --max-tokens sets.
    single = subprocess.run(
        CLI + ["synth", "--workdir", str(workdir), "--eval-fraction", "0.25", "--raft-context", "single", "--max-tokens", "300", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    card = json.loads(single.stdout)
    assert card["path"] != dataset[0]["path"] and card["raft"]["context"] == "single" and card["raft"]["max_tokens"] == 300
    assert card["raft"]["mean_chunks"] == 1.0 < dataset[0]["raft"]["mean_chunks"]


def test_split_by_document_and_the_round_trip_filter(workdir, tiny_model, model_cache):
    from ragtune.synth.pipeline import synthesize

    settings = {"split_by": "document", "eval_fraction": 0.34, "pairs_per_chunk": 1, "paraphrases": 0, "llm.model": str(tiny_model)}
    plain = synthesize(synth_cfg(workdir, out=str(workdir / "plain"), **settings))
    checked = synthesize(synth_cfg(workdir, out=str(workdir / "checked"), round_trip=True, **settings))
    pairs = _read(plain["path"], "pairs.jsonl")
    kept = _read(checked["path"], "pairs.jsonl")
    train_docs = {p["source"] for p in pairs if p["split"] == "train"}
    eval_docs = {p["source"] for p in pairs if p["split"] == "eval"}
    assert len(eval_docs) == 1 and len(train_docs) == 2 and not train_docs & eval_docs
    # The random tiny model agrees with some pairs, not all: those it does not are counted and dropped.
    assert 0 < checked["filtered"]["round_trip"] < len(pairs)
    assert len(kept) + checked["filtered"]["round_trip"] == len(pairs)
    assert {p["id"] for p in kept} < {p["id"] for p in pairs}


def test_the_dataset_folder_changes_with_the_prompt_templates(tmp_path):
    from ragtune.core.config import CONFIG_DIR
    from ragtune.synth.pipeline import dataset_dir

    prompts = tmp_path / "prompts.yaml"
    prompts.write_text((CONFIG_DIR / "prompts.yaml").read_text())
    cfg = synth_cfg(tmp_path, prompts=str(prompts))
    before = dataset_dir(cfg, "v1")
    assert dataset_dir(cfg, "v1") == before and dataset_dir(cfg, "v2") != before
    prompts.write_text(prompts.read_text().replace("adapter_examples: true", "adapter_examples: false"))
    assert dataset_dir(cfg, "v1") == before  # read when answering only: the rows are the same
    prompts.write_text(prompts.read_text().replace("Answer with the shortest phrase", "Answer with the shortest span"))
    assert dataset_dir(cfg, "v1") != before  # the same settings, other templates: other rows, another folder


# The card and removal ----------------------------------------------------------------------------


def test_the_card_record_writes_an_existing_dataset_json_back_byte_for_byte(tmp_path):
    from ragtune.core.records import DatasetCard
    from ragtune.synth.pipeline import _write_json

    written = (DATA / "dataset.json").read_bytes()
    card = DatasetCard.from_json(json.loads(written))
    assert card.pairs["total"] == 47 and card.filtered["removed"] == 0 and card.name == "ds"
    _write_json(tmp_path / "dataset.json", card.to_json())
    assert (tmp_path / "dataset.json").read_bytes() == written


def test_synthesize_card_returns_the_record_dataset_json_holds(workdir, dataset, tmp_path):
    from ragtune.core.records import DatasetCard
    from ragtune.synth.pipeline import _write_json, synthesize_card

    card = synthesize_card(synth_cfg(workdir, eval_fraction=0.25, format="alpaca"))  # a re-run: the drafts are reused
    assert isinstance(card, DatasetCard) and card.path == dataset[0]["path"] and card.pairs == dataset[0]["pairs"]
    _write_json(tmp_path / "card.json", card.to_json())
    assert (tmp_path / "card.json").read_bytes() == (Path(card.path) / "dataset.json").read_bytes()


def test_removed_pairs_leave_the_pairs_rows_and_card_and_stay_out_on_a_re_run(workdir, dataset, tmp_path):
    from ragtune.synth.pipeline import read_pairs, remove_pairs, synthesize

    card, pairs = dataset
    data = shutil.copytree(card["path"], tmp_path / "ds", ignore=shutil.ignore_patterns(".lock"))  # later tests use the original
    target = next(p for p in pairs if p["split"] == "train" and p["kind"] == "original")
    assert remove_pairs(data, [target["id"], "no-such-id"]) == {"pairs": 1, "rows": 2}  # its closed-book and RAFT rows
    assert [p.to_json() for p in read_pairs(data)] == [p for p in pairs if p["id"] != target["id"]]
    assert [p.to_json() for p in read_pairs(data, 2)] == [p for p in pairs if p["id"] != target["id"]][
        :2
    ]  # the app's preview reads no further
    assert target["id"] not in {r["pair_id"] for name in ("train.jsonl", "train.alpaca.jsonl") for r in _read(data, name)}
    after = json.loads((data / "dataset.json").read_text())
    assert after["filtered"] == {**card["filtered"], "removed": 1}
    assert after["pairs"] == {**card["pairs"], "total": card["pairs"]["total"] - 1, "train": card["pairs"]["train"] - 1}
    again = synthesize(synth_cfg(workdir, eval_fraction=0.25, format="alpaca", out=str(data)))
    assert again["filtered"]["removed"] == 1 and target["id"] not in {p.id for p in read_pairs(data)}
    (data / "pairs.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(RuntimeError, match=r"pairs.jsonl:1: not a pair: no answer, chunk_id"):
        read_pairs(data)
    (data / "pairs.jsonl").write_text("[1, 2]\n")
    with pytest.raises(RuntimeError, match=r"pairs.jsonl:1: not a JSON object"):
        read_pairs(data)
