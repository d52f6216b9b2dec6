"""`ragtune demo`: the whole job on the bundled sample corpus, the stages' own functions in a row.

    ragtune demo [--no-app] [--workdir DIR]

`run_demo` yields a `DemoStep` as each stage ends; the CLI shows them and then opens the app.
Every stage reuses what an earlier run made with the same inputs, so a second demo is quick.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ragtune.core.config import check_settings, load_config, resolve_workdir, setting
from ragtune.core.records import EvalReport
from ragtune.engine.config import AppConfig


@dataclass
class DemoConfig:
    """`ragtune demo`: the whole job on the bundled sample corpus, on a bounded budget."""

    config_file = "demo.yaml"
    workdir: str | None = setting("work directory; unset: $RAGTUNE_WORKDIR, else ./.ragtune", cli=False)
    docs: str = setting(
        "the corpus: ragtune's own user guide, a chapter per file format; relative to the ragtune package (the checkout, or its installed copy)",
        cli=False,
    )
    questions: str = setting("factoid questions we wrote about the corpus, with their answers; asked whole", cli=False)
    open_questions: str = setting("open questions about the corpus (how, why, what happens), with their key facts", cli=False)
    model: str | None = setting(
        "the model to train and answer with, in any form ask's --model takes; unset: configs/model.yaml's, the packaged one"
    )
    train: dict = setting("overrides of configs/train.yaml: a bounded budget, so the demo keeps to its time (README)", cli=False)
    eval_limit: int = setting("questions sampled from the synthetic eval split", cli=False, low=0)
    open_limit: int = setting("open questions sampled with a fixed seed, so the eval keeps to the demo's time; 0 = all", cli=False, low=0)
    app: AppConfig = field(default=None)  # overrides of configs/app.yaml

    def __post_init__(self):
        check_settings(self)
        self.workdir = resolve_workdir(self.workdir)
        self.app.workdir = self.app.ask.workdir = self.app.ask.search.workdir = self.workdir
        root = Path(resources.files("ragtune"))
        self.docs, self.questions, self.open_questions = (
            str(p if Path(p).is_absolute() else root / p) for p in (self.docs, self.questions, self.open_questions)
        )
        if self.model:
            self.app.ask.model.model = self.model
        from ragtune.train.config import TrainConfig

        load_config(TrainConfig, self.train)  # a typo in demo.yaml's train section fails here, not after ingest and synth


@dataclass
class EvalSet:
    """One question set's evaluation: its name, the report and the folder it was written to."""

    name: str
    report: EvalReport
    out: Path


@dataclass
class DemoStep:
    """A stage done: "ingest" (an IngestReport), "synth" (a DatasetCard), "train" (a TrainReport, or
    the Path of a finished adapter reused) or "eval" (an EvalSet, one per set); `seconds` it took."""

    stage: str
    result: Any
    seconds: float


# bars(stage) opens the progress display of a stage and gives its callback: ingest's takes
# (FileResult, done, total), train's (step, max_steps, stats), synth's and eval's (stage, done, total).
Bars = Callable[[str], AbstractContextManager[Callable]]


def run_demo(cfg: DemoConfig, bars: Bars) -> Iterator[DemoStep]:
    """Ingest the sample corpus, synthesize pairs, train an adapter on a budget, evaluate the four modes.

    Yields a DemoStep as each stage ends (eval: one per question set).
    """
    from ragtune.engine.answer import Answerer
    from ragtune.evals import report as R
    from ragtune.evals.config import EvalConfig
    from ragtune.evals.run import evaluate_report
    from ragtune.rag.config import IngestConfig
    from ragtune.rag.ingest import ingest
    from ragtune.synth.config import SynthConfig
    from ragtune.synth.pipeline import synthesize_card
    from ragtune.train.config import TrainConfig
    from ragtune.train.run import finished_run, train

    workdir, model = str(cfg.workdir), ({"model.model": cfg.model} if cfg.model else {})
    clock = _Clock()

    with bars("ingest") as on_file:
        ingested = ingest(load_config(IngestConfig, {"paths": [cfg.docs], "workdir": workdir}), on_file=on_file)
    yield DemoStep("ingest", ingested, clock.lap())

    with bars("synth") as progress:
        card = synthesize_card(load_config(SynthConfig, {"workdir": workdir, "generator": "extractive"}), progress=progress)
    yield DemoStep("synth", card, clock.lap())

    tcfg = load_config(TrainConfig, {"workdir": workdir, "data": card.path, **cfg.train, **model})
    trained = finished_run(tcfg)
    if trained is None:
        with bars("train") as progress:
            trained = train(tcfg, progress=progress)
    yield DemoStep("train", trained, clock.lap())

    sets = (
        ("the synthetic eval split", {"split": "eval", "limit": cfg.eval_limit}),
        ("our questions about the corpus", {"questions": cfg.questions}),
        ("open questions about the corpus", {"questions": cfg.open_questions, "limit": cfg.open_limit}),
    )
    answerer = None  # one for the three sets: the model, adapter and index load once
    for name, source in sets:
        ecfg = load_config(EvalConfig, {"workdir": workdir, **source, **{f"ask.{k}": v for k, v in model.items()}})
        answerer = answerer or Answerer(ecfg.ask)
        with bars("eval") as progress:
            report = evaluate_report(ecfg, progress=progress, answerer=answerer)
        out = R.write(report, R.default_out(workdir), ecfg.examples)
        yield DemoStep("eval", EvalSet(name, report, out), clock.lap())


class _Clock:
    """Seconds since the last lap."""

    def __init__(self):
        self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        took, self.last = now - self.last, now
        return took
