"""Span answers: the model picks, by likelihood, the best answer among spans of its context.

A small model ranks better than it writes: scored as log P(span, then end-of-answer | prompt),
the right span among a chunk's entities, noun phrases and numbers wins more often than its free
answer, and counting the end-of-answer token makes "Rollo" beat "Rollo, who swore fealty". Each
chunk is scored in a prompt of its own, and the model's score is one term of `rank`, beside the
checks a reader makes first (configs/spans.yaml). Figures: README, "How rag answers are made",
and docs/measurements.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ragtune.loaders.tables import CELLS, HEADER

HEAD_FLOOR = -30.0  # the head's log P of a span it cannot place (cut off the end of its input): very unlikely, not -inf
MAX_SPAN_WORDS = 12  # longer noun phrases are rarely answers, and cost scoring time
MAX_CELL_WORDS = 6  # a table row's values are figures and short names; prose with a pipe ("{x | x > 0}") runs longer
# What spaCy's English model does not see as a phrase but technical documents answer with:
# `code`, --flags, and "quoted names".
TECHNICAL = re.compile(r"`([^`\n]{1,80})`|(?<![\w-])(--?[A-Za-z][\w-]*)|\"([^\"\n]{1,80})\"|“([^”\n]{1,80})”")
# The entity labels (spaCy's English scheme; NUM is a bare number) that answer each kind of
# question. The first pattern that matches the lowercased question decides; "what"/"which"
# questions expect no type.
ANSWER_TYPES = [
    (re.compile(r"\bhow (many|much)\b"), {"CARDINAL", "QUANTITY", "MONEY", "PERCENT", "NUM"}),
    (re.compile(r"\bhow long\b"), {"DATE", "TIME", "QUANTITY"}),
    (re.compile(r"\bpercent"), {"PERCENT"}),
    (re.compile(r"\b(when|what (year|century|decade|date|day|month|time)|which (year|century|decade))\b"), {"DATE", "TIME"}),
    (re.compile(r"\b(who|whom|whose)\b"), {"PERSON", "ORG", "NORP", "GPE"}),
    (re.compile(r"\bwhere\b"), {"GPE", "LOC", "FAC", "ORG"}),
]


@dataclass(frozen=True)
class Candidate:
    """A span of a retrieved chunk that might answer the question, with what a reader would check."""

    text: str
    rank: int = 0  # of its chunk among the retrieved ones; 0 is the best
    evidence: float = 0.0  # share of the question's content words in the span's sentence
    typed: bool = False  # its entity type is what the question asks for
    echo: float = 0.0  # share of its content words that the question already says
    sentence: str = ""  # the sentence it was found in, which a factoid answer quotes


@dataclass(frozen=True)
class ScoredSpan:
    """A span with the model's score of it as the answer."""

    text: str
    logprob: float  # of the span's tokens and the end-of-answer token
    tokens: int


@lru_cache(maxsize=1)
def _nlp():
    import spacy

    from ragtune.core import offline

    # Only what finds entities, noun chunks, numbers and sentences: the parser and the NER.
    return spacy.load(offline.spacy_model_path(), disable=["lemmatizer"])


def expected_types(question: str) -> set[str]:
    """The entity labels that answer `question` ("who" -> PERSON, ORG, ...); empty if any may."""
    q = question.lower()
    return next((types for pattern, types in ANSWER_TYPES if pattern.search(q)), set())


