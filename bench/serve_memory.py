"""Peak memory of `ragtune serve` with the base model and a LoRA adapter, against a bare transformers process, in the same run.

    python bench/serve_memory.py [--requests 3] [--keep]

In a temporary work dir: `ragtune ingest sample/docs`, a fresh LoRA adapter for the packaged
model (r 16, alpha 32 on q/k/v/o), then `ragtune serve --adapter` as a subprocess. After
--requests answers in each of the four modes (the last one streamed), the server's VmHWM
(peak resident memory) and VmRSS are read from /proc/<pid>/status.
Reference processes, measured the same way after one 16-token answer:
  - bare: `AutoModelForCausalLM.from_pretrained` of the same folder, fp32 (the baseline);
  - engine: ragtune's `Engine` with the adapter, one answer with it and one without.
On top of the engine, the server holds the retrieval stack (the embedding model in torch and
in ONNX Runtime, Chroma, BM25) and the HTTP server, and the rag modes' prompts are ~10x longer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from ragtune.core import offline  # noqa: E402
from ragtune.engine.config import MODES  # noqa: E402

offline.setup()
QUESTIONS = [
    "How do I ingest a folder of documents?",
    "What does --prune do?",
    "Which file formats can ragtune read?",
    "Where does ragtune keep its state?",
]

# Each reference process answers once, prints a line, then waits on stdin so that its
# /proc/<pid>/status can be read while it is still alive.
BARE = """
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
x = tok.apply_chat_template([{"role": "user", "content": sys.argv[2]}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
with torch.inference_mode():
    ids = model.generate(**x, max_new_tokens=16, do_sample=False)
print(repr(tok.decode(ids[0, x["input_ids"].shape[1]:], skip_special_tokens=True)), flush=True)
sys.stdin.read()
"""
ENGINE = """
import sys
from ragtune.core.config import load_config
from ragtune.engine.config import DecodingConfig, ModelConfig
from ragtune.engine.generate import Engine
engine = Engine(load_config(ModelConfig, {}), adapter=sys.argv[2])
prompt = engine.render([{"role": "user", "content": sys.argv[3]}])
decoding = load_config(DecodingConfig, {"max_new_tokens": 16})
texts = [engine.generate([prompt], decoding, adapter=on)[0].text for on in (False, True)]
print(repr(texts), flush=True)
sys.stdin.read()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3, help="answers per mode")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (its path is printed)")
    args = ap.parse_args()

    keep = contextlib.nullcontext(tempfile.mkdtemp(prefix="ragtune-serve-mem-")) if args.keep else None
    with keep or tempfile.TemporaryDirectory(prefix="ragtune-serve-mem-") as tmp:
        workdir = Path(tmp)
        print(f"work dir {workdir}")
        t = time.perf_counter()
        run([sys.executable, "-m", "ragtune.cli", "ingest", "sample/docs", "--workdir", str(workdir)])
        print(f"ingested sample/docs in {time.perf_counter() - t:.1f} s")
        model_path, adapter = make_adapter(workdir / "adapters" / "bench")
        print(f"adapter {adapter} for {model_path}")

        bare = reference([sys.executable, "-c", BARE, model_path, QUESTIONS[0]])
        engine = reference([sys.executable, "-c", ENGINE, str(ROOT), str(adapter), QUESTIONS[0]])
        server, latencies = serve_and_measure(workdir, adapter, args.requests)

    print(f"\nPeak memory (VmHWM) and resident memory (VmRSS) at the end, MiB; {args.requests} requests per mode for the server")
    print(f"{'process':<58}{'VmHWM':>8}{'VmRSS':>8}{'HWM / bare':>12}")
    rows = (
        ("bare transformers: from_pretrained + one generate (baseline)", bare),
        ("ragtune Engine + LoRA adapter: one base, one ft answer", engine),
        ("ragtune serve + adapter, after requests in all 4 modes", server),
    )
    for name, mem in rows:
        print(f"{name:<58}{mem['VmHWM']:>8.0f}{mem['VmRSS']:>8.0f}{mem['VmHWM'] / bare['VmHWM']:>11.2f}x")
    print(
        f"server above bare: {server['VmHWM'] - bare['VmHWM']:+.0f} MiB peak; of which engine + adapter "
        f"{engine['VmHWM'] - bare['VmHWM']:+.0f} MiB, retrieval, HTTP and rag prompts {server['VmHWM'] - engine['VmHWM']:+.0f} MiB"
    )
    print("request latency, median s: " + ", ".join(f"{m} {statistics.median(latencies[m]):.2f}" for m in MODES))


def run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[1:])}: exit {done.returncode}\n{done.stderr[-2000:]}")


