"""Shared fixtures: the bundled sample corpus, ../shared data, tiny generated files, configs in temp dirs."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
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


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One cache dir per test session for converted models (the packaged GGUF converts once)."""
    path = tmp_path_factory.mktemp("model-cache")
    os.environ["RAGTUNE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def two_doc_index(tmp_path_factory, sample_docs, model_cache) -> Path:
    """A work dir holding two of the sample documents: enough chunks for sources, and quick to ingest."""
    from rag.ingest import ingest

    wd = tmp_path_factory.mktemp("two-docs") / "w"
    ingest(ingest_cfg(wd, [sample_docs / "01-overview.md", sample_docs / "05-training.txt"]))
    return wd


@pytest.fixture(scope="session")
def random_adapter(tmp_path_factory, tiny_model) -> Path:
    """A LoRA adapter on the tiny model with random (non-zero) weights, so `ft` differs from `base`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path = tmp_path_factory.mktemp("random-adapter")
    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), lora).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer random-weight Llama with the packaged model's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from engine.model import packaged_gguf

    folder = tmp_path_factory.mktemp("tiny-model")
    gguf = packaged_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
                         initializer_range=0.2)  # 0.02 would greedily repeat one newline forever
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def ask_cfg(workdir: Path, model: Path | str, **overrides):
    from core.config import load_config
    from engine.config import AskConfig

    return load_config(AskConfig, {"workdir": str(workdir), "model.model": str(model), **overrides})
