"""Split a file's Documents into Chunks: along sections, sized in embedding tokens, never mid-word.

Consecutive elements of one section are joined into one text, and LangChain's recursive
splitter cuts it at the largest boundary that fits: paragraph, line, sentence, clause, then
word. There is no character-level fallback, so a word is never cut (a single "word" longer
than the budget stays whole and the embedder truncates it). Titles are not repeated in the
body: they live in `section`, which `Chunk.embed_text()` puts in front for embedding.

A table (category "Table", text from loaders/tables.py: a heading line, then one line per row)
is chunked alone and only between rows, its heading repeated on top of each piece, so every
chunk of it reads alone.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

from ragtune.core.records import Chunk, Document
from ragtune.loaders import LoadError

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " "]


def chunk_id(source: str, text: str) -> str:
    """A content hash: the same text from the same file always gets the same id."""
    return hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Chunker:
    """A text splitter and the token counter it sizes chunks with."""

    splitter: object  # a LangChain RecursiveCharacterTextSplitter
    count: Callable[[str], int]  # tokens in a text
    size: int  # the chunk size in tokens (tables are packed to it row by row)


def make_chunker(tokenizer, chunk_size: int, chunk_overlap: int) -> Chunker:
    """LangChain's recursive splitter, measuring length in the embedding model's tokens."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    count = token_counter(tokenizer)
    splitter = RecursiveCharacterTextSplitter(
        length_function=count,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    return Chunker(splitter, count, chunk_size)


@lru_cache(maxsize=4)  # one copy a tokenizer, which costs more than chunking a small file; each chunker counts into a fresh cache
def _bare_backend(tokenizer):
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # A private copy without the padding and truncation that tokenizer.json may carry
        # (MiniLM's pads every text to 128), or every count would be 128.
        backend = copy.deepcopy(backend)
        backend.no_padding()
        backend.no_truncation()
    return backend


def token_counter(tokenizer):
    """Tokens in a text, without special tokens, as `len(tokenizer.tokenize(text))` counts them.

    The splitter measures the same pieces again and again while merging, so the count is
    cached, and it calls the Rust tokenizer directly: faster than LangChain's
    `from_huggingface_tokenizer` (docs/measurements.md).
    """
    backend = _bare_backend(tokenizer)

    @lru_cache(maxsize=65536)
    def count(text: str) -> int:
        if backend is not None:
            return len(backend.encode(text, add_special_tokens=False).ids)
        return len(tokenizer.tokenize(text))

    return count


def chunk_documents(docs: list[Document], chunker: Chunker) -> list[Chunk]:
    """Chunks of one file's documents, in reading order, duplicates within the file dropped."""
    chunks: list[Chunk] = []
    seen: set[str] = set()
    body = [d for d in docs if d.category != "Title" and d.text.strip()]
    for section, group in groupby(body, key=lambda d: d.section):
        for is_table, run in groupby(group, key=lambda d: d.category == "Table"):
            run = list(run)
            pieces = (p for d in run for p in _table_pieces(d, chunker)) if is_table else _text_pieces(run, chunker)
            for text, first, last, n_tokens in pieces:
                cid = chunk_id(first.source, text)
                if cid in seen:
                    continue
                seen.add(cid)
                chunks.append(
                    Chunk(
                        id=cid,
                        text=text,
                        source=first.source,
                        sha256=first.sha256,
                        section=section,
                        index=len(chunks),
                        n_tokens=n_tokens,
                        page=first.page,
                        page_end=last.page,
                        category=first.category,
                    )
                )
    return chunks


def _text_pieces(group: list[Document], chunker: Chunker) -> Iterator[tuple[str, Document, Document, int]]:
    """The splitter's pieces of a run of elements, each with the elements it starts and ends in, and its tokens."""
    text, starts = _join(group)
    start, end = 0, 0
    for piece in chunker.splitter.split_text(text):
        # Find each piece ourselves: LangChain's `add_start_index` steps back by `chunk_overlap`
        # as if it were characters, but ours is in tokens, so its search starts past the piece
        # and finds a later copy or nothing (-1, which read as the section's first page).
        # A piece starts after the previous one starts and ends no earlier than it ends.
        start = text.find(piece, max(start, end - len(piece)))
        if start < 0:
            # a LoadError, so one file fails and the batch goes on
            raise LoadError(group[0].source, "a chunk's text is not in its section (the splitter changed it)")
        end = start + len(piece)
        first = group[bisect.bisect_right(starts, start) - 1]
        last = group[bisect.bisect_right(starts, end - 1) - 1]
        if piece.strip():
            yield piece.strip(), first, last, chunker.count(piece.strip())


def _join(group: list[Document]) -> tuple[str, list[int]]:
    """One text for a section, and where each element starts in it (for page provenance)."""
    parts, starts, pos = [], [], 0
    for i, d in enumerate(group):
        sep = "" if i == 0 else ("\n" if d.category == "ListItem" and group[i - 1].category == "ListItem" else "\n\n")
        pos += len(sep)
        starts.append(pos)
        parts.append(sep + d.text)
        pos += len(d.text)
    return "".join(parts), starts


def _table_pieces(doc: Document, chunker: Chunker) -> Iterator[tuple[str, Document, Document, int]]:
    """A table's rows packed up to the chunk size, each piece under the table's heading line.

    A row is never cut; one longer than the budget stays whole, as a long word does. Token
    counts add up across lines, as they do for a tokenizer that splits on whitespace first
    (counting each piece again would double the cost of tables).
    """
    head, *rows = doc.text.strip().split("\n")
    n_head = chunker.count(head)
    piece: list[str] = []
    used = n_head
    for row in rows:
        n = chunker.count(row)
        if piece and used + n > chunker.size:
            yield "\n".join([head, *piece]), doc, doc, used
            piece, used = [], n_head
        piece.append(row)
        used += n
    if piece or not rows:
        yield "\n".join([head, *piece]), doc, doc, used
