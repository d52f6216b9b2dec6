"""`train(cfg)`: a LoRA adapter from a synthesized dataset, with TRL's SFTTrainer and PEFT.

    ragtune train                                  # newest dataset -> a new folder under <workdir>/adapters
    ragtune train --max-steps 200 --lora-r 8 --out adapters/r8
    ragtune train --resume                         # after Ctrl-C or a crash: continue the newest unfinished run

The trainer is TRL's, used as documented: rows arrive tokenized with `labels` on the final
answer only (train/data.py), so the LM head projects only the answer positions through the
vocabulary. Our own code is callbacks: progress, the non-finite loss check, Ctrl-C -> checkpoint.
What each default buys: README, "Train an adapter", and bench/train.py. The adapter folder holds
`train_config.json` and the last `checkpoint-<step>/` while training; then the adapter,
tokenizer, metrics.json, loss.csv and loss.png.
"""

from __future__ import annotations

import collections
import csv
import ctypes
import importlib.util
import json
import math
import os
import resource
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from transformers import PrinterCallback, TrainerCallback

from ragtune.core.config import ConfigError, to_dict
from ragtune.core.workdir import adapters_dir, datasets_dir, new_run_dir, newest_dataset, write_json
from ragtune.train.config import TrainConfig

ALL_LINEAR = "all-linear"  # PEFT's own shorthand: every linear layer but the output head


