"""Split a file's Documents into Chunks: along sections, sized in embedding tokens, never mid-word.

Consecutive elements of one section are joined into one text, and LangChain's recursive
splitter cuts it at the largest boundary that fits: paragraph, line, sentence, clause, then
word. There is no character-level fallback, so a word is never cut (a single "word" longer
than the budget stays whole and the embedder truncates it). Titles are not repeated in the
body: they live in `section`, which `Chunk.embed_text()` puts in front for embedding.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

from ragtune.core.records import Chunk, Document

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " "]


def chunk_id(source: str, text: str) -> str:
    """A content hash: the same text from the same file always gets the same id."""
    return hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Chunker:
    """A text splitter and the token counter it sizes chunks with."""

    splitter: object  # a LangChain RecursiveCharacterTextSplitter
    count: Callable[[str], int]  # tokens in a text


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
        add_start_index=True,
        strip_whitespace=True,
    )
    return Chunker(splitter, count)


def token_counter(tokenizer):
    """Tokens in a text, without special tokens, as `len(tokenizer.tokenize(text))` counts them.

    The splitter measures the same pieces again and again while merging, so the count is
    cached, and it calls the Rust tokenizer directly: faster than LangChain's
    `from_huggingface_tokenizer` (docs/measurements.md).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # A private copy without the padding and truncation that tokenizer.json may carry
        # (MiniLM's pads every text to 128), or every count would be 128.
        backend = copy.deepcopy(backend)
        backend.no_padding()
        backend.no_truncation()

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
        group = list(group)
        text, starts = _join(group)
        for piece in chunker.splitter.create_documents([text]):
            piece_text = piece.page_content.strip()
            cid = chunk_id(group[0].source, piece_text)
            if not piece_text or cid in seen:
                continue
            seen.add(cid)
            start = piece.metadata["start_index"]
            first = group[max(bisect.bisect_right(starts, start) - 1, 0)]
            last = group[max(bisect.bisect_right(starts, start + len(piece.page_content) - 1) - 1, 0)]
            chunks.append(
                Chunk(
                    id=cid,
                    text=piece_text,
                    source=first.source,
                    sha256=first.sha256,
                    section=section,
                    index=len(chunks),
                    n_tokens=chunker.count(piece_text),
                    page=first.page,
                    page_end=last.page,
                    category=first.category,
                )
            )
    return chunks


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
