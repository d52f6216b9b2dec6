"""The work dir's layout, and the writes that keep its files whole.

    <workdir>/
        chroma/                the embedded Chroma store
        manifests/<key>.json   per collection: the files ingested and the index version
        lexical/<key>/         per collection: the BM25 index, stamped with that version
        datasets/<name>/       one per synthesized dataset; dataset.json is written last
        adapters/<stamp>/      one per training run; adapter_config.json appears when it is done
        runs/<stamp>/          one per `ragtune eval` report
        uploads/               files added in the app

Every stage finds its folders here instead of joining the names itself. Files are written
aside and renamed over the target (`write_text`, `write_json`, ...), so a reader, or a kill,
sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ragtune.core.config import ConfigError

PathLike = str | os.PathLike


def make_workdir(workdir: PathLike) -> Path:
    """The work dir, created if needed; a ConfigError naming --workdir if it cannot be."""
    path = Path(workdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"--workdir {path}: exists and is not a directory") from None
    except OSError as e:
        raise ConfigError(f"--workdir {path}: cannot create it ({e.strerror})") from None
    return path


class MissingWorkdir(RuntimeError):
    """A command that only reads the work dir was given one that does not exist."""


def existing_workdir(workdir: PathLike) -> Path:
    """The work dir of a command that only reads it (search, ask, eval, ...), never created here:
    a misspelt --workdir is a one-line MissingWorkdir, not a new empty work dir."""
    path = Path(workdir)
    if path.is_dir():
        return path
    if path.exists():
        raise ConfigError(f"--workdir {path}: exists and is not a directory")
    raise MissingWorkdir(f"work dir {path} does not exist (ingest into it first: ragtune ingest DOCS --workdir {path})")


# The folders -------------------------------------------------------------------------------------


def chroma_dir(workdir: PathLike) -> Path:
    """The embedded Chroma store."""
    return Path(workdir) / "chroma"


def manifests_dir(workdir: PathLike) -> Path:
    """The ingest manifests, one `<key>.json` per collection."""
    return Path(workdir) / "manifests"


def lexical_dir(workdir: PathLike) -> Path:
    """The BM25 indexes, one `<key>/` folder per collection."""
    return Path(workdir) / "lexical"


def datasets_dir(workdir: PathLike) -> Path:
    """The synthesized datasets, one folder each."""
    return Path(workdir) / "datasets"


def adapters_dir(workdir: PathLike) -> Path:
    """The LoRA adapters, one folder per training run."""
    return Path(workdir) / "adapters"


def runs_dir(workdir: PathLike) -> Path:
    """The evaluation reports, one folder per run."""
    return Path(workdir) / "runs"


def uploads_dir(workdir: PathLike) -> Path:
    """Files added through the app."""
    return Path(workdir) / "uploads"


def newest_dataset(workdir: PathLike) -> Path | None:
    """The most recently finished dataset under <workdir>/datasets, if any (`ragtune train`'s default)."""
    return _newest(datasets_dir(workdir), "dataset.json")


def newest_adapter(workdir: PathLike) -> Path | None:
    """The most recently written adapter under <workdir>/adapters, if any (the `ft` modes' default)."""
    return _newest(adapters_dir(workdir), "adapter_config.json")


def _newest(parent: Path, marker: str) -> Path | None:
    # A folder counts once its marker file exists: an unfinished one has none yet.
    found = [p.parent for p in parent.glob(f"*/{marker}")]
    return max(found, key=lambda p: (p / marker).stat().st_mtime) if found else None


def new_run_dir(parent: Path) -> Path:
    """A new folder under `parent` named by the UTC time (`20261124-081500`, then `-1`, `-2`, ...).

    It is created here, not only named, so two runs started in the same second never share it.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    for n in itertools.count():
        out = parent / (f"{stamp}-{n}" if n else stamp)
        try:
            out.mkdir(parents=True)
        except FileExistsError:
            continue
        return out


# Atomic writes -----------------------------------------------------------------------------------

_writers = itertools.count()  # one temporary name per write, even for two threads of one process


@contextmanager
def replacing(path: PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to, renamed over `path` when the block ends.

    If the block raises, the temporary file is deleted and `path` is left as it was. For
    writers that want a file name (savefig, torch.onnx.export); the rest use `write_*`.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}-{next(_writers)}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: PathLike, text: str) -> None:
    """Write `text` as UTF-8, atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: PathLike, data: bytes) -> None:
    """Write `data`, atomically."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: PathLike, data, **dumps) -> None:
    """Write `data` as JSON, atomically; `dumps` are json.dumps' options (each file keeps its layout)."""
    write_text(path, json.dumps(data, **dumps))


def write_jsonl(path: PathLike, records: Iterable[dict]) -> None:
    """Write one JSON object per line (UTF-8, unescaped), atomically."""
    with replacing(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
