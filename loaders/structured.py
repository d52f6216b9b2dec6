"""HTML, Markdown, plain text and DOCX through LangChain's unstructured loader, run locally.

unstructured gives elements (Title, NarrativeText, ListItem, Table, ...) linked by
`parent_id`; we follow those links up through the titles to get each element's section path.
"""

from __future__ import annotations

from pathlib import Path

from ragtune.core import offline
from ragtune.core.records import Document
from ragtune.loaders import TEXT_SUFFIXES, Loaded


def load_structured(path: Path, sha: str) -> Loaded:
    """An HTML, Markdown, text or DOCX file's elements as Documents, each with its section path."""
    offline.use_packaged_spacy_model()
    from langchain_unstructured import UnstructuredLoader

    kwargs = {}
    if path.suffix.lower() in TEXT_SUFFIXES:
        with open(path, "rb") as f:
            utf16 = f.read(2) in (b"\xff\xfe", b"\xfe\xff")
        # check_file() has already proved the encoding; say it, so unstructured does not guess.
        kwargs = {} if utf16 else {"encoding": "utf-8-sig"}
    elements = list(UnstructuredLoader(str(path), **kwargs).lazy_load())
    titles: dict[str, tuple[str, str | None]] = {}
    docs = []
    for el in elements:
        meta = el.metadata
        text = el.page_content.strip()
        if not text:
            continue
        category = meta.get("category", "NarrativeText")
        parent = meta.get("parent_id")
        path_parts = _title_path(parent, titles)
        if category == "Title":
            titles[meta["element_id"]] = (text, parent)
            path_parts.append(text)
        docs.append(
            Document(
                text=text,
                source=str(path),
                sha256=sha,
                category=category,
                section=" > ".join(path_parts),
            )
        )
    return Loaded(docs)


def _title_path(parent: str | None, titles: dict[str, tuple[str, str | None]]) -> list[str]:
    parts: list[str] = []
    seen = set()
    while parent in titles and parent not in seen:  # `seen` guards against a cycle in bad input
        seen.add(parent)
        text, parent = titles[parent]
        parts.append(text)
    return parts[::-1]
