"""The questions an evaluation asks: a JSONL file, or the held-out split of a synthetic dataset.

A questions file holds one JSON object a line, the format of SQuAD-style sets:
    {"question": "Who ...?", "answers": ["Tesla", "Nikola Tesla"], "id": "q1", "doc": "Nikola_Tesla"}
An open question may name its key facts, each a list of alternative phrasings, and its type
(factoid or open; without one, engine/qtype.py's classifier decides):
    {"question": "How does re-ingesting work?", "answers": ["..."], "type": "open",
     "keys": [["content hash", "sha-256"], ["upsert"]]}
Bad lines are skipped and counted, each with its line number, and the rest are asked.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

TYPES = ("factoid", "open")
SHOW_SKIPPED = 10  # skipped lines named to the user; a file broken throughout needs no thousand lines to say so


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]  # empty: unanswerable, the right answer is to abstain
    doc: str = ""
    keys: tuple[tuple[str, ...], ...] = ()  # key facts an answer should state, each as alternative phrasings
    type: str = ""  # factoid | open; "" = the classifier's call


@dataclass
class QuestionSet:
    source: str  # the file, or the dataset folder
    questions: list[Question]
    total: int  # questions read before --limit
    skipped: list[str] = field(default_factory=list)  # "questions.jsonl:12: not JSON", one per bad line


def read_questions(path: str | Path, unanswerable: bool = False) -> QuestionSet:
    """Questions from a JSONL file; bad lines are skipped with a one-line reason each."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"--questions {path}: no such file")
    out = QuestionSet(str(path), [], 0)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"--questions {path}: not UTF-8 text (byte {e.start})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            out.skipped.append(f"{path.name}:{n}: not JSON ({e.msg})")
            continue
        reason = _why_not(row, unanswerable)
        if reason:
            out.skipped.append(f"{path.name}:{n}: {reason}")
            continue
        answers = tuple(a for a in row.get("answers") or [] if a.strip())
        keys = tuple(tuple(alt.strip() for alt in key) for key in row.get("keys") or [])
        out.questions.append(
            Question(str(row.get("id", n)), row["question"].strip(), answers, str(row.get("doc", "")), keys, row.get("type") or "")
        )
    out.total = len(out.questions)
    if not out.questions:
        shown = "; ".join(out.skipped[:SHOW_SKIPPED])
        more = f"; and {len(out.skipped) - SHOW_SKIPPED} more" if len(out.skipped) > SHOW_SKIPPED else ""
        raise ValueError(f"--questions {path}: no usable questions; {_count(out.skipped)}: {shown}{more}")
    return out


def skipped_lines(skipped: list[str]) -> list[str]:
    """What to tell the user about skipped lines: a count, then the first few, each with its line number and reason."""
    if not skipped:
        return []
    more = [f"  ... and {len(skipped) - SHOW_SKIPPED} more"] if len(skipped) > SHOW_SKIPPED else []
    return [f"{_count(skipped)}:", *(f"  {line}" for line in skipped[:SHOW_SKIPPED]), *more]


def _count(skipped: list[str]) -> str:
    return f"{len(skipped)} question line{'s' * (len(skipped) != 1)} skipped"


def _why_not(row, unanswerable: bool) -> str:
    if not isinstance(row, dict):
        return "not a JSON object"
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        return "no question"
    answers = row.get("answers")
    if answers is not None and (not isinstance(answers, list) or not all(isinstance(a, str) for a in answers)):
        return "answers is not a list of strings"
    keys = row.get("keys")
    if keys is not None and not (
        isinstance(keys, list)
        and all(isinstance(key, list) and key and all(isinstance(alt, str) and alt.strip() for alt in key) for key in keys)
    ):
        return "keys must be a list of lists of strings"
    if row.get("type") is not None and row["type"] not in TYPES:
        return f"type must be {' or '.join(TYPES)}, got {row['type']!r}"
    if not any(a.strip() for a in answers or []) and not unanswerable:
        return "no answers (pass --unanswerable to score these as questions to abstain on)"
    return ""


def eval_split(dataset: str | Path) -> QuestionSet:
    """The held-out synthetic pairs of a `ragtune synth` dataset: questions its adapter never saw."""
    path = Path(dataset) / "pairs.jsonl"
    if not path.is_file():
        raise ValueError(f"--split eval: {path} not found; is {dataset} a `ragtune synth` dataset?")
    out = QuestionSet(str(dataset), [], 0)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            pair = json.loads(line)
        except json.JSONDecodeError:
            out.skipped.append(f"pairs.jsonl:{n}: not JSON")
            continue
        if pair.get("split") == "eval" and pair.get("kind", "original") == "original":  # one wording per fact
            out.questions.append(Question(pair["id"], pair["question"], (pair["answer"],), pair.get("source", "")))
    out.total = len(out.questions)
    if not out.questions:
        raise ValueError(f"--split eval: {path} has no eval pairs (was it made with --eval-fraction 0?)")
    return out


def sample(qs: QuestionSet, limit: int, seed: int) -> QuestionSet:
    """A fixed random sample of `limit` questions (all of them if there are fewer), in file order."""
    if not limit or limit >= len(qs.questions):
        return qs
    keep = sorted(random.Random(seed).sample(range(len(qs.questions)), limit))
    return QuestionSet(qs.source, [qs.questions[i] for i in keep], qs.total, qs.skipped)
