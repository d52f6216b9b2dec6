"""`Engine`: one loaded model (and at most one LoRA adapter) that generates, batched or streamed.

Synthesis, evaluation, the API and the app all share this: the base model is loaded once and
the `ft` modes switch the adapter on and off with PEFT's `disable_adapter()`, so base and
fine-tuned answers come from one copy of the weights. A lock serializes generation: two
callers never interleave tokens, and a stream holds the model until it ends or is closed.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ragtune.core.records import Citation
from ragtune.engine import model as model_lib
from ragtune.engine.config import DecodingConfig, ModelConfig

PLAIN_STOP = "\nQuestion:"  # where a base model's plain-template answer ends


@dataclass
class Generation:
    """One generated answer and what it cost."""

    text: str
    prompt_tokens: int
    generated_tokens: int
    finish_reason: str  # stop (EOS or a stop string) | length (hit max_new_tokens)
    latency_s: float = 0.0
    first_token_s: float | None = None  # streaming only: time to the first text
    reading: Reading | None = None  # a span reader's answer: its form and citations


@dataclass
class Reading:
    """What a span reader's answer is made of (engine/answer.py): its form, span and citations."""

    form: str = ""  # factoid | open | list | abstain
    span: str = ""
    citations: list[Citation] = field(default_factory=list)


