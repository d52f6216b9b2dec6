"""BM25 over the same chunks, for hybrid retrieval: exact names and numbers that dense vectors blur.

The index is rebuilt from Chroma after every ingest that changed something and saved under
the work dir, stamped with the manifest version it was built from and the way its terms were
cut (`TOKENS`); a search that finds the stamp stale (say an ingest was killed, or ragtune now
stems) rebuilds it before answering.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragtune.rag.index import Index

TOKEN_RE = re.compile(r"\w+", re.UNICODE)
# A short English stop list: the function words that carry no retrieval signal.
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his i in is it its of on or she that the "
    "their them they this to was were what when where which who whom why will with how did does do "
    "not no so than then there these those we you your our us can could would should may might".split()
)


TOKENS = 2  # how text is cut into terms: a saved index cut another way is rebuilt (2: stemmed)


def tokenize(text: str) -> list[str]:
    """Lowercased, stemmed word tokens without stop words, for indexing and for queries alike."""
    return [stem(t) for t in TOKEN_RE.findall(text.lower()) if t not in STOPWORDS]


def stem(token: str) -> str:
    """A light English stemmer: plurals and -ed/-ing endings go, so "crashed" meets "crash" and
    "splits" meets "split". Crude, but the same on both sides; short words and numbers stay."""
    t = token
    if len(t) <= 4 or not t.isalpha():
        return t
    if t.endswith("ies"):
        t = t[:-3] + "y"
    elif t.endswith("sses"):
        t = t[:-2]
    elif t.endswith("s") and not t.endswith(("ss", "us", "is")):
        t = t[:-1]
    for suffix in ("ing", "ed"):
        if t.endswith(suffix) and len(t) - len(suffix) >= 4:
            t = t[: -len(suffix)]
            if len(t) > 3 and t[-1] == t[-2] and t[-1] not in "lsz":  # "embedding" -> "embed"
                t = t[:-1]
            break
    return t[:-1] if t.endswith("e") and len(t) > 4 else t  # "continue" meets "continued"


@dataclass
class Lexical:
    """A BM25 index, and the chunk id, file and boilerplate flag of each of its documents."""

    retriever: object  # a bm25s.BM25
    ids: list[str]
    files: list[str] = field(default_factory=list)  # the source files, each once
    file_of: list[int] = field(default_factory=list)  # per document: its file's place in `files`
    boilerplate: set[str] = field(default_factory=set)  # the ids of boilerplate chunks

    def search(self, query: str, n: int, sources: list[str] | None = None) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, BM25 score) pairs, best first; chunks sharing no word are left out.

        `sources`: only the chunks of these files, masked before ranking, so `n` of theirs come back.
        """
        tokens = tokenize(query)
        if not tokens or not self.ids:
            return []
        vocab = self.retriever.vocab_dict
        q = [[t for t in tokens if t in vocab]]
        if not q[0]:
            return []
        mask = None
        if sources is not None:
            chosen = set(sources)
            wanted = [i for i, f in enumerate(self.files) if f in chosen]
            mask = np.isin(np.asarray(self.file_of), wanted).astype(np.float32)  # a score times 0 is not a hit
        docs, scores = self.retriever.retrieve(q, k=min(n, len(self.ids)), show_progress=False, n_threads=1, weight_mask=mask)
        return [(self.ids[d], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def idf(self, word: str) -> float:
        """How rare `word` is among the chunks (BM25's idf; a word no chunk holds is the rarest)."""
        n, tokens = len(self.ids), tokenize(word)
        if not tokens or not n:
            return 1.0
        vocab, indptr = self.retriever.vocab_dict, self.retriever.scores["indptr"]
        df = min((int(indptr[vocab[t] + 1] - indptr[vocab[t]]) if t in vocab else 0) for t in tokens)
        return float(np.log((n + 1) / (df + 0.5)))


def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import
    return bm25s


def build(index: Index, version: str) -> Lexical:
    """BM25 over every chunk in `index`, saved under the work dir stamped with the manifest `version`."""
    bm25s = _bm25s()

    chunks = list(index.all_chunks())
    ids = [c.id for c in chunks]
    files = sorted({c.source for c in chunks})
    place = {f: i for i, f in enumerate(files)}
    file_of = [place[c.source] for c in chunks]
    boilerplate = [c.id for c in chunks if c.boilerplate]
    retriever = bm25s.BM25()
    if chunks:
        retriever.index([tokenize(c.embed_text()) for c in chunks], show_progress=False)
    out = index.lexical_dir
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")  # a search may rebuild while another does
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if chunks:
        retriever.save(str(tmp))
    (tmp / "ids.json").write_text(
        json.dumps({"version": version, "tokens": TOKENS, "ids": ids, "files": files, "file_of": file_of, "boilerplate": boilerplate})
    )
    shutil.rmtree(out, ignore_errors=True)
    try:
        tmp.rename(out)
    except OSError:  # another process put its (equally fresh) build there first
        shutil.rmtree(tmp, ignore_errors=True)
    return Lexical(retriever, ids, files, file_of, set(boilerplate))


def is_fresh(index: Index, version: str) -> bool:
    """Whether the saved BM25 index was built from this manifest version, with each chunk's file
    and today's `TOKENS` (one saved before either is stale); reads only its stamp."""
    try:
        saved = json.loads((Path(index.lexical_dir) / "ids.json").read_text())
        return saved["version"] == version and "file_of" in saved and saved.get("tokens") == TOKENS
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return False


def load(index: Index, version: str) -> Lexical:
    """The saved BM25 index if it matches `version`, else a fresh one."""
    bm25s = _bm25s()

    if is_fresh(index, version):
        try:
            saved = json.loads((Path(index.lexical_dir) / "ids.json").read_text())
            ids = saved["ids"]
            retriever = bm25s.BM25.load(str(index.lexical_dir)) if ids else bm25s.BM25()
            return Lexical(retriever, ids, saved["files"], saved["file_of"], set(saved["boilerplate"]))
        except (FileNotFoundError, KeyError, ValueError, OSError):
            pass  # removed or damaged between the two reads: rebuild
    return build(index, version)
