"""RAG answer quality on the SQuAD dev set: `ragtune ask --mode rag` over a fixed sample.

    python bench/rag_quality.py                      # 200 questions, seed 0, the configs/ defaults
    python bench/rag_quality.py --variants k1,k3,k5  # the prompt and decoding choices, side by side

The 8 articles in ../shared/eval/squad/docs are ingested into --workdir first (skipped when
unchanged). Every variant answers the same questions through `Answerer.answer_batch`, the
path `ragtune ask` takes, and is scored with SQuAD exact match / F1 and contains-accuracy.
The baseline, measured in the same run, is plain generation with the template's prompt.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad"

# name -> overrides of configs/ask.yaml. "generate-k3" is the baseline: free generation from the
# top 3 chunks, capped at 32 tokens (a short-answer prompt; longer answers are rambling, F1 ~0).
LM_ONLY = {"spans.evidence_weight": 0, "spans.type_weight": 0, "spans.echo_weight": 0, "spans.rank_weight": 0}
VARIANTS = {
    "generate-k3": {"rag_answer": "generate", "k": 3, "decoding.max_new_tokens": 32},
    "copy-k3": {"rag_answer": "copy", "k": 3, "decoding.max_new_tokens": 32},
    "lm-only-k1": {"rag_answer": "spans", "k": 1, **LM_ONLY, "spans.abstain_margin": 0},  # the model's likelihood alone
    "spans-k1": {"rag_answer": "spans", "k": 1},
    "spans-k2": {"rag_answer": "spans", "k": 2},
    "spans-no-examples": {"rag_answer": "spans", "template": "examples=()"},
    "default": {},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/ragtune-bench-squad")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="generate-k3,default", help=f"comma-separated: {', '.join(VARIANTS)}, or key=value+key=value")
    ap.add_argument("--model", default="packaged")
    ap.add_argument("--show", type=int, default=0, help="print this many answers per variant")
    args = ap.parse_args()

    from ragtune.core import offline

    offline.setup()
    from ragtune.core.config import load_config
    from ragtune.engine.answer import Answerer
    from ragtune.engine.cite import strip
    from ragtune.engine.config import AskConfig
    from ragtune.engine.generate import Engine
    from ragtune.evals.metrics import score
    from ragtune.rag.config import IngestConfig
    from ragtune.rag.ingest import ingest

    ingest(load_config(IngestConfig, {"paths": [str(SQUAD / "docs")], "workdir": args.workdir}))
    rows = [json.loads(line) for line in (SQUAD / "questions.jsonl").read_text().splitlines() if line.strip()]
    sample = random.Random(args.seed).sample(rows, min(args.limit, len(rows)))
    questions = [r["question"] for r in sample]

    base_cfg = load_config(AskConfig, {"workdir": args.workdir, "model.model": args.model})
    engine = Engine(base_cfg.model)
    retriever = None
    print(f"{len(sample)} questions (seed {args.seed}), model {args.model} ({engine.n_params / 1e6:.0f}M params)\n")
    print(f"{'variant':<24} {'EM':>6} {'F1':>6} {'contains':>9} {'abstain':>8} {'words':>6} {'s/q':>6}")
    for name in args.variants.split(","):
        overrides = dict(VARIANTS[name] if name in VARIANTS else _parse(name))
        template = overrides.pop("template", None)  # template fields: "order=best_first;abstain=..."
        cfg = load_config(AskConfig, {"workdir": args.workdir, "model.model": args.model, **overrides})
        answerer = Answerer(cfg, engine, retriever)
        if template:
            from dataclasses import replace

            fields = dict(kv.split("=", 1) for kv in template.split(";"))
            answerer.templates = replace(answerer.templates, **{k: () if v == "()" else v for k, v in fields.items()})
        t0 = time.perf_counter()
        answers = answerer.answer_batch(questions, "rag")
        per_q = (time.perf_counter() - t0) / len(questions)
        retriever = answerer._retriever
        scores = [score(a.span or strip(a.text), r["answers"]) for a, r in zip(answers, sample)]  # a factoid's span, as eval scores it
        abstain = sum(a.text.lower().startswith("i don't know") for a in answers) / len(answers)
        words = statistics.median(len((a.span or strip(a.text)).split()) for a in answers)
        print(
            f"{name:<24} {_mean(s.exact for s in scores):6.1f} {_mean(s.f1 for s in scores):6.1f} "
            f"{100 * _mean(s.contains for s in scores):8.1f}% {100 * abstain:7.1f}% {words:6.0f} {per_q:6.2f}",
            flush=True,
        )
        for a, r, s in list(zip(answers, sample, scores))[: args.show]:
            print(f"    Q: {a.question}\n    A: {a.text!r}  gold: {r['answers'][0]!r}  F1 {s.f1:.0f}")


def _parse(spec: str) -> dict:
    """`k=1+rag_answer=copy` -> {"k": "1", "rag_answer": "copy"}: a variant typed on the command line."""
    return dict(kv.split("=", 1) for kv in spec.split("+"))


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


if __name__ == "__main__":
    main()
