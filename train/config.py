"""The typed config of `ragtune train`: defaults in configs/train.yaml, flags on top.

Every range check names the flag the user can change (`--lora-r must be at least 1`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.config import ConfigError, resolve_workdir
from engine.config import ModelConfig


@dataclass
class TrainConfig:
    """`ragtune train`: LoRA on the final assistant turn of each `messages` row."""

    config_file = "train.yaml"
    workdir: str | None
    data: str | None  # a dataset folder; None = the newest under <workdir>/datasets
    out: str | None  # the adapter folder; None = a new one under <workdir>/adapters
    init_adapter: str | None  # an adapter to train further (its LoRA shape replaces lora_r/alpha/dropout/targets); None = a new one
    epochs: float
    max_steps: int  # > 0 overrides epochs
    max_minutes: float  # > 0: stop after this long, keeping the adapter trained so far; 0 = no limit
    lr: float
    lora_r: int
    lora_alpha: float
    lora_dropout: float
    target_modules: list[str]
    max_length: int
    batch_size: int
    grad_accum: int
    packing: bool
    pad_to_multiple_of: int  # batch lengths rounded up to this: few shapes, so oneDNN's per-shape caches stay small
    group_by_length: bool  # batches of rows of similar length: little padding
    bf16: bool
    seed: int
    eval_steps: int  # 0 = eval only at the end
    eval_rows: int  # eval.jsonl rows used for eval loss; 0 = all
    resume: bool
    overwrite: bool
    save_steps: int
    tensorboard: bool
    model: ModelConfig = field(default=None)

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise ConfigError(f"--epochs must be a positive number, got {self.epochs}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"--max-steps must be -1 (use --epochs) or at least 1, got {self.max_steps}")
        if not (self.max_minutes >= 0 and math.isfinite(self.max_minutes)):
            raise ConfigError(f"--max-minutes must be 0 (no limit) or a positive number, got {self.max_minutes}")
        if not (0 < self.lr < 1):
            raise ConfigError(f"--lr must be in (0, 1), got {self.lr}")
        if self.lora_r < 1:
            raise ConfigError(f"--lora-r must be at least 1, got {self.lora_r}")
        if not self.lora_alpha > 0:
            raise ConfigError(f"--lora-alpha must be positive, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.target_modules:
            raise ConfigError("--target-modules must name at least one module (or all-linear)")
        if self.max_length < 16:
            raise ConfigError(f"--max-length must be at least 16 tokens, got {self.max_length}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.grad_accum < 1:
            raise ConfigError(f"--grad-accum must be at least 1, got {self.grad_accum}")
        if self.pad_to_multiple_of < 1:
            raise ConfigError(f"--pad-to-multiple-of must be at least 1 (1 = no padding), got {self.pad_to_multiple_of}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}")
        if self.eval_steps < 0:
            raise ConfigError(f"--eval-steps must be 0 (only at the end) or more, got {self.eval_steps}")
        if self.eval_rows < 0:
            raise ConfigError(f"--eval-rows must be 0 (all) or more, got {self.eval_rows}")
        if self.save_steps < 1:
            raise ConfigError(f"--save-steps must be at least 1, got {self.save_steps}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite contradict each other: resume keeps --out, overwrite deletes it")

