"""Shared fixtures: the bundled sample corpus, ../shared data, tiny generated files, configs in temp dirs."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample" / "docs"
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from core import offline  # noqa: E402

offline.setup()


@pytest.fixture(scope="session")
def sample_docs() -> Path:
    assert SAMPLE.is_dir(), "sample/docs is missing: run python sample/build.py"
    return SAMPLE


@pytest.fixture(scope="session")
def squad_docs() -> Path:
    path = SHARED / "eval" / "squad" / "docs"
    if not path.is_dir():
        pytest.skip(f"{path} is absent (../shared is not beside this checkout)")
    return path


def ingest_cfg(workdir: Path, paths: list, **overrides):
    from core.config import load_config
    from rag.config import IngestConfig

    return load_config(IngestConfig, {"paths": [str(p) for p in paths], "workdir": str(workdir), **overrides})


def search_cfg(workdir: Path, **overrides):
    from core.config import load_config
    from rag.config import SearchConfig

    return load_config(SearchConfig, {"workdir": str(workdir), **overrides})


def write_pdf(path: Path, pages: list[list[tuple[str, str]]], **encryption) -> Path:
    """A real PDF: each page a list of (style, text), style "h1" (20pt bold), "h2" (14pt bold) or "p"."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    for page in pages:
        pdf.add_page()
        for style, text in page:
            size, bold = {"h1": (20, "B"), "h2": (14, "B"), "p": (11, "")}[style]
            pdf.set_font("Helvetica", bold, size)
            pdf.multi_cell(0, size * 0.6, text)
            pdf.ln(4)
    if encryption:
        pdf.set_encryption(**encryption)
    pdf.output(str(path))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
