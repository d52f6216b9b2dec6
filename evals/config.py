"""The typed config of `ragtune eval`: defaults in configs/eval.yaml, flags on top."""

from __future__ import annotations

from dataclasses import dataclass, field

from ragtune.core.config import ConfigError, resolve_workdir, setting
from ragtune.engine.config import MODES, AskConfig


@dataclass
class EvalConfig:
    """`ragtune eval`: the same questions answered in each mode, scored, compared and explained."""

    config_file = "eval.yaml"
    workdir: str | None = setting("work directory; unset: $RAGTUNE_WORKDIR, else ./.ragtune", cli=False)
    questions: str | None = setting(
        'JSONL, a line each: {"question", "answers", "id"?, "doc"?, "type"?: factoid|open, "keys"?}', metavar="FILE"
    )
    split: str | None = setting("eval: the held-out pairs of the newest dataset (or --data) instead of --questions", choices=("eval",))
    data: str | None = setting("dataset folder for --split eval; unset: the newest under <workdir>/datasets")
    modes: list[str] = setting("comma-separated modes to answer in; the ft modes are skipped, with a note, when there is no adapter")
    limit: int = setting("a random sample of N questions, fixed by --seed; 0 = all")
    seed: int = setting("seed of the --limit sample and the bootstrap")
    out: str | None = setting("report folder; unset: <workdir>/runs/<timestamp>")
    unanswerable: bool = setting("score questions without answers as ones to abstain on (else they are skipped)")
    correct_f1: float = setting("F1 from which an answer counts as right, in the error analysis", cli=False)
    examples: int = setting("examples shown per error bucket in report.md", cli=False)
    resamples: int = setting("bootstrap resamples for the 95% intervals and paired p-values", cli=False)
    ask: AskConfig = field(default=None)  # overrides of configs/ask.yaml: how the modes answer

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
