"""Shared fixtures: the bundled sample corpus, ../shared data, a tiny model and adapter, a small index.
Plain helpers (configs in temp dirs, tiny generated files, ports) are in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import SAMPLE, SHARED, ingest_cfg
from ragtune.core import offline

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


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One cache dir per test session for converted models (the packaged GGUF converts once)."""
    path = tmp_path_factory.mktemp("model-cache")
    os.environ["RAGTUNE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def two_doc_index(tmp_path_factory, sample_docs, model_cache) -> Path:
    """A work dir holding two of the sample documents: enough chunks for sources, and quick to ingest."""
    from ragtune.rag.ingest import ingest

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

    from ragtune.engine.model import packaged_gguf

    folder = tmp_path_factory.mktemp("tiny-model")
    gguf = packaged_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=0.2,
    )  # 0.02 would greedily repeat one newline forever
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
