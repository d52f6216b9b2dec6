"""How results read: the lines and tables `ragtune` prints and the app shows, written once.

Each function takes what a stage returned (an IngestReport, a DatasetCard, a TrainReport, an
EvalReport; the score tables its plain data) and gives text. core imports no stage, so the records
are read by their fields.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.core.records import DatasetCard


def plural(n: int, word: str) -> str:
    """`1 file`, `2 files`."""
    return f"{n} {word}{'s' * (n != 1)}"


def short_path(path: str | os.PathLike) -> str:
    """The path relative to the current folder when it lies below it; otherwise as given."""
    path = str(path)
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


# Where an answer's text came from ----------------------------------------------------------------


OCR = " (OCR)"  # marks a chunk read from a scan: its words may hold recognition errors


def where(page: int | None, section: str | None, ocr: bool = False) -> str:
    """`page 3`, else the section: where a chunk sits in its file; `page 3 (OCR)` for a scanned page."""
    return (f"page {page}" if page else (section or "")) + (OCR if ocr else "")


def place(page: int | None, section: str | None, ocr: bool = False) -> str:
    """`p.3 § Guide > Install`: page and section together, for a terminal line."""
    return " ".join(x for x in (f"p.{page}" if page else "", f"§ {section}" if section else "") if x) + (OCR if ocr else "")


def snippet(text: str, width: int) -> str:
    """A chunk's text on one line, cut to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat[:width] + ("…" if len(flat) > width else "")


def titled(title: str | None, name: str) -> str:
    """`Netflix 2017 10-K — NETFLIX_2017_10K.pdf`: a file as a source line names it, after its document's
    title unless the title only repeats the file's name (the fallback title of rag/ingest.py)."""
    return f"{title} — {name}" if title and _words(title) != _words(Path(name).stem) else name