class Engine:
    """Load once, then `generate()` many prompts or `stream()` one."""

    def __init__(self, cfg: ModelConfig, adapter: str | Path | None = None):
        self.cfg = cfg
        loaded = model_lib.load(cfg)
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.base_path, self.n_params = loaded.path, loaded.n_params
        self.plain_template = loaded.plain_template  # a base model: `render` writes plain text
        self.adapter_path: Path | None = None
        self._adapters_loaded = 0
        self.lock = threading.Lock()  # not an RLock: a stream may be resumed from another thread
        if adapter:
            self.load_adapter(adapter)

    # Prompts ------------------------------------------------------------------------------

    def render(self, messages: list[dict]) -> str:
        """Messages through the model's own chat template, ready for the assistant's turn.

        A model without one (a base model: `plain_template`) gets plain text instead: the
        system prompt, then each turn as "Question: ..." and "Answer: ...", ending at "Answer:".
        """
        if not self.plain_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # Prompts are tokenized without special tokens, so a BOS the model expects (Gemma's) is written here.
        adds_bos = self.tokenizer("")["input_ids"][:1] == [self.tokenizer.bos_token_id]
        bos = self.tokenizer.bos_token if adds_bos else ""
        turns = []
        for m in messages:
            text = m["content"]
            if m["role"] == "system":
                turns.append(text + "\n\n")
            elif m["role"] == "user":  # the rag prompt labels its own question after the documents
                turns.append(text if "Question:" in text else f"Question: {text}")
            else:
                turns.append(f"\nAnswer: {text}\n\n")
        return bos + "".join(turns) + "\nAnswer:"

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` as prompts are tokenized: without special tokens."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def max_context(self) -> int:
        """The model's context length in tokens (2048 if its config does not say)."""
        return int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)

    # Adapters -----------------------------------------------------------------------------

    def load_adapter(self, path: str | Path) -> None:
        """Attach a PEFT adapter (replacing any other); the base weights stay loaded once.

        Raises:
            RuntimeError: missing folder, not an adapter, or trained on another base model.
        """
        path = Path(path).expanduser()
        model_lib.check_base(model_lib.adapter_config(path, "--adapter"), path, self.base_path, "--adapter")
        from peft import PeftModel

        with self.lock:
            name = f"adapter{self._adapters_loaded}"  # a fresh name: the old adapter goes only once the new one loaded
            try:
                if isinstance(self.model, PeftModel):
                    old = self.model.active_adapter
                    self.model.load_adapter(str(path), adapter_name=name, is_trainable=False)
                    self.model.set_adapter(name)
                    self.model.delete_adapter(old)
                else:
                    self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name, is_trainable=False)
            except (RuntimeError, ValueError, KeyError) as e:  # shape mismatch: another architecture
                raise RuntimeError(
                    f"--adapter {path}: does not fit the loaded model {self.base_path} ({model_lib._first_line(e)})"
                ) from None
            self._adapters_loaded += 1
            self.model.eval()
            self.adapter_path = path

    @contextlib.contextmanager
    def using(self, adapter: bool):
        """Generate with the adapter on (`ft` modes) or off (base weights only)."""
        if adapter and self.adapter_path is None:
            raise RuntimeError("no adapter loaded: pass --adapter DIR or train one with `ragtune train`")
        if not adapter and self.adapter_path is not None:
            with self.model.disable_adapter():
                yield
        else:
            yield

    # Generation ---------------------------------------------------------------------------

    def generate(
        self, prompts: list[str], decoding: DecodingConfig, adapter: bool = False, batch_size: int = 16, processors: list | None = None
    ) -> list[Generation]:
        """Answers for many rendered prompts, batched with left padding.

        Prompts are sorted by length so each batch pads little; answers come back in the
        order given. `processors[i]`, if given, is a logits processor made for prompt i
        (copy decoding), or None.
        """
        import torch

        decoding = self._stops(decoding)
        out: list[Generation | None] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        with self.lock, self.using(adapter), torch.inference_mode():
            if decoding.seed is not None:
                torch.manual_seed(decoding.seed)
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                t0 = time.perf_counter()
                batch = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
                self._check_fits(batch["input_ids"].shape[1], decoding)
                extra = {}
                if processors and any(processors[i] is not None for i in idx):
                    from ragtune.engine.copy import BatchProcessor

                    extra["logits_processor"] = [BatchProcessor([processors[i] for i in idx])]
                ids = self.model.generate(**batch, **self._generate_kwargs(decoding), **extra)
                elapsed = time.perf_counter() - t0
                width = batch["input_ids"].shape[1]
                for row, i in enumerate(idx):
                    prompt_tokens = int(batch["attention_mask"][row].sum())
                    out[i] = self._finish(ids[row, width:].tolist(), prompt_tokens, decoding, elapsed)
        return out

    def stream(self, prompt: str, decoding: DecodingConfig, adapter: bool = False, processor=None) -> Iterator[str]:
        """Yield the answer's text as it is generated; the return value is the `Generation`.

        Stop strings are cut, and text that might be the start of one is held back until
        it is clear. Closing the iterator early stops generation and frees the model.
        `processor` is a copy-decoding constraint, or None.
        """
        return (yield from one_of(self.stream_many([prompt], decoding, [adapter], [processor]), 0))

    def stream_many(
        self, prompts: list[str], decoding: DecodingConfig, adapters: list[bool] | None = None, processors: list | None = None
    ) -> Iterator[tuple[int, str]]:
        """Generate several answers in one batch and yield `(i, text)` as each grows.

        The side-by-side chat streams base and ft this way: one forward pass a step serves
        both, so they arrive in parallel rather than one after the other. `adapters[i]` turns
        the adapter on for prompt i alone (PEFT's mixed-adapter batches). The return value
        is the list of `Generation`s; each one's latency is the time its own answer ended.
        """
        decoding = self._stops(decoding)
        adapters = adapters or [False] * len(prompts)
        rows = [_StreamRow() for _ in prompts]
        t0 = time.perf_counter()
        with self.lock, self.using(any(adapters)):
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            self._check_fits(batch["input_ids"].shape[1], decoding)
            tokens, failure, worker = self._start_stream(batch, decoding, self._stream_extras(adapters, processors), rows)
            try:
                yield from self._follow(tokens, rows, decoding, t0)
            finally:
                for row in rows:  # every row ended, or the reader left: the next step stops
                    row.done = True
                worker.join()
            if failure:
                raise failure[0]
            return (yield from self._end_stream(rows, batch, decoding, time.perf_counter() - t0))

    def _stream_extras(self, adapters: list[bool], processors: list | None) -> dict:
        """`generate`'s per-row arguments: which rows use the adapter, and their copy-decoding constraints."""
        extra = {}
        if len(set(adapters)) > 1:  # per-row adapters: "__base__" is PEFT's name for none
            extra["adapter_names"] = [self.model.active_adapter if a else "__base__" for a in adapters]
        if processors and any(p is not None for p in processors):
            from ragtune.engine.copy import BatchProcessor

            extra["logits_processor"] = [BatchProcessor(processors)]
        return extra

    def _start_stream(
        self, batch, decoding: DecodingConfig, extra: dict, rows: list[_StreamRow]
    ) -> tuple[queue.Queue, list[BaseException], threading.Thread]:
        """Run `generate` in a thread that queues each step's tokens, then None; a failure is kept for the caller.

        A row marked done is finished at the next step, and generation ends once all are.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        tokens: queue.Queue = queue.Queue()
        failure: list[BaseException] = []

        class _Done(StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):
                return torch.tensor([row.done for row in rows], dtype=torch.bool)

        def run():
            try:
                with torch.inference_mode():
                    if decoding.seed is not None:
                        torch.manual_seed(decoding.seed)
                    self.model.generate(
                        **batch,
                        **self._generate_kwargs(decoding),
                        streamer=_QueueStreamer(tokens),
                        stopping_criteria=StoppingCriteriaList([_Done()]),
                        **extra,
                    )
            except BaseException as e:  # surfaced in the caller's thread
                failure.append(e)
            finally:
                tokens.put(None)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        return tokens, failure, worker

    def _follow(self, tokens: queue.Queue, rows: list[_StreamRow], decoding: DecodingConfig, t0: float) -> Iterator[tuple[int, str]]:
        """Yield each row's new text as its tokens arrive, until the worker is done; stop strings are cut."""
        eos = self.tokenizer.eos_token_id
        while (step := tokens.get()) is not None:
            for i, token in enumerate(step):
                row = rows[i]
                if row.done:
                    continue
                row.ids.append(token)
                text, stopped = self._cut(self.tokenizer.decode(row.ids, skip_special_tokens=True).lstrip(), decoding.stop)
                ready = text.rstrip() if stopped else _hold_back(text, decoding.stop)
                if len(ready) > len(row.sent):
                    row.first_s = row.first_s if row.first_s is not None else time.perf_counter() - t0
                    yield i, ready[len(row.sent) :]
                    row.sent = ready
                if stopped or token == eos:
                    row.done, row.ended_s = True, time.perf_counter() - t0

    def _end_stream(self, rows: list[_StreamRow], batch, decoding: DecodingConfig, elapsed: float) -> Iterator[tuple[int, str]]:
        """Yield each row's held-back tail that never became a stop string; return the rows' `Generation`s."""
        results = []
        for i, row in enumerate(rows):
            result = self._finish(row.ids, int(batch["attention_mask"][i].sum()), decoding, row.ended_s or elapsed)
            if len(result.text) > len(row.sent):
                yield i, result.text[len(row.sent) :]
            result.first_token_s = row.first_s
            results.append(result)
        return results

    # Helpers ------------------------------------------------------------------------------

    def _check_fits(self, prompt_tokens: int, d: DecodingConfig) -> None:
        if prompt_tokens + d.max_new_tokens > self.max_context:
            raise ValueError(
                f"the prompt is {prompt_tokens} tokens; with max_new_tokens {d.max_new_tokens} it exceeds "
                f"the model's context of {self.max_context} tokens"
            )

    def _stops(self, d: DecodingConfig) -> DecodingConfig:
        """A base model with the plain template goes on to ask itself the next question: stop there."""
        if self.plain_template and PLAIN_STOP not in d.stop:
            return replace(d, stop=[*d.stop, PLAIN_STOP])
        return d

    def _generate_kwargs(self, d: DecodingConfig) -> dict:
        kw = dict(
            max_new_tokens=d.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            repetition_penalty=d.repetition_penalty,
        )
        if d.greedy:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kw.update(do_sample=True, temperature=d.temperature, top_p=d.top_p, top_k=d.top_k)
        if d.stop:
            kw.update(stop_strings=d.stop, tokenizer=self.tokenizer)
        return kw

    def _finish(self, new_ids: list[int], prompt_tokens: int, d: DecodingConfig, elapsed: float) -> Generation:
        eos = self.tokenizer.eos_token_id
        ended = eos in new_ids
        if ended:
            new_ids = new_ids[: new_ids.index(eos) + 1]  # the rest is padding
        # lstrip before cutting, as the stream does: a stop string "\n" must not cut a leading newline
        text, stopped = self._cut(self.tokenizer.decode(new_ids, skip_special_tokens=True).lstrip(), d.stop)
        reason = "stop" if ended or stopped or len(new_ids) < d.max_new_tokens else "length"
        return Generation(text.strip(), prompt_tokens, len(new_ids), reason, elapsed)

    @staticmethod
    def _cut(text: str, stop: list[str]) -> tuple[str, bool]:
        cuts = [text.find(s) for s in stop if s in text]
        return (text[: min(cuts)], True) if cuts else (text, False)


def one_of(many: Iterator[tuple], key):
    """The text of a stream of several (`(key, piece)` pairs) that carries one answer; returns its result.

    Closing it closes `many`, so generation stops when the reader leaves.
    """
    try:
        while True:
            _, piece = next(many)
            yield piece
    except StopIteration as end:
        return end.value[key]
    finally:
        many.close()


@dataclass
class _StreamRow:
    """One answer of a streamed batch as it grows."""

    ids: list[int] = field(default_factory=list)  # its generated tokens
    sent: str = ""  # the text yielded so far
    first_s: float | None = None  # time to its first text
    ended_s: float | None = None  # time it ended: EOS or a stop string
    done: bool = False  # ended, or the reader left: generation finishes its row at the next step


class _QueueStreamer:
    """What `generate(streamer=...)` calls with each new token; the first call is the prompt."""

    def __init__(self, q: queue.Queue):
        self.q, self.prompt_seen = q, False

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.q.put(value.reshape(-1).tolist())  # one new token per row

    def end(self) -> None:
        pass


def _hold_back(text: str, stop: list[str]) -> str:
    """Text safe to show: drop a tail that could still grow into a stop string, or half a UTF-8 character."""
    text = text.rstrip("\ufffd").rstrip()  # trailing spaces wait: the final answer is stripped
    for s in stop:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:n]):
                text = text[:-n]
                break
    return text


def with_overrides(d: DecodingConfig, **changes) -> DecodingConfig:
    """A copy of a decoding config with some fields changed, validated again."""
    return replace(d, **{k: v for k, v in changes.items() if v is not None})
