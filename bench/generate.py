"""Generation speed: ragtune's batched `Engine.generate` against plain `model.generate`, one question at a time, in the same run.

    python bench/generate.py [--questions 64] [--max-new-tokens 32] [--batch-sizes 8,16,32,64] [--repeats 3]
    python bench/generate.py --quick    # 16 questions, batch sizes 8 and 16, one repeat: ~1 min

The questions are SQuAD dev questions sampled with seed 0 (built-in ones if ../shared/eval/squad
is absent), asked in base mode (the chat template with the system prompt of configs/prompts.yaml),
greedy. Reported:
1. answers/s and generated tokens/s of plain `model.generate`, one question at a time (the
   baseline), on the very model object of the fp32 `Engine`; then `Engine.generate` at each
   --batch-sizes (target: >= 4x the baseline's answers/s); then bf16 weights at the best batch
   size, and how often bf16 picks fp32's next token. Greedy batched answers must equal the
   unbatched ones for >= 90% of questions: left padding shifts the numerics a little, and a
   near-tie between two tokens can then flip.
2. Streaming through `Engine.stream`, one answer at a time: time to first token (p50, p95)
   and decode tokens/s, fp32 and bf16 alternately (answer by answer: the machine's drift hits
   both alike). So the two dtypes are compared twice, batched and streamed.
Figures are medians over --repeats runs; the default run takes ~6 minutes on 2 idle cores.
The last line says how much CPU other processes took meanwhile: torch's 2 threads spin-wait on
each other, so one busy process slows generation ~10x (a 32-token answer: 1.3 s idle, 14 s
beside another job), and figures from such a run are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from ragtune.core import offline  # noqa: E402

offline.setup()
SQUAD = ROOT.parent / "shared" / "eval" / "squad"

# Used only when the SQuAD sample is absent: short, varied, one-line answers.
BUILTIN_QUESTIONS = [
    "What is the capital of France?",
    "Who wrote Hamlet?",
    "How many legs does a spider have?",
    "What is the boiling point of water in Celsius?",
    "Which planet is closest to the Sun?",
    "What gas do plants absorb from the air?",
    "Who painted the Mona Lisa?",
    "What is the largest ocean on Earth?",
    "In which year did World War II end?",
    "What is the chemical symbol for gold?",
    "How many continents are there?",
    "What language is spoken in Brazil?",
    "Who developed the theory of relativity?",
    "What is the tallest mountain in the world?",
    "What is the square root of 81?",
    "Which organ pumps blood through the body?",
    "What is the currency of Japan?",
    "Who was the first person to walk on the Moon?",
    "What is the longest river in Africa?",
    "How many days are in a leap year?",
    "What is the freezing point of water in Fahrenheit?",
    "Which animal is known as the king of the jungle?",
    "What is the capital of Canada?",
    "Who invented the telephone?",
    "What is the hardest natural substance?",
    "How many sides does a hexagon have?",
    "What is the main ingredient of guacamole?",
    "Which country hosted the 2016 Summer Olympics?",
    "What is the smallest prime number?",
    "Who composed the Fifth Symphony?",
    "What is the capital of Australia?",
    "Which element has the atomic number 1?",
    "What do bees make?",
    "What is the largest desert in the world?",
    "Who discovered penicillin?",
    "How many players are on a soccer team on the field?",
    "What is the capital of Italy?",
    "Which planet is known as the Red Planet?",
    "What is the largest mammal?",
    "Who wrote Pride and Prejudice?",
    "What is H2O commonly called?",
    "How many hours are in a day?",
    "What is the capital of Egypt?",
    "Which instrument has 88 keys?",
    "What is the speed of light in a vacuum?",
    "Who was the first President of the United States?",
    "What is the largest country by area?",
    "What is the main language of Argentina?",
    "Which bird is a symbol of peace?",
    "What is the capital of Germany?",
    "How many bones are in the adult human body?",
    "What is photosynthesis?",
    "Which metal is liquid at room temperature?",
    "Who painted The Starry Night?",
    "What is the capital of Spain?",
    "How many minutes are in an hour?",
    "What is the largest planet in the solar system?",
    "Who wrote The Odyssey?",
    "What is the capital of Kenya?",
    "Which vitamin do we get from sunlight?",
    "What is the largest organ of the human body?",
    "What is the capital of South Korea?",
    "Who discovered gravity when an apple fell?",
    "How many strings does a violin have?",
]


def main() -> None:
    # --quick changes the defaults only: 16 questions, batch sizes 8 and 16, one repeat, 4 streamed answers.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--quick", action="store_true")
    quick = pre.parse_known_args()[0].quick
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a ~1-minute run: 16 questions, batch sizes 8,16, one repeat")
    ap.add_argument("--questions", type=int, default=16 if quick else 64)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-sizes", default="8,16" if quick else "8,16,32,64")
    ap.add_argument("--repeats", type=int, default=1 if quick else 3)
    ap.add_argument("--stream-questions", type=int, default=4 if quick else 10)
    ap.add_argument("--stream-tokens", type=int, default=64, help="max_new_tokens of the streamed answers")
    args = ap.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    import torch

    from ragtune.core.config import load_config
    from ragtune.engine.config import DecodingConfig, ModelConfig
    from ragtune.engine.generate import Engine
    from ragtune.engine.prompts import base_messages, load_templates

    cpu = CpuMeter()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"load average before start {os.getloadavg()[0]:.2f}"
    )
    questions, source = sample_questions(args.questions)
    fp32 = Engine(load_config(ModelConfig, {"dtype": "fp32"}))
    templates = load_templates("prompts.yaml")
    prompts = [fp32.render(base_messages(q, templates)) for q in questions]
    decoding = load_config(DecodingConfig, {"temperature": 0.0, "max_new_tokens": args.max_new_tokens, "stop": []})
    prompt_tokens = [fp32.count_tokens(p) for p in prompts]
    print(
        f"{len(prompts)} questions ({source}), prompts {min(prompt_tokens)}-{max(prompt_tokens)} tokens "
        f"(median {statistics.median(prompt_tokens):.0f}), greedy, max_new_tokens {args.max_new_tokens}, median of {args.repeats}"
    )

    # 1. The baseline: what a user of transformers writes first, one question at a time.
    tok, model = fp32.tokenizer, fp32.model

    def unbatched() -> list[list[int]]:
        out = []
        with torch.inference_mode():
            for p in prompts:
                x = tok(p, return_tensors="pt", add_special_tokens=False)
                ids = model.generate(**x, max_new_tokens=args.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
                out.append(until_eos(ids[0, x["input_ids"].shape[1] :].tolist(), tok.eos_token_id))
        return out

    fp32.generate(prompts[:2], decoding, batch_size=2)  # warm-up: the first call pays one-off allocations
    runs, base_ids = timed(unbatched, args.repeats)
    t_base = statistics.median(runs)
    base_texts = [tok.decode(ids, skip_special_tokens=True).strip() for ids in base_ids]
    base_tokens = sum(len(ids) for ids in base_ids)
    n = len(prompts)
    print(f"\n{'':<40}{'answers/s':>10}{'tokens/s':>10}{'x base':>8}{'same as unbatched':>19}")
    print(f"{'model.generate, unbatched (baseline)':<40}{n / t_base:>10.2f}{base_tokens / t_base:>10.1f}{1:>8.2f}")

    # Engine.generate at each batch size; every run's answers are checked against the baseline's.
    seconds, same, differ = {}, {}, {}
    for bs in batch_sizes:
        runs, gens = timed(lambda bs=bs: fp32.generate(prompts, decoding, batch_size=bs), args.repeats)
        differ[bs] = [(q, g.text, b) for q, g, b in zip(questions, gens, base_texts) if g.text != b]
        t, seconds[bs], same[bs] = statistics.median(runs), runs, n - len(differ[bs])
        print(
            f"{f'Engine.generate fp32, batch {bs}':<40}{n / t:>10.2f}{sum(g.generated_tokens for g in gens) / t:>10.1f}"
            f"{t_base / t:>8.2f}{f'{same[bs]}/{n}':>19}"
        )
    best = min(seconds, key=lambda bs: statistics.median(seconds[bs]))
    worst = min(same, key=same.get)
    t32 = statistics.median(seconds[best])

    # bf16 weights at the best batch size (the 2-core test machine has AVX512-BF16, no AMX).
    bf16 = Engine(load_config(ModelConfig, {"dtype": "bf16"}))
    bf16.generate(prompts[:2], decoding, batch_size=2)
    runs, gens = timed(lambda: bf16.generate(prompts, decoding, batch_size=best), args.repeats)
    t16 = statistics.median(runs)
    agree = sum(g.text == b for g, b in zip(gens, base_texts))
    print(
        f"{f'Engine.generate bf16, batch {best}':<40}{n / t16:>10.2f}{sum(g.generated_tokens for g in gens) / t16:>10.1f}"
        f"{t_base / t16:>8.2f}{f'{agree}/{n}':>19}"
    )
    print(f"  each run at batch {best}, s: fp32 {' '.join(f'{t:.1f}' for t in seconds[best])} | bf16 {' '.join(f'{t:.1f}' for t in runs)}")

    # How far apart the two dtypes are: fed fp32's own unbatched answers, does each model pick the
    # same next token that fp32 picked? (fp32 itself should agree ~100%; a miss is a near-tie.)
    agreement = {name: next_token_agreement(e.model, tok, prompts, base_ids) for name, e in (("fp32", fp32), ("bf16", bf16))}
    print(
        f"  next-token agreement with fp32's unbatched answers, teacher-forced over {sum(map(len, base_ids))} tokens: "
        f"fp32 {100 * agreement['fp32']:.1f}%, bf16 {100 * agreement['bf16']:.1f}%"
    )
    for q, batched, alone in differ[worst][:5]:
        print(f"  differs at batch {worst}: {q[:40]!r}: batched {batched[:32]!r}, unbatched {alone[:32]!r}")
    ratio = t_base / t32
    print(f"best batch size: {best} ({n / t32:.2f} answers/s)")
    print(f"target batched >= 4x unbatched: {'MET' if ratio >= 4 else 'MISSED'} ({ratio:.2f}x at batch {best})")
    print(
        f"target >= 90% of greedy answers unchanged by batching (fp32): {'MET' if same[worst] >= 0.9 * n else 'MISSED'} "
        f"(worst: {same[worst]}/{n} at batch {worst}, {n - same[worst]} differ)"
    )

    # 2. Streaming: one answer at a time, as the API and the app serve them.
    stream_decoding = load_config(DecodingConfig, {"temperature": 0.0, "max_new_tokens": args.stream_tokens, "stop": []})
    first, decode, total = {"fp32": [], "bf16": []}, {"fp32": [], "bf16": []}, {"fp32": [], "bf16": []}
    for engine in (fp32, bf16):
        drain(engine.stream(prompts[0], stream_decoding))  # warm-up
    for p in prompts[: args.stream_questions]:
        for name, engine in (("fp32", fp32), ("bf16", bf16)):
            _, g = drain(engine.stream(p, stream_decoding))
            first[name].append(g.first_token_s)
            total[name].append(g.latency_s)
            # After the first token, the rest came one forward pass each.
            decode[name].append((g.generated_tokens - 1) / max(g.latency_s - g.first_token_s, 1e-9))
    print(f"\nStreaming, {args.stream_questions} answers each, max_new_tokens {args.stream_tokens}, alternating fp32 and bf16")
    print(f"{'':<24}{'first token p50 ms':>20}{'p95 ms':>9}{'decode tokens/s':>17}{'answer s':>10}")
    for name in ("fp32", "bf16"):
        p50, p95 = percentiles(first[name])
        print(
            f"{'Engine.stream ' + name:<24}{p50:>20.0f}{p95:>9.0f}{statistics.median(decode[name]):>17.1f}{statistics.median(total[name]):>10.2f}"
        )
    streamed = statistics.median(decode["bf16"]) / statistics.median(decode["fp32"])
    print(
        f"\ndtype: batched at {best}, bf16 takes {t16 / t32:.2f}x fp32's time ({'bf16' if t16 < t32 else 'fp32'} faster); "
        f"streamed, bf16 decodes at {streamed:.2f}x fp32's tokens/s ({'bf16' if streamed > 1 else 'fp32'} faster)"
    )
    print(cpu.report())


def sample_questions(n: int) -> tuple[list[str], str]:
    path = SQUAD / "questions.jsonl"
    if not path.exists():
        return (BUILTIN_QUESTIONS * (n // len(BUILTIN_QUESTIONS) + 1))[:n], "built-in"
    rows = [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]
    return random.Random(0).sample(rows, n), f"SQuAD dev, seed 0, of {len(rows)}"


def timed(fn, repeats: int) -> tuple[list[float], object]:
    """Seconds of each of `repeats` runs of `fn()`, and the last run's result."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def until_eos(ids: list[int], eos: int) -> list[int]:
    """New tokens up to and including EOS, counted as `Engine` counts them."""
    return ids[: ids.index(eos) + 1] if eos in ids else ids


