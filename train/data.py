"""Training rows from a `ragtune synth` dataset: token ids, and labels on the final answer only.

Only the final assistant turn, the answer to the row's own question, carries labels; everything
before it (system prompt, any worked examples, retrieved chunks) gets -100, as it is only read at
answer time, so the loss is not spent memorizing turns that repeat in every row. Rows
longer than --max-length lose their start, not their end: the end holds the question and the
answer, and cutting it would leave a row with no labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

IGNORE = -100  # the label of a token that is context, not answer


@dataclass
class Rows:
    """Tokenized rows of one split, and what happened to the others."""

    input_ids: list[list[int]] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)
    read: int = 0
    no_assistant: int = 0  # rows with no final assistant turn: skipped
    truncated: int = 0  # rows longer than max_length: their start was cut
    bad_json: int = 0  # lines that are not a JSON object with `messages`: skipped

    @property
    def tokens(self) -> int:
        """Tokens in all rows."""
        return sum(len(x) for x in self.input_ids)

    def to_dataset(self):
        """The rows as a `datasets.Dataset` of input_ids and labels, as SFTTrainer takes them."""
        from datasets import Dataset

        return Dataset.from_dict({"input_ids": self.input_ids, "labels": self.labels})

    def summary(self) -> dict:
        """Counts for the report: rows kept, read, skipped, truncated, and tokens."""
        return {
            "rows": len(self.input_ids),
            "read": self.read,
            "no_assistant_skipped": self.no_assistant,
            "truncated": self.truncated,
            "bad_json_skipped": self.bad_json,
            "tokens": self.tokens,
        }


def encode(messages: list[dict], tokenizer, max_length: int) -> tuple[list[int], list[int], bool] | None:
    """Token ids and labels of one conversation; None if it does not end with an assistant turn.

    The prompt is rendered with the chat template's generation prompt, exactly as the engine
    renders a question, so the labels start where the model starts answering at inference.
    Returns (input_ids, labels, truncated).
    """
    if not messages or messages[-1].get("role") != "assistant" or not str(messages[-1].get("content") or "").strip():
        return None
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):  # a template that rewrites earlier turns; never seen with ChatML
        raise ValueError("the chat template renders the prompt differently once the answer is added")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]  # answer, end-of-turn token, newline
    ids = prompt_ids + answer_ids
    labels = [IGNORE] * len(prompt_ids) + answer_ids
    cut = len(ids) > max_length
    if cut:
        ids, labels = ids[-max_length:], labels[-max_length:]
    return ids, labels, cut


def read_split(path: Path, tokenizer, max_length: int) -> Rows:
    """Every row of one JSONL file, encoded; missing file -> no rows."""
    rows = Rows()
    if not path.exists():
        return rows
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rows.read += 1
            try:
                messages = json.loads(line)["messages"]
                assert isinstance(messages, list)
            except (ValueError, KeyError, TypeError, AssertionError):
                rows.bad_json += 1
                continue
            encoded = encode(messages, tokenizer, max_length)
            if encoded is None:
                rows.no_assistant += 1
                continue
            ids, labels, cut = encoded
            rows.input_ids.append(ids)
            rows.labels.append(labels)
            rows.truncated += cut
    return rows


def load_splits(folder: Path, tokenizer, max_length: int) -> tuple[Rows, Rows]:
    """(train, eval) rows of a dataset folder.

    Raises:
        ValueError: no train.jsonl, or no usable training row (one line, naming the folder).
    """
    train_file = folder / "train.jsonl"
    if not train_file.exists():
        raise ValueError(f"--data {folder}: no train.jsonl (not a `ragtune synth` dataset folder)")
    train = read_split(train_file, tokenizer, max_length)
    if not train.input_ids:
        why = f"{train.read} rows, {train.no_assistant} without an assistant turn, {train.bad_json} not JSON with `messages`"
        raise ValueError(f"--data {folder}: no training rows in train.jsonl ({why})")
    return train, read_split(folder / "eval.jsonl", tokenizer, max_length)
