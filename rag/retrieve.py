"""`Retriever.search(query) -> list[Hit]`: dense + BM25, fused by reciprocal rank.

Dense vectors find paraphrases; BM25 finds the exact names, numbers and rare words that
questions about documents are full of. Reciprocal-rank fusion needs no score calibration
between the two: score = sum over retrievers of weight / (rrf_k + rank).
bench/retrieval.py measures each mode on the SQuAD dev articles.

`--source GLOB` scopes a search to some documents inside both retrievers (a Chroma `where`,
a BM25 weight mask), so k hits come back from them; boilerplate (rag/boilerplate.py) scores
`boilerplate_weight` times less unless the query asks for it.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from ragtune.core.records import Hit
from ragtune.core.workdir import make_workdir
from ragtune.rag import boilerplate, lexical
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
        manifest = self.index.load_manifest()
        self.files: dict[str, dict] = manifest.get("files", {})  # path -> its chunks, pages, title
        self.lexical = lexical.load(self.index, manifest.get("version", "")) if cfg.retrieval != "dense" else None
        if self.size:
            self.scope(cfg.source)  # a --source that matches nothing is an error now, not at the first question

    def scope(self, globs: list[str]) -> list[str] | None:
        """The indexed files `globs` match (see `match_sources`); None for no globs: every file."""
        return match_sources(globs, list(self.files)) if globs else None

    def search(self, query: str, k: int | None = None, source: list[str] | None = None) -> list[Hit]:
        """The top `k` chunks for `query` (default: the config's k), best first, by the configured retrieval.

        `source`: globs of the documents to search (default: the config's `source`; [] is all of
        them). Both retrievers search only those documents, so `k` of theirs come back.
        Boilerplate ranks below content unless the query asks for it.
        """
        k = k or self.cfg.k
        sources = self.scope(self.cfg.source if source is None else source)
        size = self.size if sources is None else sum(self.files[s].get("chunks", 0) for s in sources)
        n = min(max(self.cfg.candidates, k), size)
        dense, lex = [], []
        if self.cfg.retrieval != "lexical":
            dense = self.index.query(self.encode_query(query), n, sources)
        if self.lexical is not None:
            lex = self.lexical.search(query, n, sources)
        weight = 1.0 if boilerplate.asks_for(query) else self.cfg.boilerplate_weight
        if self.cfg.retrieval == "dense":
            scored = [(c, s * (weight if c.boilerplate else 1.0), r) for r, (c, s) in enumerate(dense, 1)]
            scored.sort(key=lambda x: -x[1])  # stable: content keeps its order
            return [Hit(c, s, rank, dense_rank=r) for rank, (c, s, r) in enumerate(scored[:k], 1)]
        return self._fuse(dense, lex, k, weight)

    def _fuse(self, dense, lex, k: int, weight: float = 1.0) -> list[Hit]:
        """Reciprocal-rank fusion of the two rankings, boilerplate's score times `weight`; chunks only
        BM25 found are fetched from Chroma."""
        scores: dict[str, float] = {}
        dense_rank = {c.id: r for r, (c, _) in enumerate(dense, 1)}
        lex_rank = {cid: r for r, (cid, _) in enumerate(lex, 1)}
        for cid, r in dense_rank.items():
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (self.cfg.rrf_k + r)
        for cid, r in lex_rank.items():
            scores[cid] = scores.get(cid, 0.0) + self.cfg.lexical_weight / (self.cfg.rrf_k + r)
        if weight != 1.0:
            flagged = {c.id for c, _ in dense if c.boilerplate} | (self.lexical.boilerplate & lex_rank.keys() if self.lexical else set())
            for cid in flagged:
                scores[cid] *= weight
        top = sorted(scores, key=scores.get, reverse=True)[:k]
        chunks = {c.id: c for c, _ in dense}
        chunks.update(self.index.get([cid for cid in top if cid not in chunks]))
        return [
            Hit(chunks[cid], scores[cid], r, dense_rank.get(cid), lex_rank.get(cid))
            for r, cid in enumerate((c for c in top if c in chunks), 1)
        ]


def match_sources(globs: list[str], sources: list[str]) -> list[str]:
    """The `sources` (absolute paths) that any of `globs` matches, sorted: fnmatch on the file's name
    or its path (a relative glob from the current folder), case aside; an exact path matches itself.

    Raises:
        ValueError: a glob that matches no source; one line naming it and a few of the sources.
    """
    out: set[str] = set()
    for glob in globs:
        patterns = {glob.lower(), os.path.abspath(os.path.expanduser(glob)).lower()}
        found = {
            s
            for s in sources
            if s == glob or any(fnmatch.fnmatchcase(s.lower(), p) or fnmatch.fnmatchcase(Path(s).name.lower(), p) for p in patterns)
        }
        if not found:
            names = sorted(Path(s).name for s in sources)
            listed = ", ".join(names[:5]) + (f", ... ({len(names)} files)" if len(names) > 5 else "")
            raise ValueError(f"--source {glob!r} matches no indexed document; indexed: {listed or 'none'}")
        out |= found
    return sorted(out)
