"""Loaders: from files and folders to `Document` records.

`walk()` expands the user's paths with include and exclude globs; `load_file()` guards the
edges (missing, unreadable, empty, too big, wrong magic bytes, wrong encoding) and then
dispatches on the suffix through `LOADERS`. Every failure is a `LoadError` whose message is
one line naming the file and the reason, so a batch can record it and go on.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ragtune.core.records import Document


class LoadError(Exception):
    """A file that cannot be loaded; str() is `path: reason`, on one line."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), " ".join(str(reason).split())
        super().__init__(f"{self.path}: {self.reason}")


@dataclass
class Loaded:
    """One file's documents, plus what the user should know about it."""

    documents: list[Document]
    pages: int = 0
    warnings: list[str] = field(default_factory=list)
    title: str = ""  # the document's own title (PDF metadata, a JSON title field); "" leaves it to the ingest's fallbacks


def _structured(path: Path, sha: str) -> Loaded:
    from ragtune.loaders.structured import load_structured

    return load_structured(path, sha)


def _pdf(path: Path, sha: str) -> Loaded:
    from ragtune.loaders.pdf import load_pdf

    return load_pdf(path, sha)


def _json(path: Path, sha: str) -> Loaded:
    from ragtune.loaders.jsonfile import load_json

    return load_json(path, sha)


def _jsonl(path: Path, sha: str) -> Loaded:
    from ragtune.loaders.jsonfile import load_jsonl

    return load_jsonl(path, sha)


# One registry for the swappable part: suffix -> loader. Imports stay lazy so the CLI starts fast.
LOADERS: dict[str, Callable[[Path, str], Loaded]] = {
    ".pdf": _pdf,
    ".html": _structured,
    ".htm": _structured,
    ".md": _structured,
    ".markdown": _structured,
    ".txt": _structured,
    ".docx": _structured,
    ".json": _json,
    ".jsonl": _jsonl,
}
TEXT_SUFFIXES = {".html", ".htm", ".md", ".markdown", ".txt", ".json", ".jsonl"}


def supported(path: Path) -> bool:
    """Whether a loader reads files with this suffix."""
    return path.suffix.lower() in LOADERS


def walk(paths: list[str | Path], include: list[str], exclude: list[str]) -> Iterator[Path | LoadError]:
    """Expand files and folders into files, sorted, filtered by globs on the path below the folder.

    Yields a `LoadError` for a path that does not exist, so the caller can report it and go on.
    """
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.exists():
            yield LoadError(root, "no such file or directory")
        elif root.is_file():
            if not _excluded(root.name, exclude):
                yield root.resolve()
        else:
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root).as_posix()
                if p.is_file() and _included(rel, include) and not _excluded(rel, exclude):
                    yield p.resolve()


def _included(rel: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel, g.removeprefix("**/")) for g in globs)


def _excluded(rel: str, globs: list[str]) -> bool:
    return _included(rel, globs) if globs else False


def file_sha256(path: Path) -> str:
    """The file's sha256, read in 1 MiB blocks so a big file is never held in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file(path: Path, max_bytes: int) -> str:
    """The cheap checks every format shares (size, readability, magic bytes); returns the
    file's sha256 or raises LoadError. `load_file()` checks the text encoding."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise LoadError(path, "no such file or directory") from None
    if size == 0:
        raise LoadError(path, "empty file")
    if size > max_bytes:
        raise LoadError(path, f"{size / 1e6:.1f} MB is above the size limit of {max_bytes / 1e6:.1f} MB (--max-file-mb)")
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except PermissionError:
        raise LoadError(path, "permission denied (file is not readable)") from None
    except OSError as e:
        raise LoadError(path, f"cannot read ({e.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".pdf" and b"%PDF-" not in head[:1024]:
        raise LoadError(path, "not a PDF (no %PDF- header)")
    if suffix == ".docx" and not head.startswith(b"PK\x03\x04"):
        raise LoadError(path, "not a DOCX (not a zip archive)")
    if suffix in TEXT_SUFFIXES and b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError(path, "binary data, not text (NUL bytes)")
    try:
        return file_sha256(path)
    except OSError as e:
        raise LoadError(path, f"cannot read ({e.strerror})") from None


def read_text(path: Path) -> str:
    """UTF-8 (with or without BOM) or BOM-marked UTF-16; anything else is an error, not mojibake."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise LoadError(path, f"not valid UTF-16 ({e.reason} at byte {e.start})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LoadError(path, f"not UTF-8 text (invalid byte 0x{data[e.start]:02x} at offset {e.start}); re-save it as UTF-8") from None


def load_file(path: Path, max_bytes: int, sha: str | None = None) -> Loaded:
    """Load one supported file into Documents.

    Args:
        path: the file.
        max_bytes: the size limit.
        sha: its sha256 if `check_file()` already ran (saves reading it twice).

    Raises:
        LoadError: with a one-line reason; unexpected library errors are wrapped too.
    """
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(path, f"unsupported file type '{path.suffix or path.name}'")
    sha = sha or check_file(path, max_bytes)
    if path.suffix.lower() in TEXT_SUFFIXES:
        read_text(path)  # a wrong encoding is an error, not mojibake; checked before any parser guesses
    try:
        loaded = loader(path, sha)
    except LoadError:
        raise
    except Exception as e:  # a parser's own error: keep its first line, name the file
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise LoadError(path, f"could not parse {path.suffix.lower()[1:].upper()} ({type(e).__name__}: {first})") from e
    if not any(d.text.strip() for d in loaded.documents):
        raise LoadError(path, "no text found")
    return loaded
