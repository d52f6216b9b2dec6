import re
from pathlib import Path

import pytest

import ragtune
from ragtune.core.records import Document
from ragtune.loaders import load_file
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


def test_pages_follow_each_chunk_through_token_overlap():
    # One short paragraph a page, so a chunk's page is wrong as soon as its start is: LangChain's own
    # start_index took the token overlap for characters and sent chunks back to the section's first page.
    tok = load_embedder("packaged").tokenizer
    paras = [f"Page {p} says the harbour count was {p * 7} pelicans, with {p} gulls and a tern near pier {p}." for p in range(1, 41)]
    chunks = chunk_documents(_docs([("S", t, p) for p, t in enumerate(paras, 1)]), make_chunker(tok, 48, 24))
    assert len(chunks) > 10
    for c in chunks:
        first, last = c.text.split("\n\n")[0], c.text.split("\n\n")[-1]
        assert first in paras[c.page - 1] and last in paras[c.page_end - 1], (c.page, c.page_end, c.text)


def test_a_table_is_chunked_between_rows_under_its_heading():
    tok = load_embedder("packaged").tokenizer
    rows = [f"Region {i} | 2023: {i},000 | 2022: {i - 1},500" for i in range(1, 30)]
    table = Document("Revenue by region (in millions)\n" + "\n".join(rows), "/x/r.pdf", "0" * 64, "Table", "Results", page=4)
    before = Document("Revenue grew in every region this year.", "/x/r.pdf", "0" * 64, "NarrativeText", "Results", page=4)
    chunks = chunk_documents([before, table], make_chunker(tok, 64, 16))
    assert chunks[0].text == before.text, "a table is not merged with the text before it"
    pieces = chunks[1:]
    assert len(pieces) > 2 and all(c.category == "Table" and c.page == c.page_end == 4 for c in pieces)
    assert all(c.text.split("\n")[0] == "Revenue by region (in millions)" and c.n_tokens == len(tok.tokenize(c.text)) <= 64 for c in pieces)
    assert [r for c in pieces for r in c.text.split("\n")[1:]] == rows, "every row once, whole, in order"


FILINGS = ["AMCOR_2023Q2_10Q.pdf", "NETFLIX_2017_10K.pdf", "PEPSICO_2023Q1_EARNINGS.pdf"]


@pytest.mark.parametrize("name", FILINGS)
def test_every_chunk_of_a_filing_is_printed_on_the_pages_it_names(name):
    import pypdfium2 as pdfium

    path = Path(ragtune.__file__).parent.parent / "shared" / "bench" / "pdfs" / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not beside this checkout)")
    pdf = pdfium.PdfDocument(str(path))
    pages = []
    for i in range(len(pdf)):
        tp = pdf[i].get_textpage()
        pages.append(_squash(tp.get_text_range()))
        tp.close()
    pdf.close()
    chunks = chunk_documents(load_file(path, 10**9).documents, make_chunker(load_embedder("packaged").tokenizer, 200, 30))
    wrong = [c for c in chunks if not _printed_on(c, pages)]
    assert not wrong, (
        f"{len(wrong)} of {len(chunks)} chunks are not on their pages, e.g. p.{wrong[0].page}-{wrong[0].page_end}: {wrong[0].text[:120]!r}"
    )


def _squash(text: str) -> str:
    # pdfium's page text against a chunk's: no whitespace, and no hyphens (words re-joined across lines)
    return re.sub(r"[\s\x02\ufffe-]+", "", text).lower()


def _printed_on(chunk, pages: list[str]) -> bool:
    """A text chunk is a run of its pages' text, one piece a page from `page` to `page_end` (the
    running headers between them are left out); every word of a table chunk is on its page."""
    if chunk.category == "Table":
        lines = chunk.text.split("\n")
        words = " ".join(lines[1:] if lines[0] == "Table" else lines).replace("|", " ").split()
        page = pages[chunk.page - 1]
        return all(_squash(w.rstrip(":")) in page for w in words)
    rest = _squash(chunk.text)
    for p in range(chunk.page, chunk.page_end + 1):
        lo, hi = 0, len(rest)  # the longest start of `rest` on page p
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if rest[:mid] in pages[p - 1] else (lo, mid - 1)
        if lo == 0:
            return False
        rest = rest[lo:]
        if not rest:
            return p == chunk.page_end
    return False
