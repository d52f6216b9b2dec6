"""The reader head: span start and end scores, and a relevance score per sentence, on the hidden
states of the model with its adapter.

The span reader ranks a chunk's candidate spans by the model's likelihood of each as the answer.
An extractive QA model reads instead: the question comes first, so every token of the chunk has
seen it, and a small trained layer scores where the answer starts and ends (Lewis et al. 2019
trained such a reader on synthetic questions). The head trains beside LoRA on the synthetic pairs
(train/run.py), is saved in the adapter folder beside it, and loads with it; an adapter without
one reads as before. What it adds: docs/ft-rag.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

WEIGHTS, CONFIG = "reader_head.safetensors", "reader_head.json"
FORMAT = 1  # the reader input's layout (below); a head trained on another layout is not used
MAX_CONTEXT_TOKENS = 384  # a chunk's tokens the head reads; chunks are ~180 tokens (configs/ingest.yaml)
MAX_ANSWER_TOKENS = 30  # the head's own answers (Reading.best) are spans of at most this many tokens
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")


class ReaderHead(nn.Module):
    """Linear scores on each token's hidden state and the next one's: a causal model's token has not
    seen what follows it, and where a span starts or ends depends on the next word."""

    def __init__(self, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.span = nn.Linear(2 * hidden, 2)  # start, end
        self.sentence = nn.Linear(hidden, 1)  # this token's sentence answers the question

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(batch, tokens, hidden) -> start, end and relevance logits, each (batch, tokens)."""
        following = torch.cat([h[:, 1:], torch.zeros_like(h[:, :1])], 1)
        start_end = self.span(torch.cat([h, following], -1))
        return start_end[..., 0], start_end[..., 1], self.sentence(h)[..., 0]


@dataclass
class ReaderInput:
    """The head's input: the question, then the chunk; where each chunk token came from."""

    ids: list[int]
    text: str  # the chunk, whitespace collapsed as the span candidates see it
    offsets: list[tuple[int, int]]  # per chunk token: its characters in `text`
    first: int  # the index of the chunk's first token in `ids`
    null: int  # the token standing for "no answer in this chunk": the last one before the chunk

    def token_span(self, start: int, end: int) -> tuple[int, int] | None:
        """The first and last chunk tokens (indices into `ids`) covering characters [start, end); None if cut off."""
        first = next((i for i, (a, b) in enumerate(self.offsets) if b > start), None)
        last = next((i for i in range(len(self.offsets) - 1, -1, -1) if self.offsets[i][0] < end), None)
        if first is None or last is None or last < first or end > self.offsets[-1][1]:
            return None
        return self.first + first, self.first + last


