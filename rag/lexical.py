"""BM25 over the same chunks, for hybrid retrieval: exact names and numbers that dense vectors blur.

The index is rebuilt from Chroma after every ingest that changed something and saved under
the work dir, stamped with the manifest version it was built from; a search that finds the
stamp stale (say an ingest was killed) rebuilds it before answering.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from ragtune.rag.index import Index

TOKEN_RE = re.compile(r"\w+", re.UNICODE)
# A short English stop list: the function words that carry no retrieval signal.
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his i in is it its of on or she that the "
    "their them they this to was were what when where which who whom why will with how did does do "
    "not no so than then there these those we you your our us can could would should may might".split()
)


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens without stop words, for indexing and for queries alike."""
    return [t for t in TOKEN_RE.findall(text.lower()) if t not in STOPWORDS]


class Lexical:
    """A BM25 index and the chunk id of each of its documents."""

    def __init__(self, retriever, ids: list[str]):
        self.retriever, self.ids = retriever, ids

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, BM25 score) pairs, best first; chunks sharing no word are left out."""
        tokens = tokenize(query)
        if not tokens or not self.ids:
            return []
        vocab = self.retriever.vocab_dict
        q = [[t for t in tokens if t in vocab]]
        if not q[0]:
            return []
        docs, scores = self.retriever.retrieve(q, k=min(n, len(self.ids)), show_progress=False, n_threads=1)
        return [(self.ids[d], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]


def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import
    return bm25s


def build(index: Index, version: str) -> Lexical:
    """BM25 over every chunk in `index`, saved under the work dir stamped with the manifest `version`."""
    bm25s = _bm25s()

    chunks = list(index.all_chunks())
    ids = [c.id for c in chunks]
    retriever = bm25s.BM25()
    if chunks:
        retriever.index([tokenize(c.embed_text()) for c in chunks], show_progress=False)
    out = index.lexical_dir
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")  # a search may rebuild while another does
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if chunks:
        retriever.save(str(tmp))
    (tmp / "ids.json").write_text(json.dumps({"version": version, "ids": ids}))
    shutil.rmtree(out, ignore_errors=True)
    try:
        tmp.rename(out)
    except OSError:  # another process put its (equally fresh) build there first
        shutil.rmtree(tmp, ignore_errors=True)
    return Lexical(retriever, ids)


def is_fresh(index: Index, version: str) -> bool:
    """Whether the saved BM25 index was built from this manifest version (reads only its stamp)."""
    try:
        return json.loads((Path(index.lexical_dir) / "ids.json").read_text())["version"] == version
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return False


def load(index: Index, version: str) -> Lexical:
    """The saved BM25 index if it matches `version`, else a fresh one."""
    bm25s = _bm25s()

    if is_fresh(index, version):
        try:
            ids = json.loads((Path(index.lexical_dir) / "ids.json").read_text())["ids"]
            return Lexical(bm25s.BM25.load(str(index.lexical_dir)) if ids else bm25s.BM25(), ids)
        except (FileNotFoundError, KeyError, ValueError, OSError):
            pass  # removed or damaged between the two reads: rebuild
    return build(index, version)
