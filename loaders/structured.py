"""HTML, Markdown, plain text and DOCX through LangChain's unstructured loader, run locally.

unstructured gives elements (Title, NarrativeText, ListItem, Table, ...) linked by
`parent_id`; we follow those links up through the titles to get each element's section path.
A table is rewritten from its HTML (`text_as_html`) as rows that name their columns
(loaders/tables.py), under the line before it when that line reads as its caption.
"""

from __future__ import annotations

from pathlib import Path

from ragtune.core import offline
from ragtune.core.records import Document
from ragtune.loaders import Loaded
from ragtune.loaders.tables import table_from_html, table_text


def load_structured(path: Path, sha: str, encoding: str | None = None) -> Loaded:
    """An HTML, Markdown, text or DOCX file's elements as Documents, each with its section path.

    `encoding`: a text file's codec, as load_file() decoded it, so unstructured does not guess again;
    None for DOCX.
    """
    offline.use_packaged_spacy_model()
    from langchain_unstructured import UnstructuredLoader

    kwargs = {"encoding": encoding} if encoding else {}
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
        if category == "Table" and meta.get("text_as_html"):
            caption = docs[-1] if docs and _is_caption(docs[-1].text) and docs[-1].section == " > ".join(path_parts) else None
            table = table_from_html(meta["text_as_html"], caption.text if caption else "")
            if table is not None and table.rows:
                text = table_text(table)
                if caption is not None and caption.category != "Title":
                    docs.pop()  # read into the table's heading
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


def _is_caption(text: str) -> bool:
    """A short line that names the table below it, not a sentence ("Table 2: Costs (in millions)")."""
    return len(text) <= 120 and (not text.endswith(".") or text.lower().startswith("table"))


def _title_path(parent: str | None, titles: dict[str, tuple[str, str | None]]) -> list[str]:
    parts: list[str] = []
    seen = set()
    while parent in titles and parent not in seen:  # `seen` guards against a cycle in bad input
        seen.add(parent)
        text, parent = titles[parent]
        parts.append(text)
    return parts[::-1]
