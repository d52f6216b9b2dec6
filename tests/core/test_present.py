"""core/present.py: the lines and tables both shells show, on hand-made reports with known figures."""

import os
from pathlib import Path
from types import SimpleNamespace

from ragtune.core import present
from ragtune.core.records import DatasetCard, EvalReport, FileReport, IngestReport, Source


def _iv(mean, low=None, high=None):
    return {"mean": mean, "low": mean if low is None else low, "high": mean if high is None else high}


def _factoid(f1, ppl=None):
    return {
        "exact": _iv(f1 - 10),
        "f1": _iv(f1, f1 - 5, f1 + 5),
        "contains": _iv(50.0),
        "rouge_l": _iv(40.25),
        "abstain_rate": 12.5,
        "gold_perplexity": _iv(ppl) if ppl else None,
        "latency_s": {"p50": 0.125, "p95": 0.5},
    }


def _open(key_recall, cited):
    return {
        "n": 2,
        "key_recall": _iv(key_recall) if key_recall is not None else None,
        "token_f1": _iv(68.75),
        "token_recall": _iv(60.4),
        "cited": _iv(cited) if cited is not None else None,
        "citation_precision": None,
        "words_p50": 5.0,
        "short_rate": 50.0,
    }


REPORT = {
    "modes": ["rag", "ft-rag"],
    "questions": {"asked": 3, "read": 10},
    "summary": {"rag": _factoid(80.0, 3.5), "ft-rag": _factoid(60.0)},
    "by_type": {
        "factoid": {"rag": {"n": 1, **_factoid(80.0, 3.5)}, "ft-rag": {"n": 1, **_factoid(60.0)}},
        "open": {"rag": _open(100.0, 50.0), "ft-rag": _open(None, None)},
    },
    "retrieval": {"k": 2, "hit_at_k": _iv(85.0), "answer_recall_at_k": _iv(71.25)},
}


def test_factoid_rows_are_the_formatted_means_and_the_app_adds_f1_intervals():
    table = present.factoid_table(REPORT["summary"], REPORT["modes"])
    assert table.headers == ["mode", "EM", "F1", "contains", "ROUGE-L", "abstain", "gold ppl", "p50 s"]
    assert table.rows == [
        ["rag", "70.0", "80.0", "50.0%", "40.2", "12.5%", "3.50", "0.12"],
        ["ft-rag", "50.0", "60.0", "50.0%", "40.2", "12.5%", "n/a", "0.12"],
    ]
    with_intervals = present.factoid_table(REPORT["summary"], REPORT["modes"], intervals=True)
    assert with_intervals.headers[2] == "F1 [95% CI]" == present.factoid_headers(intervals=True)[2]
    assert with_intervals.rows[0][2] == "80.0 [75.0, 85.0]" and with_intervals.rows[0][3:] == table.rows[0][3:]


def test_open_rows_say_n_a_where_a_metric_applies_to_no_answer():
    table = present.open_table(REPORT["by_type"]["open"], REPORT["modes"], short_words=3)
    assert table.headers[-1] == "≤3 words"
    assert table.rows == [
        ["rag", "100.0", "68.8", "60.4", "50.0%", "n/a", "5", "50.0%"],
        ["ft-rag", "n/a", "68.8", "60.4", "n/a", "n/a", "5", "50.0%"],
    ]


def test_a_table_per_question_type_and_an_untyped_report_is_all_factoid():
    tables = present.score_tables(REPORT, short_words=3)
    assert [t.title for t in tables] == ["factoid questions (1)", "open questions (2)"]
    untyped = present.score_tables({k: v for k, v in REPORT.items() if k != "by_type"}, short_words=3)
    assert [t.title for t in untyped] == ["factoid questions (3)"]  # no per-type count: the questions asked
    assert untyped[0].rows == present.factoid_table(REPORT["summary"], REPORT["modes"]).rows


