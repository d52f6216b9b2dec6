"""`evaluate(cfg)`: the same questions in every mode, scored, compared and explained.

    ragtune eval --questions ../shared/eval/squad/questions.jsonl --limit 200 --seed 0
    ragtune eval --split eval --modes rag,ft-rag

Each question is retrieved for once and the rag modes share those chunks, so a difference
between rag and ft-rag is the model's, never the retriever's; every answer goes through the
engine's `Answerer`, so a mode means what it means in `ragtune ask`. Factoid answers are scored
on their span (SQuAD F1), open ones on key facts, token overlap, citations and length. The
result is an `EvalReport` (`evaluate` gives it as plain data); evals/report.py writes it and reads it
back for --compare.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ragtune.core.config import to_dict
from ragtune.core.records import EvalReport
from ragtune.core.workdir import datasets_dir, newest_dataset
from ragtune.engine.cite import strip
from ragtune.evals import metrics, stats
from ragtune.evals.config import EvalConfig
from ragtune.evals.questions import TYPES, Question, QuestionSet, eval_split, read_questions, sample

if TYPE_CHECKING:  # torch underneath: imported where an answerer is built
    from ragtune.engine.answer import Answerer

# The comparisons a decision rests on: does fine-tuning add to RAG, does it add to the bare model.
KEY_COMPARISONS = (("ft-rag", "rag"), ("ft", "base"))
BUCKETS = ("retrieval miss", "wrong span", "verbose", "abstained", "hallucinated")
RATE_METRICS = ("exact", "f1", "contains", "rouge_l")  # per question 0-100, averaged with intervals
# Per question 0-100 or None where it does not apply (no keys, no citation), averaged where it does
LONG_METRICS = ("key_recall", "token_f1", "token_recall", "citation_precision", "cited")
SHORT_WORDS = 3  # an answer this short to an open question is a bare span, not an explanation


def evaluate(cfg: EvalConfig, progress: Callable[[str, int, int], None] | None = None, answerer: Answerer | None = None) -> dict:
    """`evaluate_report`'s report as plain data, as report.json holds it."""
    return evaluate_report(cfg, progress, answerer).to_json()


def evaluate_report(
    cfg: EvalConfig, progress: Callable[[str, int, int], None] | None = None, answerer: Answerer | None = None
) -> EvalReport:
    """Answer, score and compare.

    Args:
        cfg: the resolved config.
        progress: called with (stage, done, total); stages are "retrieve" and each mode.
        answerer: an `Answerer` built from `cfg.ask`, to share its loaded models across several sets;
            None builds one.
    Raises:
        ValueError: no usable questions (a missing or empty file, no eval split).
        RuntimeError: no mode can answer (no index for the rag modes and no adapter, say).
    """
    from ragtune.core import offline

    offline.setup()
    t0 = time.perf_counter()
    progress = progress or (lambda *_: None)
    qs = sample(_load_questions(cfg), cfg.limit, cfg.seed)
    types = _types(qs.questions)
    answerer, modes, blocked = _answerer(cfg, answerer)
    hits, retrieval = _retrieve(cfg, answerer, qs.questions, modes, progress)
    results = {m: _answer_mode(cfg, answerer, m, qs.questions, types, hits, retrieval, progress) for m in modes}
    report = _report(cfg, answerer, qs, types, modes, blocked, retrieval, results)
    return replace(report, elapsed_s=round(time.perf_counter() - t0, 2))


def _answerer(cfg: EvalConfig, answerer: Answerer | None) -> tuple[Answerer, list[str], dict[str, str]]:
    """The answerer (built unless given), the modes it can answer in, and why the others cannot."""
    from ragtune.engine.answer import Answerer

    if cfg.ask.adapter and not Path(cfg.ask.adapter).expanduser().is_dir():
        raise ValueError(f"--adapter {cfg.ask.adapter}: no such folder")
    answerer = answerer or Answerer(cfg.ask)
    blocked = answerer.unavailable(cfg.modes)
    modes = [m for m in cfg.modes if m not in blocked]
    if not modes:
        raise RuntimeError("no mode can answer: " + "; ".join(f"{m}: {why}" for m, why in blocked.items()))
    return answerer, modes, blocked


