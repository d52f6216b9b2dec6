"""The Chroma collection and the manifest of ingested files that keeps it consistent.

The collection stores chunks keyed by content-hash ids, so writing a chunk twice is an
upsert, never a duplicate. The manifest (a JSON file under the work dir, always replaced
atomically) records each file's sha256 and chunk count. A file whose sha256 is unchanged is
skipped; a changed file's chunks are upserted and then its stale ones deleted, found by
`source` in Chroma itself, so even an ingest killed half-way leaves nothing behind on re-run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ragtune.core import offline
from ragtune.core.records import Chunk
from ragtune.core.workdir import chroma_dir, lexical_dir, manifests_dir, write_json
from ragtune.rag.config import IndexConfig


class Index:
    """One collection, embedded on disk (`PersistentClient`) or on a `chroma run` server (`HttpClient`)."""

    def __init__(self, cfg: IndexConfig, workdir: Path):
        offline.setup()
        import chromadb
        from chromadb.config import Settings

        self.cfg = cfg
        settings = Settings(anonymized_telemetry=False)
        if cfg.chroma == "http":
            try:
                self.client = chromadb.HttpClient(host=cfg.chroma_host, port=cfg.chroma_port, settings=settings)
            except Exception as e:  # refused, timed out, not a Chroma: one line, not a traceback
                raise RuntimeError(
                    f"cannot reach a Chroma server at {cfg.chroma_host}:{cfg.chroma_port} "
                    f"({type(e).__name__}); start one with `chroma run --host {cfg.chroma_host} --port {cfg.chroma_port}`"
                ) from None
            self.key = f"{cfg.chroma_host}-{cfg.chroma_port}-{cfg.collection}"
        else:
            self.client = chromadb.PersistentClient(path=str(chroma_dir(workdir)), settings=settings)
            self.key = cfg.collection
        # We pass vectors ourselves: Chroma's default embedder would try to download a model.
        self.collection = self.client.get_or_create_collection(
            cfg.collection,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedding_model": cfg.embedding_model},
        )
        built_with = (self.collection.metadata or {}).get("embedding_model")
        if built_with and built_with != cfg.embedding_model:
            raise RuntimeError(
                f"collection {cfg.collection!r} was built with embedding model {built_with!r}, not {cfg.embedding_model!r}; use another --collection"
            )
        self.manifest_path = manifests_dir(workdir) / f"{self.key}.json"
        self.lexical_dir = lexical_dir(workdir) / self.key

    def upsert(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Write chunks with their vectors, in the batch size Chroma accepts; an existing id is overwritten."""
        step = self.client.get_max_batch_size()
        for i in range(0, len(chunks), step):
            part = chunks[i : i + step]
            self.collection.upsert(
                ids=[c.id for c in part],
                embeddings=vectors[i : i + step],
                documents=[c.text for c in part],
                metadatas=[c.metadata() for c in part],
            )

    def restamp(self, chunks: list[Chunk]) -> None:
        """Rewrite stored chunks' metadata (a title, a mark, a page), keeping their vectors."""
        step = self.client.get_max_batch_size()
        for i in range(0, len(chunks), step):
            part = chunks[i : i + step]
            self.collection.update(ids=[c.id for c in part], metadatas=[c.metadata() for c in part])

    def ids_for_source(self, source: str) -> set[str]:
        """The ids of every chunk stored for one file, read from Chroma rather than the manifest."""
        return set(self.collection.get(where={"source": source}, include=[])["ids"])

    def delete(self, ids: set[str] | list[str]) -> None:
        ids = list(ids)
        step = self.client.get_max_batch_size()
        for i in range(0, len(ids), step):
            self.collection.delete(ids=ids[i : i + step])

    def count(self) -> int:
        return self.collection.count()

    def query(self, vector: np.ndarray, n: int, sources: list[str] | None = None) -> list[tuple[Chunk, float]]:
        """Nearest chunks by cosine similarity, best first; `n` must not exceed `count()`.

        `sources`: only the chunks of these files (their absolute paths), filtered inside the
        search, so `n` of theirs come back, not `n` of all cut down.
        """
        if n <= 0 or sources == []:
            return []
        where = {"source": {"$in": list(sources)}} if sources is not None else None
        res = self.collection.query(query_embeddings=[vector], n_results=n, where=where, include=["documents", "metadatas", "distances"])
        return [
            (Chunk.from_store(i, d, m), 1.0 - dist)
            for i, d, m, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])
        ]

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        """The chunks of `ids` that exist, by id."""
        if not ids:
            return {}
        return _chunks(self.collection.get(ids=ids, include=["documents", "metadatas"]))

    def chunks_for_source(self, source: str) -> dict[str, Chunk]:
        """Every chunk stored for one file, by id, read from Chroma rather than the manifest."""
        return _chunks(self.collection.get(where={"source": source}, include=["documents", "metadatas"]))

    def all_chunks(self, page: int = 5000) -> Iterator[Chunk]:
        """Every chunk, paged, for rebuilding the lexical index."""
        offset = 0
        while True:
            res = self.collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
            if not res["ids"]:
                return
            yield from _chunks(res).values()
            offset += len(res["ids"])

    # The manifest -----------------------------------------------------------------------

    def load_manifest(self) -> dict:
        """The manifest of ingested files; an empty one before the first ingest."""
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": "", "files": {}}

    def save_manifest(self, manifest: dict) -> None:
        """Atomic: a kill -9 leaves either the old manifest or the new one, never half of one."""
        manifest["version"] = uuid.uuid4().hex  # tells the lexical index it is stale
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.manifest_path, manifest, indent=1, sort_keys=True)


def _chunks(res: dict) -> dict[str, Chunk]:
    """A Chroma `get` result as chunks, by id, in its order."""
    return {i: Chunk.from_store(i, d, m) for i, d, m in zip(res["ids"], res["documents"], res["metadatas"])}
