"""Training rows from pairs, in OpenAI `messages` form, and their alpaca and ShareGPT exports.

Two kinds of row teach two things:
    closed_book  question -> answer, with the plain-prompting system prompt: what the
                 documents say, for `ft`;
    raft         the oracle chunk among K hard distractors -> answer: how to answer from
                 retrieved context, for `ft-rag` (RAFT, Zhang et al. 2024). With probability
                 1 - P the oracle is left out and the answer comes from memory.
RAFT contexts are rendered by the engine's own prompt builder (engine/prompts.py), so the
adapter trains on exactly the delimiters, source markers and instructions it will be shown.
Beside `messages`, every row keeps its pair's metadata, so each can be traced to its text.
"""

from __future__ import annotations

import random

from core.records import Chunk, Hit, Pair
from engine import prompts as P

NO_BUDGET = 10**9  # RAFT contexts are never cut: the oracle must not fall off the end


def closed_book_row(pair: Pair, t: P.PromptTemplates) -> dict:
    messages = P.base_messages(pair.question, t) + [{"role": "assistant", "content": pair.answer}]
    return _row(pair, messages, "closed_book", oracle_in_context=False)


def raft_row(pair: Pair, oracle: Chunk, distractors: list[Chunk], t: P.PromptTemplates, rng: random.Random,
             oracle_p: float, shuffle: bool, cot: bool) -> dict:
    """The oracle (with probability `oracle_p`) among the distractors, as the engine renders a RAG prompt."""
    with_oracle = rng.random() < oracle_p
    chunks = ([oracle] if with_oracle else []) + list(distractors)
    if shuffle:
        rng.shuffle(chunks)
    hits = [Hit(c, 1.0 / r, r) for r, c in enumerate(chunks, 1)]  # best first: unshuffled, the oracle goes last in the prompt
    messages, _ = P.rag_messages(pair.question, hits, t, len, NO_BUDGET)
    answer = f'"{pair.evidence}"\nAnswer: {pair.answer}' if cot and pair.evidence and with_oracle else pair.answer
    return _row(pair, messages + [{"role": "assistant", "content": answer}], "raft", oracle_in_context=with_oracle)


def _row(pair: Pair, messages: list[dict], kind: str, oracle_in_context: bool) -> dict:
    return {
        "messages": messages, "kind": kind, "pair_id": pair.id, "question": pair.question, "answer": pair.answer,
        "oracle_chunk_id": pair.chunk_id, "oracle_in_context": oracle_in_context, "source": pair.source,
        "page": pair.page, "section": pair.section, "split": pair.split, "group": pair.group,
        "pair_kind": pair.kind, "generator": pair.generator,
    }


# Exports -----------------------------------------------------------------------------------------

META = ("kind", "pair_id", "oracle_chunk_id", "oracle_in_context", "source", "page", "section", "split", "group", "pair_kind", "generator")


def to_alpaca(row: dict) -> dict:
    """LLaMA-Factory's alpaca: `system`, `instruction` (the last user turn), `input`, `output`, `history`."""
    m = row["messages"]
    system = m[0]["content"] if m[0]["role"] == "system" else ""
    turns = [x for x in m if x["role"] != "system"]
    history = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 2, 2)]
    return {"system": system, "instruction": turns[-2]["content"], "input": "", "output": turns[-1]["content"],
            "history": history, **{k: row[k] for k in META}}


def to_sharegpt(row: dict) -> dict:
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": names[x["role"]], "value": x["content"]} for x in row["messages"]], **{k: row[k] for k in META}}


EXPORTS = {"alpaca": to_alpaca, "sharegpt": to_sharegpt}
