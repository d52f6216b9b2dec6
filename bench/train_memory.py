"""Training memory over time: resident memory per forward pass, with and without padded batch lengths.

    .venv/bin/python bench/train_memory.py                     # 80 passes each: ragtune, ragtune-no-pad
    .venv/bin/python bench/train_memory.py --passes 200 --variants ragtune,ragtune-no-pad,ragtune-glibc-malloc

A peak alone cannot tell a step that needs much memory from memory that grows: this runs
`ragtune train` one packed row per optimizer step (grad_accum 1) on the SQuAD synth rows, so
loss.csv's rss_mb is the resident memory after each forward and backward pass, and prints it
every 10 passes, with the growth from pass 10 to the last and tokens/s. Each variant runs in a
fresh process. Rows of many lengths are the point: packed rows of ~500 distinct lengths made
oneDNN keep kernels and buffers for each, and the memory grew with every new length.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = {  # name -> overrides of configs/train.yaml
    "ragtune": {},
    "ragtune-no-pad": {"pad_to_multiple_of": 1},
    "ragtune-glibc-malloc": {"keep_freed_memory": False},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a synth dataset folder (default: newest under /tmp/ragtune-bench-squad)")
    ap.add_argument("--passes", type=int, default=80, help="forward passes (= optimizer steps at grad_accum 1)")
    ap.add_argument("--variants", default="ragtune,ragtune-no-pad")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run_one(args)
        return

    from ragtune.core.workdir import newest_dataset

    data = Path(args.data) if args.data else newest_dataset("/tmp/ragtune-bench-squad")
    if data is None:
        sys.exit("no dataset: run `.venv/bin/python cli.py synth --workdir /tmp/ragtune-bench-squad` first")
    tmp = Path(tempfile.mkdtemp(prefix="ragtune-bench-memory-"))
    print(f"data: {data}; {args.passes} passes of one packed row (<= 512 tokens) each")
    for name in args.variants.split(","):
        out = tmp / name
        cmd = [sys.executable, __file__, "--one", name, "--data", str(data), "--passes", str(args.passes), "--out", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows = list(csv.DictReader((out / "loss.csv").open()))
        rss = [float(r["rss_mb"]) for r in rows if r["rss_mb"]]
        metrics = json.loads((out / "metrics.json").read_text())
        every = ", ".join(f"{r:.0f}" for r in rss[9::10])
        print(
            f"{name:<22} rss MB every 10 passes: {every}; growth pass 10 -> {len(rss)}: {rss[-1] - rss[9]:+.0f} MB; "
            f"peak {metrics['peak_rss_mb']:.0f} MB; {metrics['tokens_per_s']:.0f} tokens/s"
        )


def run_one(args) -> None:
    from ragtune.core import offline
    from ragtune.core.config import load_config
    from ragtune.train import run as R
    from ragtune.train.config import TrainConfig

    offline.setup()
    overrides = dict(VARIANTS[args.one])
    if not overrides.pop("keep_freed_memory", True):
        R.keep_freed_memory = lambda: None
    cfg = load_config(
        TrainConfig,
        {
            "workdir": "/tmp/ragtune-bench-squad",
            "data": args.data,
            "out": args.out,
            "overwrite": True,
            "max_steps": args.passes,
            "grad_accum": 1,
            "eval_steps": 0,
            "eval_rows": 8,
            "save_steps": 10_000,
            **overrides,
        },
    )
    R.train(cfg)


if __name__ == "__main__":
    main()
