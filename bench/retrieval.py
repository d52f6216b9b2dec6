"""Retrieval quality on the SQuAD dev articles: ragtune's index against a naive baseline, same run.

    python bench/retrieval.py [--chunk-sizes 200] [--limit N]

Ingests the 8 HTML articles of ../shared/eval/squad with `ragtune ingest`'s own code, then asks
each of the 2,804 human-written questions and reports:
  - document-level hit@1 and hit@5 (the question's article is the top hit / among the top 5);
  - answer-recall@5 (a gold answer string appears, case-insensitively, in one of the top-5 chunks).
Baseline: fixed 130-word windows with a 30-word overlap over each article's text, embedded
with the same MiniLM (fp32) and ranked by plain cosine top-k.
Targets: hit@5 >= 0.98 and answer-recall@5 >= 0.92 with at most 5 chunks, beating the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from ragtune.core import offline  # noqa: E402

offline.setup()
SQUAD = ROOT.parent / "shared" / "eval" / "squad"


def score(questions: list[dict], ranked: list[list[tuple[str, str]]]) -> dict:
    """ranked[i]: the top-5 (doc name, text) for question i."""
    h1 = h5 = ar = 0
    for q, top in zip(questions, ranked):
        docs = [d for d, _ in top]
        h1 += bool(docs) and docs[0] == q["doc"]
        h5 += q["doc"] in docs
        text = " ".join(t for _, t in top).lower()
        ar += any(a.lower() in text for a in q["answers"])
    n = len(questions)
    return {"hit@1": h1 / n, "hit@5": h5 / n, "answer_recall@5": ar / n}


def baseline(docs: dict[str, str], questions: list[dict], model) -> list[list[tuple[str, str]]]:
    windows = []
    for name, text in docs.items():
        words = text.split()
        for start in range(0, max(len(words) - 30, 1), 100):  # 130 words, 30 shared with the next
            windows.append((name, " ".join(words[start : start + 130])))
    vecs = model.encode([t for _, t in windows], normalize_embeddings=True, batch_size=32)
    qv = model.encode([q["question"] for q in questions], normalize_embeddings=True, batch_size=64)
    top = np.argsort(-(qv @ vecs.T), axis=1)[:, :5]
    return [[windows[j] for j in row] for row in top], len(windows)


def article_texts() -> dict[str, str]:
    from bs4 import BeautifulSoup

    return {
        p.name: BeautifulSoup(p.read_text(encoding="utf-8"), "html.parser").get_text(" ") for p in sorted((SQUAD / "docs").glob("*.html"))
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunk-sizes", default="200", help="comma-separated chunk sizes to try, in tokens")
    ap.add_argument("--overlap", type=int, default=30)
    ap.add_argument("--modes", default="dense,lexical,hybrid")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (0: all)")
    args = ap.parse_args()
    if not SQUAD.is_dir():
        sys.exit(f"{SQUAD} is absent")
    questions = [json.loads(line) for line in (SQUAD / "questions.jsonl").read_text().splitlines() if line.strip()]
    if args.limit:
        questions = questions[: args.limit]

    from ragtune.core.config import load_config
    from ragtune.rag.config import IngestConfig, SearchConfig
    from ragtune.rag.embed import load_embedder
    from ragtune.rag.ingest import ingest
    from ragtune.rag.retrieve import Retriever

    rows = []
    model = load_embedder("packaged", "fp32").model
    t = time.perf_counter()
    ranked, n_windows = baseline(article_texts(), questions, model)
    rows.append(("baseline: 130-word windows, cosine", n_windows, 130 * 1.3, score(questions, ranked), time.perf_counter() - t, None))

    for size in [int(s) for s in args.chunk_sizes.split(",")]:
        with tempfile.TemporaryDirectory() as wd:
            rep = ingest(
                load_config(
                    IngestConfig,
                    {"paths": [str(SQUAD / "docs")], "workdir": wd, "chunk_size": size, "chunk_overlap": min(args.overlap, size // 4)},
                )
            )
            for mode in args.modes.split(","):
                retriever = Retriever(load_config(SearchConfig, {"workdir": wd, "retrieval": mode}))
                lat, ranked = [], []
                t = time.perf_counter()
                for q in questions:
                    t0 = time.perf_counter()
                    hits = retriever.search(q["question"], 5)
                    lat.append(time.perf_counter() - t0)
                    ranked.append([(Path(h.chunk.source).name, h.chunk.text) for h in hits])
                toks = statistics.mean(c for c in [len(t.split()) * 1.3 for r in ranked[:200] for _, t in r])
                rows.append(
                    (
                        f"ragtune {mode}, chunk {size}",
                        rep.total_chunks,
                        toks,
                        score(questions, ranked),
                        time.perf_counter() - t,
                        statistics.median(lat),
                    )
                )

    print(f"{len(questions)} questions over {len(article_texts())} articles; top 5 chunks each")
    print(f"{'retriever':<38}{'chunks':>7}{'~tok':>6}{'hit@1':>8}{'hit@5':>8}{'ans@5':>8}{'p50 ms':>8}")
    base = rows[0][3]
    for name, n, toks, s, _secs, p50 in rows:
        ms = f"{1000 * p50:.1f}" if p50 else "-"
        print(f"{name:<38}{n:>7}{toks:>6.0f}{s['hit@1']:>8.3f}{s['hit@5']:>8.3f}{s['answer_recall@5']:>8.3f}{ms:>8}")
    best = max(rows[1:], key=lambda r: r[3]["answer_recall@5"])
    s = best[3]
    print(
        f"best: {best[0]}: answer-recall@5 {s['answer_recall@5']:.3f} vs baseline {base['answer_recall@5']:.3f} "
        f"({s['answer_recall@5'] - base['answer_recall@5']:+.3f}); hit@5 {s['hit@5']:.3f} vs {base['hit@5']:.3f}"
    )
    met = s["hit@5"] >= 0.98 and s["answer_recall@5"] >= 0.92 and s["answer_recall@5"] > base["answer_recall@5"]
    print(f"targets (hit@5 >= 0.98, answer-recall@5 >= 0.92, beating the baseline): {'MET' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
