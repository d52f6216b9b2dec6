"""The reader head's training (engine/head.py): its examples, its loss, and the trainer that adds it
to LoRA's.

Each RAFT row of a dataset carries its oracle chunk and its hardest distractor (`reader`,
synth/rows.py). The oracle gives the answer's span and sentence; the distractor, when it does not
hold the answer, gives a chunk whose answer is the null token. A few such examples ride along with
each optimizer step (`head_examples`), read through the same model and adapter but with no gradient
into them: trained jointly, the head's loss pulled LoRA off its answers (docs/ft-rag.md). Each
costs about one more row's forward pass, so their number per step, not per micro-batch, sets the
head's share of training time.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ragtune.engine import head as H
from ragtune.synth.filters import holds

LR_SCALE = 5.0  # the head starts from random weights: it learns at 5x LoRA's rate
EVAL_EXAMPLES = 50  # held-out examples the saved head is scored on


@dataclass(frozen=True)
class Example:
    """A question and one chunk; `answer` is "" when the chunk does not hold it."""

    question: str
    context: str
    answer: str
    evidence: str = ""


@dataclass(frozen=True)
class Target:
    """Where the answer is in a ReaderInput: its first and last token (both the null token if absent),
    and the tokens of its sentence."""

    start: int
    end: int
    sentence: tuple[int, int] | None


def read_examples(path: Path) -> list[Example]:
    """The reader examples of one split's rows: an oracle example per RAFT row that carries its
    chunks, and a no-answer one for its distractor. Rows without `reader` (older datasets) give none."""
    out: list[Example] = []
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
                reader, question, answer = row["reader"], row["question"], row["answer"]
            except (ValueError, KeyError, TypeError):
                continue
            out.append(Example(question, reader["context"], answer, reader.get("evidence") or ""))
            distractor = reader.get("distractor") or ""
            if distractor:
                out.append(Example(question, distractor, answer if holds(distractor, answer) else ""))
    return out


def target(inp: H.ReaderInput, ex: Example) -> Target | None:
    """The example's answer in `inp`; None if it is not found there (cut off, or reworded)."""
    if not ex.answer:
        return Target(inp.null, inp.null, None)
    answer, evidence = " ".join(ex.answer.split()), " ".join(ex.evidence.split())
    where = H.occurrences(inp.text, evidence)[:1] if evidence else []
    if not where:
        where = [s for s in H.sentence_spans(inp.text) if answer in inp.text[s[0] : s[1]]][:1]
    hits = [(a, b) for a, b in H.occurrences(inp.text, answer) if not where or (where[0][0] <= a and b <= where[0][1])]
    tokens = inp.token_span(*hits[0]) if hits else None
    if tokens is None:
        return None
    return Target(tokens[0], tokens[1], inp.token_span(*where[0]) if where else None)


def loss(model, head: H.ReaderHead, tokenizer, ex: Example, pad_to: int = 1) -> tuple[torch.Tensor, int] | None:
    """The head's loss on one example (start and end cross-entropy over the chunk's tokens and the null
    token, plus each token's sentence relevance), and the tokens it read; None if its answer is not found.
    Its gradient reaches the head's weights only, never the model's or the adapter's.
    The input is padded at its end to a multiple of `pad_to`, as the trainer's batches are (configs/train.yaml
    pad_to_multiple_of): a causal model's earlier tokens never see the padding."""
    import torch.nn.functional as F

    inp = H.reader_input(tokenizer, ex.question, ex.context)
    t = target(inp, ex)
    if t is None:
        return None
    ids = inp.ids + [tokenizer.pad_token_id or 0] * (-len(inp.ids) % pad_to)
    with torch.no_grad():  # the head learns to read the adapter's states; LoRA learns from the LM loss alone
        h = H.decoder(model)(input_ids=torch.tensor([ids], device=head.span.weight.device)).last_hidden_state
    start, end, relevance = head(h.to(head.span.weight.dtype))  # the head stays in fp32 beside bf16 base weights
    span = span_loss(start, end, inp, t)
    labels = torch.zeros(len(inp.ids) - inp.first)
    if t.sentence:
        labels[t.sentence[0] - inp.first : t.sentence[1] - inp.first + 1] = 1.0
    sentence = F.binary_cross_entropy_with_logits(relevance[0, inp.first : len(inp.ids)].float(), labels)
    return span / 2 + sentence, len(inp.ids)


