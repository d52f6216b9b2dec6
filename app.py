"""The ragtune workbench: `ragtune app`, a Gradio app over the same functions as the CLI.

    ragtune app                                  # http://127.0.0.1:7860
    ragtune app --port 8080 --auth me:secret     # a login, for a shared machine

Tabs: Chat (the four modes side by side, and a one-mode chat with history), Corpus, Dataset,
Train, Evaluate. The functions below are plain top-level functions, the ones gradio_client
calls by `api_name`; `build()` only wires them into a page.

One process holds one model (the `Workbench`): answers take turns at it through the engine's
lock, and gradio's queue makes further users wait rather than fail. Long jobs (ingest, synth,
train, eval) run one at a time in a background thread, so the page stays responsive and a job
outlives the tab that started it; any tab shows its progress.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ragtune.core import present
from ragtune.core.config import CONFIG_DIR, load_config, read_yaml, to_dict, widget
from ragtune.core.records import EvalReport
from ragtune.core.workdir import uploads_dir
from ragtune.engine.config import MODES, AppConfig

if TYPE_CHECKING:  # the stages' configs, imported where they are built
    from ragtune.evals.config import EvalConfig
    from ragtune.rag.config import IngestConfig
    from ragtune.synth.config import SynthConfig
    from ragtune.train.config import TrainConfig

TITLE = "ragtune"
POLL_S = 0.5  # how often a page following a job looks at it
SOURCES = "\n\n**Sources**\n\n"  # where a chat answer's source list starts


# The one model and the one background job --------------------------------------------------------


@dataclass
class Job:
    """A long job running in a background thread, as the pages see it."""

    kind: str  # ingest | synth | train | eval
    stage: str = "starting"
    done: int = 0
    total: int = 0
    stats: dict = field(default_factory=dict)
    points: list = field(default_factory=list)  # train: (step, loss), for the live plot
    result: object = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.ended is None

    def line(self) -> str:
        """One line: `train: step 40/100 (loss 1.93, 371 tokens/s), 1 min 05 s`."""
        took = _duration((self.ended or time.time()) - self.started)
        if self.error:
            return f"{self.kind} failed after {took}: {self.error}"
        if not self.running:
            return f"{self.kind} finished in {took}"
        count = f" {self.done}/{self.total}" if self.total else ""
        stats = ", ".join(f"{k} {v}" for k, v in self.stats.items())
        return f"{self.kind}: {self.stage}{count}{f' ({stats})' if stats else ''}, {took}"


class Workbench:
    """What the app holds: its config, the answerer (one model, loaded on first use) and the job."""

    def __init__(self, cfg: AppConfig):
        self.cfg = cfg
        self.workdir = Path(cfg.workdir)
        self.job: Job | None = None
        self.failures: dict[str, str] = {}  # file -> why, from the last ingest (the manifest holds the rest)
        self._answerer = None
        self._lock = threading.Lock()

    @property
    def answerer(self):
        with self._lock:
            if self._answerer is None:
                from ragtune.engine.answer import Answerer

                self._answerer = Answerer(self.cfg.ask)
            return self._answerer

    def start(self, kind: str, work: Callable[[Job], object], then: Callable[[object], None] | None = None) -> Job:
        """Run `work(job)` in the background; one job at a time (two would halve each other's CPU)."""
        with self._lock:
            if self.job is not None and self.job.running:
                raise RuntimeError(f"a {self.job.kind} job is running ({self.job.line()}); wait for it, or stop it on the Train tab")
            job = self.job = Job(kind)

        def run():
            try:
                job.result = work(job)
                if then is not None:
                    then(job.result)
            except Exception as e:  # shown on the page, as the CLI would print it
                job.error = _first_line(e)
            finally:
                job.ended = time.time()

        threading.Thread(target=run, name=f"ragtune-{kind}", daemon=True).start()
        return job

    def follow(self, job: Job, progress=None) -> Iterator[Job]:
        """Yield the job while it runs (the page's progress, not the job's life); raise its error.

        `progress`: gradio's progress bar, called with (done, total) and the stage.
        """
        while job.running:
            if progress is not None and job.total:
                progress((job.done, job.total), desc=f"{job.kind}: {job.stage}")
            yield job
            time.sleep(POLL_S)
        if job.error:
            raise RuntimeError(job.error)

    def reload_retriever(self, _=None) -> None:
        if self._answerer is not None:
            self._answerer.reopen_index()  # new chunks included

    def load_adapter(self, report) -> None:
        if self._answerer is not None and not report.interrupted:
            self._answerer.engine.load_adapter(report.out)


BENCH: Workbench | None = None  # the one per process, set by build(); the functions below use it


def _bench() -> Workbench:
    if BENCH is None:
        raise RuntimeError("the app is not set up: call app.build(cfg) first")
    return BENCH


# Chat ------------------------------------------------------------------------------------------


def side_by_side(
    question: str,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    max_new_tokens: int | None = None,
    source: list[str] | None = None,
) -> Iterator[tuple[str, str, str, str, str, str]]:
    """One question, the four modes' answers as they grow, then the rag modes' sources.

    Yields (base, rag, ft, ft-rag, rag sources, ft-rag sources), Markdown each. A mode that
    cannot answer (no adapter yet, an empty index) shows why instead. A decoding setting left
    None is the app's (configs/decoding.yaml, under app.yaml and the flags); `source`, the
    documents the rag modes read (indexed paths or globs; [] is all, None the app's --source).
    """
    if not (question or "").strip():
        raise ValueError("the question is empty")
    answerer = _bench().answerer
    decoding = _decoding(answerer, temperature, top_k, top_p, max_new_tokens)
    blocked = answerer.unavailable(MODES)
    text = {m: f"*unavailable: {blocked[m]}*" if m in blocked else "" for m in MODES}
    sources = {m: "" for m in ("rag", "ft-rag")}

    def view():
        return (*(text[m] for m in MODES), sources["rag"], sources["ft-rag"])

    yield view()
    modes = [m for m in MODES if m not in blocked]
    if not modes:
        return
    stream = answerer.stream_modes(question, modes, decoding, source=source)
    try:
        while True:
            mode, piece = next(stream)
            text[mode] += piece
            yield view()
    except StopIteration as end:
        answers = end.value
    for mode, a in answers.items():
        text[mode] = render_answer(a) if a.text else "*(no answer)*"
        text[mode] += f"\n\n<sub>{a.latency_s:.2f} s, {a.generated_tokens} token{'s' * (a.generated_tokens != 1)}</sub>"
        if mode in sources:
            sources[mode] = format_sources(a.sources, mode)
    yield view()


def chat(
    message: str,
    history: list[dict],
    mode: str | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    max_new_tokens: int | None = None,
    source: list[str] | None = None,
) -> Iterator[list[dict]]:
    """One mode, with the conversation so far: yields the history with the answer growing at its end.

    A setting left None (the mode, decoding, the documents) is the app's, as in `side_by_side`.
    """
    if not (message or "").strip():
        raise ValueError("the message is empty")
    mode = mode or _bench().cfg.ask.mode
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    answerer = _bench().answerer
    why = answerer.unavailable([mode]).get(mode)
    if why:
        raise RuntimeError(f"mode {mode} is unavailable: {why}")
    turns = [
        {"role": t["role"], "content": _unlinked(_plain(t["content"]).split(SOURCES)[0])}  # the model sees answers, not source lists
        for t in (history or [])
        if t.get("role") in ("user", "assistant")
    ]
    out = turns + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    stream = answerer.stream(message, mode, _decoding(answerer, temperature, top_k, top_p, max_new_tokens), history=turns, source=source)
    try:
        while True:
            out[-1]["content"] += next(stream)
            yield out
    except StopIteration as end:
        a = end.value
    key = f"chat{sum(t['role'] == 'assistant' for t in turns) + 1}"  # this turn's anchors, apart from earlier turns'
    if a.text:
        out[-1]["content"] = render_answer(a, key)
    if a.sources:
        out[-1]["content"] += SOURCES + format_sources(a.sources, key)
    yield out


def render_answer(answer, key: str = "") -> str:
    """An answer as Markdown, each `[n]` a link to its source in `format_sources(answer.sources, key)`.

    A factoid shows its span, then the sentence it came from, quoted, with the span in bold.
    Extracted answers (factoid, open, list) are the documents' words and are shown literally;
    a written one keeps the model's Markdown. `key` tells apart the anchors of several answers
    on one page (default: the answer's mode).
    """
    key = key or answer.mode
    quoted = answer.citations[0] if answer.form == "factoid" and answer.citations else None
    if quoted is not None and quoted.quote:
        q, (start, end) = re.sub(r"\s", " ", quoted.quote), quoted.bold or (0, 0)  # one line of blockquote; offsets kept
        body = _md(q[:start]) + f"**{_md(q[start:end])}**" + _md(q[end:]) if end > start else _md(q)
        head = " ".join((answer.span or q[start:end]).split())
        return (f"**{_md(head)}**\n\n" if head else "") + f"> {body} {_link(quoted.n, key, len(answer.sources))}"
    escape = _md if answer.form in ("factoid", "open", "list") else str
    parts = CITED.split(answer.text)  # text, n, text, n, ..., text
    return "".join(escape(p) if i % 2 == 0 else _link(int(p), key, len(answer.sources)) for i, p in enumerate(parts))


def format_sources(sources, key: str = "") -> str:
    """The chunks an answer was given, best first: `[n]`, file, page or section, score and a snippet.

    Each is a `<details>` that opens on its full text, where the anchor `src-{key}-{n}` sits, so
    the answer's `[n]` link opens it (browsers open a closed `<details>` around a link's target).
    """
    from html import escape

    if not sources:
        return "*no sources*"
    blocks = []
    for n, s in enumerate(sources, 1):
        where = present.where(s.page, s.section, s.ocr)
        anchor = f'<a id="{_anchor(key, n)}"></a>' if key else ""
        blocks.append(
            f"<details><summary><b>[{n}] {escape(present.titled(s.title, Path(s.source).name))}</b>{escape(f' · {where}') if where else ''} · score {s.score:.3f}"
            f"<br>{escape(present.snippet(s.text, 160))}</summary>{anchor}\n\n{_md(s.text.strip())}\n\n</details>"
        )
    return "\n\n".join(blocks)


CITED = re.compile(r"\[(\d{1,3})\]")  # a citation as engine/cite.py leaves it in an answer's text


def _link(n: int, key: str, sources: int) -> str:
    """`[n]` as a link to its source's anchor; a number without a source stays plain text."""
    return f"[[{n}]](#{_anchor(key, n)})" if 1 <= n <= sources else f"\\[{n}\\]"


def _anchor(key: str, n: int) -> str:
    return f"src-{re.sub(r'[^A-Za-z0-9_-]+', '-', key)}-{n}"


def _md(text: str) -> str:
    """Text shown as written: Markdown's and HTML's special characters escaped."""
    return re.sub(r"([\\`*_\[\]<>#~|$])", r"\\\1", text)


def _unlinked(text: str) -> str:
    """A rendered answer's `[[n]](#src-...)` links back to plain `[n]`, for the model to read."""
    return re.sub(r"\[\[(\d{1,3})\]\]\(#src-[^)]*\)", r"[\1]", text)


# Corpus ----------------------------------------------------------------------------------------


def safe_filename(name: str) -> str:
    """An uploaded file's name, made safe to write: no folders, no leading dots, plain characters.

    `../../x.pdf` -> `x.pdf`; `C:\\evil\\..\\a b.txt` -> `a_b.txt`; an empty result -> `upload`.
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip("._-")[:120]
    return base or "upload"


def save_uploads(paths: list[str]) -> list[Path]:
    """Copy uploaded files into <workdir>/uploads under safe names (a clash gets `-1`, `-2`)."""
    folder = uploads_dir(_bench().workdir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for path in paths or []:
        name = safe_filename(Path(str(path)).name)
        dest, n = folder / name, 1
        while dest.exists() and not _same_file(dest, Path(path)):
            dest, n = folder / f"{Path(name).stem}-{n}{Path(name).suffix}", n + 1
        if dest.resolve().parent != folder:  # cannot happen after safe_filename; a second lock on the door
            raise ValueError(f"upload {name!r}: refused, it would land outside {folder}")
        shutil.copyfile(path, dest)
        saved.append(dest)
    return saved


def ingest_uploads(files: list[str], progress=None) -> Iterator[tuple[str, list[list]]]:
    """Save uploaded files into the work dir and ingest them. Yields (status, the corpus table)."""
    if not files:
        raise ValueError("no files uploaded")
    saved = save_uploads([str(f) for f in files])
    yield from _ingest([str(p) for p in saved], progress)


def ingest_folder(folder: str, progress=None) -> Iterator[tuple[str, list[list]]]:
    """Ingest a file or folder on the server. Yields (status, the corpus table)."""
    path = Path((folder or "").strip()).expanduser()
    if not str(folder or "").strip() or not path.exists():
        raise ValueError(f"{folder!r}: no such file or folder on the server")
    yield from _ingest([str(path)], progress)


def ingest_config(app: AppConfig, paths: list[str]) -> IngestConfig:
    """`ragtune ingest PATHS` as the app runs it: configs/ingest.yaml, into the app's work dir and index (collection, Chroma)."""
    from ragtune.rag.config import IngestConfig

    return load_config(IngestConfig, {"paths": paths, "workdir": str(app.workdir), "index": to_dict(app.ask.search.index)})


def _ingest(paths: list[str], progress=None) -> Iterator[tuple[str, list[list]]]:
    from ragtune.rag.ingest import ingest

    bench = _bench()
    cfg = ingest_config(bench.cfg, paths)

    def work(job: Job):
        def on_file(fr, done, total):
            job.stage, job.done, job.total = Path(fr.path).name, done, total
            if fr.status == "failed":
                bench.failures[fr.path] = fr.reason
            elif fr.status in ("ok", "unchanged"):
                bench.failures.pop(fr.path, None)

        return ingest(cfg, on_file)

    job = bench.start("ingest", work, then=bench.reload_retriever)
    for _ in bench.follow(job, progress):
        yield job.line(), corpus_files()
    yield f"{job.line()}: {present.ingest_summary(job.result)}", corpus_files()


def _indexed_files() -> dict[str, dict]:
    """The manifest's files (path -> chunks, pages, title) of the collection the chat searches."""
    from ragtune.rag.index import Index

    bench = _bench()
    return Index(bench.cfg.ask.search.index, bench.workdir).load_manifest().get("files", {})


def corpus_files() -> list[list]:
    """The index's files: [file, status, chunks, pages, reason], failures of the last ingest included."""
    bench = _bench()
    files = _indexed_files()
    rows = [[path, "indexed", entry.get("chunks", 0), entry.get("pages", 0), ""] for path, entry in sorted(files.items())]
    rows += [[path, "failed", 0, 0, why] for path, why in sorted(bench.failures.items()) if path not in files]
    return rows


def document_choices():
    """The document picker with the index's files as its choices, each shown by its title and name."""
    import gradio as gr

    files = _indexed_files()
    return gr.Dropdown(choices=[(present.titled(e.get("title", ""), Path(p).name), p) for p, e in sorted(files.items())])


def search(query: str, k: int | None = None) -> list[list]:
    """The chunks that best match a query: [rank, score, file, page or section, snippet]; k None = the app's search k."""
    if not (query or "").strip():
        raise ValueError("the query is empty")
    retriever = _bench().answerer.retriever
    if retriever.size == 0:
        raise RuntimeError("the index is empty: ingest some files first")
    return [
        [
            h.rank,
            round(h.score, 4),
            present.titled(h.chunk.title, Path(h.chunk.source).name),
            present.where(h.chunk.page, h.chunk.section, h.chunk.ocr),
            present.snippet(h.chunk.text, 300),
        ]
        for h in retriever.search(query, int(k) if k else None)
    ]


# Dataset ---------------------------------------------------------------------------------------

PREVIEW_COLUMNS = ["remove", "id", "split", "kind", "question", "answer", "source"]


def synth_config(
    app: AppConfig,
    generator: str | None = None,
    pairs_per_chunk: int | None = None,
    paraphrases: int | None = None,
    oracle_p: float | None = None,
) -> SynthConfig:
    """`ragtune synth` as the app runs it: configs/synth.yaml with the page's settings (None = the YAML's),
    reading the app's index, with the app's model as the local generator."""
    from ragtune.synth.config import SynthConfig

    return load_config(
        SynthConfig,
        {
            "workdir": str(app.workdir),
            "generator": generator,
            "pairs_per_chunk": pairs_per_chunk,
            "paraphrases": paraphrases,
            "oracle_p": oracle_p,
            "search": to_dict(app.ask.search),
            "llm": to_dict(app.ask.model),
        },
    )


def synthesize(
    generator: str | None = None,
    pairs_per_chunk: int | None = None,
    paraphrases: int | None = None,
    oracle_p: float | None = None,
    progress=None,
) -> Iterator[tuple[str, list[list], str | None]]:
    """Synthesize a dataset from the index. Yields (status, the pairs preview, train.jsonl to download)."""
    from ragtune.synth.pipeline import synthesize_card

    bench = _bench()
    cfg = synth_config(bench.cfg, generator, pairs_per_chunk, paraphrases, oracle_p)

    def work(job: Job):
        def progress(stage, done, total):
            job.stage, job.done, job.total = stage, done, total

        return synthesize_card(cfg, progress)

    job = bench.start("synth", work)
    for _ in bench.follow(job, progress):
        yield job.line(), [], None
    rows, path = dataset_preview()
    yield f"{job.line()}: {present.synth_summary(job.result)}, in {Path(job.result.path).name}", rows, path


def dataset_preview(limit: int = 500) -> tuple[list[list], str | None]:
    """The newest dataset's pairs (the first `limit`), each with a `remove` box, and its train.jsonl."""
    from ragtune.core.workdir import newest_dataset
    from ragtune.synth.pipeline import read_pairs

    data = newest_dataset(_bench().workdir)
    if data is None:
        return [], None
    rows = [[False, p.id, p.split, p.kind, p.question, p.answer, Path(p.source).name] for p in read_pairs(data, limit)]
    return rows, str(data / "train.jsonl")


def remove_flagged(table) -> tuple[str, list[list], str | None]:
    """Remove the pairs whose `remove` box is ticked, and their training rows; they stay removed on re-synthesis."""
    from ragtune.core.workdir import newest_dataset
    from ragtune.synth.pipeline import remove_pairs

    data = newest_dataset(_bench().workdir)
    if data is None:
        raise RuntimeError("no dataset yet: synthesize one first")
    records = table.values.tolist() if hasattr(table, "values") else list(table or [])
    ids = [r[1] for r in records if r and r[0] in (True, "true", "True", 1)]
    if not ids:
        raise ValueError("no pair is flagged: tick `remove` on the pairs to drop")
    removed = remove_pairs(data, ids)
    rows, path = dataset_preview()
    return f"removed {removed['pairs']} pairs and {removed['rows']} training rows from {data.name}", rows, path


# Train -----------------------------------------------------------------------------------------


def train_config(
    app: AppConfig, max_steps: int | None = None, epochs: float | None = None, lr: float | None = None, lora_r: int | None = None
) -> TrainConfig:
    """`ragtune train` as the app runs it: configs/train.yaml with the page's settings (None = the YAML's), on the app's model."""
    from ragtune.train.config import TrainConfig

    return load_config(
        TrainConfig,
        {
            "workdir": str(app.workdir),
            "max_steps": -1 if max_steps == 0 else max_steps,  # the page's 0 is whole epochs too
            "epochs": epochs,
            "lr": lr,
            "lora_r": lora_r,
            "model": to_dict(app.ask.model),
        },
    )


def start_training(max_steps: int | None = None, epochs: float | None = None, lr: float | None = None, lora_r: int | None = None) -> str:
    """Start training a LoRA adapter on the newest dataset, in the background; returns at once.

    A setting left None is configs/train.yaml's, as `ragtune train` runs it.
    """
    from ragtune.train.run import train

    bench = _bench()
    cfg = train_config(bench.cfg, max_steps, epochs, lr, lora_r)

    def work(job: Job):
        def progress(step, total, stats):
            job.stage, job.done, job.total = "step", step, total
            job.stats = {"loss": f"{stats['loss']:.3f}", "tokens/s": f"{stats['tokens_per_s']:.0f}"}
            job.points.append((step, float(stats["loss"])))

        return train(cfg, progress, stop=job.stop)

    bench.start("train", work, then=bench.load_adapter)
    return "training started"


def training_status() -> tuple[str, list[list]]:
    """The current (or last) training job: a status line and its (step, loss) points."""
    job = _bench().job
    if job is None or job.kind != "train":
        return "no training has run in this session", []
    status = job.line()
    if not job.running and job.result is not None:
        r = job.result
        status += f": {present.train_stopped(r, r.out)}" if r.interrupted else f": {present.train_summary(r)}; adapter {r.out}"
    return status, [[s, loss] for s, loss in job.points]


def stop_training() -> str:
    """Ask the training job to checkpoint and stop after its current step."""
    job = _bench().job
    if job is None or job.kind != "train" or not job.running:
        return "no training is running"
    job.stop.set()
    return "stopping after this step (a checkpoint is saved)"


# Evaluate --------------------------------------------------------------------------------------


def evaluate(
    questions: str | None = None, modes: list[str] | None = None, limit: int = 50, progress=None
) -> Iterator[tuple[str, list[list], str | None, list[list]]]:
    """Run the four-mode evaluation. Yields (status, score table, chart, disagreements).

    `questions`: a questions JSONL on the server; empty = the newest dataset's eval split.
    """
    from ragtune.evals import report as R
    from ragtune.evals.run import evaluate_report

    bench = _bench()
    cfg = eval_config(bench.cfg, questions, modes, limit)

    def work(job: Job):
        def progress(stage, done, total):
            job.stage, job.done, job.total = stage, done, total

        report = evaluate_report(cfg, progress)
        return report, R.write(report, R.default_out(cfg.workdir), cfg.examples)

    job = bench.start("eval", work)
    for _ in bench.follow(job, progress):
        yield job.line(), [], None, []
    report, out = job.result
    scores = present.factoid_table(report.summary, report.modes, intervals=True).rows  # all questions, as the chart
    yield f"{report.verdict} Report: {out}/report.md", scores, str(out / "scores.png"), disagreements(report)


def eval_config(app: AppConfig, questions: str | None = None, modes: list[str] | None = None, limit: int = 50) -> EvalConfig:
    """`ragtune eval` as the app runs it: the app's answering settings (model, adapter, index, k), under eval's own
    (configs/eval.yaml's `ask` section), so the page scores as `ragtune eval` does."""
    from ragtune.evals.config import EvalConfig

    source = {"questions": questions.strip()} if (questions or "").strip() else {"split": "eval"}
    own = read_yaml(CONFIG_DIR / EvalConfig.config_file).get("ask") or {}
    return load_config(
        EvalConfig,
        {
            "workdir": str(app.workdir),
            "modes": list(modes or MODES),
            "limit": int(limit or 0),
            **source,
            "ask": _merged(to_dict(app.ask), own),
        },
    )


def disagreements(report: EvalReport, limit: int = 50) -> list[list]:
    """The questions the modes disagree on: [question, gold, each mode's answer (✓ right, ✗ and why)]."""
    rows = []
    for q in report.per_question:
        modes = q["modes"]
        if len({r["correct"] for r in modes.values()}) > 1:
            rows.append(
                [q["question"], " | ".join(q["answers"][:2])]
                + [
                    f"{'✓' if modes[m]['correct'] else '✗'} {modes[m]['answer']}"
                    + ("" if modes[m]["correct"] else f" ({modes[m]['bucket']})")
                    if m in modes
                    else ""
                    for m in MODES
                ]
            )
        if len(rows) >= limit:
            break
    return rows


# The page --------------------------------------------------------------------------------------


MODEL = dict(concurrency_id="model", concurrency_limit=1)  # one model: answers take turns, the rest queue
QUICK = dict(concurrency_limit=None)  # reads of files and job state: never behind the model
JOBS = dict(concurrency_id="jobs")  # ingest, synth, eval: one job at a time (Workbench.start)


def build(cfg: AppConfig):
    """The Blocks app over the functions above, a tab each. Sets the process's Workbench."""
    import gradio as gr

    global BENCH
    BENCH = Workbench(cfg)
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(
            f"## {TITLE} workbench\nYour documents, four ways to answer: **base** (the model alone), **rag** "
            f"(reading retrieved chunks), **ft** (fine-tuned), **ft-rag** (both). Work dir: `{cfg.workdir}`"
        )
        job_line = gr.Markdown(elem_id="job-line")
        with gr.Tab("Chat"):
            documents = _chat_tab(cfg)
        with gr.Tab("Corpus"):
            files = _corpus_tab(cfg)
        with gr.Tab("Dataset"):
            pairs, download = _dataset_tab(cfg)
        with gr.Tab("Train"):
            train_status, loss_plot = _train_tab(cfg)
        with gr.Tab("Evaluate"):
            _evaluate_tab()
        _follow_jobs(job_line, train_status, loss_plot)
        app.load(corpus_files, None, files, api_name=False, **QUICK)
        files.change(document_choices, None, documents, api_name=False, **QUICK)  # the index's files, after each ingest
        app.load(lambda: dataset_preview(), None, [pairs, download], api_name=False, **QUICK)
    app.queue(max_size=cfg.max_queue, default_concurrency_limit=2)
    return app


def _chat_tab(cfg: AppConfig):
    """The four modes side by side, then a one-mode chat; both under the decoding sliders and the
    document picker, which it returns (its choices follow the index: `document_choices`)."""
    import gradio as gr

    from ragtune.engine.config import AskConfig, DecodingConfig
    from ragtune.rag.config import SearchConfig

    with gr.Row():
        question = gr.Textbox(label="Question", placeholder="Ask your documents something", scale=5, elem_id="question")
        ask = gr.Button("Ask all four", variant="primary", scale=1, elem_id="ask")
    d = cfg.ask.decoding
    with gr.Accordion("Decoding", open=False):
        with gr.Row():
            temperature = _slider(DecodingConfig, "temperature", d.temperature)
            top_k = _slider(DecodingConfig, "top_k", d.top_k)
            top_p = _slider(DecodingConfig, "top_p", d.top_p)
            max_new = _slider(DecodingConfig, "max_new_tokens", d.max_new_tokens)
    # The indexed files to pick from, or a typed glob; none picked: every document.
    documents = gr.Dropdown(
        [], value=list(cfg.ask.search.source), multiselect=True, allow_custom_value=True, **_about(SearchConfig, "source")
    )
    panels, source_panels = {}, {}
    with gr.Row(equal_height=True):
        for m in MODES:
            with gr.Column(min_width=200):
                panels[m] = gr.Markdown(label=m, elem_id=f"answer-{m}", container=True, min_height=120, value=f"**{m}**")
                if m in ("rag", "ft-rag"):
                    with gr.Accordion(f"{m} sources", open=False):
                        source_panels[m] = gr.Markdown(elem_id=f"sources-{m}")
    outputs = [*panels.values(), source_panels["rag"], source_panels["ft-rag"]]
    decoding = [temperature, top_k, top_p, max_new]
    for trigger in (ask.click, question.submit):
        trigger(
            _labelled(side_by_side),
            [question, *decoding, documents],
            outputs,
            api_name="side_by_side" if trigger == ask.click else False,
            **MODEL,
        )

    gr.Markdown("### Chat with one mode")
    with gr.Row():
        w = widget(AskConfig, "mode")
        mode = gr.Radio(list(w.choices), value=cfg.ask.mode, label=w.label, info=w.info, scale=1)
        with gr.Column(scale=4):
            history = gr.Chatbot(label="conversation", height=320)
            message = gr.Textbox(label="Message", placeholder="Follow-up questions keep the conversation")
    message.submit(chat, [message, history, mode, *decoding, documents], history, api_name="chat", **MODEL).then(
        lambda: "", None, message, queue=False
    )
    return documents


def _corpus_tab(cfg: AppConfig):
    """Upload or name files to ingest, the index's files, and a search box; returns the files table."""
    import gradio as gr

    from ragtune.rag.config import SearchConfig

    with gr.Row():
        uploads = gr.File(label="Upload files", file_count="multiple", type="filepath", scale=2)
        with gr.Column(scale=2):
            folder = gr.Textbox(label="...or a file or folder on the server", placeholder="/data/my-docs")
            ingest_btn = gr.Button("Ingest", variant="primary")
    ingest_status = gr.Markdown()
    files = gr.Dataframe(headers=["file", "status", "chunks", "pages", "reason"], label="Ingested files", interactive=False)
    uploads.upload(_with_bar(ingest_uploads), uploads, [ingest_status, files], api_name="ingest_upload", **JOBS)
    ingest_btn.click(_with_bar(ingest_folder), folder, [ingest_status, files], api_name="ingest_folder", **JOBS)
    with gr.Row():
        query = gr.Textbox(label="Search", scale=4)
        k = _slider(SearchConfig, "k", cfg.ask.search.k, scale=1)
    hits = gr.Dataframe(headers=["rank", "score", "file", "where", "snippet"], label="Hits", interactive=False, wrap=True)
    query.submit(search, [query, k], hits, api_name="search", **QUICK)
    return files


def _dataset_tab(cfg: AppConfig):
    """Synthesize pairs with `ragtune synth`'s settings, preview them, drop bad ones; returns the preview and its download."""
    import gradio as gr

    from ragtune.synth.config import GENERATORS, SynthConfig

    s = synth_config(cfg)
    with gr.Row():
        generator = gr.Dropdown(list(GENERATORS), value=s.generator, **_about(SynthConfig, "generator"))
        ppc = _slider(SynthConfig, "pairs_per_chunk", s.pairs_per_chunk)
        paraphrases = _slider(SynthConfig, "paraphrases", s.paraphrases)
        oracle_p = _slider(SynthConfig, "oracle_p", s.oracle_p)
    synth_btn = gr.Button("Synthesize", variant="primary")
    synth_status = gr.Markdown()
    pairs = gr.Dataframe(
        headers=PREVIEW_COLUMNS,
        datatype=["bool", "str", "str", "str", "str", "str", "str"],
        label="Pairs (tick `remove` on bad ones)",
        interactive=True,
        wrap=True,
    )
    with gr.Row():
        remove_btn = gr.Button("Remove flagged pairs")
        download = gr.File(label="train.jsonl", interactive=False)
    synth_btn.click(
        _with_bar(synthesize), [generator, ppc, paraphrases, oracle_p], [synth_status, pairs, download], api_name="synth", **JOBS
    )
    remove_btn.click(remove_flagged, pairs, [synth_status, pairs, download], api_name="remove_pairs", **QUICK)
    return pairs, download


def _train_tab(cfg: AppConfig):
    """Train with `ragtune train`'s settings in the background, stop it; returns its status line and loss plot."""
    import gradio as gr

    from ragtune.train.config import TrainConfig

    t = train_config(cfg)  # what `ragtune train` would run
    with gr.Row():
        max_steps = gr.Number(value=t.max_steps, precision=0, **_about(TrainConfig, "max_steps"))
        epochs = gr.Number(value=t.epochs, **_about(TrainConfig, "epochs"))
        lr = gr.Number(value=t.lr, **_about(TrainConfig, "lr"))
        lora_r = gr.Dropdown(sorted({4, 8, 16, 32, 64, t.lora_r}), value=t.lora_r, **_about(TrainConfig, "lora_r"))
    with gr.Row():
        train_btn = gr.Button("Train", variant="primary")
        stop_btn = gr.Button("Stop (checkpoint)", variant="stop")
    train_status = gr.Markdown()
    loss_plot = gr.LinePlot(x="step", y="loss", label="train loss", height=260)
    train_btn.click(start_training, [max_steps, epochs, lr, lora_r], train_status, api_name="train", **QUICK)
    stop_btn.click(stop_training, None, train_status, api_name="stop_training", **QUICK)
    return train_status, loss_plot


def _evaluate_tab() -> None:
    """The four modes on a question set, `ragtune eval`'s scores and where the modes disagree."""
    import gradio as gr

    from ragtune.evals.config import EvalConfig

    with gr.Row():
        questions = gr.Textbox(label="Questions JSONL on the server (empty: the dataset's eval split)", scale=3)
        eval_modes = gr.CheckboxGroup(list(MODES), value=list(MODES), scale=2, **_about(EvalConfig, "modes"))
        limit = gr.Number(value=50, precision=0, scale=1, **_about(EvalConfig, "limit"))  # the page's own default: a quick first look
    eval_btn = gr.Button("Evaluate", variant="primary")
    eval_status = gr.Markdown()
    with gr.Row():
        scores = gr.Dataframe(headers=present.factoid_headers(intervals=True), label="Scores", interactive=False, scale=3)
        chart = gr.Image(label="F1 by mode", type="filepath", scale=2)
    gr.Markdown("#### Where the modes disagree")
    disagree = gr.Dataframe(headers=["question", "gold", *MODES], interactive=False, wrap=True)
    eval_btn.click(_with_bar(evaluate), [questions, eval_modes, limit], [eval_status, scores, chart, disagree], api_name="eval", **JOBS)


def _follow_jobs(job_line, train_status, loss_plot) -> None:
    """Once a second: the running job's line on every tab, and training's status and loss plot."""
    import gradio as gr

    def tick():
        job = BENCH.job
        status, points = training_status()
        plot = {"step": [p[0] for p in points], "loss": [p[1] for p in points]}
        return (job.line() if job else ""), status, plot

    gr.Timer(1.0).tick(tick, None, [job_line, train_status, loss_plot], api_name=False, show_progress="hidden", **QUICK)


def _slider(cls, name: str, value, **kw):
    """A slider for setting `name` of `cls`: range, step, label and help line from its `setting()`."""
    import gradio as gr

    w = widget(cls, name)
    return gr.Slider(w.low, w.high, value=value, step=w.step, label=w.label, info=w.info, **kw)


def _about(cls, name: str) -> dict:
    """A widget's label and help line, from setting `name` of `cls`."""
    w = widget(cls, name)
    return {"label": w.label, "info": w.info}


def launch(cfg: AppConfig, block: bool = True):
    """Build and serve the app on cfg.host:cfg.port (127.0.0.1 unless told otherwise)."""
    from ragtune.core import offline

    offline.setup()
    app = build(cfg)
    BENCH.answerer.unavailable(MODES)  # load the model, the adapter and the index now: the first question is quick
    auth = tuple(cfg.auth.split(":", 1)) if cfg.auth else None
    app.launch(
        server_name=cfg.host, server_port=cfg.port, auth=auth, prevent_thread_lock=not block, show_error=True, quiet=True, inbrowser=False
    )
    return app


# Helpers ---------------------------------------------------------------------------------------


def _with_bar(fn):
    """`fn` with gradio's progress bar passed in: gradio finds it by a parameter defaulting to gr.Progress()."""
    import inspect

    import gradio as gr

    def with_bar(*args, progress=gr.Progress()):  # noqa: B008 - Gradio passes the bar through this default
        yield from fn(*args, progress=progress)

    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "progress"]
    with_bar.__signature__ = inspect.Signature(
        params + [inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=gr.Progress())]
    )
    with_bar.__name__, with_bar.__doc__ = fn.__name__, fn.__doc__
    return with_bar


def _labelled(fn):
    """The side-by-side answers with each panel titled by its mode (the API returns them bare)."""

    def labelled(*args):
        for values in fn(*args):
            yield (*(f"**{m}**\n\n{v}" for m, v in zip(MODES, values[:4])), *values[4:])

    labelled.__name__ = fn.__name__
    return labelled


def _decoding(answerer, temperature, top_k, top_p, max_new_tokens):
    """The app's decoding config with the page's values on top; a None keeps the config's."""
    from ragtune.engine.generate import with_overrides

    def cast(typ, value):  # sliders may send 50.0 for 50
        return None if value is None else typ(value)

    return with_overrides(
        answerer.cfg.decoding,
        temperature=cast(float, temperature),
        top_k=cast(int, top_k),
        top_p=cast(float, top_p),
        max_new_tokens=cast(int, max_new_tokens),
    )


def _merged(base: dict, top: dict) -> dict:
    """`base` with `top`'s settings on top, section by section."""
    return {**base, **{k: _merged(base.get(k) or {}, v) if isinstance(v, dict) else v for k, v in top.items()}}


def _plain(content) -> str:
    """A chat turn's text: gradio may hand back a list of parts."""
    if isinstance(content, list):
        return " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
