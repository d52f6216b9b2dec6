"""Ingest into a real Chroma in a temp dir: idempotence, changes, prune, bad input, search."""

import shutil

from helpers import collection_ids, ingest_cfg, search_cfg, write_pdf
from ragtune.rag.embed import load_embedder
from ragtune.rag.ingest import ingest
from ragtune.rag.retrieve import Retriever


def test_sample_corpus_ingests_and_reingest_is_a_no_op(tmp_path, sample_docs):
    first = ingest(ingest_cfg(tmp_path / "w", [sample_docs]))
    assert first.count("ok") == 7 and first.count("failed") == 0
    assert first.chunks_added == first.total_chunks > 20
    ids = collection_ids(tmp_path / "w")
    load_embedder.cache_clear()
    again = ingest(ingest_cfg(tmp_path / "w", [sample_docs]))
    assert load_embedder.cache_info().currsize == 0, "an unchanged re-ingest must not load the embedding model"
    assert again.count("unchanged") == 7 and again.chunks_added == 0 and again.chunks_removed == 0
    assert collection_ids(tmp_path / "w") == ids


def test_changed_file_replaces_its_old_chunks_and_prune_removes_deleted_files(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha service listens on port 4100.\n\n## Limits\n\nAlpha accepts 20 requests per second.\n")
    (docs / "b.txt").write_text("Bravo notes\n\nThe bravo queue drains every 15 minutes.\n")
    wd = tmp_path / "w"
    ingest(ingest_cfg(wd, [docs]))
    before = collection_ids(wd)
    (docs / "a.md").write_text("# Alpha\n\nThe alpha service listens on port 4200.\n\n## Limits\n\nAlpha accepts 20 requests per second.\n")
    rep = ingest(ingest_cfg(wd, [docs]))
    a = next(f for f in rep.files if f.path.endswith("a.md"))
    assert (a.status, a.chunks_added, a.chunks_removed) == ("ok", 1, 1)
    assert a.chunks_unchanged == 1  # the Limits section did not change
    hits = Retriever(search_cfg(wd)).search("Which port does the alpha service listen on?", 3)
    texts = " ".join(h.chunk.text for h in hits)
    assert "4200" in texts and "4100" not in texts
    (docs / "b.txt").unlink()
    kept = ingest(ingest_cfg(wd, [docs]))
    assert kept.total_chunks == len(before), "without --prune nothing is removed"
    pruned = ingest(ingest_cfg(wd, [docs], prune=True))
    assert [f.status for f in pruned.files if f.path.endswith("b.txt")] == ["pruned"]
    assert pruned.total_chunks == len(before) - 1
    assert not any("bravo" in h.chunk.text.lower() for h in Retriever(search_cfg(wd)).search("bravo queue drains", 5))


def test_a_file_read_by_older_rules_is_read_again_and_its_chunks_restamped(tmp_path):
    from dataclasses import replace

    from ragtune.rag.index import Index
    from ragtune.rag.ingest import READING

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(
        "# Alpha Guide\n\nThe alpha service listens on port 4100.\n\n## Limits\n\nAlpha accepts 20 requests per second.\n"
    )
    wd = tmp_path / "w"
    ingest(ingest_cfg(wd, [docs]))
    index = Index(ingest_cfg(wd, [docs]).index, wd)
    read = {c.id: c for c in index.all_chunks()}
    assert {c.title for c in read.values()} == {"Alpha Guide"}
    # An index made before titles and marks: its chunks have none, and its manifest names no reading
    index.restamp([replace(c, title="", boilerplate=True) for c in read.values()])
    manifest = index.load_manifest()
    for entry in manifest["files"].values():
        entry.pop("reading")
    index.save_manifest(manifest)
    again = ingest(ingest_cfg(wd, [docs]))
    assert [f.status for f in again.files] == ["ok"] and again.chunks_removed == 0
    assert {c.id: c for c in index.all_chunks()} == read, "the same chunks, with today's titles and marks"
    assert again.chunks_added == sum(c.embed_text() != replace(c, title="").embed_text() for c in read.values())
    assert index.load_manifest()["files"][str(docs / "guide.md")]["reading"] == READING
    assert [f.status for f in ingest(ingest_cfg(wd, [docs])).files] == ["unchanged"]


def test_bad_files_are_reported_and_the_rest_of_the_batch_completes(tmp_path, sample_docs):
    docs = tmp_path / "docs"
    shutil.copytree(sample_docs, docs)
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "bad.json").write_text("{nope")
    (docs / "image.png").write_bytes(b"\x89PNG\r\n")
    write_pdf(docs / "locked.pdf", [[("p", "x")]], owner_password="o", user_password="u")
    rep = ingest(ingest_cfg(tmp_path / "w", [docs, tmp_path / "missing-folder"]))
    reasons = {f.path.rsplit("/", 1)[-1]: (f.status, f.reason) for f in rep.files}
    assert reasons["corrupt.pdf"][0] == "failed" and "corrupt" in reasons["corrupt.pdf"][1]
    assert reasons["empty.txt"] == ("failed", "empty file")
    assert "malformed JSON" in reasons["bad.json"][1]
    assert reasons["image.png"] == ("skipped", "unsupported file type '.png'")
    assert "encrypted" in reasons["locked.pdf"][1]
    assert reasons["missing-folder"] == ("failed", "no such file or directory")
    assert rep.count("ok") == 7 and rep.total_chunks > 20
    json_files = rep.to_json()["files"]
    assert {f["path"].rsplit("/", 1)[-1] for f in json_files["failed"]} == {
        "corrupt.pdf",
        "empty.txt",
        "bad.json",
        "locked.pdf",
        "missing-folder",
    }