def _words(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


def source_line(n: int, source: Any, cited: bool = False) -> str:
    """`[2] Guide — docs/guide.pdf p.3 § Install  (cited)`: the n-th chunk an answer was given (a core.records.Source)."""
    name = titled(getattr(source, "title", ""), short_path(source.source))
    return f"[{n}] {name} {place(source.page, source.section, getattr(source, 'ocr', False))}".rstrip() + ("  (cited)" if cited else "")


def hit_lines(
    rank: int,
    score: float,
    source: str,
    page: int | None,
    section: str | None,
    text: str,
    width: int,
    title: str = "",
    ocr: bool = False,
) -> list[str]:
    """A retrieved chunk in two lines: `1. [0.0312] Guide — docs/guide.pdf p.3 § Install`, then its snippet, indented."""
    return [f"{rank}. [{score:.4f}] {titled(title, short_path(source))} {place(page, section, ocr)}".rstrip(), f"   {snippet(text, width)}"]


def dropped_citations(n: int) -> str:
    """`2 citations to no retrieved chunk removed`: numbers the answer cited that no source had."""
    return f"{plural(n, 'citation')} to no retrieved chunk removed"


# One-line summaries of the stages ------------------------------------------------------------------

INGESTED = {"ok": "ingested"}  # the statuses as a summary words them


def ingest_summary(report: Any) -> str:
    """`2 files (1 ingested, 1 failed); chunks: 3 added, 0 unchanged, 0 removed; 3 in collection 'docs'`."""
    counts = ", ".join(
        f"{report.count(s)} {INGESTED.get(s, s)}" for s in ("ok", "unchanged", "skipped", "failed", "pruned") if report.count(s)
    )
    return (
        f"{plural(len(report.files), 'file')} ({counts or 'none'}); chunks: {report.chunks_added} added, {report.chunks_unchanged} unchanged, "
        f"{report.chunks_removed} removed; {report.total_chunks} in collection '{report.collection}'"
    )


def synth_summary(card: DatasetCard) -> str:
    """`120 pairs (100 train, 20 eval; 40 facts) from 30 of 32 chunks (94% coverage)`: a dataset card in a line."""
    pairs, chunks = card.pairs, card.chunks
    return (
        f"{pairs['total']} pairs ({pairs.get('train', 0)} train, {pairs.get('eval', 0)} eval; {pairs['groups']} facts) "
        f"from {chunks['with_pairs']} of {chunks['total']} chunks ({100 * chunks['coverage']:.0f}% coverage)"
    )


def train_summary(report: Any) -> str:
    """`30 steps, train loss 1.9312, eval loss 2.0100, 371 tokens/s`; a time budget that ended it early says so."""
    steps = f"{report.steps} of {report.max_steps} steps (time budget)" if report.out_of_time else plural(report.steps, "step")
    eval_loss = f", eval loss {report.eval_loss:.4f}" if report.eval_loss is not None else ""
    train_loss = f"{report.train_loss:.4f}" if report.train_loss is not None else "n/a"
    head = getattr(report, "reader_head", None) or {}  # a run without a head, or a report written before heads
    exact = ""
    if head.get("eval_exact") is not None:
        exact = f", reader head exact {100 * head['eval_exact']:.0f}% of {head['eval_examples']} held out"
    if head.get("eval_span_exact") is not None:
        exact += f" ({100 * head['eval_span_exact']:.0f}% of the {head['eval_spans']} answers)"
    return f"{steps}, train loss {train_loss}{eval_loss}{exact}, {report.tokens_per_s:.0f} tokens/s"


def self_train_round(r: Any) -> str:
    """`self-training round 1: 37 of 2,911 labels changed (p >= 0.80); eval loss 1.41, head exact 44%`."""
    loss = f"eval loss {r.eval_loss:.4f}" if r.eval_loss is not None else "no eval loss"
    exact = f", head exact {100 * r.head_exact:.0f}%" if r.head_exact is not None else ""
    return f"self-training round {r.round}: {r.changed:,} of {r.rows:,} labels changed (p >= {r.threshold:.2f}); {loss}{exact}"


def train_stopped(report: Any, out: str) -> str:
    """An interrupted training run: where its checkpoint is and the command that continues it."""
    return f"stopped at step {report.steps} of {report.max_steps}; checkpoint in {out}: `ragtune train --resume --out {out}` continues it"


def demo_line(step: Any) -> str:
    """The demo's line for a stage that ended (a pipeline.DemoStep): `1/4 ingest: 7 files (7 ingested); ... (15 s)`."""
    r, took = step.result, f"({step.seconds:.0f} s)"
    if step.stage == "ingest":
        return f"1/4 ingest: {ingest_summary(r)} {took}"
    if step.stage == "synth":
        return f"2/4 synth: {synth_summary(r)} {took}"
    if step.stage == "train" and isinstance(r, (str, Path)):  # a finished adapter, reused
        return f"3/4 train: reusing {short_path(r)}, trained with these settings on this dataset {took}"
    if step.stage == "train":
        return f"3/4 train: {train_summary(r)} {took}"
    asked, read = r.report.questions["asked"], r.report.questions["read"]
    return f"4/4 eval on {r.name}: {asked} questions" + (f" (a fixed sample of the {read})" if asked < read else "")


# Eval tables -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A score table: a row per mode, each cell as shown."""

    title: str
    headers: list[str]
    rows: list[list[str]]


def factoid_headers(intervals: bool = False) -> list[str]:
    """The factoid table's columns; `intervals`: F1 with its 95% bootstrap interval."""
    return ["mode", "EM", "F1 [95% CI]" if intervals else "F1", "contains", "ROUGE-L", "abstain", "gold ppl", "p50 s"]


def factoid_table(summary: dict, modes: list[str], title: str = "", intervals: bool = False) -> Table:
    """Exact match, F1, contains, ROUGE-L, abstentions, gold perplexity and median latency per mode."""
    rows = []
    for m in modes:
        s = summary[m]
        f1 = _mean(s["f1"]) + (f" [{s['f1']['low']:.1f}, {s['f1']['high']:.1f}]" if intervals else "")
        ppl = f"{s['gold_perplexity']['mean']:.2f}" if s.get("gold_perplexity") else "n/a"
        rows.append(
            [
                m,
                _mean(s["exact"]),
                f1,
                _mean(s["contains"]) + "%",
                _mean(s["rouge_l"]),
                f"{s['abstain_rate']:.1f}%",
                ppl,
                f"{s['latency_s']['p50']:.2f}",
            ]
        )
    return Table(title, factoid_headers(intervals), rows)


def open_table(summary: dict, modes: list[str], short_words: int, title: str = "") -> Table:
    """Key-fact recall, token F1 and recall, citing, citation precision and answer length per mode."""
    headers = ["mode", "key rec", "tok F1", "tok rec", "cited", "cite prec", "words p50", f"≤{short_words} words"]
    rows = []
    for m in modes:
        s = summary[m]
        cited = _mean(s["cited"]) + "%" if s.get("cited") else "n/a"
        rows.append(
            [
                m,
                _mean(s["key_recall"]),
                _mean(s["token_f1"]),
                _mean(s["token_recall"]),
                cited,
                _mean(s["citation_precision"]),
                f"{s['words_p50']:g}",
                f"{s['short_rate']:.1f}%",
            ]
        )
    return Table(title, headers, rows)


def score_tables(report: dict, short_words: int) -> list[Table]:
    """A table per question type in an eval report's data (a report without types is all factoid)."""
    tables = []
    for qtype, summary in (report.get("by_type") or {"factoid": report["summary"]}).items():
        title = f"{qtype} questions ({next(iter(summary.values())).get('n', report['questions']['asked'])})"
        tables.append(
            open_table(summary, report["modes"], short_words, title) if qtype == "open" else factoid_table(summary, report["modes"], title)
        )
    return tables


def text_table(table: Table) -> list[str]:
    """The table as terminal lines: the mode flush left, the scores right-aligned."""
    widths = [max(map(len, column)) for column in zip(table.headers, *table.rows)]

    def line(cells: list[str]) -> str:
        return cells[0].ljust(widths[0]) + "".join(c.rjust(w + 2) for c, w in zip(cells[1:], widths[1:]))

    return [line(table.headers)] + [line(row) for row in table.rows]


def retrieval_line(report: dict) -> str | None:
    """`retrieval: hit@2 85.0%, answer-recall@2 71.2%`, shared by the rag modes; None without retrieval."""
    r = report.get("retrieval")
    if not r:
        return None
    return f"retrieval: hit@{r['k']} {r['hit_at_k']['mean']:.1f}%, answer-recall@{r['k']} {r['answer_recall_at_k']['mean']:.1f}%"


def _mean(interval: dict | None) -> str:
    """An interval's mean; n/a where the metric applies to no answer (no keys, no citation)."""
    return f"{interval['mean']:.1f}" if interval else "n/a"
