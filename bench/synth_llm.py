"""LLM synthesis speed: `--generator local` (one batched `Engine.generate` per batch) against
`--generator openai` through a `ragtune serve` on loopback, same model, same chunks, same run.

    python bench/synth_llm.py [--workdir /tmp/ragtune-bench-squad] [--chunks 16] [--repeats 3] [--concurrency 4]
    python bench/synth_llm.py --chunks 2 --repeats 1     # a smoke check

Both generators run the default configs/synth.yaml settings (4 facts a chunk with 2 paraphrases
each, 384 new tokens, temperature 0.7, seed 0) with the packaged model: `local` in this process,
`openai` against `ragtune serve --workdir WORKDIR` started here with its default config, so the
prompt and the decoding are the same and only the path differs. The chunks are the first
--chunks of the index in the order `ragtune synth` reads them (by file, then position).
Reported per repeat and as medians over --repeats: drafts/s (every draft, malformed included),
pairs/s (drafts that parsed and passed the generator's checks; grounding and dedup come later
in the pipeline), and the ratio against `local` (the baseline). Repeats alternate local and
openai, so drift on the machine hits both alike.

`ragtune serve` answers one request at a time (engine/server.py), so --concurrency only queues
requests there; against an endpoint that batches (vLLM, llama.cpp with slots) it overlaps them.
The last line says how much CPU processes other than this one and its server took meanwhile: on
2 cores one busy neighbour slows torch generation several times (~10x in bench/generate.py),
and figures from such a run are not comparable.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from serve_memory import free_port, stop, wait_until_up  # noqa: E402  (bench/ is on the path)

from ragtune.core import offline  # noqa: E402

offline.setup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/ragtune-bench-squad", help="an ingested work dir (default: the SQuAD dev articles)")
    ap.add_argument("--chunks", type=int, default=16, help="chunks generated for, per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=4, help="openai: requests in flight")
    args = ap.parse_args()

    from ragtune.core.config import load_config
    from ragtune.synth.config import SynthConfig
    from ragtune.synth.llm import LocalGenerator, OpenAIGenerator

    # The chunks
    chunks = first_chunks(Path(args.workdir), args.chunks)
    print(f"{len(chunks)} chunks of {args.workdir}, {statistics.mean(len(c.text.split()) for c in chunks):.0f} words on average")

    # The generators: the engine loaded here, the same model behind `ragtune serve`
    local = LocalGenerator(load_config(SynthConfig, {"workdir": args.workdir, "generator": "local"}))
    t = time.perf_counter()
    _ = local.engine  # loaded now, so no repeat pays for it
    print(f"local: model loaded in {time.perf_counter() - t:.1f} s; settings {local.settings}")
    runs: dict[str, list[tuple[float, int, int]]] = {"local": [], "openai": []}
    with serving(args.workdir) as (url, server_pid):
        load = OtherLoad(server_pid)
        remote = OpenAIGenerator(
            load_config(
                SynthConfig,
                {"workdir": args.workdir, "generator": "openai", "base_url": url, "model": "base", "concurrency": args.concurrency},
            )
        )
        # Generate
        for r in range(args.repeats):
            for name, gen in (("local", local), ("openai", remote)):
                seconds, drafts, valid = measure(gen, chunks)
                runs[name].append((seconds, drafts, valid))
                print(
                    f"repeat {r + 1} {name:<7} {seconds:7.1f} s  {drafts / seconds:6.2f} drafts/s  {valid / seconds:6.2f} pairs/s  "
                    f"({valid} of {drafts} drafts valid)"
                )
        other = load.share()

    # Report
    base = statistics.median(valid / s for s, _, valid in runs["local"]) or float("nan")
    print(f"\nmedians over {args.repeats} repeats, {len(chunks)} chunks each")
    print(f"{'generator':<44}{'drafts/s':>10}{'pairs/s':>10}{'valid':>8}{'pairs/s vs local':>18}")
    labels = {"local": "local: batched Engine.generate (baseline)", "openai": f"openai: ragtune serve, concurrency {args.concurrency}"}
    for name, rs in runs.items():
        pairs = statistics.median(v / s for s, _, v in rs)
        print(
            f"{labels[name]:<44}{statistics.median(d / s for s, d, _ in rs):>10.2f}{pairs:>10.2f}"
            f"{sum(v for _, _, v in rs) / max(sum(d for _, d, _ in rs), 1):>8.0%}{pairs / base:>17.2f}x"
        )
    note = "figures are trustworthy" if other < 0.1 else "figures are NOT comparable: rerun on an idle machine"
    print(f"\nother processes used {other:.0%} of the {os.cpu_count()} cores meanwhile ({note})")


def first_chunks(workdir: Path, n: int) -> list:
    from ragtune.core.config import load_config
    from ragtune.rag.config import SearchConfig
    from ragtune.rag.index import Index

    index = Index(load_config(SearchConfig, {"workdir": str(workdir)}).index, workdir)
    chunks = sorted(index.all_chunks(), key=lambda c: (c.source, c.index, c.id))[:n]
    if not chunks:
        sys.exit(
            f"{workdir}: the index is empty; ingest the SQuAD articles first (`ragtune ingest ../shared/eval/squad/docs --workdir {workdir}`)"
        )
    return chunks


def measure(gen, chunks: list) -> tuple[float, int, int]:
    """Seconds for one `generate` over all chunks, drafts made, drafts without an error."""
    t = time.perf_counter()
    out = gen.generate(chunks)
    seconds = time.perf_counter() - t
    drafts = [d for ds in out for d in ds]
    return seconds, len(drafts), sum(not d.error for d in drafts)


@contextlib.contextmanager
def serving(workdir: str):
    """`ragtune serve` with its default config on a free loopback port; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    with tempfile.NamedTemporaryFile("w+") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "ragtune.cli", "serve", "--workdir", workdir, "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            t = time.perf_counter()
            wait_until_up(server, url, Path(log.name))
            print(f"openai: ragtune serve up at {url} in {time.perf_counter() - t:.1f} s")
            yield url, server.pid
        finally:
            stop(server)


class OtherLoad:
    """The share of the machine used by processes other than this one and the server, from /proc."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.start = self._now()

    def share(self) -> float:
        wall, busy, own, server = (now - then for now, then in zip(self._now(), self.start))
        return max(busy - own - server, 0) / (wall * (os.cpu_count() or 1))

    def _now(self) -> tuple[float, float, float, float]:
        tick = os.sysconf("SC_CLK_TCK")
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
        )
        fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / tick  # utime and stime, fields 14 and 15 of proc(5)
        return time.perf_counter(), (user + nice + system + irq + softirq + steal) / tick, time.process_time(), server


if __name__ == "__main__":
    main()
