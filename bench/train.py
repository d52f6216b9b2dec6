"""Training speed: `ragtune train` against plain TRL SFTTrainer defaults, in the same run.

    .venv/bin/python bench/train.py                       # 20 steps x 8 rows, 3 runs each
    .venv/bin/python bench/train.py --steps 5 --repeats 3 --eval-rows 16 --variants baseline,baseline-no-ckpt,baseline-bf16,ragtune,ragtune-dropout

Same model (the packaged SmolLM2-135M), same rows (the first steps x batch rows of a seeded
shuffle of the SQuAD synth dataset's train.jsonl), same LoRA rank and targets, same max_length.
Each run is a fresh process, so its peak RSS is its own. Tokens/s counts real tokens (no
padding) through the model, from the first step to the last: TRL's `num_tokens` for the baseline
(no packing: the attention mask's sum), ragtune's own count for ours (TRL's would count padding).
Eval loss is on the final answer's tokens of the first --eval-rows eval rows, for every variant.

The baseline is SFTTrainer with its defaults on the `messages` rows: fp32 (bf16=False, as the
issue's 178 tokens/s figure), no packing, loss on every token, gradient checkpointing on.
baseline-no-ckpt and baseline-bf16 turn TRL's own knobs (recomputation off, then bf16 autocast):
the best a user gets from plain TRL without our changes. Ratios are against the first variant.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BENCH_WORKDIR = "/tmp/ragtune-bench-squad"
# name -> overrides of configs/train.yaml (as shipped) for `ragtune train`; "baseline" is plain TRL
VARIANTS = {
    "ragtune": {},
    "ragtune-fp32": {"bf16": False, "packing": False},
    "ragtune-bf16": {"packing": False},
    "ragtune-bucketed": {"packing": False, "group_by_length": True},
    "ragtune-dropout": {"lora_dropout": 0.05},  # the LoRA default: a masked fp32 copy of each input, 7 per layer
    "ragtune-micro2": {"batch_size": 2, "grad_accum": 4},  # 2 packed rows per forward pass (same 8 x 512 per step)
    "ragtune-1-thread": {"model.threads": 1},
    "ragtune-glibc-malloc": {"keep_freed_memory": False},  # glibc's defaults: big blocks unmapped when freed
    "ragtune-no-pad": {"pad_to_multiple_of": 1},  # every batch length its own shape: oneDNN's caches grow
    "ragtune-compile": {"torch_compile": True},
    "ragtune-head": {"reader_head": True},  # with the reader head (engine/head.py): what its examples and loss cost
}
# name -> SFTConfig changes to plain TRL's defaults: how far a user gets by turning TRL's own knobs
BASELINES = {
    "baseline": {},
    "baseline-no-ckpt": {"gradient_checkpointing": False},  # TRL turns recomputation on by default
    "baseline-bf16": {"gradient_checkpointing": False, "bf16": True},  # and bf16 autocast on top
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a synth dataset folder (default: newest under /tmp/ragtune-bench-squad)")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per run (token budget = steps x batch rows)")
    ap.add_argument("--batch-size", type=int, default=8, help="rows per optimizer step, for every variant")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eval-rows", type=int, default=32)
    ap.add_argument("--variants", default="baseline,ragtune")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant in this process
    ap.add_argument("--bench-data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args)), flush=True)
        return

    from ragtune.core.workdir import newest_dataset

    source = Path(args.data) if args.data else newest_dataset(BENCH_WORKDIR)
    if source is None:
        sys.exit(f"no dataset: run `.venv/bin/python cli.py synth --workdir {BENCH_WORKDIR}` first")
    tmp = Path(tempfile.mkdtemp(prefix="ragtune-bench-train-"))
    data = make_subset(source, tmp / "data", args.steps * args.batch_size, args.eval_rows)
    names = args.variants.split(",")
    results: dict[str, list[dict]] = {n: [] for n in names}
    print(
        f"data: {source} -> {args.steps * args.batch_size} train rows, {args.eval_rows} eval rows; "
        f"{args.steps} steps x {args.batch_size} rows, max_length {args.max_length}, LoRA r {args.lora_r}",
        flush=True,
    )
    for i in range(args.repeats):  # interleaved, so drift in the machine's load hits every variant alike
        for name in names:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                name,
                "--bench-data",
                str(data),
                "--steps",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
                "--max-length",
                str(args.max_length),
                "--lora-r",
                str(args.lora_r),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(line[7:])
            results[name].append(r)
            print(
                f"  run {i + 1} {name:<22} {r['tokens_per_s']:7.0f} tok/s  eval loss {r['eval_loss']:.4f}  "
                f"{r['train_tokens']} tokens  {r['train_s']:.1f} s  peak RSS {r['peak_rss_mb'] / 1024:.2f} GiB",
                flush=True,
            )

    print(f"\nmedians of {args.repeats} runs")
    base = statistics.median(r["tokens_per_s"] for r in results[names[0]])
    for name in names:
        rs = results[name]
        tps = statistics.median(r["tokens_per_s"] for r in rs)
        print(
            f"{name:<22} {tps:7.0f} tok/s  x{tps / base:4.2f} vs {names[0]}  eval loss {statistics.median(r['eval_loss'] for r in rs):.4f}  "
            f"peak RSS {max(r['peak_rss_mb'] for r in rs) / 1024:.2f} GiB (the worst run)  train {statistics.median(r['train_s'] for r in rs):.1f} s"
        )


def make_subset(source: Path, out: Path, n_train: int, n_eval: int) -> Path:
    """The first n rows of a seeded shuffle of train.jsonl (every row kind mixed), and the first eval rows."""
    out.mkdir(parents=True)
    train = (source / "train.jsonl").read_text().splitlines()
    random.Random(0).shuffle(train)
    (out / "train.jsonl").write_text("\n".join(train[:n_train]) + "\n")
    (out / "eval.jsonl").write_text("\n".join((source / "eval.jsonl").read_text().splitlines()[:n_eval]) + "\n")
    (out / "dataset.json").write_text("{}")
    return out


def run_one(args) -> dict:
    from ragtune.core import offline

    offline.setup()
    data = Path(args.bench_data)
    if args.one in BASELINES:
        return run_baseline(args, data, BASELINES[args.one])
    from ragtune.core.config import load_config
    from ragtune.train.config import TrainConfig
    from ragtune.train.run import train

    # One epoch over the same rows as the baseline: equal tokens, even when packing changes the step count.
    # 8 rows a step as configs/train.yaml splits them (1 row per forward pass x 8), unless a variant says otherwise.
    overrides = {
        "data": str(data),
        "out": tempfile.mkdtemp(prefix="ragtune-bench-adapter-"),
        "overwrite": True,
        "epochs": 1,
        "max_steps": -1,
        "grad_accum": args.batch_size,
        "max_length": args.max_length,
        "lora_r": args.lora_r,
        "lora_alpha": 2 * args.lora_r,
        "eval_steps": 0,
        "save_steps": 10**6,
        "seed": 0,
    }
    overrides.update(VARIANTS[args.one])
    if not overrides.pop("keep_freed_memory", True):
        from ragtune.train import run as run_module

        run_module.keep_freed_memory = lambda: None
    if overrides.pop("torch_compile", False):
        import trl

        init = trl.SFTConfig.__init__
        trl.SFTConfig.__init__ = lambda self, *a, **kw: init(self, *a, **{**kw, "torch_compile": True})
    report = train(load_config(TrainConfig, overrides))
    return {
        "tokens_per_s": report.tokens_per_s,
        "eval_loss": report.eval_loss,
        "train_tokens": report.train_tokens,
        "train_s": report.train_tokens / max(report.tokens_per_s, 1e-9),
        "peak_rss_mb": report.peak_rss_mb,
    }


def run_baseline(args, data: Path, changes: dict) -> dict:
    """Plain TRL: SFTTrainer on the `messages` rows with its defaults (fp32, unless `changes` say
    otherwise), LoRA of the same rank and targets."""
    import resource

    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from ragtune.engine import model as model_lib
    from ragtune.engine.config import ModelConfig
    from ragtune.train.data import read_split

    path = model_lib.resolve(ModelConfig(model="packaged", trust_remote_code=False, dtype="fp32", cache_dir=None, threads=0))
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    train_ds = load_dataset("json", data_files=str(data / "train.jsonl"), split="train").select_columns(["messages"])
    # Eval on the answer tokens, exactly as `ragtune train` evaluates: same rows, same labels.
    eval_ds = read_split(data / "eval.jsonl", tokenizer, args.max_length).to_dataset()

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **kw):
            self.t1 = time.perf_counter()

    clock = Clock()
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    sft = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="ragtune-bench-trl-"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        max_length=args.max_length,
        learning_rate=2e-4,
        bf16=False,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        **changes,
    )
    trainer = SFTTrainer(
        model=model,
        args=sft,
        train_dataset=train_ds,
        processing_class=tokenizer,
        callbacks=[clock],
        peft_config=LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.05, target_modules=targets, task_type="CAUSAL_LM"),
    )
    trainer.train()
    tokens = int(trainer._total_train_tokens)
    seconds = clock.t1 - clock.t0
    eval_loss = trainer.evaluate(eval_dataset=eval_ds)["eval_loss"]
    return {
        "tokens_per_s": tokens / seconds,
        "eval_loss": eval_loss,
        "train_tokens": tokens,
        "train_s": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    main()
