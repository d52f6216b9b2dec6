"""Split a file's Documents into Chunks: along sections, sized in embedding tokens, never mid-word.

Consecutive elements of one section are joined into one text, and LangChain's recursive
splitter cuts it at the largest boundary that fits: paragraph, line, sentence, clause, then
word. There is no character-level fallback, so a word is never cut (a single "word" longer
than the budget stays whole and the embedder truncates it). Titles are not repeated in the
body: they live in `section`, which `Chunk.embed_text()` puts in front for embedding.
"""

from __future__ import annotations

import bisect
import hashlib
from itertools import groupby

from core.records import Chunk, Document

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " "]


def chunk_id(source: str, text: str) -> str:
    """A content hash: the same text from the same file always gets the same id."""
    return hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:32]


def make_splitter(tokenizer, chunk_size: int, chunk_overlap: int):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        tokenizer, chunk_size=chunk_size, chunk_overlap=chunk_overlap,
        separators=SEPARATORS, keep_separator="end", add_start_index=True, strip_whitespace=True,
    )


def chunk_documents(docs: list[Document], splitter, tokenizer) -> list[Chunk]:
    """Chunks of one file's documents, in reading order, duplicates within the file dropped."""
    chunks: list[Chunk] = []
    seen: set[str] = set()
    body = [d for d in docs if d.category != "Title" and d.text.strip()]
    for section, group in groupby(body, key=lambda d: d.section):
        group = list(group)
        text, starts = _join(group)
        for piece in splitter.create_documents([text]):
            piece_text = piece.page_content.strip()
            cid = chunk_id(group[0].source, piece_text)
            if not piece_text or cid in seen:
                continue
            seen.add(cid)
            start = piece.metadata["start_index"]
            first = group[max(bisect.bisect_right(starts, start) - 1, 0)]
            last = group[max(bisect.bisect_right(starts, start + len(piece.page_content) - 1) - 1, 0)]
            chunks.append(Chunk(
                id=cid, text=piece_text, source=first.source, sha256=first.sha256, section=section,
                index=len(chunks), n_tokens=len(tokenizer.tokenize(piece_text)),
                page=first.page, page_end=last.page, category=first.category,
            ))
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
