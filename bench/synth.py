"""Synthetic data from the SQuAD dev articles: `ragtune synth --generator extractive`, measured.

    python bench/synth.py              # 3 fresh runs; medians, the card's counts, 20 samples
    python bench/synth.py --runs 1
    python bench/synth.py --runs 1 --cross-questions   # and the facts asked in another chunk's words

The 8 articles in ../shared/eval/squad/docs are ingested into --workdir (skipped when
unchanged); the questions are never read to synthesize, only afterwards, to count how many
of their gold answers some synthetic pair also has as its answer (a check of the span choice).
Each run writes a fresh dataset folder, so nothing is resumed from an earlier run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/ragtune-bench-squad")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--cross-questions", action="store_true", help="synth --cross-questions (synth/cross.py)")
    args = ap.parse_args()

    from ragtune.core import offline

    offline.setup()
    from ragtune.core.config import load_config
    from ragtune.core.text import normalize
    from ragtune.core.workdir import make_workdir
    from ragtune.rag.config import IngestConfig
    from ragtune.rag.index import Index
    from ragtune.rag.ingest import ingest
    from ragtune.synth.config import SynthConfig
    from ragtune.synth.pipeline import synthesize

    ingest(load_config(IngestConfig, {"paths": [str(SQUAD / "docs")], "workdir": args.workdir}))
    cards, times = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            card = synthesize(load_config(SynthConfig, {"workdir": args.workdir, "out": out, "cross_questions": args.cross_questions}))
            times.append(time.perf_counter() - t0)
            pairs = [json.loads(line) for line in (Path(out) / "pairs.jsonl").read_text().splitlines()]
        cards.append(card)
        print(
            f"run {run + 1}: {card['pairs']['total']} pairs in {times[-1]:.1f} s = {card['pairs']['total'] / times[-1]:.0f} pairs/s",
            flush=True,
        )

    card = cards[-1]
    t = statistics.median(times)
    print(f"\nextractive generator, {card['chunks']['total']} chunks of the 8 SQuAD dev articles, median of {args.runs} runs")
    print(
        f"  pairs                     {card['pairs']['total']} ({card['pairs'].get('train', 0)} train, {card['pairs'].get('eval', 0)} eval), "
        f"{card['pairs']['groups']} facts, kinds {card['pairs']['by_kind']}"
    )
    print(f"  time                      {t:.1f} s, {card['pairs']['total'] / t:.0f} pairs/s (target >= 50)")
    print(
        f"  grounded before filters   {100 * card['grounding_rate_before_filters']:.1f}% of {card['drafts']} drafts; after: "
        f"{100 * card['grounding_rate_after_filters']:.1f}%"
    )
    print(f"  dropped                   {card['filtered']}")
    print(
        f"  coverage                  {card['chunks']['with_pairs']} of {card['chunks']['total']} chunks = {100 * card['chunks']['coverage']:.1f}% (target >= 90%)"
    )
    print(
        f"  leakage                   largest eval-train question cosine {card['leakage']['max_eval_train_similarity']:.3f}, "
        f"mean best {card['leakage']['mean_best_similarity']:.3f} (split by {card['leakage']['split_by']})"
    )
    print(f"  mean words                {card['mean_words']}")

    answers = {normalize(p["answer"]) for p in pairs}
    rows = [json.loads(line) for line in (SQUAD / "questions.jsonl").read_text().splitlines() if line.strip()]
    exact = sum(any(normalize(a) in answers for a in r["answers"]) for r in rows)
    inside = sum(any(any(f" {normalize(a)} " in f" {s} " for s in answers) for a in r["answers"]) for r in rows)
    print(f"  dev gold answers that are a pair's answer       {exact} of {len(rows)} questions = {100 * exact / len(rows):.1f}%")
    print(f"  dev gold answers inside some pair's answer      {inside} of {len(rows)} = {100 * inside / len(rows):.1f}%")

    # Question style: people's questions are short and bring words their sentence lacks.
    print("  question style             words (median); share of content words found in the evidence sentence (median / mean)")
    sentences_of: dict[str, list[str]] = {}  # the articles' sentences as ingested, by file name (the questions' "doc")
    for chunk in Index(load_config(SynthConfig, {"workdir": args.workdir}).search.index, make_workdir(args.workdir)).all_chunks():
        sentences_of.setdefault(Path(chunk.source).name, []).extend(re.split(r"(?<=[.!?])\s+", chunk.text))
    squad = []
    for r in rows[:1500]:
        sentences = [x for x in sentences_of.get(r.get("doc"), []) if r["answers"][0] in x]
        if sentences:
            squad.append((r["question"], max(sentences, key=lambda x: _overlap(r["question"], x))))
    groups = {"SQuAD dev (people)": squad}
    for kind in sorted({p["kind"] for p in pairs}):
        groups[f"synthetic, {kind}"] = [(p["question"], p["evidence"]) for p in pairs if p["kind"] == kind]
    for name, qs in groups.items():
        overlaps = [_overlap(q, e) for q, e in qs]
        print(
            f"    {name:<24} n={len(qs):<5} words {statistics.median(len(q.split()) for q, _ in qs):4.1f}   "
            f"in the evidence {statistics.median(overlaps):.2f} / {statistics.mean(overlaps):.2f}"
        )

    print(f"\n{args.samples} random pairs (seed 0):")
    for p in random.Random(0).sample(pairs, min(args.samples, len(pairs))):
        print(f"  [{p['kind']}] {p['question']}  ->  {p['answer']}")


def _overlap(question: str, evidence: str) -> float:
    """The share of the question's content words (not spaCy's stop words) that its evidence sentence also has."""
    from spacy.lang.en.stop_words import STOP_WORDS

    words = [w for w in re.findall(r"[a-z0-9]+", question.lower()) if w not in STOP_WORDS]
    have = set(re.findall(r"[a-z0-9]+", evidence.lower()))
    return sum(w in have for w in words) / max(1, len(words))


if __name__ == "__main__":
    main()
