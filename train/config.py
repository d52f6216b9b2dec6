"""The typed config of `ragtune train`: defaults in configs/train.yaml, flags on top.

Every range check names the flag the user can change (`--lora-r must be at least 1`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ragtune.core.config import ConfigError, check_settings, resolve_workdir, setting
from ragtune.core.cpu import cpu_has_bf16
from ragtune.engine.config import ModelConfig


@dataclass
class TrainConfig:
    """`ragtune train`: LoRA on the final assistant turn of each `messages` row."""

    config_file = "train.yaml"
    workdir: str | None = setting("work directory; unset: $RAGTUNE_WORKDIR, else ./.ragtune", cli=False)
    data: str | None = setting("dataset folder with train.jsonl (and eval.jsonl); unset: the newest under <workdir>/datasets")
    out: str | None = setting("adapter folder; unset: a new folder under <workdir>/adapters (the ft modes take the newest)")
    init_adapter: str | None = setting(
        "an adapter to train further, keeping its LoRA shape; the optimizer and schedule start afresh", metavar="DIR"
    )
    epochs: float = setting("passes over the training rows")
    max_steps: int = setting("optimizer steps in all; overrides --epochs; -1 = use --epochs")
    max_minutes: float = setting("a time budget: stop after the step that passes it and write the adapter; 0 = none")
    lr: float = setting("learning rate; LoRA's usual rate is 10x full fine-tuning's", label="learning rate")
    lora_r: int = setting("LoRA rank", label="LoRA rank")
    lora_alpha: float = setting("LoRA scale numerator: updates are scaled by alpha / r")
    lora_dropout: float = setting("dropout on LoRA inputs; above 0 it keeps a masked copy of each input (slower, more memory)")
    target_modules: list[str] = setting("comma-separated layer names LoRA adapts, or all-linear")
    max_length: int = setting("tokens per row; longer rows lose the start of their context, never the answer")
    batch_size: int = setting("rows per forward pass")
    grad_accum: int = setting("forward passes per optimizer step")
    packing: bool = setting("padding-free packed batches (TRL's bfd packing): no pad tokens computed")
    pad_to_multiple_of: int = setting("batch lengths rounded up to a multiple of this, so oneDNN's per-shape caches stay few; 1 = none")
    group_by_length: bool = setting("batch rows of similar length, so little padding is computed")
    bf16: bool | None = setting(
        "frozen base weights in bf16 with bf16 autocast, LoRA weights in fp32; unset: on where the CPU has bf16 instructions"
    )
    reader_head: bool = setting(
        "train a reader head (span and sentence scores on the hidden states) beside LoRA, on the RAFT rows' chunks; saved with the adapter"
    )
    head_examples: int = setting("reader-head examples per optimizer step; each costs about one more row's forward pass", low=1)
    self_train: int = setting(
        "rounds of self-training after training: the reader head re-labels the training questions where it is confident, then the adapter trains further",
        low=0,
    )
    self_train_threshold: float = setting(
        "the reader's probability above which its answer replaces a label, in round 1; it falls 10% a round", low=0.0, high=1.0
    )
    seed: int = setting("seed of the LoRA init and the row order")
    eval_steps: int = setting("eval loss every N steps and at the end; 0 = only at the end")
    eval_rows: int = setting("the first N rows of eval.jsonl used for eval loss; 0 = all")
    resume: bool = setting("continue --out (default: the newest unfinished run) from its last checkpoint, with its own settings")
    overwrite: bool = setting("replace an existing --out")
    save_steps: int = setting("a checkpoint every N steps, for --resume; only the last is kept")
    tensorboard: bool = setting("also write TensorBoard logs to <out>/runs")
    model: ModelConfig = field(default=None)  # overrides of configs/model.yaml; its flags are --model and --threads

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        if self.bf16 is None:  # emulated bf16 is slower than fp32
            self.bf16 = cpu_has_bf16()
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
        if self.self_train and not self.reader_head:
            raise ConfigError("--self-train needs the reader head, which re-labels the questions: add --reader-head")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite contradict each other: resume keeps --out, overwrite deletes it")
        check_settings(self)