def candidate_spans(text: str, question: str, rank: int = 0) -> list[Candidate]:
    """Named entities, noun phrases, numbers, `code`, --flags and "quoted" text in one chunk.

    Spans made only of the question's own words are left out: "Who led the Normans?" is not
    answered by "the Normans".
    """
    nlp = _nlp()
    asked = {w.strip("?,.!;:\"'").lower() for w in question.split()}
    content = {t.lower_ for t in nlp.tokenizer(question) if not (t.is_stop or t.is_punct)}
    types = expected_types(question)
    cells = table_cells(text)
    asked_parts = {part for w in content for part in _alnum(w)}  # matched against a cell's label and header
    text = " ".join(text.split())
    doc = nlp(text)

    def sentence(start_char: int) -> tuple[float, str]:
        """The span's sentence, and the share of the question's content words it holds; in a
        table, the span's row, and the share found in its row's label and its column's header."""
        cell = next((c for c in cells if c.start <= start_char < c.end), None)
        if cell is not None:
            return (len(asked_parts & _alnum(cell.context)) / len(asked_parts) if asked_parts else 0.0), cell.row
        sent = doc.char_span(start_char, start_char + 1, alignment_mode="expand")
        if sent is None:
            return 0.0, ""
        words = {t.lower_ for t in sent.sent if not (t.is_stop or t.is_punct)}
        return (len(content & words) / len(content) if content else 0.0), sent.sent.text.strip()

    found = [(s.text, s.start_char, s.label_ or None) for s in sorted(list(doc.ents) + list(doc.noun_chunks), key=lambda s: s.start)]
    found += [(t.text, t.idx, "NUM") for t in doc if t.like_num]
    found += [(m.group(m.lastindex), m.start(m.lastindex), None) for m in TECHNICAL.finditer(text)]
    out: dict[str, Candidate] = {}
    for span, start, label in found:
        span = span.strip(" ,.;:\"'()`")
        words = [w.strip("\"',.()") for w in span.lower().split()]
        if not span or len(words) > MAX_SPAN_WORDS or set(words) <= asked or CELLS in span or _label_or_header(cells, start):
            continue
        said = [w for w in words if w and w not in nlp.Defaults.stop_words]
        evidence, sent = sentence(start)
        c = Candidate(span, rank, evidence, label in types, sum(w in content for w in said) / len(said) if said else 0.0, sent)
        if span in out:  # said twice: its best sentence counts, and an entity reading once is enough
            old = out[span]
            best = old if old.evidence >= c.evidence else c
            c = Candidate(span, rank, best.evidence, old.typed or c.typed, c.echo, best.sentence)
        out[span] = c
    return list(out.values())


@dataclass(frozen=True)
class Cell:
    """A figure of a table row (loaders/tables.py writes `label | header: value | ...`), placed in
    the chunk's whitespace-joined text: its row's label and its column's header say what it is."""

    start: int
    end: int
    context: str  # the row's label and the cell's header
    row: str
    row_start: int  # the row's own offsets: its label and headers are context, not answers
    row_end: int


def table_cells(text: str) -> list[Cell]:
    """The value cells of the table rows in `text`, at their offsets in `" ".join(text.split())`.

    A row's words alone would give every figure in it the same evidence; the year or quarter
    asked for is in one column's header.
    """
    out, at = [], 0
    for line in (" ".join(raw.split()) for raw in text.splitlines()):
        if not line:
            continue
        parts = line.split(CELLS)
        cells = [part.rpartition(HEADER) for part in parts[1:]]
        if cells and all(len(value.split()) <= MAX_CELL_WORDS for _, _, value in cells):
            offset = at + len(parts[0]) + len(CELLS)
            for part, (header, colon, _) in zip(parts[1:], cells):
                skip = len(header) + len(colon)
                out.append(Cell(offset + skip, offset + len(part), f"{parts[0]} {header}", line, at, at + len(line)))
                offset += len(part) + len(CELLS)
        at += len(line) + 1
    return out


def _label_or_header(cells: list[Cell], start: int) -> bool:
    """Whether a span starts in a table row but outside its figures."""
    return any(c.row_start <= start < c.row_end for c in cells) and not any(c.start <= start < c.end for c in cells)


def _alnum(text: str) -> set[str]:
    """Lowercased letter and digit runs: "3/25/2023" holds "2023", "Frito-Lay" holds "frito"."""
    return set(re.findall(r"[a-z0-9]+", text.lower())) - _nlp().Defaults.stop_words


def rank(
    candidates: list[Candidate], scored: list[ScoredSpan], cfg, head: list[float] | None = None
) -> list[tuple[float, Candidate, ScoredSpan]]:
    """Candidates by total score, best first: the model's log-prob plus the weighted checks of `cfg`,
    and with `head` (the reader head's log P of each span, engine/head.py) its weighted score."""
    lm = cfg.head_lm_weight if head is not None else 1.0
    totals = [
        (
            lm * s.logprob
            + cfg.evidence_weight * c.evidence
            + cfg.type_weight * c.typed
            - cfg.echo_weight * c.echo
            - cfg.rank_weight * c.rank
            + (cfg.head_weight * max(h, HEAD_FLOOR) if head is not None else 0.0),
            c,
            s,
        )
        for c, s, h in zip(candidates, scored, head or [0.0] * len(candidates))
    ]
    return sorted(totals, key=lambda t: -t[0])