def test_search_returns_the_right_document(tmp_path, sample_docs):
    wd = tmp_path / "w"
    ingest(ingest_cfg(wd, [sample_docs]))
    retriever = Retriever(search_cfg(wd))
    for query, expected in [
        ("How does the manifest decide which files were already ingested?", "02-ingesting.pdf"),
        ("reciprocal rank fusion of BM25 and dense vectors", "03-search.html"),
        ("RAFT distractor documents and the oracle probability", "04-synthetic-data.docx"),
        ("LoRA rank and alpha defaults for training", "05-training.txt"),
        ("exact match and F1 with bootstrap confidence intervals", "06-evaluation.json"),
    ]:
        hits = retriever.search(query, 3)
        assert hits[0].chunk.source.endswith(expected), (query, [h.chunk.source for h in hits])
        assert hits[0].rank == 1 and hits[0].score >= hits[-1].score


def test_dense_and_lexical_modes_work_alone(tmp_path, sample_docs):
    wd = tmp_path / "w"
    ingest(ingest_cfg(wd, [sample_docs]))
    for mode in ("dense", "lexical"):
        hits = Retriever(search_cfg(wd, retrieval=mode)).search("reciprocal rank fusion", 2)
        assert len(hits) == 2 and hits[0].chunk.source.endswith("03-search.html"), mode


def test_query_encoder_is_onnx_and_matches_torch(tmp_path, sample_docs):
    """A silent fall-back to torch would cost 3x in query latency: check ONNX is really used."""
    import numpy as np

    from ragtune.rag.embed import OnnxQueryEncoder

    wd = tmp_path / "w"
    ingest(ingest_cfg(wd, [sample_docs]))
    retriever = Retriever(search_cfg(wd))
    assert isinstance(retriever.encode_query, OnnxQueryEncoder)
    assert list((wd / "onnx").glob("*.onnx")), "the export should be cached in the work dir"
    queries = [
        "How do I prune deleted files?",
        "LoRA rank",
        "a much longer question about reciprocal rank fusion of BM25 and dense vectors",
    ]
    torch_vecs = retriever.embedder.embed(queries)
    for q, ref in zip(queries, torch_vecs):
        assert float(np.dot(retriever.encode_query(q), ref)) > 0.9999
    torch_only = Retriever(search_cfg(wd, query_encoder="torch"))
    assert not isinstance(torch_only.encode_query, OnnxQueryEncoder)
    assert [h.chunk.id for h in torch_only.search(queries[0])] == [h.chunk.id for h in retriever.search(queries[0])]


def test_an_unchanged_file_keeps_its_warnings_and_slow_phases_say_so(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "latin1.txt").write_bytes("Menu du jour\n\nLe café crème coûte déjà trop cher à Noël.\n".encode("latin-1"))
    (docs / "plain.md").write_text("# Plain\n\nNothing to warn about here.\n")
    wd, said = tmp_path / "w", []
    first = ingest(ingest_cfg(wd, [docs]), on_status=said.append)
    warned = {f.path.rsplit("/", 1)[-1]: f.warnings for f in first.files}
    assert warned["latin1.txt"] == ["not UTF-8: decoded as cp1252 (a guess; re-save the file as UTF-8 if characters look wrong)"]
    assert warned["plain.md"] == []
    assert [s.split(" ")[:2] for s in said] == [["2", "files"], ["loading", "embedding"], ["rebuilding", "the"]], said
    again = ingest(ingest_cfg(wd, [docs]), on_status=said.append)
    assert {f.path.rsplit("/", 1)[-1]: (f.status, f.warnings) for f in again.files} == {
        "latin1.txt": ("unchanged", warned["latin1.txt"]),
        "plain.md": ("unchanged", []),
    }
    assert "not UTF-8: decoded as cp1252" in next(f.line() for f in again.files if f.path.endswith("latin1.txt"))
    assert said[3:] == ["2 files to check against collection 'docs' ..."], "an unchanged re-ingest loads no model and rebuilds nothing"
