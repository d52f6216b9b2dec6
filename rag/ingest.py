"""`ingest(cfg) -> IngestReport`: files and folders into the index, safe to re-run and to kill.

Per file: check it and hash it; skip it if the manifest has the same sha256, read by the same
`READING`; otherwise load, chunk (each chunk with its document's title, rag/titles.py, and
boilerplate mark, rag/boilerplate.py), embed and upsert the new chunks, restamp those whose
record changed, delete its chunks that are no longer produced (found by `source` in Chroma
itself), then record it in the manifest. The manifest is saved at most once a
second (rewriting it after every file is quadratic on a big folder): a killed run redoes the
files it had not recorded, to the same ids, so a re-run ends with exactly the chunks of an
uninterrupted run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from pathlib import Path

from filelock import FileLock

from ragtune.core.records import FileReport, IngestReport
from ragtune.core.workdir import make_workdir
from ragtune.loaders import LoadError, check_file, load_file, supported, walk
from ragtune.rag import lexical
from ragtune.rag.boilerplate import is_boilerplate
from ragtune.rag.chunking import chunk_documents, make_chunker
from ragtune.rag.config import IngestConfig
from ragtune.rag.embed import load_embedder
from ragtune.rag.index import Index
from ragtune.rag.titles import document_title

# How a file's bytes become chunks: titles, boilerplate marks, tables. A file read by an older
# version is read again, so an index made before a rule changed gets the rule's chunks.
READING = 2

MANIFEST_EVERY_S = 1.0


def ingest(
    cfg: IngestConfig, on_file: Callable[[FileReport, int, int], None] | None = None, on_status: Callable[[str], None] | None = None
) -> IngestReport:
    """Ingest `cfg.paths` into the collection.

    Args:
        cfg: the ingest config.
        on_file: called after each file with its report, the files done and the total, for progress.
        on_status: called with a line as a slow phase between files starts (the embedding model's load, the BM25 rebuild).
    Returns:
        the report: every file's status and reason, chunk counts and the elapsed time.
    """
    t0 = time.perf_counter()
    workdir = make_workdir(cfg.workdir)
    # One writer at a time: a second `ingest` on the same work dir waits instead of interleaving.
    with FileLock(str(workdir / "ingest.lock")):
        index = Index(cfg.index, workdir)
        report = IngestReport(collection=cfg.index.collection)
        manifest = index.load_manifest()
        entries = list(walk(cfg.paths, cfg.include, cfg.exclude))
        files = [e for e in entries if isinstance(e, Path)]
        report.files += [FileReport(e.path, "failed", e.reason) for e in entries if isinstance(e, LoadError)]
        if on_status and files:  # the first file's parser import and the model's load take seconds before any bar
            on_status(f"{len(files)} file{'s' * (len(files) != 1)} to check against collection '{cfg.index.collection}' ...")
        pipeline = _Pipeline(cfg, on_status)
        saved_at, dirty = time.monotonic(), False
        try:
            for n, path in enumerate(files, 1):
                if not supported(path):
                    fr = FileReport(str(path), "skipped", f"unsupported file type '{path.suffix or path.name}'")
                else:
                    fr = _ingest_file(path, cfg, index, manifest, pipeline)
                    dirty |= fr.status == "ok"
                    if dirty and time.monotonic() - saved_at > MANIFEST_EVERY_S:
                        index.save_manifest(manifest)
                        saved_at, dirty = time.monotonic(), False
                report.files.append(fr)
                if on_file:
                    on_file(fr, n, len(files))
            if cfg.prune:
                pruned = _prune(cfg, index, manifest, {str(p) for p in files})
                report.files += pruned
                dirty |= bool(pruned)
        finally:
            if dirty:  # also on Ctrl-C: keep the record of the files already finished
                index.save_manifest(manifest)
        # The lexical index follows the manifest version; rebuild it if it is stale for any reason.
        if not lexical.is_fresh(index, manifest["version"]):
            if on_status:
                on_status(f"rebuilding the keyword (BM25) index over {index.count()} chunks ...")
            lexical.build(index, manifest["version"])
        report.total_chunks = index.count()
    report.elapsed_s = time.perf_counter() - t0
    return report


class _Pipeline:
    """The embedder and chunker, loaded on first use: a re-ingest of unchanged files needs
    neither, and loading them (sentence-transformers' import alone) costs ~4.5 s."""

    def __init__(self, cfg: IngestConfig, on_status: Callable[[str], None] | None = None):
        self.cfg, self.on_status = cfg, on_status

    @cached_property
    def embedder(self):
        idx = self.cfg.index
        if self.on_status:
            self.on_status(f"loading embedding model {idx.embedding_model} ...")
        return load_embedder(idx.embedding_model, idx.embed_precision, idx.embed_batch_size)

    @cached_property
    def chunker(self):
        return make_chunker(self.embedder.tokenizer, self.cfg.chunk_size, self.cfg.chunk_overlap)


def _unread_pages(known: dict) -> bool:
    """A file ingested with pages that had no text layer and were not OCR'd: `--ocr` reads it again."""
    return any(w.startswith("no text layer") for w in known.get("warnings", []))


def _ingest_file(path: Path, cfg: IngestConfig, index: Index, manifest: dict, pipe: _Pipeline) -> FileReport:
    source = str(path)
    max_bytes = int(cfg.max_file_mb * 1e6)
    try:
        sha = check_file(path, max_bytes)
        known = manifest["files"].get(source)
        if known and known["sha256"] == sha and known.get("reading") == READING and not (cfg.ocr and _unread_pages(known)):
            # the warnings of the run that loaded it: still true of the same bytes
            return FileReport(
                source, "unchanged", warnings=known.get("warnings", []), pages=known["pages"], chunks_unchanged=known["chunks"]
            )
        loaded = load_file(path, max_bytes, sha=sha, ocr=cfg.ocr)
        title = document_title(loaded.documents, path, loaded.title)
        chunks = [
            replace(c, title=title, boilerplate=is_boilerplate(c.text, c.section)) for c in chunk_documents(loaded.documents, pipe.chunker)
        ]
        if not chunks:
            raise LoadError(path, "no text to index after chunking")
    except LoadError as e:
        return FileReport(source, "failed", e.reason)
    before = index.chunks_for_source(source)
    new_ids = {c.id for c in chunks}
    # Embedded: the new chunks and those whose embedded text changed (a title); restamped: a changed mark or page
    fresh = [c for c in chunks if c.id not in before or before[c.id].embed_text() != c.embed_text()]
    index.upsert(fresh, pipe.embedder.embed([c.embed_text() for c in fresh]))
    embedded = {c.id for c in fresh}
    index.restamp([c for c in chunks if c.id in before and c != before[c.id] and c.id not in embedded])
    stale = before.keys() - new_ids
    index.delete(stale)
    manifest["files"][source] = {
        "sha256": sha,
        "reading": READING,
        "chunks": len(new_ids),
        "pages": loaded.pages,
        "title": title,
        "ingested_at": time.time(),
    }
    manifest["files"][source]["warnings"] = loaded.warnings  # reported again while the file is unchanged
    return FileReport(
        source,
        "ok",
        warnings=loaded.warnings,
        pages=loaded.pages,
        chunks_added=len(fresh),
        chunks_unchanged=len(new_ids) - len(fresh),
        chunks_removed=len(stale),
    )


def _prune(cfg: IngestConfig, index: Index, manifest: dict, seen: set[str]) -> list[FileReport]:
    """Drop files under the given folders that are gone (or now excluded) from index and manifest."""
    roots = [Path(p).expanduser().resolve() for p in cfg.paths if Path(p).expanduser().is_dir()]
    reports = []
    for source in sorted(manifest["files"]):
        if source in seen or not any(Path(source).is_relative_to(r) for r in roots):
            continue
        ids = index.ids_for_source(source)
        index.delete(ids)
        del manifest["files"][source]
        reports.append(FileReport(source, "pruned", "no longer in the folder", chunks_removed=len(ids)))
    return reports
