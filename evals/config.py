"""The typed config of `ragtune eval`: defaults in configs/eval.yaml, flags on top."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.config import ConfigError, resolve_workdir
from engine.config import MODES, AskConfig


@dataclass
class EvalConfig:
    """`ragtune eval`: the same questions answered in each mode, scored, compared and explained."""

    config_file = "eval.yaml"
    workdir: str | None
    questions: str | None  # a JSONL file of {"question", "answers", "id"?, "doc"?, "type"?, "keys"?}
    split: str | None  # "eval": the held-out split of the newest dataset (or --data)
    data: str | None  # the dataset folder for --split eval; None = the newest
    modes: list[str]
    limit: int  # 0 = every question; else a seeded random sample of this many
    seed: int
    out: str | None  # the report folder; None = <workdir>/runs/<timestamp>
    unanswerable: bool  # questions with no answers: scored as "should abstain" (else skipped)
    correct_f1: float  # an answer with F1 at least this is correct, in the error analysis
    examples: int  # examples per error bucket in report.md
    resamples: int  # bootstrap resamples for intervals and p-values
    ask: AskConfig = field(default=None)

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        self.ask.workdir = self.ask.search.workdir = self.workdir
        if self.questions and self.split:
            raise ConfigError("--questions and --split name two question sets: give one")
        if self.split not in (None, "eval"):
            raise ConfigError(f"--split must be eval (the held-out synthetic pairs), got {self.split!r}")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise ConfigError(f"--modes: {', '.join(unknown) or 'none given'}; valid: {', '.join(MODES)}")
        self.modes = list(dict.fromkeys(self.modes))
        if self.limit < 0:
            raise ConfigError(f"--limit must be 0 (all) or more, got {self.limit}")
        if not 0 <= self.correct_f1 <= 100:
            raise ConfigError(f"correct_f1 in configs/eval.yaml must be in [0, 100], got {self.correct_f1}")
        if self.examples < 0:
            raise ConfigError(f"examples in configs/eval.yaml must be 0 or more, got {self.examples}")
        if self.resamples < 100:
            raise ConfigError(f"resamples in configs/eval.yaml must be at least 100, got {self.resamples}")
