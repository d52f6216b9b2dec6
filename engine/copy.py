"""Copy decoding (`rag_answer: copy`): the answer must be a span of the retrieved context, or "I don't know".

Free generation from a small model paraphrases and rambles; this keeps every streamed answer to
text the chunks contain. The span reader (engine/spans.py) scores better and is the default
(README, "How rag answers are made"). Spans are matched on normalised characters, not token
ids, so " Paris" in the context and "Paris" opening an answer are the same span.
"""

from __future__ import annotations

import re

NEG_INF = float("-inf")


class CopyProcessor:
    """The copy constraint for one prompt, applied to the model's `top_n` likeliest tokens each
    step; `BatchProcessor` applies one per row."""

    def __init__(self, tokenizer, documents: list[str], abstain: str = "I don't know", top_n: int = 64):
        self.tokenizer, self.top_n = tokenizer, top_n
        self.docs = [" " + " ".join(d.split()).lower() + " " for d in documents if d.strip()]
        self.abstain = abstain.lower()
        self.eos = tokenizer.eos_token_id

    def allowed(self, generated: list[int], candidates: list[int]) -> list[int]:
        """Which of `candidates` (token ids) may come next after `generated`: those that keep the
        answer a span starting at a word boundary; EOS only where the span ends at one."""
        prefix = self._text(generated)
        out = []
        for c in candidates:
            if c == self.eos:
                if prefix and self._is_span(prefix, whole=True):
                    out.append(c)
                continue
            text = self._text(generated + [c])
            if text and text != prefix and self._is_span(text, whole=False):
                out.append(c)
        if not out:  # nothing likely fits: end the answer here, or say we don't know
            out = [self.eos] if prefix else self._abstain_next(generated)
        return out

    def _text(self, ids: list[int]) -> str:
        return " ".join(self.tokenizer.decode(ids, skip_special_tokens=True).split()).lower()

    def _is_span(self, text: str, whole: bool) -> bool:
        """`text` starts at a word boundary in some document (and, if `whole`, ends at one), or is the abstention."""
        if (text == self.abstain) if whole else self.abstain.startswith(text):
            return True
        pattern = rf"(?<!\w){re.escape(text)}" + (r"(?!\w)" if whole else "")
        return any(re.search(pattern, d) for d in self.docs)

    def _abstain_next(self, generated: list[int]) -> list[int]:
        ids = self.tokenizer(self.abstain_text, add_special_tokens=False)["input_ids"]
        n = len(generated)
        return [ids[n]] if n < len(ids) else [self.eos]

    @property
    def abstain_text(self) -> str:
        return self.abstain[:1].upper() + self.abstain[1:]


class BatchProcessor:
    """A transformers logits processor: row i of the batch follows `processors[i]` (None: free)."""

    def __init__(self, processors: list[CopyProcessor | None]):
        self.processors = processors
        self.start: int | None = None  # the prompt width: generated tokens start here

    def __call__(self, input_ids, scores):
        import torch

        if self.start is None:
            self.start = input_ids.shape[1]
        top_n = max(p.top_n for p in self.processors if p is not None)
        top = torch.topk(scores, min(top_n, scores.shape[1]), dim=1).indices.tolist()
        mask = torch.zeros_like(scores, dtype=torch.bool)
        for row, p in enumerate(self.processors):
            if p is None:
                continue
            generated = input_ids[row, self.start :].tolist()
            if p.eos in generated:  # this row has finished; generate pads it with EOS
                continue
            mask[row] = True
            mask[row, p.allowed(generated, top[row][: p.top_n])] = False
        return scores.masked_fill(mask, NEG_INF)