def _retrieve(cfg: EvalConfig, answerer, questions: list[Question], modes: list[str], progress) -> tuple[list | None, list[dict] | None]:
    """One retrieval per question, shared by the rag modes, and how well each found its answer; None without rag modes."""
    from ragtune.engine.answer import RAG_MODES

    if not any(m in RAG_MODES for m in modes):
        return None, None
    hits = []
    for i, q in enumerate(questions):
        hits.append(answerer.retriever.search(q.question, cfg.ask.k))
        progress("retrieve", i + 1, len(questions))
    return hits, [_retrieval(q, h) for q, h in zip(questions, hits)]


def _answer_mode(
    cfg: EvalConfig,
    answerer,
    mode: str,
    questions: list[Question],
    types: list[str],
    hits: list | None,
    retrieval: list[dict] | None,
    progress,
) -> list[dict]:
    """Every question answered in one mode, and scored."""
    from ragtune.engine.answer import RAG_MODES

    rag = mode in RAG_MODES
    # Span answers are chosen one question at a time anyway; one-question batches give each its own latency.
    size = 1 if answerer.picks_span(mode) else cfg.ask.batch_size
    rows = []
    for start in range(0, len(questions), size):
        batch = questions[start : start + size]
        answers = answerer.answer_batch(
            [q.question for q in batch], mode, hits=hits[start : start + size] if rag else None, golds=[list(q.answers) for q in batch]
        )
        for j, (q, a) in enumerate(zip(batch, answers)):
            r = retrieval[start + j] if rag else None
            rows.append(_score(q, a, r, answerer.templates.abstain, cfg.correct_f1, types[start + j]))
        progress(mode, len(rows), len(questions))
    return rows


def _report(
    cfg: EvalConfig,
    answerer,
    qs: QuestionSet,
    types: list[str],
    modes: list[str],
    blocked: dict,
    retrieval: list[dict] | None,
    results: dict[str, list[dict]],
) -> EvalReport:
    """The summaries, comparisons and error buckets of the scored answers, with the verdict they support."""
    questions = qs.questions
    asked = {"source": qs.source, "asked": len(questions), "read": qs.total, "skipped": qs.skipped, "limit": cfg.limit, "seed": cfg.seed}
    summary = {m: _summarize(results[m], cfg) for m in modes}
    by_type = _by_type(results, types, modes, cfg)
    comparisons = _comparisons(results, modes, cfg)
    return EvalReport(
        questions=asked,
        modes=modes,
        skipped_modes=blocked,
        versions=_versions(cfg, answerer, modes),
        config=to_dict(cfg),
        summary=summary,
        by_type=by_type,
        retrieval=_retrieval_summary(retrieval, cfg) if retrieval else None,
        comparisons=comparisons,
        buckets={m: _bucket_counts(results[m]) for m in modes},
        disagreements=sum(1 for i in range(len(questions)) if len({results[m][i]["correct"] for m in modes}) > 1),
        per_question=[
            {
                "id": q.id,
                "question": q.question,
                "answers": list(q.answers),
                "doc": q.doc,
                "type": types[i],
                **({"keys": [list(k) for k in q.keys]} if q.keys else {}),
                **({"retrieval": {k: v for k, v in retrieval[i].items() if k != "context"}} if retrieval else {}),
                "modes": {m: results[m][i] for m in modes},
            }
            for i, q in enumerate(questions)
        ],
        verdict=verdict({"questions": asked, "summary": summary, "by_type": by_type, "comparisons": comparisons}),
    )


def _load_questions(cfg: EvalConfig) -> QuestionSet:
    if cfg.questions:
        return read_questions(cfg.questions, cfg.unanswerable)
    if cfg.split != "eval":
        raise ValueError("no questions: give --questions FILE.jsonl, or --split eval for the dataset's held-out pairs")
    data = Path(cfg.data).expanduser() if cfg.data else newest_dataset(cfg.workdir)
    if data is None:
        raise ValueError(f"--split eval: no dataset under {datasets_dir(cfg.workdir)}; run `ragtune synth` first or pass --data DIR")
    return eval_split(data)


