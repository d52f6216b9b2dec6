"""The generators `ragtune synth --generator NAME` can use, and what they promise.

A generator turns a batch of chunks into drafts, one list per chunk, in order:

    class Generator(Protocol):
        name: str
        settings: dict                                   # recorded on every pair it makes
        def generate(self, chunks: list[Chunk]) -> list[list[Draft]]

Drafts must be grounded in their chunk's text; the pipeline checks, and counts what fails.
Output a generator could not parse comes back as a Draft with `error` set.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from ragtune.core.config import ConfigError
from ragtune.core.records import Chunk, Draft

# name -> "module:class"; imported on use, so `extractive` never loads torch.
REGISTRY = {
    "extractive": "ragtune.synth.extractive:ExtractiveGenerator",
    "local": "ragtune.synth.llm:LocalGenerator",
    "openai": "ragtune.synth.llm:OpenAIGenerator",
}


class Generator(Protocol):
    """What a generator provides: see the module docstring."""

    name: str
    settings: dict

    def generate(self, chunks: list[Chunk]) -> list[list[Draft]]: ...


def build(cfg) -> Generator:
    """The generator `cfg.generator` names, built from the synth config."""
    if cfg.generator not in REGISTRY:
        raise ConfigError(f"--generator must be one of {', '.join(REGISTRY)}, got {cfg.generator!r}")
    module, cls = REGISTRY[cfg.generator].split(":")
    return getattr(importlib.import_module(module), cls)(cfg)
