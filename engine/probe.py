"""`rag_answer: auto`: whether a model writes its rag answers or picks them, decided by a test.

A model that can write gives fuller answers than the span reader; one that cannot rambles or
answers from memory, and its size does not tell which. So it answers the worked examples of
configs/prompts.yaml with the writing prompt, among the other examples as distractors, and
writes if it answers and cites the right document in at least `PASS_MARK` of them (the
evidence for the mark: bench/answers.py). The verdict is cached per model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ragtune.core.records import Chunk, Hit
from ragtune.core.text import normalize
from ragtune.core.workdir import write_json
from ragtune.engine import cite
from ragtune.engine import prompts as P

PASS_MARK = 2 / 3  # of the examples; see bench/answers.py


def writes(engine, templates: P.PromptTemplates, cache: Path | None) -> bool:
    """Whether `engine`'s model should write its rag answers (the probe's verdict, cached)."""
    # The precision is part of the model: bf16 and fp32 can answer an example differently
    dtype = getattr(engine.model, "dtype", "")
    key = hashlib.sha256(
        f"{engine.base_path}|{_stamp(engine.base_path)}|{dtype}|{templates.write_system}|{templates.write_examples}".encode()
    ).hexdigest()[:16]
    path = cache / f"probe-{key}.json" if cache else None
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text())["score"] >= PASS_MARK
        except (ValueError, KeyError):
            pass  # a damaged verdict: run the probe again
    score = run(engine, templates)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"model": str(engine.base_path), "dtype": str(dtype), "score": score})
    return score >= PASS_MARK


def run(engine, templates: P.PromptTemplates) -> float:
    """The share of the worked examples the model answers right, citing the right document."""
    from ragtune.engine.config import DecodingConfig

    examples = [e for e in templates.examples if e.context]
    if not examples or not templates.write_system:
        return 0.0
    hits = [Hit(Chunk(f"example-{i}", e.context, f"example-{i}.txt", "", "", 0, 0), 1.0, i + 1) for i, e in enumerate(examples)]
    prompts, shown = [], []
    for i, e in enumerate(examples):
        order = hits[i + 1 : i + 2] + hits[i : i + 1] + hits[:i] + hits[i + 2 :]  # its own document second: citing [1] blindly fails
        messages, used = P.rag_messages(e.question, order, templates, engine.count_tokens, 4096, writer=True)
        prompts.append(engine.render(messages))
        shown.append(used)
    greedy = DecodingConfig(0.0, 0, 1.0, 48, 1.0, None, [])
    gens = engine.generate(prompts, greedy, batch_size=len(prompts))
    passed = 0
    for i, (e, g, used) in enumerate(zip(examples, gens, shown)):
        _, cited, _ = cite.resolve(g.text, used)
        passed += normalize(e.answer) in normalize(g.text) and any(c.chunk_id == f"example-{i}" for c in cited)
    return passed / len(examples)


def _stamp(path) -> str:
    """The model folder's identity: its config's size and time (a re-converted model is re-probed)."""
    config = Path(str(path)) / "config.json"
    return f"{config.stat().st_size}-{config.stat().st_mtime_ns}" if config.is_file() else str(path)