def _types(questions: list[Question]) -> list[str]:
    """Each question's type: its own if the file gives one, else the classifier's."""
    if all(q.type for q in questions):
        return [q.type for q in questions]
    from ragtune.engine.qtype import classify

    return [q.type or classify(q.question).kind for q in questions]


# Scoring one answer ------------------------------------------------------------------------------


def _retrieval(q: Question, hits) -> dict:
    """hit: a retrieved chunk holds a gold answer (DPR's top-k accuracy). recall: the share of the
    best gold answer's words found in the retrieved text, a softer measure for long answers. A
    question with key facts is judged by them: a written reference answer is never in a chunk verbatim."""
    context = metrics.normalize(" ".join(h.chunk.text for h in hits))
    sources = [h.chunk.id for h in hits]
    if q.keys:
        hit = any(metrics.key_recall(h.chunk.text, q.keys) for h in hits)
        return {
            "hit": hit,
            "recall": metrics.key_recall(" ".join(h.chunk.text for h in hits), q.keys),
            "sources": sources,
            "context": context,
        }
    words = set(context.split())
    golds = [metrics.normalize(a) for a in q.answers if metrics.normalize(a)]
    hit = any(g in context for g in golds)
    recall = max((sum(w in words for w in g.split()) / len(g.split()) for g in golds), default=0.0)
    return {"hit": hit, "recall": round(100 * recall, 2), "sources": sources, "context": context}


def _score(q: Question, a, retrieval: dict | None, abstain: str, correct_f1: float, qtype: str) -> dict:
    """One answer's scores; `qtype` is the question's type (factoid | open)."""
    text = strip(a.text)
    short = a.span or text  # a factoid answer's span alone: SQuAD scores the answer, not the sentence quoted with it
    abstained = a.form == "abstain" or (bool(metrics.normalize(abstain)) and metrics.normalize(abstain) in metrics.normalize(text))
    if q.answers:
        s = metrics.score(short, list(q.answers))
        exact, f1, contains, rouge = s.exact, s.f1, s.contains, metrics.rouge_l(short, list(q.answers))
    else:  # unanswerable: abstaining is the right answer
        exact = f1 = rouge = 100.0 * abstained
        contains = abstained
    cited = [a.sources[c.n - 1].text for c in a.citations]
    row = {
        "answer": a.text,
        "exact": exact,
        "f1": round(f1, 2),
        "contains": 100.0 * contains,
        "rouge_l": round(rouge, 2),
        "abstained": abstained,
        "correct": f1 >= correct_f1,
        "latency_s": round(a.latency_s, 4),
        "generated_tokens": a.generated_tokens,
        "prompt_tokens": a.prompt_tokens,
        "gold_perplexity": None if a.gold_perplexity is None else round(a.gold_perplexity, 3),
        "type": qtype,
        "form": a.form,
        "key_recall": _round(metrics.key_recall(text, q.keys)),
        "token_f1": _round(metrics.token_f1(text, list(q.answers))),
        "token_recall": _round(metrics.token_recall(text, list(q.answers))),
        "words": metrics.words(text),
        "cited": bool(cited),
        "citation_precision": _round(metrics.citation_precision(cited, q.keys, list(q.answers))),
        "sources": [{"rank": s.rank, "source": s.source, "section": s.section, "page": s.page, "chunk_id": s.chunk_id} for s in a.sources],
    }
    row["bucket"] = None if row["correct"] else _bucket(row, short, contains, retrieval)
    return row


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _bucket(row: dict, said: str, contains: bool, retrieval: dict | None) -> str:
    """Why a wrong answer is wrong, checked in this order (the first that fits)."""
    if row["abstained"]:
        return "abstained"
    if contains:
        return "verbose"  # the gold is in the answer, buried in other words
    if retrieval is not None:
        if not retrieval["hit"]:
            return "retrieval miss"  # no retrieved chunk holds the answer: the reader never had a chance
        said = metrics.normalize(said)
        if said and said in retrieval["context"]:
            return "wrong span"  # the answer was in the context; the model picked other words from it
    return "hallucinated"  # words that are in no retrieved chunk (or, closed-book, simply wrong)