def make_adapter(out: Path) -> tuple[str, Path]:
    """A LoRA adapter as `ragtune train` would save it (untrained: B is zero, so memory is all it tells)."""
    import warnings

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ragtune.core.config import load_config
    from ragtune.engine.config import ModelConfig
    from ragtune.engine.model import resolve

    path = resolve(load_config(ModelConfig, {}))
    model = AutoModelForCausalLM.from_pretrained(path)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # transformers' deprecation notice inside peft, not ours to act on
        warnings.simplefilter("ignore", FutureWarning)
        get_peft_model(model, lora).save_pretrained(out)
    return path, out


def reference(cmd: list[str]) -> dict:
    """Memory of a process that answers once and then waits."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"reference process failed:\n{proc.stderr.read()[-2000:]}")
        mem = memory(proc.pid)
        print(f"answered {line.strip()[:70]}")
    finally:
        proc.stdin.close()
        proc.wait(30)
    return mem


def serve_and_measure(workdir: Path, adapter: Path, requests: int) -> tuple[dict, dict]:
    """Start `ragtune serve`, ask `requests` questions in each mode, read its memory, stop it."""
    import httpx

    port = free_port()
    log = open(workdir / "serve.log", "w")
    cmd = [sys.executable, "-m", "ragtune.cli", "serve", "--workdir", str(workdir), "--port", str(port), "--adapter", str(adapter)]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    latencies = {m: [] for m in MODES}
    try:
        t = time.perf_counter()
        models = wait_until_up(server, url, workdir / "serve.log")
        print(f"server up in {time.perf_counter() - t:.1f} s, VmHWM {memory(server.pid)['VmHWM']:.0f} MiB before any request")
        missing = [m["id"] for m in models if not m.get("available", True)]
        if missing:
            sys.exit(f"modes unavailable: {missing}: {models}")
        with httpx.Client(base_url=url, timeout=300) as client:
            for mode in MODES:
                for i in range(requests):
                    body = {
                        "model": mode,
                        "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
                        "max_tokens": 16,
                        "stream": i == requests - 1,
                    }
                    t = time.perf_counter()
                    r = client.post("/chat/completions", json=body)
                    latencies[mode].append(time.perf_counter() - t)
                    if r.status_code != 200:
                        sys.exit(f"{mode}: HTTP {r.status_code}: {r.text[:500]}")
                    if body["stream"] and not r.text.rstrip().endswith("data: [DONE]"):
                        sys.exit(f"{mode}: a streamed answer did not end with [DONE]: {r.text[-300:]}")
                mem = memory(server.pid)
                print(
                    f"{mode:<7} {requests} answers, VmHWM {mem['VmHWM']:5.0f} MiB, VmRSS {mem['VmRSS']:5.0f} MiB, "
                    f"last answer {answer_text(r)[:40]!r}"
                )
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        if children:
            print(f"note: the server has child processes {children}, not counted")
        return mem, latencies
    finally:
        stop(server)
        log.close()


def stop(server: subprocess.Popen) -> None:
    """Ask the server to exit; kill it if it has not within 30 s."""
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()


def wait_until_up(server: subprocess.Popen, url: str, log: Path, timeout: float = 300) -> list[dict]:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"ragtune serve exited with {server.returncode}:\n{log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{url}/models", timeout=5).json()["data"]
        except httpx.HTTPError:
            time.sleep(0.5)
    sys.exit(f"ragtune serve not up after {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def answer_text(r) -> str:
    """The answer of a plain or a streamed (server-sent events) response."""
    if not r.headers.get("content-type", "").startswith("text/event-stream"):
        return r.json()["choices"][0]["message"]["content"]
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    return "".join(e["choices"][0]["delta"].get("content", "") for e in events if e.get("choices"))


def memory(pid: int) -> dict:
    """VmHWM and VmRSS of a live process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) / 1024  # reported in kB
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
