"""The 1,000 SQuAD dev questions that neither tune nor report: the set docs/ft-rag.md compares adapters on.

    python bench/heldout.py --out /tmp/heldout.jsonl
    ragtune eval --workdir <the SQuAD workdir> --questions /tmp/heldout.jsonl --modes rag,ft-rag --adapter DIR

Of SQuAD dev's questions, the reported 200 (`ragtune eval --limit 200 --seed 0`) and the 150 that
tune the span weights (bench/span_weights.py: a sample of the rest with seed 1) are left out; the
others, in file order, are shuffled with random.Random(2) and the first --limit are written, as
SQuAD's own rows.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad" / "questions.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()

    rest = untouched()
    keep = set(rest[: args.limit])
    rows = [r for r in map(json.loads, SQUAD.read_text(encoding="utf-8").splitlines()) if r and r["id"] in keep]
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} of the {len(rest)} questions that neither report nor tune -> {args.out}")


def untouched() -> list[str]:
    """The ids of SQuAD dev's questions outside the reported 200 and the tuning 150, in the order
    this script draws from (bench/head_probe.py takes those after the first 1,000)."""
    from ragtune.evals.questions import read_questions, sample

    everything = read_questions(SQUAD)
    reported = {q.id for q in sample(everything, 200, 0).questions}
    pool = replace(everything, questions=[q for q in everything.questions if q.id not in reported])  # as bench/span_weights.py
    tuning = {q.id for q in sample(pool, 150, 1).questions}
    rest = [q.id for q in pool.questions if q.id not in tuning]
    random.Random(2).shuffle(rest)
    return rest


if __name__ == "__main__":
    main()