# Summaries ---------------------------------------------------------------------------------------


def _summarize(rows: list[dict], cfg: EvalConfig) -> dict:
    out = {key: _interval([r[key] for r in rows], cfg) for key in RATE_METRICS}
    out["abstain_rate"] = round(100 * float(np.mean([r["abstained"] for r in rows])), 2)
    ppl = [r["gold_perplexity"] for r in rows if r["gold_perplexity"]]
    if ppl:  # a geometric mean: perplexities multiply, and one odd question must not dominate
        iv = stats.interval(np.log(ppl), cfg.resamples, cfg.seed)
        out["gold_perplexity"] = {
            "mean": round(float(np.exp(iv.mean)), 3),
            "low": round(float(np.exp(iv.low)), 3),
            "high": round(float(np.exp(iv.high)), 3),
        }
    lat = [r["latency_s"] for r in rows]
    out["latency_s"] = {"p50": round(float(np.percentile(lat, 50)), 4), "p95": round(float(np.percentile(lat, 95)), 4)}
    out["generated_tokens"] = round(float(np.mean([r["generated_tokens"] for r in rows])), 2)
    return out


def _by_type(results: dict[str, list[dict]], types: list[str], modes: list[str], cfg: EvalConfig) -> dict:
    """by_type[type][mode]: the summary over that type's questions, with the long-answer scores added."""
    out = {}
    for t in TYPES:
        idx = [i for i, qtype in enumerate(types) if qtype == t]
        if idx:
            out[t] = {m: _summarize_type([results[m][i] for i in idx], cfg) for m in modes}
    return out


def _summarize_type(rows: list[dict], cfg: EvalConfig) -> dict:
    out = {"n": len(rows), **_summarize(rows, cfg)}
    for key in LONG_METRICS:  # over the answers it applies to: citation precision over those that cite
        values = [float(r[key]) * (100 if key == "cited" else 1) for r in rows if r[key] is not None]
        out[key] = _interval(values, cfg) if values else None
    out["words_p50"] = round(float(np.median([r["words"] for r in rows])), 1)
    out["short_rate"] = round(100 * float(np.mean([r["words"] <= SHORT_WORDS and not r["abstained"] for r in rows])), 2)
    return out


def _interval(values: list[float], cfg: EvalConfig) -> dict:
    iv = stats.interval(values, cfg.resamples, cfg.seed)
    return {"mean": round(iv.mean, 2), "low": round(iv.low, 2), "high": round(iv.high, 2)}


def _retrieval_summary(retrieval: list[dict], cfg: EvalConfig) -> dict:
    hit = stats.interval([100.0 * r["hit"] for r in retrieval], cfg.resamples, cfg.seed)
    recall = stats.interval([r["recall"] for r in retrieval], cfg.resamples, cfg.seed)
    return {
        "k": cfg.ask.k,
        "hit_at_k": {"mean": round(hit.mean, 2), "low": round(hit.low, 2), "high": round(hit.high, 2)},
        "answer_recall_at_k": {"mean": round(recall.mean, 2), "low": round(recall.low, 2), "high": round(recall.high, 2)},
    }


def _comparisons(results: dict[str, list[dict]], modes: list[str], cfg: EvalConfig) -> list[dict]:
    """F1 of every pair of modes on the same questions (paired bootstrap); the key pairs first."""
    pairs = [p for p in KEY_COMPARISONS if p[0] in modes and p[1] in modes]
    pairs += [(b, a) for a, b in combinations(modes, 2) if (b, a) not in pairs and (a, b) not in pairs]
    out = []
    for a, b in pairs:
        c = stats.compare([r["f1"] for r in results[a]], [r["f1"] for r in results[b]], cfg.resamples, cfg.seed)
        out.append(
            {
                "a": a,
                "b": b,
                "metric": "f1",
                "delta": round(c.delta, 2),
                "low": round(c.low, 2),
                "high": round(c.high, 2),
                "p": round(c.p, 4),
                "key": (a, b) in KEY_COMPARISONS,
            }
        )
    return out


