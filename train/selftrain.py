"""`ragtune train --self-train N`: the trained reader re-labels its own training questions, then trains again.

A rule-made question's label is the span the rule picked, which is sometimes not what the question
asks ("What date did the Broncos finish ...?" -> "the regular season"). After training, the reader
head answers each training question over its own oracle chunk; where it is confident and disagrees
with the label, its answer replaces it, and the adapter trains further on the re-labeled rows.
The threshold falls each round, as the reader gets better (RefQA, Li et al. 2020). Each round's
changes are written to self_train.json in the final adapter folder.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ragtune.core.text import normalize
from ragtune.train.config import TrainConfig

DECAY = 0.9  # the threshold of round r is threshold * DECAY ** (r - 1)
SHOWN = 5  # changed labels listed per round


@dataclass
class Round:
    """One round of self-training: what it re-labeled and what it trained."""

    round: int
    threshold: float
    rows: int = 0  # rows the reader answered
    changed: int = 0  # labels replaced by the reader's confident answer
    examples: list = field(default_factory=list)  # a few of them: question, old label, new label, confidence
    data: str = ""
    adapter: str = ""
    eval_loss: float | None = None
    head_exact: float | None = None  # the head's held-out exact match after this round's training


def self_train(cfg: TrainConfig, on_status: Callable[[str], None] | None = None, **kw) -> tuple[object, list[Round]]:
    """Train, then `cfg.self_train` rounds of re-labeling and further training; `kw` goes to
    train/run.py's `train` (progress, stop). Returns the last report and the rounds."""
    from ragtune.train.run import train

    status = on_status or (lambda line: None)
    report = train(replace(cfg, self_train=0), on_status=on_status, **kw)
    first = Round(0, 0.0, data=report.data, adapter=report.out, eval_loss=report.eval_loss)
    first.head_exact = report.reader_head.get("eval_exact")
    rounds = [first]
    for r in range(1, cfg.self_train + 1):
        if report.interrupted or not report.reader_head:
            break
        threshold = cfg.self_train_threshold * DECAY ** (r - 1)
        out = Path(report.out)
        data = out.parent / f"{out.name}-relabeled-{r}"
        status(f"self-training round {r}: the reader re-labels {report.data} (threshold {threshold:.2f}) ...")
        done = relabel(Path(report.data), out, data, threshold, cfg, on_count=lambda n, total: status(f"  {n} of {total} read"))
        done.round, done.data = r, str(data)
        status(f"self-training round {r}: {done.changed} of {done.rows} labels changed; training on them ...")
        report = train(
            replace(cfg, self_train=0, data=str(data), init_adapter=str(out), out=str(out.parent / f"{out.name}-self-{r}"), overwrite=True),
            on_status=on_status,
            **kw,
        )
        done.adapter, done.eval_loss, done.head_exact = report.out, report.eval_loss, report.reader_head.get("eval_exact")
        rounds.append(done)
    if rounds[1:]:
        (Path(report.out) / "self_train.json").write_text(json.dumps([r.__dict__ for r in rounds], indent=2) + "\n")
    return report, rounds


def relabel(
    data: Path, adapter: Path, out: Path, threshold: float, cfg: TrainConfig, on_count: Callable[[int, int], None] | None = None
) -> Round:
    """A copy of dataset `data` in `out` whose train rows carry the reader's confident answers;
    `on_count(done, total)` is called as each tenth of the rows is read (a pass over them takes minutes)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragtune.engine import head as H
    from ragtune.engine import model as model_lib

    model_path = model_lib.resolve(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16 if cfg.bf16 else torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter)).eval()
    head = H.load(adapter)
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    done, new = Round(0, threshold), {}
    readable = sum("reader" in row for row in rows)
    with torch.inference_mode():
        for row in rows:
            if "reader" not in row:
                continue
            done.rows += 1
            if on_count and (done.rows % max(1, readable // 10) == 0 or done.rows == readable):
                on_count(done.rows, readable)
            answer, p = best_span(H.read(model, head, tokenizer, row["question"], row["reader"]["context"]))
            if answer and p >= threshold and normalize(answer) != normalize(row["answer"]):
                new[row["pair_id"]] = answer
                done.changed += 1
                if len(done.examples) < SHOWN:
                    done.examples.append({"question": row["question"], "old": row["answer"], "new": answer, "p": round(p, 3)})
    out.mkdir(parents=True, exist_ok=True)
    with (out / "train.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(_with_answer(row, new[row["pair_id"]]) if row.get("pair_id") in new else row) + "\n")
    for name in ("eval.jsonl", "dataset.json"):
        if (data / name).exists():
            shutil.copy(data / name, out / name)
    return done


def best_span(reading) -> tuple[str, float]:
    """The head's likeliest answer in its chunk and its probability; ("", p) if that is "no answer"."""
    first, last, logp = reading.best()
    return reading.text(first, last), math.exp(logp)


def _with_answer(row: dict, answer: str) -> dict:
    """The row with its answer replaced, in its metadata and in its last (assistant) turn."""
    old = row["answer"]
    messages = [dict(m) for m in row["messages"]]
    content = messages[-1]["content"]
    messages[-1]["content"] = content[: len(content) - len(old)] + answer if content.endswith(old) else answer
    return {**row, "answer": answer, "messages": messages, "relabeled_from": old}