def test_the_text_table_aligns_columns_and_keeps_each_row_one_mode():
    lines = present.text_table(present.factoid_table(REPORT["summary"], REPORT["modes"]))
    assert len({len(line) for line in lines}) == 1  # every line as wide: the columns line up
    assert lines[0].startswith("mode ") and lines[1].startswith("rag ") and lines[2].startswith("ft-rag ")
    assert lines[1].split() == ["rag", "70.0", "80.0", "50.0%", "40.2", "12.5%", "3.50", "0.12"]
    assert lines[0].index("F1") + 2 == lines[1].index("80.0") + 4  # right-aligned under its header


def test_retrieval_line():
    assert present.retrieval_line(REPORT) == "retrieval: hit@2 85.0%, answer-recall@2 71.2%"
    assert present.retrieval_line({**REPORT, "retrieval": None}) is None


def test_ingest_summary_counts_the_statuses_that_occurred():
    report = IngestReport(
        "docs",
        [FileReport("a.md", "ok", chunks_added=3), FileReport("b.pdf", "failed", "encrypted"), FileReport("c.md", "ok", chunks_added=2)],
        total_chunks=9,
    )
    assert present.ingest_summary(report) == (
        "3 files (2 ingested, 1 failed); chunks: 5 added, 0 unchanged, 0 removed; 9 in collection 'docs'"
    )
    assert present.ingest_summary(IngestReport("docs")).startswith("0 files (none); ")
    assert present.ingest_summary(IngestReport("docs", [FileReport("a.md", "unchanged")])).startswith("1 file (1 unchanged)")


def test_synth_and_train_summaries():
    card = DatasetCard(
        generator={},
        config={},
        chunks={"with_pairs": 30, "total": 32, "coverage": 0.9375},
        drafts=0,
        grounding_rate_before_filters=0.0,
        grounding_rate_after_filters=0.0,
        filtered={},
        pairs={"total": 120, "train": 100, "eval": 20, "groups": 40},
        rows={},
        mean_words={},
        raft={},
        leakage={},
    )
    assert present.synth_summary(card) == "120 pairs (100 train, 20 eval; 40 facts) from 30 of 32 chunks (94% coverage)"
    run = SimpleNamespace(steps=30, max_steps=30, out_of_time=False, train_loss=1.93125, eval_loss=None, tokens_per_s=371.4)
    assert present.train_summary(run) == "30 steps, train loss 1.9312, 371 tokens/s"
    run.steps, run.max_steps, run.out_of_time, run.eval_loss = 9, 30, True, 2.01
    assert present.train_summary(run) == "9 of 30 steps (time budget), train loss 1.9312, eval loss 2.0100, 371 tokens/s"
    run.reader_head = {"examples": 64, "eval_exact": 0.36, "eval_examples": 50}
    assert present.train_summary(run).endswith("eval loss 2.0100, reader head exact 36% of 50 held out, 371 tokens/s")
    run.reader_head |= {"eval_spans": 25, "eval_span_exact": 0.04}  # most of the 36% may be "no answer" said to distractors
    assert present.train_summary(run).endswith("reader head exact 36% of 50 held out (4% of the 25 answers), 371 tokens/s")
    assert present.train_stopped(run, "adapters/run-1") == (
        "stopped at step 9 of 30; checkpoint in adapters/run-1: `ragtune train --resume --out adapters/run-1` continues it"
    )


def test_the_demo_line_of_each_stage():
    step = SimpleNamespace
    ingested = IngestReport("docs", [FileReport("a.md", "ok", chunks_added=4)], total_chunks=4)
    assert present.demo_line(step(stage="ingest", result=ingested, seconds=15.2)).startswith("1/4 ingest: 1 file (1 ingested); ")
    assert present.demo_line(step(stage="ingest", result=ingested, seconds=15.2)).endswith(" (15 s)")
    run = SimpleNamespace(steps=30, max_steps=30, out_of_time=False, train_loss=1.5, eval_loss=None, tokens_per_s=200.0)
    assert present.demo_line(step(stage="train", result=run, seconds=60)) == "3/4 train: 30 steps, train loss 1.5000, 200 tokens/s (60 s)"
    reused = step(stage="train", result=Path("/elsewhere/adapters/run-1"), seconds=0.4)
    assert present.demo_line(reused) == "3/4 train: reusing /elsewhere/adapters/run-1, trained with these settings on this dataset (0 s)"
    report = EvalReport.from_json(
        {
            **REPORT,
            "skipped_modes": {},
            "versions": {},
            "config": {},
            "comparisons": [],
            "buckets": {},
            "disagreements": 0,
            "per_question": [],
        }
    )
    evaluated = step(stage="eval", result=SimpleNamespace(name="our questions", report=report), seconds=9)
    assert present.demo_line(evaluated) == "4/4 eval on our questions: 3 questions (a fixed sample of the 10)"