def _bucket_counts(rows: list[dict]) -> dict:
    return {b: sum(r["bucket"] == b for r in rows) for b in BUCKETS}


def verdict(report: dict) -> str:
    """One sentence: which mode answers each type of question best, and whether fine-tuning's gains are more than luck.

    Factoid questions are judged by F1; open ones by key-fact recall if they have keys, else by token F1.
    """
    n = report["questions"]["asked"]
    by_type = report.get("by_type") or {"factoid": report["summary"]}
    lead = f"On {'these' if n != 1 else 'this'} {n} question{'s' * (n != 1)}"
    bests = [(t, *_best(t, by_type[t])) for t in TYPES if t in by_type]
    if len(bests) == 1:
        _, mode, score = bests[0]
        parts = [f"{lead} {mode} answers best ({score})"]
    else:
        parts = [lead + " and".join(f" {mode} answers the {_ones(t, by_type[t])} best ({score})" for t, mode, score in bests)]
    for c in report["comparisons"]:
        if not c["key"]:
            continue
        if c["p"] < 0.05:
            parts.append(f"{c['a']} {'beats' if c['delta'] > 0 else 'trails'} {c['b']} by {c['delta']:+.1f} F1, p={c['p']:.3g}")
        else:
            parts.append(f"{c['a']} and {c['b']} differ by {c['delta']:+.1f} F1, within chance (p={c['p']:.2g})")
    return "; ".join(parts) + "."


def _best(qtype: str, summaries: dict) -> tuple[str, str]:
    """The best mode for a question type, and its score as said: ("rag", "F1 41.2")."""
    key, label = "f1", "F1"
    if qtype == "open":
        key, label = next(
            (
                (k, lab)
                for k, lab in (("key_recall", "key-fact recall"), ("token_f1", "token F1"))
                if any(s.get(k) for s in summaries.values())
            ),
            (key, label),
        )
    scored = {m: s[key]["mean"] for m, s in summaries.items() if s.get(key)}
    mode = max(scored, key=scored.get)
    return mode, f"{label} {scored[mode]:.1f}"


def _ones(qtype: str, summaries: dict) -> str:
    n = next(iter(summaries.values()))["n"]
    return f"{n} {qtype} one{'s' * (n != 1)}"


def _versions(cfg: EvalConfig, answerer, modes: list[str]) -> dict:
    """What produced these numbers, so two runs can be told apart: model, adapter, dataset, index."""
    engine = answerer.engine
    out = {
        "model": cfg.ask.model.model,
        "model_path": str(engine.base_path),
        "model_params": engine.n_params,
        "dtype": str(getattr(engine.model, "dtype", "")),
        "rag_answer": answerer.rag_answer,
        "k": cfg.ask.k,
        "adapter": None,
    }
    out["readers"] = {m: answerer.reader(m) for m in modes}  # which reader each mode used: spans, spans with a head, ...
    if engine.adapter_path is not None and Path(engine.adapter_path).is_dir():  # an endpoint's adapter is a name
        adapter = Path(engine.adapter_path)
        trained = json.loads((adapter / "train_config.json").read_text()) if (adapter / "train_config.json").exists() else {}
        out["adapter"] = str(adapter)
        out["adapter_dataset"] = trained.get("data")
        out["adapter_written"] = (adapter / "adapter_config.json").stat().st_mtime
    elif engine.adapter_path is not None:
        out["adapter"] = str(engine.adapter_path)
    out["index"] = None
    if answerer._retriever is not None:  # opened by a rag mode
        index = answerer.retriever.index
        out["index"] = {
            "collection": cfg.ask.search.index.collection,
            "version": index.load_manifest().get("version", ""),
            "chunks": answerer.retriever.size,
        }
    return out
