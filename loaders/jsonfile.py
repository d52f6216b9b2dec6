"""JSON and JSONL: any shape, flattened into one Document per object.

An object's title-like field (`title`, `heading`, `section`, `name`) labels its section; a
single prose field (`text`, `content`, `body`, ...) becomes the text as it is, otherwise the
scalar fields become `key: value` lines. Nested objects and lists recurse, extending the
section path, so `{"title": "Guide", "sections": [{"heading": "Install", "text": ...}]}` gives
a Document in section `Guide > Install`. The top-level object's `title` is the file's title
(`Loaded.title`); in JSONL, the title every record shares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragtune.core.records import Document
from ragtune.loaders import Loaded, LoadError, read_text

TITLE_KEYS = ("title", "heading", "section", "name", "subject")
PROSE_KEYS = ("text", "content", "body", "page_content", "description", "abstract")


def load_json(path: Path, sha: str, text: str | None = None) -> Loaded:
    """A JSON file's Documents (`text`: the file already decoded); malformed JSON is a LoadError naming the line and column."""
    try:
        data = json.loads(read_text(path) if text is None else text)
    except json.JSONDecodeError as e:
        raise LoadError(path, f"malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    return Loaded(list(_flatten(data, [], path, sha)), title=_title(data))


def load_jsonl(path: Path, sha: str, text: str | None = None) -> Loaded:
    """A JSONL file's Documents (`text`: the file already decoded); malformed lines are skipped with a
    warning, a LoadError if none is valid."""
    docs, bad, titles = [], [], set()
    for n, line in enumerate((read_text(path) if text is None else text).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            bad.append(f"line {n}: {e.msg}")
            continue
        docs.extend(_flatten(record, [], path, sha))
        titles.add(_title(record))
    if bad and not docs:
        raise LoadError(path, f"malformed JSONL ({bad[0]}; {len(bad)} bad line(s), none valid)")
    warnings = [f"skipped {len(bad)} malformed line(s) ({bad[0]})"] if bad else []
    # A title every record shares is the file's; records with titles of their own are documents apiece.
    return Loaded(docs, warnings=warnings, title=titles.pop() if len(titles) == 1 else "")


def _flatten(value: Any, section: list[str], path: Path, sha: str, key: str = "") -> Iterator[Document]:
    if isinstance(value, list):
        if all(_is_scalar(v) for v in value):
            text = ", ".join(str(v) for v in value if v is not None)
            if text:
                yield _doc(f"{key}: {text}" if key else text, section, path, sha)
            return
        for item in value:
            yield from _flatten(item, section, path, sha, key)
        return
    if not isinstance(value, dict):
        if value is not None and str(value).strip():
            yield _doc(f"{key}: {value}" if key and not isinstance(value, str) else str(value), section, path, sha)
        return
    label = next((str(value[k]) for k in TITLE_KEYS if isinstance(value.get(k), str) and value[k].strip()), None)
    here = section + [label] if label else section + ([key] if key else [])
    scalars = {k: v for k, v in value.items() if (_is_scalar(v) or _scalar_list(v)) and str(v) != label}
    prose = [k for k in scalars if k.lower() in PROSE_KEYS]
    if len(prose) == 1 and len(scalars) == 1:
        text = str(scalars[prose[0]])
    else:
        text = "\n".join(f"{k}: {_render(v)}" for k, v in scalars.items() if v is not None and str(v).strip())
    if text.strip():
        yield _doc(text, here, path, sha)
    for k, v in value.items():
        if not (_is_scalar(v) or _scalar_list(v)):
            yield from _flatten(v, here, path, sha, k)


def _title(data: Any) -> str:
    """A top-level object's `title` field: the document's title."""
    title = data.get("title") if isinstance(data, dict) else None
    return " ".join(title.split()) if isinstance(title, str) else ""


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _scalar_list(v: Any) -> bool:
    return isinstance(v, list) and all(_is_scalar(x) for x in v)


def _render(v: Any) -> str:
    return ", ".join(str(x) for x in v) if isinstance(v, list) else str(v)


def _doc(text: str, section: list[str], path: Path, sha: str) -> Document:
    return Document(text=text.strip(), source=str(path), sha256=sha, category="NarrativeText", section=" > ".join(section))
