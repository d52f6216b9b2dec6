"""Span-answer weights (configs/spans.yaml) for a mode's model, tuned on SQuAD dev questions that the report does not ask.

    python bench/span_weights.py --workdir /tmp/squad --modes rag,ft-rag --adapter DIR

Each question is answered once per mode through `Answerer.answer`, the path `ragtune ask` and
`ragtune eval` take, and every chunk's candidate spans are kept with their scores: the model's
log-prob and the reader's checks (evidence, answer type, echo, chunk rank). Choosing the answer
again under other weights then costs no model call, so a grid of weights is scored in seconds.

The tuning questions are a seeded sample (--seed) with the report's sample (`ragtune eval
--limit 200 --seed 0`) taken out, so no question both tunes and reports. Abstention is left as
configured: the grid reranks the spans of questions the default weights answered.
The --workdir must hold the SQuAD index (`ragtune ingest ../shared/eval/squad/docs`).

Measured (commit 23e9051, the full-epoch adapter of the SQuAD extractive dataset, 150 questions): rag
37.0 with the configured weights, 39.9 at the grid's best; ft-rag 44.3 and 47.2. Commit 394cf1d, the
padded epoch's adapter, with the model's weight and length normalisation in the grid: rag 37.0
-> 40.6 (model weight 0.5), ft-rag 44.9 -> 48.5 (model weight 2-4, length_norm 0.5). Each mode
gains ~3.6 from its own best weights, so ft-rag keeps rag's (one spans.yaml, no per-mode knob).
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad"

GRID = {
    "evidence_weight": [0, 2, 4, 8, 12, 16, 24],
    "type_weight": [0, 1, 2, 4, 8],
    "echo_weight": [0, 1, 2, 4, 8],
    "rank_weight": [0, 1, 2, 3, 6],
    # The model's term: its log-prob x model_weight, over (tokens + 1) ** length_norm. A fine-tuned
    # model's log-probs are sharper than the base model's, so the checks may need less say.
    "model_weight": [0, 0.5, 1, 2, 4],
    "length_norm": [0, 0.5, 1],
    # The reader head's log P(span), for an adapter trained with one (engine/head.py); model_weight
    # is then spans.yaml's head_lm_weight. Whether the model's log-prob still helps: model_weight 0.
    "head_weight": [0, 0.5, 1, 2, 4],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True, help="holds the SQuAD index (and adapters/ for the ft modes)")
    ap.add_argument("--modes", default="rag,ft-rag")
    ap.add_argument("--adapter", default=None, help="for ft-rag; default: the newest in the workdir")
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report-limit", type=int, default=200, help="the report's sample, left out of tuning")
    ap.add_argument("--report-seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument(
        "--recordings",
        help="a pickle of the recorded candidates: written after answering, read instead of "
        "answering if it exists (for trying other grids)",
    )
    args = ap.parse_args()

    from ragtune.core import offline

    offline.setup()
    from ragtune.core.config import load_config
    from ragtune.engine import spans as S
    from ragtune.engine.answer import Answerer
    from ragtune.evals.config import EvalConfig
    from ragtune.evals.metrics import score
    from ragtune.evals.questions import read_questions, sample

    everything = read_questions(SQUAD / "questions.jsonl")
    reported = {q.id for q in sample(everything, args.report_limit, args.report_seed).questions}
    pool = replace(everything, questions=[q for q in everything.questions if q.id not in reported])
    questions = sample(pool, args.limit, args.seed).questions
    # The eval's own settings (bf16, its decoding), so the weights are tuned for what eval runs.
    ask = load_config(EvalConfig, {"workdir": args.workdir, **({"ask.adapter": args.adapter} if args.adapter else {})}).ask
    answerer = Answerer(ask)
    print(f"{len(questions)} tuning questions (seed {args.seed}; the {len(reported)} reported ones, seed {args.report_seed}, left out)\n")

    recorded = pickle.loads(Path(args.recordings).read_bytes()) if args.recordings and Path(args.recordings).exists() else {}
    for mode in args.modes.split(","):
        if mode not in recorded:
            recorded[mode] = _record(answerer, mode, questions, S, score)
            if args.recordings:
                Path(args.recordings).write_bytes(pickle.dumps(recorded))
        answered, cases = recorded[mode]
        table = _table(cases)
        headed = bool(cases) and cases[0][0][0][2] is not None
        results = sorted(((_f1(table, w, len(questions)), w) for w in _grid(headed)), key=lambda t: -t[0])
        configured = {**_weights(ask.spans), "model_weight": ask.spans.head_lm_weight if headed else 1, "length_norm": 0}
        configured["head_weight"] = ask.spans.head_weight if headed else 0
        now = _f1(table, configured, len(questions))
        ceiling = sum(max(f1.values(), default=0.0) for _, f1 in cases) / len(questions)  # an open question has no spans
        print(
            f"{mode}: F1 {answered:.1f} answered, {now:.1f} replayed with the configured weights {configured} (the check "
            f"that the replay is faithful); the best candidate each time would give {ceiling:.1f}"
        )
        for f1, w in results[: args.top]:
            print(f"    F1 {f1:5.1f}  {w}")
        print()


def _record(answerer, mode: str, questions, S, score) -> tuple[float, list]:
    """Answer each question as eval does, keeping every chunk's candidates and their scores."""
    from tqdm import tqdm

    rank, seen = S.rank, []  # (candidates, their scores) of each chunk of the current question

    def recording(cands, scored, cfg, head=None):
        seen.append((cands, scored, head))
        return rank(cands, scored, cfg, head)

    S.rank, cases, answered = recording, [], 0.0
    try:
        for q in tqdm(questions, desc=mode, unit="question", file=sys.stderr):
            seen.clear()
            a = answerer.answer(q.question, mode)
            answered += score(a.span or a.text, list(q.answers)).f1 / len(questions)
            if seen and a.text != answerer.templates.abstain:
                f1 = {c.text: score(c.text, list(q.answers)).f1 for cands, _, _ in seen for c in cands}
                cases.append((list(seen), f1))
    finally:
        S.rank = rank
    return answered, cases


