"""`Retriever.search(query) -> list[Hit]`: dense + BM25, fused by reciprocal rank.

Dense vectors find paraphrases; BM25 finds the exact names, numbers and rare words that
questions about documents are full of. Reciprocal-rank fusion needs no score calibration
between the two: score = sum over retrievers of weight / (rrf_k + rank).
bench/retrieval.py measures each mode on the SQuAD dev articles.
"""

from __future__ import annotations

from ragtune.core.records import Hit
from ragtune.core.workdir import make_workdir
from ragtune.rag import lexical
from ragtune.rag.config import SearchConfig
from ragtune.rag.embed import OnnxQueryEncoder, load_embedder
from ragtune.rag.index import Index


class Retriever:
    """Opens the index, the embedder and BM25 once, so each `search()` is only the query's own work (bench/query.py)."""

    def __init__(self, cfg: SearchConfig):
        self.cfg = cfg
        workdir = make_workdir(cfg.workdir)
        self.index = Index(cfg.index, workdir)
        self.embedder = load_embedder(cfg.index.embedding_model, cfg.index.embed_precision, cfg.index.embed_batch_size)
        self.encode_query = None
        if cfg.retrieval != "lexical":
            onnx = OnnxQueryEncoder.build(self.embedder, workdir) if cfg.query_encoder == "onnx" else None
            self.encode_query = onnx or (lambda text: self.embedder.embed([text])[0])
        # Counting is a Chroma round trip that grows with the store (docs/measurements.md): count once.
        self.size = self.index.count()
        self.lexical = lexical.load(self.index, self.index.load_manifest().get("version", "")) if cfg.retrieval != "dense" else None

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The top `k` chunks for `query` (default: the config's k), best first, by the configured retrieval."""
        k = k or self.cfg.k
        n = min(max(self.cfg.candidates, k), self.size)
        dense, lex = [], []
        if self.cfg.retrieval != "lexical":
            dense = self.index.query(self.encode_query(query), n)
        if self.lexical is not None:
            lex = self.lexical.search(query, n)
        if self.cfg.retrieval == "dense":
            return [Hit(c, s, r, dense_rank=r) for r, (c, s) in enumerate(dense[:k], 1)]
        return self._fuse(dense, lex, k)

    def _fuse(self, dense, lex, k: int) -> list[Hit]:
        """Reciprocal-rank fusion of the two rankings; chunks only BM25 found are fetched from Chroma."""
        scores: dict[str, float] = {}
        dense_rank = {c.id: r for r, (c, _) in enumerate(dense, 1)}
        lex_rank = {cid: r for r, (cid, _) in enumerate(lex, 1)}
        for cid, r in dense_rank.items():
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (self.cfg.rrf_k + r)
        for cid, r in lex_rank.items():
            scores[cid] = scores.get(cid, 0.0) + self.cfg.lexical_weight / (self.cfg.rrf_k + r)
        top = sorted(scores, key=scores.get, reverse=True)[:k]
        chunks = {c.id: c for c, _ in dense}
        chunks.update(self.index.get([cid for cid in top if cid not in chunks]))
        return [
            Hit(chunks[cid], scores[cid], r, dense_rank.get(cid), lex_rank.get(cid))
            for r, cid in enumerate((c for c in top if c in chunks), 1)
        ]