def next_token_agreement(model, tok, prompts: list[str], answers: list[list[int]]) -> float:
    """Share of answer positions where `model`'s argmax is the answer's token, given the answer so far."""
    import torch

    hits = total = 0
    with torch.inference_mode():
        for p, ids in zip(prompts, answers):
            x = tok(p, return_tensors="pt", add_special_tokens=False)["input_ids"]
            full = torch.cat([x, torch.tensor([ids])], dim=1)
            # The logits at position i predict token i + 1: the answer's tokens are predicted from width - 1 on.
            picked = model(full).logits[0, x.shape[1] - 1 : -1].argmax(-1)
            hits += int((picked == torch.tensor(ids)).sum())
            total += len(ids)
    return hits / max(total, 1)


def drain(stream):
    """All of a stream's text, and the `Generation` it returns."""
    pieces = []
    try:
        while True:
            pieces.append(next(stream))
    except StopIteration as done:
        return "".join(pieces), done.value


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(1000 * s for s in seconds)
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))]


class CpuMeter:
    """How much of the machine other processes used since this was made, from /proc/stat."""

    def __init__(self):
        self.start = (time.perf_counter(), _busy_seconds(), time.process_time())

    def report(self) -> str:
        wall, busy, own = (now - then for now, then in zip((time.perf_counter(), _busy_seconds(), time.process_time()), self.start))
        other = max(busy - own, 0) / (wall * (os.cpu_count() or 1))
        note = "figures are trustworthy" if other < 0.1 else "figures are NOT comparable: rerun on an idle machine"
        return f"\nother processes used {100 * other:.0f}% of the {os.cpu_count()} cores during this {wall / 60:.1f}-minute run ({note})"


def _busy_seconds() -> float:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return 0.0
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
