"""Plain helpers and paths shared by the tests (the fixtures are in conftest.py): configs in temp dirs, tiny
generated PDFs, the ids in a Chroma collection, a free port and a server in a thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ragtune.engine.config import AppConfig, AskConfig, DecodingConfig, LLMConfig, ModelConfig, ServeConfig, SpanConfig
from ragtune.evals.config import EvalConfig
from ragtune.pipeline import DemoConfig
from ragtune.rag.config import IndexConfig, IngestConfig, SearchConfig
from ragtune.synth.config import SynthConfig
from ragtune.train.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample" / "docs"
SHARED = ROOT.parent / "shared"

# each YAML file in configs/ and the config class it builds (tests/core/test_config.py, test_schema.py)
STAGES = {
    "ingest.yaml": IngestConfig,
    "search.yaml": SearchConfig,
    "index.yaml": IndexConfig,
    "model.yaml": ModelConfig,
    "decoding.yaml": DecodingConfig,
    "ask.yaml": AskConfig,
    "serve.yaml": ServeConfig,
    "spans.yaml": SpanConfig,
    "synth.yaml": SynthConfig,
    "train.yaml": TrainConfig,
    "eval.yaml": EvalConfig,
    "app.yaml": AppConfig,
    "demo.yaml": DemoConfig,
    "llm.yaml": LLMConfig,
}


def ingest_cfg(workdir: Path, paths: list, **overrides):
    from ragtune.core.config import load_config
    from ragtune.rag.config import IngestConfig

    return load_config(IngestConfig, {"paths": [str(p) for p in paths], "workdir": str(workdir), **overrides})


def search_cfg(workdir: Path, **overrides):
    from ragtune.core.config import load_config
    from ragtune.rag.config import SearchConfig

    return load_config(SearchConfig, {"workdir": str(workdir), **overrides})


def ask_cfg(workdir: Path, model: Path | str, **overrides):
    from ragtune.core.config import load_config
    from ragtune.engine.config import AskConfig

    return load_config(AskConfig, {"workdir": str(workdir), "model.model": str(model), **overrides})


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


def collection_ids(workdir: Path, collection: str = "docs") -> list[str]:
    """The sorted chunk ids in a work dir's Chroma collection, read straight from the store."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(workdir / "chroma"), settings=Settings(anonymized_telemetry=False))
    return sorted(client.get_collection(collection).get(include=[])["ids"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(app, port: int):
    """uvicorn in a thread, as `ragtune serve` runs it; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and thread.is_alive() and time.time() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