def abstains(margins: list[float], supported: bool, margin: float) -> bool:
    """Whether "I don't know" is the answer: no sentence of the chunks speaks to the question,
    or it beats the best span of every chunk by `margin` nats (`margins`: each chunk's
    log P(abstain) - its best span's). One chunk's "I don't know" is not enough: the answer
    may be in another, and an adapter trained on single-chunk rows abstains on distractors."""
    return not supported or (bool(margins) and min(margins) > margin)


class PrefixCache:
    """The KV cache of prompt prefixes that many prompts share (the system prompt and the worked
    examples come before every question), so each prompt only runs its own part. Keyed by the
    caller's `key` (whether an adapter is on) and the prefix's token ids; the oldest goes first."""

    def __init__(self, size: int = 4):
        self.size, self.entries = size, {}

    def run(self, model, ids: list[int], prefix: list[int], key):
        """The model's output over `ids`, reusing the cached pass over `prefix` (ids' first tokens)."""
        import copy

        import torch

        k = (key, tuple(prefix))
        if k not in self.entries:
            if len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))
            self.entries[k] = model(torch.tensor([prefix]), use_cache=True).past_key_values
        past = copy.deepcopy(self.entries[k])  # the rest of the prompt is appended to it
        return model(torch.tensor([ids[len(prefix) :]]), past_key_values=past, use_cache=True)


def score_spans(
    model, tokenizer, prompt: str, spans: list[str], chunk: int = 128, prefix: str = "", cache: PrefixCache | None = None, key=None
) -> list[ScoredSpan]:
    """log P(span + EOS | prompt) for each span, from one prompt pass and packed candidate passes.

    The prompt runs once and its KV cache is reused; the candidates then go through the model
    packed into one sequence, each attending only to the prompt and itself (a block-diagonal
    mask, positions restarting after the prompt), so they cost about one pass over their total
    length rather than a pass over the prompt each. With `cache` and a `prefix` of the prompt,
    the prefix's pass is shared with other prompts that start the same way (used only if it
    tokenizes as the prompt's first tokens).

    Args:
        spans: the candidate answers, scored in `chunk`-sized packs.
        key: what else the cached prefix depends on (whether an adapter is on).
    Returns:
        One `ScoredSpan` per span, in order.
    """
    import torch

    eos = tokenizer.eos_token_id
    ids = [tokenizer(s, add_special_tokens=False)["input_ids"] + [eos] for s in spans]
    with torch.inference_mode():
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        head = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix and cache is not None else []
        if head and len(head) < len(prompt_ids) and prompt_ids[: len(head)] == head:
            out = cache.run(model, prompt_ids, head, key)
        else:
            out = model(torch.tensor([prompt_ids]), use_cache=True)
        first = torch.log_softmax(out.logits[0, -1].float(), -1)  # predicts each span's first token
        n = len(prompt_ids)
        scores: list[float] = []
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            past = _copy_cache(out.past_key_values) if start + chunk < len(ids) else out.past_key_values
            scores += _score_packed(model, past, n, part, first)
    return [ScoredSpan(s, lp, len(i) - 1) for s, lp, i in zip(spans, scores, ids)]


def _score_packed(model, cache, n: int, ids: list[list[int]], first) -> list[float]:
    """One forward pass over candidates packed after the cached prompt of length `n`."""
    import torch

    seq, pos, owner = [], [], []
    for j, c in enumerate(ids):
        fed = c[:-1]  # the last token (EOS) is predicted, never fed
        seq += fed
        pos += range(n, n + len(fed))
        owner += [j] * len(fed)
    total = [first[c[0]].item() for c in ids]
    if not seq:
        return total
    own, ar = torch.tensor(owner), torch.arange(len(seq))
    allow = torch.ones(len(seq), n + len(seq), dtype=torch.bool)
    allow[:, n:] = (own[:, None] == own[None, :]) & (ar[None, :] <= ar[:, None])  # itself, causally
    dtype = next(model.parameters()).dtype
    mask = torch.zeros(1, 1, len(seq), n + len(seq), dtype=dtype).masked_fill(~allow, torch.finfo(dtype).min)
    logits = model(torch.tensor([seq]), past_key_values=cache, attention_mask=mask, position_ids=torch.tensor([pos])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    i = 0
    for j, c in enumerate(ids):
        for t in range(1, len(c)):
            total[j] += logp[i + t - 1, c[t]].item()
        i += len(c) - 1
    return total


def _copy_cache(cache):
    import copy

    return copy.deepcopy(cache)
