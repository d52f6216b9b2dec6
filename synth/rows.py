"""Training rows from pairs, in OpenAI `messages` form, and their alpaca and ShareGPT exports.

Closed-book rows (question -> answer) teach `ft` what the documents say; RAFT rows (the oracle
among hard distractors -> answer; Zhang et al. 2024) teach `ft-rag` to answer from retrieved
context, rendered by the engine's own prompt builder so the adapter trains on the prompt it
will see, less the worked examples: they would make each row half as long again, and a row
teaches the answer's shape itself. A RAFT row is made to fit `max_tokens`, because the trainer
cuts from the front and would take the instructions and the answer's sentence (docs/ft-rag.md,
"What held ft-rag back").
"""

from __future__ import annotations

import random

from ragtune.core.records import Chunk, Hit, Pair
from ragtune.engine import prompts as P
from ragtune.synth.filters import holds

NO_BUDGET = 10**9  # RAFT contexts are never cut: the oracle must not fall off the end
CHARS_PER_TOKEN = 4  # SmolLM2's tokenizer on SQuAD rows (docs/measurements.md); bigger vocabularies do better
TEMPLATE_TOKENS = 4  # the chat template's markers around each message
VERSION = 2  # of the rows' layout: RAFT rows carry their chunks for the reader head (a dataset is found again by it)


def closed_book_row(pair: Pair, t: P.PromptTemplates) -> dict:
    """A `ft` row: the question under the plain-prompting system prompt -> the answer."""
    messages = P.base_messages(pair.question, t, examples=False) + [{"role": "assistant", "content": pair.answer}]
    return _row(pair, messages, "closed_book", oracle_in_context=False, chunks=0)


def raft_row(
    pair: Pair,
    oracle: Chunk,
    distractors: list[Chunk],
    t: P.PromptTemplates,
    rng: random.Random,
    oracle_p: float,
    shuffle: bool,
    cot: bool,
    max_tokens: int = NO_BUDGET,
) -> dict:
    """A joint RAFT row: the oracle (with probability `oracle_p`, else the answer comes from memory)
    among the distractors, as the engine renders a RAG prompt. The weakest distractors are dropped
    until it fits `max_tokens` (estimated); the oracle never is."""
    with_oracle = rng.random() < oracle_p
    answer = _answer(pair, cot) if with_oracle else pair.answer
    chunks = ([oracle] if with_oracle else []) + list(distractors)  # distractors come hardest first
    messages = _raft_messages(pair.question, chunks, t, answer)
    while len(chunks) > 1 and _estimate_tokens(messages) > max_tokens:
        chunks.pop()
        messages = _raft_messages(pair.question, chunks, t, answer)
    if shuffle:
        rng.shuffle(chunks)
        messages = _raft_messages(pair.question, chunks, t, answer)
    return _row(pair, messages, "raft", oracle_in_context=with_oracle, chunks=len(chunks))


def single_chunk_row(
    pair: Pair, oracle: Chunk, distractors: list[Chunk], t: P.PromptTemplates, rng: random.Random, oracle_p: float, cot: bool
) -> dict:
    """A single-chunk RAFT row, as the span reader prompts it: the oracle (with probability
    `oracle_p`) -> the answer, else the hardest distractor -> the abstain answer, so that a chunk
    without the answer lends its spans less probability. A distractor that holds the answer word
    for word (`filters.holds`) answers it. What these rows did: docs/ft-rag.md, item 8."""
    with_oracle = rng.random() < oracle_p or not distractors
    chunk = oracle if with_oracle else distractors[0]
    if with_oracle:
        answer = _answer(pair, cot)
    else:
        answer = pair.answer if holds(chunk.text, pair.answer) else t.abstain
    return _row(pair, _raft_messages(pair.question, [chunk], t, answer), "raft", oracle_in_context=with_oracle, chunks=1)


def reader_chunks(pair: Pair, oracle: Chunk, distractors: list[Chunk]) -> dict:
    """What the reader head trains on (train/head.py): the oracle chunk and its answer's sentence,
    and the hardest distractor."""
    return {"context": oracle.text, "evidence": pair.evidence, "distractor": distractors[0].text if distractors else ""}


def _answer(pair: Pair, cot: bool) -> str:
    """A RAFT row's answer, opening with the quoted supporting sentence when `cot` is on."""
    return f'"{pair.evidence}"\nAnswer: {pair.answer}' if cot and pair.evidence else pair.answer


def _raft_messages(question: str, chunks: list[Chunk], t: P.PromptTemplates, answer: str) -> list[dict]:
    hits = [Hit(c, 1.0 / r, r) for r, c in enumerate(chunks, 1)]  # best first: unshuffled, the oracle goes last in the prompt
    messages, _ = P.rag_messages(question, hits, t, len, NO_BUDGET, examples=False)
    return messages + [{"role": "assistant", "content": answer}]


def _estimate_tokens(messages: list[dict]) -> int:
    """Tokens by character count: the extractive generator loads no model, hence no tokenizer."""
    return sum(len(m["content"]) // CHARS_PER_TOKEN + TEMPLATE_TOKENS for m in messages)


def _row(pair: Pair, messages: list[dict], kind: str, oracle_in_context: bool, chunks: int) -> dict:
    """`messages` with the pair's metadata beside them, so every row traces back to its text."""
    return {
        "messages": messages,
        "kind": kind,
        "pair_id": pair.id,
        "question": pair.question,
        "answer": pair.answer,
        "oracle_chunk_id": pair.chunk_id,
        "oracle_in_context": oracle_in_context,
        "chunks": chunks,
        "source": pair.source,
        "page": pair.page,
        "section": pair.section,
        "split": pair.split,
        "group": pair.group,
        "pair_kind": pair.kind,
        "generator": pair.generator,
    }


# Exports -----------------------------------------------------------------------------------------

META = (
    "kind",
    "pair_id",
    "oracle_chunk_id",
    "oracle_in_context",
    "chunks",
    "source",
    "page",
    "section",
    "split",
    "group",
    "pair_kind",
    "generator",
)


def to_alpaca(row: dict) -> dict:
    """LLaMA-Factory's alpaca: `system`, `instruction` (the last user turn), `input`, `output`, `history`."""
    m = row["messages"]
    system = m[0]["content"] if m[0]["role"] == "system" else ""
    turns = [x for x in m if x["role"] != "system"]
    history = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 2, 2)]
    return {
        "system": system,
        "instruction": turns[-2]["content"],
        "input": "",
        "output": turns[-1]["content"],
        "history": history,
        **{k: row[k] for k in META},
    }


def to_sharegpt(row: dict) -> dict:
    """ShareGPT's `conversations` (`from`: system, human, gpt), with the row's metadata."""
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": names[x["role"]], "value": x["content"]} for x in row["messages"]], **{k: row[k] for k in META}}


EXPORTS = {"alpaca": to_alpaca, "sharegpt": to_sharegpt}
