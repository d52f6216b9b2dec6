"""Can a reader head read from the model's hidden states? A probe with the model frozen.

    python bench/head_probe.py --workdir /tmp/sq --data /tmp/sq/datasets/plain

`ragtune train --reader-head` trains the head (engine/head.py) beside LoRA, one example an
optimizer step, so a 30-minute run shows it a few hundred examples. This probe asks whether more
would help: the model's states for every reader example of the dataset (train/head.py
`read_examples`) are computed once, with the model frozen, and the head is fitted on them for
--epochs, on growing shares of the examples (a learning curve). The head is engine/head.py's
(linear start/end scores on a token's state and the next one's), on the states of --layers,
each feature standardized on the training states (the residual stream has a few features
thousands of times larger than the rest).

Scored after each share:
- held-out synthetic examples (the dataset's eval rows): the exact span where the chunk holds the
  answer, and "no answer" where it does not;
- SQuAD dev questions that neither report, tune nor are among bench/heldout.py's 1,000, each read
  over the indexed chunk that holds its first answer (the oracle chunk: no retrieval miss): the F1
  of the head's likeliest span, and of its likeliest among the span reader's own candidates
  (engine/spans.py `candidate_spans`), beside the best F1 any candidate reaches.
The --workdir must hold the SQuAD index (`ragtune ingest ../shared/eval/squad/docs`) and --data a
dataset synthesized from it (`ragtune synth`). Figures: docs/ft-rag.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad" / "questions.jsonl"
BATCH = 8  # examples a forward pass, padded at their end (a causal model's tokens never see it)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True, help="holds the SQuAD index")
    ap.add_argument("--data", required=True, help="a dataset folder synthesized from it (train.jsonl, eval.jsonl)")
    ap.add_argument("--adapter", default=None, help="read the states of the model with this adapter (default: the model alone)")
    ap.add_argument(
        "--layers", type=_numbers(int), default="15,22,30", help="the decoder layers whose states the head reads (30: the last, normed)"
    )
    ap.add_argument("--shares", type=_numbers(float), default="0.25,0.5,1", help="shares of the training examples, one fit each")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--no-answer-weight", type=float, default=0.3, help="the loss weight of a distractor (no-answer) example")
    ap.add_argument("--probe", type=int, default=400, help="SQuAD questions read over their oracle chunk")
    args = ap.parse_args()

    from ragtune.core import offline

    offline.setup()
    import torch

    from ragtune.core.config import load_config
    from ragtune.engine.answer import Answerer
    from ragtune.evals.config import EvalConfig
    from ragtune.train import head as T
    from ragtune.train.head import Example

    torch.manual_seed(0)
    data = Path(args.data)
    synthetic = {"synthetic eval": T.read_examples(data / "eval.jsonl"), "train": T.read_examples(data / "train.jsonl")}
    if not synthetic["train"]:
        sys.exit(
            f"--data {data}: no reader examples in train.jsonl (it needs a dataset from `ragtune synth`, whose RAFT rows carry their chunks)"
        )
    # eval's own settings (bf16 where the CPU has it); the span reader's engine also gives the head its states
    ask = load_config(EvalConfig, {"workdir": args.workdir, **({"ask.adapter": args.adapter} if args.adapter else {})}).ask
    answerer = Answerer(ask)
    depth = answerer.engine.model.config.num_hidden_layers
    if not all(0 <= layer <= depth for layer in args.layers):
        sys.exit(f"--layers {','.join(map(str, args.layers))}: the model has layers 0 (the embeddings) to {depth}")
    probe = _probe_questions(answerer, args.probe)
    if not probe:
        sys.exit(f"--workdir {args.workdir}: no indexed chunk holds a SQuAD answer: run `ragtune ingest ../shared/eval/squad/docs` there")
    mode = "ft-rag" if args.adapter else "rag"
    reader_f1 = _span_reader_f1(answerer, mode, probe)
    sets = {"squad": [Example(q, " ".join(chunk.text.split()), golds[0]) for q, chunk, golds in probe], **synthetic}
    engine = answerer.engine
    with engine.using(args.adapter is not None):
        states = {name: _states(engine.model, engine.tokenizer, examples, args.layers, name) for name, examples in sets.items()}
    answers = [golds for (_, _, golds), kept in zip(probe, states["squad"].kept) if kept]
    train = states.pop("train")
    mean, std = train.standardizer()
    print(
        f"\n{len(train.items)} training examples; {len(states['synthetic eval'].items)} held-out synthetic; {len(probe)} SQuAD "
        f"questions over their oracle chunk, {len(answers)} of them placed in the head's input\n"
        f"the span reader ({mode}: the model's log-prob and the checks) over the oracle chunk: F1 {reader_f1:.1f}\n"
    )
    print(
        f"{'share':>6} {'examples':>8} {'fit s':>6} {'synth span exact':>17} {'synth no-answer':>16} {'SQuAD F1 free':>14} {'among candidates':>17} {'candidates best':>16}"
    )
    for share in args.shares:
        items = list(train.items)
        random.Random(0).shuffle(items)
        items = items[: int(share * len(items))]
        t0 = time.perf_counter()
        head = _fit(items, mean, std, len(args.layers) * train.hidden, args.epochs, args.no_answer_weight)
        fit_s = time.perf_counter() - t0
        synth = _synthetic_scores(head, states["synthetic eval"].items, mean, std)
        squad = _squad_scores(head, states["squad"].items, answers, mean, std)
        print(
            f"{share:>6} {len(items):>8} {fit_s:>6.0f} {synth[0]:>17.1%} {synth[1]:>16.1%} {squad[0]:>14.1f} {squad[1]:>17.1f} {squad[2]:>16.1f}",
            flush=True,
        )


def _numbers(kind):
    """An argparse type: comma-separated numbers of `kind` (a bad one is argparse's one-line error)."""

    def parse(text: str) -> list:
        return [kind(x) for x in text.split(",")]

    parse.__name__ = kind.__name__ + " list"
    return parse


def _probe_questions(answerer, limit: int) -> list:
    """SQuAD questions outside the reported 200, the tuning 150 and bench/heldout.py's 1,000, each
    with the indexed chunk of its article that holds its first answer (those with none are skipped)."""
    from heldout import untouched  # bench/ is on the path

    free = set(untouched()[1000:])  # not among bench/heldout.py's 1,000
    chunks: dict[str, list] = {}
    for chunk in answerer.retriever.index.all_chunks():
        chunks.setdefault(Path(chunk.source).name, []).append(chunk)
    rows = [r for r in map(json.loads, SQUAD.read_text(encoding="utf-8").splitlines()) if r and r["id"] in free]
    random.Random(3).shuffle(rows)
    out = []
    for r in rows:
        oracle = next((c for c in chunks.get(r["doc"], []) if r["answers"][0] in " ".join(c.text.split())), None)
        if oracle:
            out.append((r["question"], oracle, r["answers"]))
        if len(out) == limit:
            break
    return out


def _span_reader_f1(answerer, mode: str, probe: list) -> float:
    """The mean F1 of the span reader (the model's log-prob and the checks, as `ragtune eval` reads)
    over each question's oracle chunk alone."""
    from ragtune.core.records import Hit
    from ragtune.engine.cite import strip
    from ragtune.evals.metrics import score

    total, t0 = 0.0, time.perf_counter()
    for i, (question, chunk, golds) in enumerate(probe):
        said = answerer.answer_batch([question], mode, hits=[[Hit(chunk, 1.0, 0)]])[0]
        total += score(said.span or strip(said.text), golds).f1  # the span alone, as `ragtune eval` scores it
        if (i + 1) % 100 == 0 or i + 1 == len(probe):
            print(f"span reader: {i + 1}/{len(probe)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return total / max(len(probe), 1)


class States:
    """Each example's states (float16, its reader input's tokens x the layers' features), input and target."""

    def __init__(self, items: list, kept: list[bool], hidden: int):
        self.items, self.kept, self.hidden = items, kept, hidden

    def standardizer(self):
        import torch

        sample = torch.cat([h.float() for h, *_ in self.items[::20]], 0)
        return sample.mean(0), sample.std(0) + 1e-3


def _states(model, tokenizer, examples: list, layers: list[int], name: str) -> States:
    import torch

    from ragtune.engine import head as H
    from ragtune.train import head as T

    found = []
    for ex in examples:
        inp = H.reader_input(tokenizer, ex.question, ex.context)
        found.append((inp, T.target(inp, ex), ex))
    kept = [t is not None for _, t, _ in found]
    found = [f for f in found if f[1] is not None]
    order = sorted(range(len(found)), key=lambda i: len(found[i][0].ids))
    out: list = [None] * len(found)
    decoder, t0 = H.decoder(model), time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(order), BATCH):
            batch = order[b : b + BATCH]
            width = max(len(found[i][0].ids) for i in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(batch):
                n = len(found[i][0].ids)
                ids[row, :n], mask[row, :n] = torch.tensor(found[i][0].ids), 1
            o = decoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hs = o.hidden_states[:-1] + (o.last_hidden_state,)  # hidden_states[-1] is the last layer before its norm in some models
            for row, i in enumerate(batch):
                n = len(found[i][0].ids)
                out[i] = torch.cat([hs[layer][row, :n] for layer in layers], -1).to(torch.float16).clone()
            done = b + len(batch)
            if done == len(order) or (b // BATCH) % 100 == 0:
                print(f"states of {name}: {done}/{len(order)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return States([(out[i], *found[i]) for i in range(len(found))], kept, model.config.hidden_size)


def _standardized(h, mean, std):
    return ((h.float() - mean) / std).clamp(-8, 8)[None]


def _reading(head, h, inp, mean, std):
    """engine/head.py's Reading of the example: its likeliest span, or a given span's log P."""
    from ragtune.engine import head as H

    start, end, relevance = head(_standardized(h, mean, std))
    return H.Reading(inp, start[0], end[0], relevance[0])


def _fit(items: list, mean, std, features: int, epochs: int, no_answer_weight: float):
    """engine/head.py's head on the standardized states: train/head.py's span loss, AdamW, linear decay."""
    import torch

    from ragtune.engine.head import ReaderHead
    from ragtune.train import head as T

    head = ReaderHead(features)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=0.01)
    batch, total = 16, epochs * len(items)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s * batch / 200) * max(0.0, 1 - s * batch / total))
    rng = random.Random(0)
    for _ in range(epochs):
        rng.shuffle(items)
        for k in range(0, len(items), batch):
            opt.zero_grad()
            loss = 0.0
            for h, inp, t, ex in items[k : k + batch]:
                start, end, _ = head(_standardized(h, mean, std))
                loss = loss + T.span_loss(start, end, inp, t) / 2 * (1.0 if ex.answer else no_answer_weight)
            (loss / batch).backward()
            opt.step()
            sched.step()
    return head.eval()


def _synthetic_scores(head, items, mean, std) -> tuple[float, float]:
    import torch

    right, n = {True: 0, False: 0}, {True: 0, False: 0}
    with torch.no_grad():
        for h, inp, t, ex in items:
            first, last, _ = _reading(head, h, inp, mean, std).best()
            right[bool(ex.answer)] += (first, last) == (t.start, t.end)
            n[bool(ex.answer)] += 1
    return right[True] / max(n[True], 1), right[False] / max(n[False], 1)


def _squad_scores(head, items, answers, mean, std) -> tuple[float, float, float]:
    """Mean F1 of the head's likeliest span, of its likeliest candidate, and of the best candidate."""
    import torch

    from ragtune.engine import spans as S
    from ragtune.evals.metrics import score

    free = among = ceiling = 0.0
    with torch.no_grad():
        for (h, inp, _, ex), golds in zip(items, answers):
            reading = _reading(head, h, inp, mean, std)
            reading.start[0] = reading.end[0] = -float("inf")  # the chunk holds the answer: the head's likeliest span, not "no answer"
            free += score(reading.text(*reading.best()[:2]), golds).f1
            cands = [c.text for c in S.candidate_spans(inp.text, ex.question)]
            if cands:
                among += score(max(cands, key=reading.span), golds).f1
                ceiling += max(score(c, golds).f1 for c in cands)
    n = max(len(items), 1)
    return free / n, among / n, ceiling / n


if __name__ == "__main__":
    main()
