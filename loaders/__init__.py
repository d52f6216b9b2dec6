"""Loaders: from files and folders to `Document` records.

`walk()` expands the user's paths with include and exclude globs; `load_file()` guards the
edges (missing, unreadable, empty, too big, wrong magic bytes, binary data posing as text) and then
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


# Every loader takes the file, its sha256 and what load_file() already knows: a text file's decoded
# text and encoding (decoded once), and whether to OCR PDF pages; each uses what it needs.
def _structured(path: Path, sha: str, *, encoding: str | None = None, **_) -> Loaded:
    from ragtune.loaders.structured import load_structured

    return load_structured(path, sha, encoding)


def _pdf(path: Path, sha: str, *, ocr: bool = False, **_) -> Loaded:
    from ragtune.loaders.pdf import load_pdf

    return load_pdf(path, sha, ocr=ocr)


def _json(path: Path, sha: str, *, text: str | None = None, **_) -> Loaded:
    from ragtune.loaders.jsonfile import load_json

    return load_json(path, sha, text)


def _jsonl(path: Path, sha: str, *, text: str | None = None, **_) -> Loaded:
    from ragtune.loaders.jsonfile import load_jsonl

    return load_jsonl(path, sha, text)


# One registry for the swappable part: suffix -> loader. Imports stay lazy so the CLI starts fast.
LOADERS: dict[str, Callable[..., Loaded]] = {
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
JSON_SUFFIXES = {".json", ".jsonl"}  # read by loaders/jsonfile.py, whose fields become "key: value" lines
TEXT_SUFFIXES = {".html", ".htm", ".md", ".markdown", ".txt", *JSON_SUFFIXES}


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
    if suffix in TEXT_SUFFIXES and b"\x00" in head and not _wide_unicode(head):
        raise LoadError(path, "binary data, not text (NUL bytes)")
    try:
        return file_sha256(path)
    except OSError as e:
        raise LoadError(path, f"cannot read ({e.strerror})") from None


# Byte-order marks, longest first: UTF-32's little-endian mark starts with UTF-16's.
BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def read_text(path: Path) -> str:
    """A text file's text (see `decode`); raises LoadError for binary data."""
    return decode(path)[0]


def encoding_warning(encoding: str) -> str:
    """What the ingest report says about a file that is not UTF-8 ("" for UTF-8 or ASCII)."""
    if encoding in ("utf-8", "utf-8-sig", "ascii"):
        return ""
    if encoding in ("utf-16", "utf-32"):
        return f"not UTF-8: decoded as {encoding.upper()} (from its byte-order mark)"
    return f"not UTF-8: decoded as {encoding} (a guess; re-save the file as UTF-8 if characters look wrong)"


def decode(path: Path) -> tuple[str, str]:
    """A text file's text and the codec that decoded it: its byte-order mark's, else UTF-8, else
    charset-normalizer's guess.

    Raises:
        LoadError: binary data (no plausible text encoding), or bytes its byte-order mark does not decode.
    """
    data = path.read_bytes()
    for bom, codec in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as e:
                raise LoadError(path, f"not valid {codec.upper()} ({e.reason} at byte {e.start})") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    codec = _guess(data)
    if codec is None:
        raise LoadError(path, "binary data, not text (no plausible text encoding)")
    return data.decode(codec), codec


def _guess(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    matches = from_bytes(data, enable_fallback=False)
    best = matches.best()
    if best is None:
        return None
    # On short Western text charset-normalizer's best guess is often a neighbour (cp1257, cp1250, mac_iceland)
    # that turns "crème" into "crčme"; cp1252 (Latin-1 plus curly quotes), the legacy default of web browsers,
    # wins when it is nearly as plausible. Cyrillic, Greek or Czech text rules it out, so their guess stands.
    western = [m for m in matches if "cp1252" in (m.encoding, *m.could_be_from_charset) and m.chaos <= best.chaos + 0.1]
    return "cp1252" if western else best.encoding


def _wide_unicode(head: bytes) -> bool:
    # UTF-16/32 (with or without a byte-order mark) has NUL bytes in plain ASCII text; binary data has them too.
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    codec = _guess(head[: len(head) // 4 * 4])  # whole code units, so a cut never splits one
    return codec is not None and codec.startswith(("utf_16", "utf_32"))


def load_file(path: Path, max_bytes: int, sha: str | None = None, ocr: bool = False) -> Loaded:
    """Load one supported file into Documents.

    Args:
        path: the file.
        max_bytes: the size limit.
        sha: its sha256 if `check_file()` already ran (saves reading it twice).
        ocr: read PDF pages that have no text layer with tesseract (`--ocr`).

    Raises:
        LoadError: with a one-line reason; unexpected library errors are wrapped too.
    """
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(path, f"unsupported file type '{path.suffix or path.name}'")
    sha = sha or check_file(path, max_bytes)
    # Decoded once, up front: binary data fails before any parser, and the guessed encoding is reported.
    text, encoding = decode(path) if path.suffix.lower() in TEXT_SUFFIXES else (None, None)  # PDF, DOCX: binary
    try:
        loaded = loader(path, sha, text=text, encoding=encoding, ocr=ocr)
    except LoadError:
        raise
    except Exception as e:  # a parser's own error: keep its first line, name the file
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise LoadError(path, f"could not parse {path.suffix.lower()[1:].upper()} ({type(e).__name__}: {first})") from e
    if not any(d.text.strip() for d in loaded.documents):
        raise LoadError(path, "no text found")
    if encoding and (warning := encoding_warning(encoding)):
        loaded.warnings.insert(0, warning)
    return loaded