@dataclass
class TrainReport:
    """What `ragtune train` did; also written, as plain data, to <out>/metrics.json."""

    out: str
    data: str
    steps: int = 0
    max_steps: int = 0
    interrupted: bool = False  # Ctrl-C: a checkpoint was saved, `--resume` continues
    out_of_time: bool = False  # --max-minutes ended it before max_steps; the adapter was written
    train_loss: float | None = None
    eval_loss: float | None = None
    train_tokens: int = 0  # tokens through the model in this run (padding excluded)
    tokens_per_s: float = 0.0
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    rows: dict = field(default_factory=dict)  # per split: rows, truncated, skipped
    reader_head: dict = field(default_factory=dict)  # its examples and held-out exact match; empty if none was trained

    def to_json(self) -> dict:
        """Plain data for metrics.json, floats rounded."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def train(
    cfg: TrainConfig,
    progress: Callable[[int, int, dict], None] | None = None,
    stop: threading.Event | None = None,
    on_status: Callable[[str], None] | None = None,
) -> TrainReport:
    """Train a LoRA adapter on `cfg.data`, write it to `cfg.out` (or a new adapters/ folder).

    Args:
        cfg: the resolved config.
        progress: called after each optimizer step with (step, max_steps, {loss, tokens_per_s}).
        stop: set from another thread (the app's Stop button) to stop as Ctrl-C does.
        on_status: called with a line as each slow phase before the first step starts (model load, tokenizing, trainer setup).
    Returns:
        The report; `interrupted` if Ctrl-C or `stop` stopped it (a checkpoint is then saved in `out`).
    Raises:
        ConfigError: bad --data/--out/--resume/--init-adapter/--target-modules, naming the flag.
        ValueError: an empty dataset.
        RuntimeError: non-finite loss, a checkpoint of another base model.
    """
    from ragtune.core import offline
    from ragtune.engine import model as model_lib

    offline.setup()
    keep_freed_memory()
    status = on_status or (lambda line: None)
    t_start = time.perf_counter()
    out = _resolve_out(cfg)  # None: a new folder under adapters/, made once the run starts
    data = _resolve_data(cfg, out)
    status(f"loading model {cfg.model.model} ...")  # the packaged GGUF is converted to a model folder on first use
    model_path = model_lib.resolve(cfg.model)
    checkpoint = _last_checkpoint(out) if cfg.resume else None
    if cfg.resume:
        model_lib.check_base(model_lib.adapter_config(checkpoint, "--resume", ConfigError), checkpoint, model_path, "--resume")
        cfg = _as_started(cfg, out)
    cfg, init = _init_adapter(cfg, model_path)

    # Load the model and the data
    import torch
    from datasets import disable_progress_bars
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragtune.engine import head as H
    from ragtune.train import head as head_lib
    from ragtune.train.data import load_splits

    disable_progress_bars()  # datasets' map/packing bars, a screenful each; ours is the training bar
    if cfg.model.threads:
        torch.set_num_threads(cfg.model.threads)
    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=cfg.model.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise RuntimeError(f"--model {cfg.model.model}: has no chat template; ragtune trains chat models")
    status(f"tokenizing {data} ...")
    train_rows, eval_rows = load_splits(data, tokenizer, cfg.max_length)
    examples = head_lib.read_examples(data / "train.jsonl") if cfg.reader_head else []
    if cfg.reader_head and not examples:
        status(f"--data {data}: no RAFT row carries its chunks (made before reader heads; run `ragtune synth` again): LoRA only")
    if cfg.eval_rows:  # eval loss is a check, not the product: a fixed sample keeps each eval short
        eval_rows.input_ids, eval_rows.labels = eval_rows.input_ids[: cfg.eval_rows], eval_rows.labels[: cfg.eval_rows]
    # bf16: the frozen base weights are stored and multiplied in bf16; PEFT keeps LoRA's own in fp32
    # (autocast_adapter_dtype), so the small updates do not vanish in bf16's 8-bit mantissa.
    dtype = torch.bfloat16 if cfg.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code)
    if init is None:
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=_check_targets(model, cfg.target_modules),
            task_type="CAUSAL_LM",
        )
    else:  # trained further: its own LoRA weights, trainable; no new LoRA on top
        model, lora = PeftModel.from_pretrained(model, str(init), is_trainable=True), None
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard")
    out = out or new_run_dir(adapters_dir(cfg.workdir))
    if cfg.tensorboard:  # transformers' TensorBoard callback reads its folder from the environment only
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(out / "runs"))

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "train_config.json", _run_record(cfg, data, out, model_path), indent=2)

    # Train
    status(
        f"training on {len(train_rows.input_ids)} rows{' (packing them first)' if cfg.packing else ''}; the bar appears after the first step ..."
    )
    from trl import SFTConfig, SFTTrainer

    has_eval = bool(eval_rows.input_ids)
    args = SFTConfig(
        output_dir=str(out),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.lr,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length,
        truncation_mode="keep_end",  # rows are already cut this way in train/data.py
        packing=cfg.packing,  # bfd packing: padding-free batches, sequences kept apart by position_ids
        pad_to_multiple_of=cfg.pad_to_multiple_of if cfg.pad_to_multiple_of > 1 else None,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        bf16=cfg.bf16,  # autocast
        gradient_checkpointing=False,  # TRL's default is on; on CPU memory is plentiful and recompute is slow (bench/train.py)
        seed=cfg.seed,
        logging_steps=1,
        logging_nan_inf_filter=False,  # a NaN must reach our check, not be averaged away
        eval_strategy="steps" if has_eval and cfg.eval_steps else "no",
        eval_steps=cfg.eval_steps or None,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        report_to=["tensorboard"] if cfg.tensorboard else [],
        disable_tqdm=True,  # our own bar shows loss and tokens/s
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),  # transformers refuses bf16 on CPU unless told it is one
    )
    watch = _Watch(progress, stop, budget_s=cfg.max_minutes * 60)
    callbacks, trainer_class, head = [watch], SFTTrainer, None
    if examples:  # the reader head trains beside LoRA, its loss added to each batch's (train/head.py)
        torch.manual_seed(cfg.seed)
        head = H.ReaderHead(model.config.hidden_size)
        start = checkpoint if checkpoint is not None else init  # a head goes on from where it was, as LoRA does
        if start is not None and (loaded := H.load(start)) is not None:
            head = loaded.train()
        trainer_class = head_lib.trainer_class(
            SFTTrainer, head, examples, tokenizer, cfg.seed, watch.add_tokens, cfg.pad_to_multiple_of, cfg.head_examples
        )
        callbacks.append(_SaveHead(head))
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_rows.to_dataset(),
        eval_dataset=eval_rows.to_dataset() if has_eval else None,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=callbacks,
    )
    watch.trainer = trainer
    watch.count_train_tokens(trainer)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; our bar shows loss and tokens/s
    with _ctrl_c_stops(watch):
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    report = TrainReport(
        out=str(out),
        data=str(data),
        steps=trainer.state.global_step,
        max_steps=trainer.state.max_steps,
        interrupted=watch.interrupted,
        out_of_time=watch.out_of_time,
        train_loss=_mean_train_loss(trainer.state.log_history),
        train_tokens=watch.tokens,
        tokens_per_s=watch.tokens_per_s,
        rows={"train": train_rows.summary(), "eval": eval_rows.summary()},
    )
    if watch.interrupted:  # the callback saved a checkpoint at this step
        report.wall_s, report.peak_rss_mb = time.perf_counter() - t_start, _peak_rss_mb()
        return report

    # Write the adapter folder
    if has_eval:
        report.eval_loss = trainer.evaluate()["eval_loss"]
    trainer.save_model(str(out))  # adapter_config.json + adapter_model.safetensors
    if head is not None:
        held_out = head_lib.read_examples(data / "eval.jsonl")
        read = {"examples": len(examples), "read": trainer.head_read}
        report.reader_head = {**read, **head_lib.exact(trainer.model.eval(), head.eval(), tokenizer, held_out)}
        H.save(head, out, report.reader_head)
    tokenizer.save_pretrained(str(out))  # with its chat template
    history = trainer.state.log_history
    _write_curves(out, history)
    for old in out.glob("checkpoint-*"):  # the adapter is the product; checkpoints were for --resume
        shutil.rmtree(old, ignore_errors=True)
    report.wall_s, report.peak_rss_mb = time.perf_counter() - t_start, _peak_rss_mb()
    write_json(out / "metrics.json", report.to_json(), indent=2)  # last: it marks a finished run
    return report


def keep_freed_memory() -> None:
    """Have glibc keep freed memory for reuse rather than hand it back to the kernel.

    Each step allocates and frees the same large activation buffers. By default glibc maps
    every block over 32 MB afresh and unmaps it when freed, so the kernel faults in and zeroes
    every page again, step after step. Kept, steps run faster for a peak RSS that stays at its
    high-water mark (README, "Train an adapter"; bench/train.py, `ragtune-glibc-malloc`).
    Other C libraries (macOS, musl) have no mallopt: nothing to do.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    libc.mallopt(m_mmap_threshold, 1 << 30)  # blocks up to 1 GiB come from the heap, which is reused
    libc.mallopt(m_trim_threshold, 1 << 30)  # and the heap is not trimmed until 1 GiB of it is free


# Where things are --------------------------------------------------------------------------------


def _resolve_out(cfg: TrainConfig) -> Path | None:
    """--out, or the run --resume continues; None for a new run (its folder is made when it starts)."""
    adapters = adapters_dir(cfg.workdir)
    if cfg.resume:
        if cfg.out:
            out = Path(cfg.out).expanduser()
        else:  # the newest run that has a checkpoint and no finished adapter
            runs = [p for p in adapters.glob("*") if any(p.glob("checkpoint-*")) and not (p / "adapter_config.json").exists()]
            if not runs:
                raise ConfigError(f"--resume: no unfinished run under {adapters}; pass --out DIR")
            out = max(runs, key=lambda p: (p / "train_config.json").stat().st_mtime if (p / "train_config.json").exists() else 0)
        if not out.is_dir():
            raise ConfigError(f"--resume: --out {out} does not exist")
        return out
    if cfg.out:
        out = Path(cfg.out).expanduser()
        if out.exists() and any(out.iterdir()):
            if not cfg.overwrite:
                raise ConfigError(f"--out {out} exists and is not empty: pass --overwrite to replace it, or --resume to continue it")
            shutil.rmtree(out)
        return out
    return None


def _resolve_data(cfg: TrainConfig, out: Path | None) -> Path:
    """--data, else the resumed run's own data, else the newest dataset; a ConfigError naming --data if none."""
    if cfg.data:
        path = Path(cfg.data).expanduser()
    elif cfg.resume and (out / "train_config.json").exists():  # the run's own data, not a newer dataset
        path = Path(json.loads((out / "train_config.json").read_text())["data"])
    else:
        path = newest_dataset(cfg.workdir)
        if path is None:
            raise ConfigError(f"--data: no dataset under {datasets_dir(cfg.workdir)}; run `ragtune synth` first or pass --data DIR")
    if not path.is_dir():
        raise ConfigError(f"--data {path}: no such folder")
    return path


# What a run is: resuming it with other values would not continue it (another LoRA shape, batch or schedule).
RUN_SETTINGS = (
    "init_adapter",
    "epochs",
    "max_steps",
    "max_minutes",
    "lr",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "max_length",
    "batch_size",
    "grad_accum",
    "packing",
    "pad_to_multiple_of",
    "group_by_length",
    "bf16",
    "reader_head",
    "head_examples",
    "seed",
    "eval_steps",
    "eval_rows",
    "save_steps",
)


def _run_record(cfg: TrainConfig, data: Path, out: Path, model_path: str) -> dict:
    """What train_config.json holds: the resolved settings, the data, the folder and the base model's files."""
    return json.loads(json.dumps({**to_dict(cfg), "data": str(data), "out": str(out), "model_path": model_path}, default=str))


def finished_run(cfg: TrainConfig) -> Path | None:
    """The newest finished adapter under <workdir>/adapters that `cfg` would train again: the same
    run settings, dataset and base model. `ragtune demo` reuses it instead of training twice."""
    from ragtune.engine import model as model_lib

    if not cfg.data:
        return None
    want = _run_record(cfg, Path(cfg.data).expanduser(), Path(), model_lib.resolve(cfg.model))
    done = sorted(adapters_dir(cfg.workdir).glob("*/metrics.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for metrics in done:  # metrics.json is written last, by a run that finished
        try:
            saved = json.loads((metrics.parent / "train_config.json").read_text())
        except (OSError, ValueError):
            continue
        if all(saved.get(k) == want[k] for k in (*RUN_SETTINGS, "data", "model_path")):
            return metrics.parent
    return None


def _as_started(cfg: TrainConfig, out: Path) -> TrainConfig:
    """`--resume` continues the run as it was started: its own settings, not today's defaults or flags."""
    path = out / "train_config.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    return replace(cfg, **{k: saved[k] for k in RUN_SETTINGS if k in saved})


def _last_checkpoint(out: Path) -> Path:
    found = [p for p in out.glob("checkpoint-*") if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").exists()]
    if not found:
        raise ConfigError(f"--resume: no checkpoint in {out} (it finished, or was stopped before its first save)")
    return max(found, key=lambda p: int(p.name.split("-")[-1]))


def _init_adapter(cfg: TrainConfig, model_path: str) -> tuple[TrainConfig, Path | None]:
    """The run's config with --init-adapter's own LoRA shape (so the record says what was trained), and
    that adapter's folder; `cfg` and None without one."""
    from ragtune.engine import model as model_lib

    if not cfg.init_adapter:
        return cfg, None
    path = Path(cfg.init_adapter).expanduser()
    saved = model_lib.adapter_config(path, "--init-adapter", ConfigError)
    if saved.get("peft_type", "LORA") != "LORA" or not {"r", "lora_alpha"} <= saved.keys():
        raise ConfigError(f"--init-adapter {path}: peft_type {saved.get('peft_type')}, not a LoRA adapter; ragtune trains LoRA")
    model_lib.check_base(saved, path, model_path, "--init-adapter")
    targets = saved.get("target_modules") or cfg.target_modules
    shape = {
        "lora_r": saved["r"],
        "lora_alpha": saved["lora_alpha"],
        "lora_dropout": saved.get("lora_dropout", 0.0),
        "target_modules": sorted(targets) if isinstance(targets, list) else [targets],
    }
    return replace(cfg, **shape), path


def _check_targets(model, targets: list[str]) -> list[str] | str:
    """The LoRA targets, checked against the model's linear layers (PEFT's own error lists nothing)."""
    import torch

    if targets == [ALL_LINEAR]:
        return ALL_LINEAR
    valid = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)} - {"lm_head"})
    unknown = [t for t in targets if t not in valid]
    if unknown:
        raise ConfigError(f"--target-modules: {', '.join(unknown)} not in this model; valid: {', '.join(valid)} (or {ALL_LINEAR})")
    return targets


# What we watch while it trains --------------------------------------------------------------------


class _Watch(TrainerCallback):
    """Progress, tokens/s, the non-finite loss check, the time budget and the Ctrl-C stop, as Trainer callbacks."""

    def __init__(self, progress, stop: threading.Event | None = None, budget_s: float = 0.0):
        self.progress, self.stop, self.trainer, self.budget_s = progress, stop, None, budget_s
        self.stop_requested = self.interrupted = self.out_of_time = False
        self.t0, self.seen, self.seen0, self.tokens, self.tokens_per_s, self.loss = 0.0, 0, 0, 0, 0.0, None
        self.batches: collections.deque[int] = collections.deque()  # real tokens of each collated, not yet trained batch

    def count_train_tokens(self, trainer) -> None:
        """Count the tokens of each training batch as it is collated, padding excluded.

        TRL counts padded lengths, and `pad_to_multiple_of` pads; tokens/s must count text. Only
        the training loader gets the counting collator (eval batches are not training).
        """
        self.trainer, make = trainer, trainer.get_train_dataloader

        def get_train_dataloader():
            inner = trainer.data_collator

            def counting(examples):
                self.batches.append(sum(len(e["input_ids"]) for e in examples))
                return inner(examples)

            trainer.data_collator = counting
            try:
                return make()
            finally:
                trainer.data_collator = inner

        trainer.get_train_dataloader = get_train_dataloader

    def add_tokens(self, n: int) -> None:
        """Tokens read outside the collated batches (the reader head's examples)."""
        self.seen += n

    def on_train_begin(self, args, state, control, **kw):
        # A resumed run goes on from the count in the checkpoint's log history (loaded before this call).
        self.seen = next((h["tokens"] for h in reversed(state.log_history) if "tokens" in h), 0)
        self.t0, self.seen0 = time.perf_counter(), self.seen

    def on_log(self, args, state, control, logs=None, **kw):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                raise RuntimeError(
                    f"training stopped: {key} is {value} at step {state.global_step}. Lower --lr "
                    f"(now {args.learning_rate:g}), or check the model and the data; no adapter was written"
                )
        if (logs or {}).get("loss") is not None:  # logged once per step, after on_step_end
            self.loss = logs["loss"]
            # on the entry just logged, so kept in checkpoints and across a resume
            state.log_history[-1].update(tokens=self.seen, rss_mb=_rss_mb())
            if self.progress:
                self.progress(state.global_step, state.max_steps, {"loss": self.loss, "tokens_per_s": self.tokens_per_s})

    def on_step_end(self, args, state, control, **kw):
        # this step's batches; the loader may have collated the next step's first one already
        for _ in range(min(args.gradient_accumulation_steps, len(self.batches))):
            self.seen += self.batches.popleft()
        self.tokens = self.seen - self.seen0
        self.tokens_per_s = self.tokens / max(time.perf_counter() - self.t0, 1e-9)
        if self.stop_requested or (self.stop is not None and self.stop.is_set()):  # set here, so the trainer saves before it stops
            control.should_save = control.should_training_stop = True
            self.interrupted = True
        elif self.budget_s and time.perf_counter() - self.t0 >= self.budget_s and state.global_step < state.max_steps:
            control.should_training_stop = self.out_of_time = True  # a finished run: the adapter is written as at the last step


class _SaveHead(TrainerCallback):
    """The reader head goes into each checkpoint beside the adapter, so `--resume` continues it too."""

    def __init__(self, head):
        self.head = head

    def on_save(self, args, state, control, **kw):
        from ragtune.engine import head as H

        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            H.save(self.head, folder, {})


class _ctrl_c_stops:
    """The first Ctrl-C asks the trainer to checkpoint and stop after this step; a second one kills."""

    def __init__(self, watch: _Watch):
        self.watch, self.old = watch, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.watch.stop_requested:
            raise KeyboardInterrupt
        self.watch.stop_requested = True

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


# Outputs ----------------------------------------------------------------------------------------


def _mean_train_loss(history: list[dict]) -> float | None:
    """The mean of the last 10 logged step losses: the end of the curve, less noisy than one step."""
    losses = [h["loss"] for h in history if "loss" in h]
    return sum(losses[-10:]) / len(losses[-10:]) if losses else None


def _write_curves(out: Path, history: list[dict]) -> None:
    """loss.csv (step, tokens, train_loss, eval_loss, rss_mb) and loss.png, from the trainer's log history."""
    rows: dict[int, dict] = {}
    for h in history:
        row = rows.setdefault(h.get("step", 0), {"step": h.get("step", 0), "tokens": "", "train_loss": "", "eval_loss": "", "rss_mb": ""})
        if "loss" in h:
            row["train_loss"] = h["loss"]
        if "eval_loss" in h:
            row["eval_loss"] = h["eval_loss"]
        if "tokens" in h:
            row["tokens"] = int(h["tokens"])
        if "rss_mb" in h:
            row["rss_mb"] = h["rss_mb"]
    table = [rows[s] for s in sorted(rows) if rows[s]["train_loss"] != "" or rows[s]["eval_loss"] != ""]
    with (out / "loss.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "tokens", "train_loss", "eval_loss", "rss_mb"])
        writer.writeheader()
        writer.writerows(table)

    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in (("train_loss", "train"), ("eval_loss", "eval")):
        pts = [(r["step"], r[key]) for r in table if r[key] != ""]
        if pts:
            ax.plot(*zip(*pts), label=label, marker="o" if key == "eval_loss" else None, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (answer tokens)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)


def _rss_mb() -> float:
    """The resident memory now (the peak alone cannot tell a leak or fragmentation from one big step)."""
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