def _grid(headed: bool):
    grid = {**GRID, "head_weight": GRID["head_weight"] if headed else [0]}
    if not headed:
        grid["model_weight"] = [w for w in grid["model_weight"] if w > 0]  # without a head the model's term is the reader
    for values in itertools.product(*grid.values()):
        yield dict(zip(grid, values))


def _weights(spans) -> dict:
    return {k: getattr(spans, k) for k in GRID if hasattr(spans, k)}


def _table(cases):
    """Every question's candidates as arrays: features (log-prob, tokens, evidence, typed, echo, rank, head), F1, question."""
    import numpy as np

    from ragtune.engine.spans import HEAD_FLOOR

    feats, f1s, owner = [], [], []
    for i, (seen, f1) in enumerate(cases):
        for cands, scored, head in seen:
            for c, s, h in zip(cands, scored, head or [0.0] * len(cands)):
                feats.append((s.logprob, s.tokens, c.evidence, c.typed, c.echo, c.rank, max(h, HEAD_FLOOR)))
                f1s.append(f1[c.text])
                owner.append(i)
    return np.array(feats, dtype=float).reshape(-1, 7), np.array(f1s), np.array(owner)


def _f1(table, w: dict, n: int) -> float:
    """Mean F1 over all n questions (abstentions score 0) when each takes its top span under weights w."""
    import numpy as np

    x, f1, owner = table
    if not len(f1):
        return 0.0
    total = (
        w["model_weight"] * x[:, 0] / (x[:, 1] + 1) ** w["length_norm"]
        + w["evidence_weight"] * x[:, 2]
        + w["type_weight"] * x[:, 3]
        - w["echo_weight"] * x[:, 4]
        - w["rank_weight"] * x[:, 5]
        + w["head_weight"] * x[:, 6]
    )
    order = np.lexsort((-total, owner))  # by question, best first; a tie keeps the earlier candidate
    first = np.unique(owner[order], return_index=True)[1]
    return float(f1[order[first]].sum() / n)


if __name__ == "__main__":
    main()
