"""Ingestion speed on real PDFs, and embedding throughput, each against a raw baseline in the same run.

    python bench/ingest.py [--pdfs ../shared/bench/pdfs] [--repeats 5]

1. PDF pages/s: raw pdfium text extraction (open, every page's text, nothing else) against
   ragtune's PDF loader (pages, paragraphs, section titles) and loader + chunking.
   Target: >= 100 pages/s with page numbers and sections kept.
2. Embedding: a raw sentence-transformers `encode` of the same chunks (fp32, its default batch
   size) against ragtune's `Embedder.embed` at fp32 (the overhead) and at its default precision.
   Target: at most 10% overhead.
Figures are medians over --repeats runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pdfs", default=str(ROOT.parent / "shared" / "bench" / "pdfs"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    pdfs = sorted(Path(args.pdfs).resolve().glob("*.pdf"))
    if not pdfs:
        sys.exit(f"no PDFs in {args.pdfs}")

    from ragtune.loaders import load_file
    from ragtune.rag.chunking import chunk_documents, make_chunker
    from ragtune.rag.embed import load_embedder

    embedder = load_embedder("packaged", "auto")

    # A fresh chunker per timed run: its token-count cache must not carry over between repeats.
    def chunker():
        return make_chunker(embedder.tokenizer, 200, 30)

    load_file(pdfs[0], 10**9)  # warm imports

    print(f"PDF ingestion, median of {args.repeats} runs")
    print(f"{'file':<28}{'pages':>6}{'raw p/s':>10}{'load p/s':>10}{'+chunk p/s':>12}{'load/raw':>10}{'sections':>10}")
    totals = {"pages": 0, "raw": 0.0, "load": 0.0, "chunk": 0.0}
    all_chunks = []
    for pdf in pdfs:
        pages = raw_pdfium(pdf)
        t_raw = median_time(lambda pdf=pdf: raw_pdfium(pdf), args.repeats)
        t_load = median_time(lambda pdf=pdf: load_file(pdf, 10**9), args.repeats)
        loaded = load_file(pdf, 10**9)
        t_chunk = median_time(lambda pdf=pdf: chunk_documents(load_file(pdf, 10**9).documents, chunker()), args.repeats)
        chunks = chunk_documents(loaded.documents, chunker())
        all_chunks += chunks
        sections = len({d.section for d in loaded.documents if d.section})
        with_page = sum(c.page is not None for c in chunks) / len(chunks)
        assert with_page == 1.0, "every PDF chunk must keep its page"
        totals["pages"] += pages
        totals["raw"] += t_raw
        totals["load"] += t_load
        totals["chunk"] += t_chunk
        print(
            f"{pdf.name[:27]:<28}{pages:>6}{pages / t_raw:>10.0f}{pages / t_load:>10.0f}{pages / t_chunk:>12.0f}{t_raw / t_load:>10.2f}{sections:>10}"
        )
    p = totals["pages"]
    print(
        f"{'all':<28}{p:>6}{p / totals['raw']:>10.0f}{p / totals['load']:>10.0f}{p / totals['chunk']:>12.0f}{totals['raw'] / totals['load']:>10.2f}"
    )
    print(
        f"target >= 100 pages/s with pages and sections: {'MET' if p / totals['chunk'] >= 100 else 'MISSED'} ({p / totals['chunk']:.0f} pages/s loader + chunking)"
    )

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
