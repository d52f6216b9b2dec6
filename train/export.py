"""`export(adapter, out)`: an adapter merged into its base model, as a plain transformers folder.

    ragtune export --adapter .ragtune/adapters/20261124-081500 --out merged/ --merged
    ragtune ask "..." --model merged/ --mode base

The merge is done in fp32 (W + B @ A * alpha / r), whatever precision trained the adapter, so
the merged model computes what base + adapter computes, without PEFT at load time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ragtune.core.config import ConfigError


def export(
    adapter: str | Path,
    out: str | Path,
    merged: bool = True,
    overwrite: bool = False,
    model: str | None = None,
    cache_dir: str | None = None,
) -> Path:
    """Write `out`: the merged model and tokenizer (or, without `merged`, a copy of the adapter).

    Args:
        adapter: an adapter folder written by `ragtune train` (or any PEFT LoRA adapter).
        out: the folder to write; refused if it exists and is not empty, unless `overwrite`.
        model: the base model; None = the one the adapter names (its base_model_name_or_path).
    Raises:
        ConfigError: bad --adapter or --out.
    """
    from ragtune.core import offline
    from ragtune.engine import model as model_lib

    offline.setup()
    adapter, out = Path(adapter).expanduser(), Path(out).expanduser()
    saved = model_lib.adapter_config(adapter, "--adapter", ConfigError)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"--out {out} exists and is not empty: pass --overwrite to replace it")
        shutil.rmtree(out)
    if not merged:
        shutil.copytree(adapter, out, dirs_exist_ok=True)
        return out

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragtune.engine.config import ModelConfig

    base = model or saved.get("base_model_name_or_path")
    if not base:
        raise ConfigError(f"--adapter {adapter}: names no base model; pass --model")
    path = model_lib.resolve(ModelConfig(model=base, trust_remote_code=False, dtype="fp32", cache_dir=cache_dir, threads=0))
    base_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    merged_model = PeftModel.from_pretrained(base_model, str(adapter)).merge_and_unload()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged_model.save_pretrained(tmp)
    tokenizer = AutoTokenizer.from_pretrained(adapter if (adapter / "tokenizer_config.json").exists() else path)
    tokenizer.save_pretrained(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.rmdir()
    tmp.rename(out)  # a killed export leaves a .tmp folder, never a half-written model
    return out
