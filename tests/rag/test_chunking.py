from ragtune.core.records import Document
from ragtune.rag.chunking import chunk_documents, make_chunker
from ragtune.rag.embed import load_embedder


def _docs(section_texts, source="/x/doc.md"):
    return [Document(text=t, source=source, sha256="0" * 64, category="NarrativeText", section=s, page=p) for s, t, p in section_texts]


def test_chunks_follow_sections_fit_the_budget_and_never_cut_words():
    tok = load_embedder("packaged").tokenizer
    long = " ".join(f"alpha{i} beta gamma delta." for i in range(200))
    docs = _docs([("A", "Short intro paragraph.", 1), ("A > B", long, 1), ("A > B", "Closing words here.", 2), ("C", "Other section.", 2)])
    chunks = chunk_documents(docs, make_chunker(tok, 64, 16))
    assert [c.section for c in chunks][0] == "A" and chunks[-1].section == "C"
    assert all(c.n_tokens == len(tok.tokenize(c.text)) <= 64 for c in chunks)
    assert sum(c.n_tokens for c in chunks) > 64 * 3 and max(c.n_tokens for c in chunks) > 48, "chunks should be packed near the budget"
    words = set(long.split()) | {"Closing", "words", "here."}
    for c in chunks:
        if c.section == "A > B":
            assert set(c.text.split()) <= words, "a word was cut"
    b = [c for c in chunks if c.section == "A > B"]
    assert len(b) > 3 and b[0].page == 1 and b[-1].page_end == 2
    # Overlap: consecutive chunks of a section share text.
    assert b[1].text.split()[0] in b[0].text
    assert len({c.id for c in chunks}) == len(chunks)


def test_ids_hash_content_and_source():
    tok = load_embedder("packaged").tokenizer
    split = make_chunker(tok, 100, 10)
    a = chunk_documents(_docs([("S", "Same text.", None)]), split)
    b = chunk_documents(_docs([("S", "Same text.", None)]), split)
    c = chunk_documents(_docs([("S", "Same text.", None)], source="/y/other.md"), split)
    d = chunk_documents(_docs([("S", "Other text.", None)]), split)
    assert a[0].id == b[0].id != c[0].id != d[0].id
