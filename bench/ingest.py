"""Ingestion speed on real PDFs, and embedding throughput, each against a raw baseline in the same run.

    python bench/ingest.py [--pdfs ../shared/bench/pdfs] [--repeats 5] [--pdf-only] [--table-libs]

1. PDF pages/s: raw pdfium text extraction (open, every page's text, nothing else) against
   ragtune's PDF loader (pages, paragraphs, section titles, tables) and loader + chunking, per
   file; then the same on the files' pages with tables and on their plain pages, each set cut
   into a PDF of its own (tables cost time only where they are).
   Target: >= 100 pages/s with page numbers and sections kept.
2. --table-libs: the table finders of pdfplumber and PyMuPDF, when installed (`pip install
   pdfplumber==0.11.10 pymupdf==2.1`), against ragtune's on the same files: pages/s, tables
   found, and the first row of each one's first table on a page to read (--sample-page).
3. Embedding (unless --pdf-only): a raw sentence-transformers `encode` of the same chunks (fp32,
   its default batch size) against ragtune's `Embedder.embed` at fp32 (the overhead) and at its
   default precision. Target: at most 10% overhead.
Figures are medians over --repeats runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from ragtune.core import offline  # noqa: E402

offline.setup()


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def raw_pdfium(path: Path) -> int:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    n = len(pdf)
    for i in range(n):
        page = pdf[i]
        tp = page.get_textpage()
        tp.get_text_range()
        tp.close()
        page.close()
    pdf.close()
    return n


def pdf_rates(pdf: Path, repeats: int, chunker) -> tuple[tuple[int, float, float, float], list]:
    """(pages, raw, load, load + chunk seconds) for one PDF, and its chunks."""
    from ragtune.loaders import load_file
    from ragtune.rag.chunking import chunk_documents

    pages = raw_pdfium(pdf)
    t_raw = median_time(lambda: raw_pdfium(pdf), repeats)
    t_load = median_time(lambda: load_file(pdf, 10**9), repeats)
    t_chunk = median_time(lambda: chunk_documents(load_file(pdf, 10**9).documents, chunker()), repeats)
    chunks = chunk_documents(load_file(pdf, 10**9).documents, chunker())
    assert all(c.page is not None for c in chunks), "every PDF chunk must keep its page"
    return (pages, t_raw, t_load, t_chunk), chunks


def print_rates(name: str, pages: int, t_raw: float, t_load: float, t_chunk: float, tables: int | None = None) -> None:
    rates = f"{pages / t_raw:>10.0f}{pages / t_load:>10.0f}{pages / t_chunk:>12.0f}{t_raw / t_load:>10.2f}{t_raw / t_chunk:>10.2f}"
    print(f"{name[:27]:<28}{pages:>6}{rates}" + (f"{tables:>8}" if tables is not None else ""))


def split_by_tables(pdfs: list[Path], tmp: Path) -> tuple[Path, Path]:
    """Two PDFs cut from the given ones: the pages the loader finds tables on, and the rest."""
    import pypdfium2 as pdfium

    from ragtune.loaders import load_file

    out = {"tables": pdfium.PdfDocument.new(), "plain": pdfium.PdfDocument.new()}
    for path in pdfs:
        with_tables = {d.page for d in load_file(path, 10**9).documents if d.category == "Table"}
        src = pdfium.PdfDocument(str(path))
        out["tables"].import_pages(src, [i for i in range(len(src)) if i + 1 in with_tables])
        out["plain"].import_pages(src, [i for i in range(len(src)) if i + 1 not in with_tables])
        src.close()
    paths = []
    for kind, doc in out.items():
        doc.save(str(tmp / f"{kind}.pdf"))
        doc.close()
        paths.append(tmp / f"{kind}.pdf")
    return paths[0], paths[1]


def compare_table_libs(pdfs: list[Path], sample: str) -> None:
    """pdfplumber's and PyMuPDF's table finders against ragtune's loader: speed, tables, a sample row."""
    from ragtune.loaders import load_file

    name, page = sample.rsplit(":", 1)
    page = int(page)
    pages = sum(raw_pdfium(p) for p in pdfs)

    def ragtune_tables(path: Path):
        docs = load_file(path, 10**9).documents
        return [(d.page, [[line] for line in d.text.split("\n")[1:]]) for d in docs if d.category == "Table"]

    def plumber_tables(path: Path):
        import pdfplumber

        with pdfplumber.open(path) as pdf:
            return [(i + 1, t) for i, p in enumerate(pdf.pages) for t in p.extract_tables()]

    def pymupdf_tables(path: Path):
        import pymupdf

        with pymupdf.open(path) as doc:
            return [(i + 1, t.extract()) for i, p in enumerate(doc) for t in p.find_tables().tables]

    print(f"\nTable finders on {len(pdfs)} files, {pages} pages (one run each); first row of the first table on {name} p.{page}")
    for lib, find in (("ragtune (pdfium)", ragtune_tables), ("pdfplumber", plumber_tables), ("PyMuPDF", pymupdf_tables)):
        try:
            t = time.perf_counter()
            found = {p.name: find(p) for p in pdfs}
            elapsed = time.perf_counter() - t
        except ImportError as e:
            print(f"  {lib:<18} not installed ({e.name})")
            continue
        n = sum(len(v) for v in found.values())
        on_page = [rows for p, rows in found.get(name, []) if p == page and rows]
        first = next((r for r in on_page[0] if any(c for c in r)), []) if on_page else []
        print(f"  {lib:<18}{pages / elapsed:>7.1f} pages/s {n:>5} tables   {first}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pdfs", default=str(ROOT.parent / "shared" / "bench" / "pdfs"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pdf-only", action="store_true", help="leave out the embedding figures")
    ap.add_argument("--table-libs", action="store_true", help="also time pdfplumber's and PyMuPDF's table finders, if installed")
    ap.add_argument("--sample-page", default="PEPSICO_2023Q1_EARNINGS.pdf:5", help="FILE:PAGE whose first table row each finder shows")
    args = ap.parse_args()
    pdfs = sorted(Path(args.pdfs).resolve().glob("*.pdf"))
    if not pdfs:
        sys.exit(f"no PDFs in {args.pdfs}")

    from ragtune.loaders import load_file
    from ragtune.rag.chunking import make_chunker
    from ragtune.rag.embed import load_embedder

    embedder = load_embedder("packaged", "auto")

    # A fresh chunker per timed run: its token-count cache must not carry over between repeats.
    def chunker():
        return make_chunker(embedder.tokenizer, 200, 30)

    load_file(pdfs[0], 10**9)  # warm imports

    print(f"PDF ingestion, median of {args.repeats} runs")
    print(f"{'file':<28}{'pages':>6}{'raw p/s':>10}{'load p/s':>10}{'+chunk p/s':>12}{'load/raw':>10}{'chunk/raw':>10}{'tables':>8}")
    all_chunks = []
    total = [0, 0.0, 0.0, 0.0]  # pages, raw, load and chunk seconds
    for pdf in pdfs:
        row, chunks = pdf_rates(pdf, args.repeats, chunker)
        all_chunks += chunks
        total = [t + r for t, r in zip(total, row, strict=True)]
        print_rates(pdf.name, *row, tables=sum(c.category == "Table" for c in chunks))
    print_rates("all", *total)
    rate = total[0] / total[3]
    print(f"target >= 100 pages/s with pages and sections: {'MET' if rate >= 100 else 'MISSED'} ({rate:.0f} pages/s loader + chunking)")

    with tempfile.TemporaryDirectory() as tmp:
        table_pdf, plain_pdf = split_by_tables(pdfs, Path(tmp))
        for name, pdf in (("pages with tables", table_pdf), ("plain pages", plain_pdf)):
            row, _ = pdf_rates(pdf, args.repeats, chunker)
            print_rates(name, *row)
    rate = row[0] / row[3]
    print(f"target >= 100 pages/s on plain pages: {'MET' if rate >= 100 else 'MISSED'} ({rate:.0f} pages/s loader + chunking)")

    if args.table_libs:
        compare_table_libs(pdfs, args.sample_page)
    if args.pdf_only:
        return

    texts = [c.embed_text() for c in all_chunks][:256]
    raw_model = embedder.model
    fp32 = load_embedder("packaged", "fp32", 16)
    t_base = median_time(lambda: raw_model.encode(texts, normalize_embeddings=True), 3)
    fp32_same_batch = load_embedder("packaged", "fp32", 32)
    t_fp32 = median_time(lambda: fp32_same_batch.embed(texts), 3)
    t_fp32_16 = median_time(lambda: fp32.embed(texts), 3)
    t_default = median_time(lambda: embedder.embed(texts), 3)
    n = len(texts)
    print(f"\nEmbedding {n} chunks (median of 3)")
    print(f"  raw sentence-transformers encode, fp32, batch 32: {n / t_base:6.1f} chunks/s  (baseline)")
    print(f"  ragtune Embedder, fp32, batch 32 (same work):     {n / t_fp32:6.1f} chunks/s  overhead {100 * (t_fp32 / t_base - 1):+.1f}%")
    print(
        f"  ragtune Embedder, fp32, batch 16:                 {n / t_fp32_16:6.1f} chunks/s  overhead {100 * (t_fp32_16 / t_base - 1):+.1f}%"
    )
    print(
        f"  ragtune Embedder, default ({'bf16' if embedder.bf16 else 'fp32'}, batch 16):       {n / t_default:6.1f} chunks/s  overhead {100 * (t_default / t_base - 1):+.1f}%"
    )
    print(f"target <= 10% overhead: {'MET' if t_fp32 / t_base <= 1.10 else 'MISSED'}")


if __name__ == "__main__":
    main()
