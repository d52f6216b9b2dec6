"""Search latency at 100k chunks: p50 and p95, against the bare Chroma query in the same run.

    python bench/query.py [--chunks 100000] [--queries 200]

The store holds synthetic chunks (150 words drawn from the SQuAD articles' vocabulary, random
unit vectors: embedding 100k real chunks would take half an hour here), written with
ragtune's own `Index.upsert` and BM25 build. Queries are the SQuAD questions, embedded by the
real model. Reported: the bare `collection.query` (baseline), ragtune dense search (query
embedding + Chroma), and hybrid (+ BM25 + fusion). Target: p95 under 20 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from ragtune.core import offline  # noqa: E402

offline.setup()
SQUAD = ROOT.parent / "shared" / "eval" / "squad"


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = sorted(1000 * t for t in times)
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--workdir", help="build the store here and keep it; reused if it already holds --chunks chunks")
    args = ap.parse_args()

    from ragtune.core.config import load_config
    from ragtune.core.records import Chunk
    from ragtune.rag import lexical
    from ragtune.rag.config import SearchConfig
    from ragtune.rag.index import Index
    from ragtune.rag.retrieve import Retriever

    questions = [json.loads(line)["question"] for line in (SQUAD / "questions.jsonl").read_text().splitlines()[: args.queries]]
    vocab = " ".join(p.read_text() for p in (SQUAD / "docs").glob("*.html")).split()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        wd = args.workdir or tmp
        cfg = load_config(SearchConfig, {"workdir": wd})
        index = Index(cfg.index, Path(wd))
        t = time.perf_counter()
        step = 5000
        for start in range(0, args.chunks if index.count() != args.chunks else 0, step):
            n = min(step, args.chunks - start)
            words = rng.integers(0, len(vocab), size=(n, 150))
            chunks = [
                Chunk(
                    id=f"c{start + i}",
                    text=" ".join(vocab[j] for j in row),
                    source=f"/synthetic/{(start + i) // 100}.txt",
                    sha256="0" * 64,
                    section="",
                    index=i,
                    n_tokens=200,
                )
                for i, row in enumerate(words)
            ]
            vecs = rng.standard_normal((n, 384)).astype(np.float32)
            index.upsert(chunks, vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
        manifest = index.load_manifest()
        if not manifest["version"]:
            index.save_manifest(manifest)
        lexical.load(index, index.load_manifest()["version"])  # builds BM25 unless a kept store has it
        print(f"built {index.count()} chunks in {time.perf_counter() - t:.0f} s")

        retriever = Retriever(cfg)
        qvecs = retriever.embedder.embed(questions)
        for q in questions[:10]:  # warm-up
            retriever.search(q)
        base, dense, hybrid = [], [], []
        dense_r = Retriever(load_config(SearchConfig, {"workdir": wd, "retrieval": "dense"}))
        for q, v in zip(questions, qvecs):
            t = time.perf_counter()
            index.collection.query(query_embeddings=[v], n_results=30, include=["documents", "metadatas", "distances"])
            base.append(time.perf_counter() - t)
            t = time.perf_counter()
            dense_r.search(q, 5)
            dense.append(time.perf_counter() - t)
            t = time.perf_counter()
            retriever.search(q, 5)
            hybrid.append(time.perf_counter() - t)
    b50, b95 = percentiles(base)
    print(f"{len(questions)} queries at {args.chunks} chunks       p50 ms   p95 ms   p95 / bare query")
    for name, times in (
        ("bare Chroma query (baseline)", base),
        ("ragtune dense (embed + query)", dense),
        ("ragtune hybrid (+ BM25, RRF)", hybrid),
    ):
        p50, p95 = percentiles(times)
        print(f"  {name:<34}{p50:>7.1f}{p95:>9.1f}{p95 / b95:>12.2f}x")
    p50, p95 = percentiles(hybrid)
    print(f"target p95 < 20 ms (hybrid, the default): {'MET' if p95 < 20 else 'MISSED'} ({p95:.1f} ms)")


if __name__ == "__main__":
    main()