def test_where_a_chunk_is_and_its_one_line_snippet():
    assert present.where(3, "Guide > Install") == "page 3"  # a page says more than a PDF's guessed section
    assert present.where(None, "Guide > Install") == "Guide > Install" and present.where(None, "") == ""
    assert present.place(3, "Guide > Install") == "p.3 § Guide > Install" and present.place(None, "Notes") == "§ Notes"
    assert present.snippet("a  b\n\nc", 10) == "a b c"
    assert present.snippet("x" * 12, 10) == "x" * 10 + "…"


def test_source_and_hit_lines_name_the_file_relative_to_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside, outside = str(tmp_path / "docs" / "guide.pdf"), "/elsewhere/notes.md"
    assert present.short_path(inside) == os.path.join("docs", "guide.pdf") and present.short_path(outside) == outside
    source = Source("c1", inside, 3, "Guide > Install", 0.5, 1, "text")
    assert present.source_line(1, source, cited=True) == f"[1] {os.path.join('docs', 'guide.pdf')} p.3 § Guide > Install  (cited)"
    assert present.source_line(2, Source("c2", outside, None, "", 0.25, 2, "t")) == "[2] /elsewhere/notes.md"
    assert present.hit_lines(1, 0.03125, outside, None, "Notes", "Trains  run\nhourly.", 8) == [
        "1. [0.0312] /elsewhere/notes.md § Notes",
        "   Trains r…",
    ]


def test_a_source_line_leads_with_its_documents_title_unless_it_repeats_the_file_name():
    filing = "/filings/NETFLIX_2017_10K.pdf"
    source = Source("c1", filing, 3, "PART II > Item 7", 0.5, 1, "text", title="Netflix, Inc. Form 10-K")
    assert present.source_line(1, source) == f"[1] Netflix, Inc. Form 10-K — {filing} p.3 § PART II > Item 7"
    assert (
        present.hit_lines(2, 0.5, filing, 3, "", "t", 10, title="Netflix, Inc. Form 10-K")[0]
        == f"2. [0.5000] Netflix, Inc. Form 10-K — {filing} p.3"
    )
    assert present.titled("NETFLIX 2017 10K", "NETFLIX_2017_10K.pdf") == "NETFLIX_2017_10K.pdf"  # the fallback title says nothing more
    assert present.titled("07 app and faq", "docs/07-app-and-faq.jsonl") == "docs/07-app-and-faq.jsonl"
    assert present.titled("", "a.md") == "a.md"


def test_dropped_citations_counts_in_words():
    assert present.dropped_citations(1) == "1 citation to no retrieved chunk removed"
    assert present.dropped_citations(2) == "2 citations to no retrieved chunk removed"
    assert present.plural(0, "file") == "0 files"


def test_a_chunk_read_by_ocr_says_so_wherever_its_place_is_shown():
    scan = Source("c1", "/docs/scan.pdf", 2, "Field Report", 0.5, 1, "text", ocr=True)
    assert present.source_line(1, scan) == "[1] /docs/scan.pdf p.2 § Field Report (OCR)"
    assert present.where(2, "Field Report", ocr=True) == "page 2 (OCR)"
    assert present.hit_lines(1, 0.5, "/docs/scan.pdf", 2, "", "t", 10, ocr=True)[0] == "1. [0.5000] /docs/scan.pdf p.2 (OCR)"