def reader_input(tokenizer, question: str, chunk: str, max_tokens: int = MAX_CONTEXT_TOKENS) -> ReaderInput:
    """The question before the chunk, so the chunk's tokens attend to it."""
    text = " ".join(chunk.split())
    lead = tokenizer(f"Question: {' '.join(question.split())}\nContext:", add_special_tokens=False)["input_ids"]
    enc = tokenizer(" " + text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"][:max_tokens], [(max(a - 1, 0), max(b - 1, 0)) for a, b in enc["offset_mapping"][:max_tokens]]
    return ReaderInput(lead + ids, text, offsets, len(lead), len(lead) - 1)


def occurrences(text: str, span: str) -> list[tuple[int, int]]:
    """Every [start, end) of `span` in `text`."""
    out, i = [], text.find(span)
    while i >= 0 and span:
        out.append((i, i + len(span)))
        i = text.find(span, i + 1)
    return out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of `text`, split where a sentence ends (a cheap rule: training
    marks the answer's sentence, and the reader's own sentences are found in the text by their words)."""
    out, start = [], 0
    for m in SENTENCE_END.finditer(text):
        if m.start() > start:
            out.append((start, m.start()))
        start = m.end()
    if start < len(text):
        out.append((start, len(text)))
    return out


def decoder(model):
    """The model without its vocabulary projection, adapter layers included: the head needs hidden states only."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder()


class Reading:
    """The head's scores of one chunk for one question: log-probabilities over where the answer starts
    and ends (the null token among them), and each token's relevance."""

    def __init__(self, inp: ReaderInput, start: torch.Tensor, end: torch.Tensor, relevance: torch.Tensor):
        allowed = [inp.null] + list(range(inp.first, len(inp.ids)))
        self.inp, self.index = inp, {t: i for i, t in enumerate(allowed)}
        pick = torch.tensor(allowed)
        self.start = torch.log_softmax(start.float()[pick], -1).tolist()
        self.end = torch.log_softmax(end.float()[pick], -1).tolist()
        self.relevance = relevance.float().tolist()

    @property
    def no_answer(self) -> float:
        """log P(start and end at the null token): the head's "not in this chunk"."""
        return self.start[0] + self.end[0]

    def span(self, text: str) -> float:
        """log P(the answer is `text`), at its likeliest occurrence in the chunk; -inf if absent."""
        best = -float("inf")
        for a, b in occurrences(self.inp.text, text):
            tokens = self.inp.token_span(a, b)
            if tokens:
                best = max(best, self.start[self.index[tokens[0]]] + self.end[self.index[tokens[1]]])
        return best

    def best(self) -> tuple[int, int, float]:
        """The head's own answer: the first and last token (indices into `ids`) of its likeliest span
        of at most MAX_ANSWER_TOKENS, or the null token twice, with its log P."""
        inp, n = self.inp, len(self.inp.offsets)
        best = (inp.null, inp.null, self.no_answer)
        for i in range(n):
            s = self.start[self.index[inp.first + i]]
            for j in range(i, min(n, i + MAX_ANSWER_TOKENS)):
                score = s + self.end[self.index[inp.first + j]]
                if score > best[2]:
                    best = (inp.first + i, inp.first + j, score)
        return best

    def text(self, first: int, last: int) -> str:
        """The chunk's text under tokens first..last (indices into `ids`); "" for the null token."""
        if first == self.inp.null:
            return ""
        return self.inp.text[self.inp.offsets[first - self.inp.first][0] : self.inp.offsets[last - self.inp.first][1]].strip()

    def sentence(self, text: str) -> float:
        """The sentence's mean token relevance (a logit); 0 if it is not found in the chunk."""
        found = occurrences(self.inp.text, " ".join(text.split()))
        tokens = self.inp.token_span(*found[0]) if found else None
        if not tokens:
            return 0.0
        return sum(self.relevance[tokens[0] : tokens[1] + 1]) / (tokens[1] - tokens[0] + 1)


def read(model, head: ReaderHead, tokenizer, question: str, chunk: str) -> Reading:
    """The head's reading of one chunk (the caller sets the adapter and inference mode)."""
    inp = reader_input(tokenizer, question, chunk)
    h = decoder(model)(input_ids=torch.tensor([inp.ids])).last_hidden_state
    start, end, relevance = head(h.to(head.span.weight.dtype))
    return Reading(inp, start[0], end[0], relevance[0])


# Saved beside the adapter -----------------------------------------------------------------------


def save(head: ReaderHead, folder: Path, info: dict) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().float().contiguous() for k, v in head.state_dict().items()}, str(folder / WEIGHTS))
    (folder / CONFIG).write_text(json.dumps({"hidden": head.hidden, "format": FORMAT, **info}, indent=2) + "\n")


def load(folder: Path) -> ReaderHead | None:
    """The head saved in an adapter folder; None if it has none, or one of another input layout."""
    config, weights = Path(folder) / CONFIG, Path(folder) / WEIGHTS
    if not (config.exists() and weights.exists()):
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        info = json.loads(config.read_text())
        if info.get("format") != FORMAT:
            return None
        head = ReaderHead(int(info["hidden"]))
        head.load_state_dict(load_file(str(weights)))
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        RuntimeError,
        SafetensorError,
    ) as e:  # a cut or foreign file: one line, not a traceback
        raise RuntimeError(f"--adapter {folder}: its reader head ({WEIGHTS}, {CONFIG}) is unreadable: {str(e).splitlines()[0]}") from None
    return head.eval()