def span_loss(start: torch.Tensor, end: torch.Tensor, inp: H.ReaderInput, t: Target) -> torch.Tensor:
    """Start and end cross-entropy over the chunk's tokens and the null token; `start` and `end` are
    the head's logits over `inp`'s tokens (1, tokens), padding after them allowed."""
    import torch.nn.functional as F

    allowed = torch.tensor([inp.null] + list(range(inp.first, len(inp.ids))))
    where = {tok: i for i, tok in enumerate(allowed.tolist())}
    return F.cross_entropy(start[:, allowed].float(), torch.tensor([where[t.start]])) + F.cross_entropy(
        end[:, allowed].float(), torch.tensor([where[t.end]])
    )


def exact(model, head: H.ReaderHead, tokenizer, examples: list[Example]) -> dict:
    """The share of held-out examples whose likeliest span (or no-answer: Reading.best) is exactly the
    target's, overall and apart: spans where the chunk holds the answer, no-answer where it does not.
    Half the examples are distractors, so a head that always says "no answer" scores half overall."""
    right = {True: 0, False: 0}
    n = {True: 0, False: 0}
    with torch.inference_mode():
        for ex in examples[:EVAL_EXAMPLES]:
            t = target(H.reader_input(tokenizer, ex.question, ex.context), ex)
            if t is None:
                continue
            first, last, _ = H.read(model, head, tokenizer, ex.question, ex.context).best()
            right[bool(ex.answer)] += (first, last) == (t.start, t.end)
            n[bool(ex.answer)] += 1
    share = lambda r, k: round(r / k, 4) if k else None
    return {
        "eval_examples": n[True] + n[False],
        "eval_exact": share(right[True] + right[False], n[True] + n[False]),
        "eval_spans": n[True],
        "eval_span_exact": share(right[True], n[True]),
        "eval_no_answer_exact": share(right[False], n[False]),
    }


def trainer_class(base, head: H.ReaderHead, examples: list[Example], tokenizer, seed: int, on_tokens, pad_to: int = 1, per_step: int = 1):
    """`base` (TRL's SFTTrainer) with the head's loss on `per_step` examples added to each optimizer
    step's, spread over its first micro-batches, and the head's weights in the optimizer.
    `on_tokens(n)` counts the tokens the head's examples put through the model."""
    rng = random.Random(seed)

    def cycle():
        while True:
            order = list(examples)
            rng.shuffle(order)
            yield from order

    stream = cycle()

    class HeadTrainer(base):
        micro_batches = 0  # training micro-batches so far; a step cut short at an epoch's end only shifts which one carries them
        head_read = 0  # the head's examples this process read (a resumed run counts from its resume)

        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            lr = self.args.learning_rate * LR_SCALE
            optimizer.add_param_group({"params": list(head.parameters()), "lr": lr, "weight_decay": 0.0})
            return optimizer

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            if not model.training:
                return out
            accum = self.args.gradient_accumulation_steps
            here = _share(per_step, accum, self.micro_batches % accum)
            self.micro_batches += 1
            losses = [found for found in (_next_loss(model) for _ in range(here)) if found is not None]
            if not losses:
                return out
            on_tokens(sum(tokens for _, tokens in losses))
            self.head_read += len(losses)
            extra = sum(value for value, _ in losses) * accum / per_step  # the step's mean over its examples
            if _scaled_for_accumulation(self, num_items_in_batch):  # the LM loss already is; ours must match it
                extra = extra / self.current_gradient_accumulation_steps
            if return_outputs:
                return out[0] + extra, out[1]
            return out + extra

    def _next_loss(model):
        """The loss on the next example whose answer is found (most are); None if none is."""
        for _ in range(len(examples)):
            found = loss(model, head, tokenizer, next(stream), pad_to)
            if found is not None:
                return found
        return None

    return HeadTrainer


def _share(per_step: int, accum: int, i: int) -> int:
    """How many of a step's `per_step` examples micro-batch `i` of its `accum` carries: the first ones carry more."""
    return per_step // accum + (i < per_step % accum)


def _scaled_for_accumulation(trainer, num_items_in_batch) -> bool:
    """Whether the trainer will not divide this loss by the accumulation steps (transformers' own rule)."""
    if getattr(trainer, "loss_is_scaled_for_ga", None) is not None:
        return bool(trainer.loss_is_scaled_for_ga)
    return bool((trainer.model_accepts_loss_kwargs and num_items_in_batch is not None) or trainer.compute_loss_func is not None)
