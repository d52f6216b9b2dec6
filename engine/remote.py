"""`RemoteEngine`: the four modes answered by a model behind an OpenAI-compatible endpoint.

    ragtune ask "How do I prune deleted files?" --llm openai --base-url http://127.0.0.1:8000/v1 --llm-model NAME
    vllm serve Qwen/Qwen2.5-0.5B-Instruct --enable-lora --lora-modules ragtune-ft=./exported-adapter
    ragtune eval --split eval --llm openai --base-url http://127.0.0.1:8000/v1 \
        --llm-model Qwen/Qwen2.5-0.5B-Instruct --llm-adapter-model ragtune-ft

It offers what `Answerer` uses of `Engine` (engine/generate.py), so a mode sends the same
messages locally and remotely: `render` keeps the chat messages (as JSON) instead of applying a
chat template, and `generate` / `stream_many` send them to /chat/completions, the `ft` modes
under the name the endpoint serves the adapter by. An endpoint only writes text (`writes`):
it cannot score spans, so the rag modes generate, citing their chunks `[n]`.

`Endpoint` is the client this and `synth --generator openai` share: the key from a named
environment variable, --timeout per request, and retries with exponential backoff on
connection errors, timeouts, 429 and 5xx; an endpoint still down after them is a one-line
RuntimeError that names it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ragtune.engine.config import DecodingConfig, LLMConfig
from ragtune.engine.generate import Generation, one_of

DEFAULT_CONTEXT = 2048  # when /models does not say (vLLM's cards carry `max_model_len`); as Engine assumes


class RemoteEngine:
    """`Engine`'s interface over an endpoint: `render`, `generate`, `stream`, `stream_many`, the adapter."""

    writes = True  # it cannot score spans or constrain decoding: Answerer generates the rag modes' answers
    model = tokenizer = None  # no weights or tokenizer here: the span reader and gold perplexity need a local Engine
    n_params = 0  # unknown behind an endpoint

    def __init__(self, cfg: LLMConfig, backoff: float = 1.0):
        """Connect, and check the endpoint serves `cfg.model` (default: the first model it lists) and `cfg.adapter_model`.

        Args:
            backoff: seconds before the first retry; each next one waits twice as long.
        Raises:
            RuntimeError: one line naming the flag: --api-key-env unset, --base-url down or not an
                OpenAI-compatible API, --llm-model or --llm-adapter-model not served there.
        """
        self.cfg = cfg
        self.endpoint = Endpoint(
            cfg.base_url, cfg.api_key_env, cfg.timeout, cfg.retries, backoff, name=f"--base-url {cfg.base_url.rstrip('/')}"
        )
        self.url = self.endpoint.url
        cards = {card.id: card for card in self._call(None, "GET /models", lambda: self.endpoint.client.models.list().data)}
        if not cards:
            raise RuntimeError(f"--base-url {self.url}: /models lists no model")
        for flag, name in (("--llm-model", cfg.model), ("--llm-adapter-model", cfg.adapter_model)):
            if name and name not in cards:
                raise RuntimeError(f"{flag} {name}: {self.url} does not serve it (its models: {', '.join(list(cards)[:8])})")
        self.name = cfg.model or next(iter(cards))
        self.adapter_model = cfg.adapter_model
        self.base_path = f"{self.url}/models/{self.name}"  # where the weights are, for reports
        self.adapter_path: Path | None = (
            Path(cfg.adapter_model) if cfg.adapter_model else None
        )  # the served name, as Answer.adapter shows it
        self.max_context = int(getattr(cards[self.name], "max_model_len", None) or DEFAULT_CONTEXT)
        self.lock = threading.Lock()  # what span scoring would hold; requests themselves run in parallel

    # Prompts ------------------------------------------------------------------------------

    def render(self, messages: list[dict]) -> str:
        """The messages as JSON: the endpoint applies its model's chat template, so they travel as they are."""
        return json.dumps(messages, ensure_ascii=False)

    def count_tokens(self, text: str) -> int:
        # An estimate (~4 characters a token for English BPE): the endpoint's tokenizer is not
        # here, and the count only budgets the retrieved context; usage gives the real figures.
        return -(-len(text) // 4)

    # Adapters -----------------------------------------------------------------------------

    def load_adapter(self, path: str | Path) -> None:
        """An adapter folder cannot be loaded into an endpoint: it must serve it under a name."""
        raise RuntimeError(
            f"the ft modes with --llm openai need --llm-adapter-model NAME: the endpoint serves the adapter "
            f"(vLLM: --enable-lora --lora-modules NAME={path}), not this process"
        )

    @contextlib.contextmanager
    def using(self, adapter: bool):
        """Nothing to switch here: `adapter` picks the model name each request sends."""
        self._model(adapter)
        yield

    # Generation ---------------------------------------------------------------------------

    def generate(
        self, prompts: list[str], decoding: DecodingConfig, adapter: bool = False, batch_size: int = 16, processors: list | None = None
    ) -> list[Generation]:
        """Answers for many rendered prompts, in order, with `cfg.concurrency` requests in flight.

        `batch_size` is ignored: batching is the endpoint's business. The first request that
        gives up stops the others retrying.
        """
        _no_processors(processors)
        model, batch = self._model(adapter), Batch()
        pool = ThreadPoolExecutor(self.cfg.concurrency, thread_name_prefix="ragtune-remote")
        try:
            futures = [pool.submit(self._complete, json.loads(p), model, decoding, batch) for p in prompts]
            return [f.result() for f in futures]
        except BaseException:  # down, refused, or Ctrl+C: requests in flight end, none retries
            batch.gave_up.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def stream(self, prompt: str, decoding: DecodingConfig, adapter: bool = False, processor=None) -> Iterator[str]:
        """Yield the answer's text as it arrives; the return value is the `Generation`."""
        return (yield from one_of(self.stream_many([prompt], decoding, [adapter], [processor]), 0))

    def stream_many(
        self, prompts: list[str], decoding: DecodingConfig, adapters: list[bool] | None = None, processors: list | None = None
    ) -> Iterator[tuple[int, str]]:
        """Stream several answers at once and yield `(i, text)` as each grows; the return value is the `Generation`s.

        Each prompt is its own streamed request (`cfg.concurrency` at a time). Closing the
        iterator early, or one stream failing, ends the others at their next piece.
        """
        _no_processors(processors)
        n = len(prompts)
        models = [self._model(a) for a in adapters or [False] * n]
        events: queue.Queue = queue.Queue()  # (i, "text" | "done" | "error", value)
        left, batch, slots, t0 = threading.Event(), Batch(), threading.Semaphore(self.cfg.concurrency), time.perf_counter()

        def run(i: int) -> None:
            try:
                with slots:
                    events.put(
                        (
                            i,
                            "done",
                            self._stream_one(
                                json.loads(prompts[i]), models[i], decoding, batch, t0, left, lambda piece: events.put((i, "text", piece))
                            ),
                        )
                    )
            except BaseException as e:  # surfaced in the reader's thread below
                events.put((i, "error", e))

        # Daemon threads, not a pool: a reader that leaves need not wait for a request still connecting.
        for i in range(n):
            threading.Thread(target=run, args=(i,), daemon=True, name="ragtune-remote-stream").start()
        results: list[Generation | None] = [None] * n
        try:
            for _ in range(n):
                i, kind, value = events.get()
                while kind == "text":
                    yield i, value
                    i, kind, value = events.get()
                if kind == "error":
                    raise value
                results[i] = value
        finally:
            left.set()
            batch.gave_up.set()
        return results

    # Helpers ------------------------------------------------------------------------------

    def _model(self, adapter: bool) -> str:
        if adapter and not self.adapter_model:
            raise RuntimeError(
                "the ft modes with --llm openai need --llm-adapter-model NAME: the name the endpoint serves "
                "the adapter under (vLLM: --enable-lora --lora-modules NAME=DIR)"
            )
        return self.adapter_model if adapter else self.name

    def _complete(self, messages: list[dict], model: str, d: DecodingConfig, batch: Batch) -> Generation:
        t0 = time.perf_counter()
        resp = self._call(
            model, "POST /chat/completions", lambda: self.endpoint.client.chat.completions.create(**_request(model, messages, d)), batch
        )
        choice = resp.choices[0] if resp.choices else None
        text = ((choice.message.content if choice else None) or "").strip()
        return self._generation(text, messages, resp.usage, choice.finish_reason if choice else "stop", time.perf_counter() - t0)

    def _stream_one(
        self, messages: list[dict], model: str, d: DecodingConfig, batch: Batch, t0: float, left: threading.Event, put
    ) -> Generation:
        """One streamed answer; `put` gets each new piece, cut so the pieces add up to the stripped text."""
        import httpx
        import openai

        request = {**_request(model, messages, d), "stream": True, "stream_options": {"include_usage": True}}
        stream = self._call(model, "POST /chat/completions", lambda: self.endpoint.client.chat.completions.create(**request), batch)
        raw, sent, reason, usage, first = "", "", "stop", None, None
        try:
            for chunk in stream:
                if left.is_set():  # the reader left, or another stream failed
                    break
                usage = chunk.usage or usage
                if not chunk.choices:
                    continue
                raw += chunk.choices[0].delta.content or ""
                reason = chunk.choices[0].finish_reason or reason
                ready = raw.strip()  # trailing spaces wait: the final answer is stripped
                if len(ready) > len(sent):
                    first = first if first is not None else time.perf_counter() - t0
                    put(ready[len(sent) :])
                    sent = ready
        except (openai.APIError, httpx.HTTPError) as e:
            raise RuntimeError(f"--base-url {self.url}: the answer's stream broke off ({first_line(e)})") from None
        finally:
            stream.close()
        return self._generation(raw.strip(), messages, usage, reason, time.perf_counter() - t0, first)

    def _generation(
        self, text: str, messages: list[dict], usage, reason: str | None, latency: float, first: float | None = None
    ) -> Generation:
        prompt_tokens = usage.prompt_tokens if usage else self.count_tokens(self.render(messages))
        generated = usage.completion_tokens if usage else self.count_tokens(text)
        return Generation(text, prompt_tokens, generated, "length" if reason == "length" else "stop", latency, first)

    def _call(self, model: str | None, what: str, request, batch: Batch | None = None):
        """`Endpoint.call`, with the HTTP errors no retry mends said in one line that names the flag to change."""
        import openai

        try:
            return self.endpoint.call(what, request, batch)
        except openai.APIStatusError as e:
            status, why = e.status_code, http_reason(e)
            if status in (401, 403):
                raise RuntimeError(
                    f"--base-url {self.url}: {what}: HTTP {status}: {why} (the key is the variable --api-key-env names)"
                ) from None
            if status == 404 and model is None:
                raise RuntimeError(
                    f"--base-url {self.url}: {what}: HTTP 404: not an OpenAI-compatible API (whose root usually ends in /v1)"
                ) from None
            if status == 404:
                flag = "--llm-adapter-model" if model == self.adapter_model else "--llm-model"
                raise RuntimeError(f"{flag} {model}: {what} at {self.url}: HTTP 404: {why}") from None
            # Another 4xx is about this request (a prompt too long for the model, say): a ValueError, as the local engine's.
            raise ValueError(f"--base-url {self.url}: {what}: HTTP {status}: {why}") from None


def _request(model: str, messages: list[dict], d: DecodingConfig) -> dict:
    """The /chat/completions body for the decoding settings; the fields beyond OpenAI's only when they do something."""
    body = dict(model=model, messages=messages, max_tokens=d.max_new_tokens, temperature=d.temperature, top_p=d.top_p)
    if d.stop:
        body["stop"] = d.stop
    if d.seed is not None:
        body["seed"] = d.seed
    extra = {}  # vLLM and `ragtune serve` take these; OpenAI's own API refuses them, so they go only when set
    if d.top_k and not d.greedy:
        extra["top_k"] = d.top_k
    if d.repetition_penalty != 1:
        extra["repetition_penalty"] = d.repetition_penalty
    return {**body, "extra_body": extra} if extra else body


def _no_processors(processors: list | None) -> None:
    if processors and any(p is not None for p in processors):
        raise ValueError("--rag-answer copy needs a local model: an endpoint's decoding cannot be constrained")


# The client -----------------------------------------------------------------------------------


class Batch:
    """Requests that share a fate: the first to give up makes the others stop retrying."""

    def __init__(self):
        self.failure: str | None = None
        self.gave_up = threading.Event()


class Endpoint:
    """An OpenAI-compatible endpoint: its client, with the key, the timeout and the retries."""

    PLACEHOLDER_KEY = "-"  # local servers want no key, but the client insists on one; never $OPENAI_API_KEY by accident

    def __init__(self, base_url: str, api_key_env: str | None, timeout: float, retries: int, backoff: float = 1.0, name: str | None = None):
        """
        Args:
            backoff: seconds before the first retry; each next one waits twice as long.
            name: how errors name the endpoint (default: its URL).
        Raises:
            RuntimeError: `api_key_env` names an environment variable that is not set.
        """
        import openai

        self.url = base_url.rstrip("/")
        self.name, self.retries, self.timeout, self.backoff = name or self.url, retries, timeout, backoff
        key = self.PLACEHOLDER_KEY
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise RuntimeError(
                    f"--api-key-env {api_key_env}: the environment variable {api_key_env} is not set; export it or drop the flag"
                )
        # Retries are ours (`call`), so which failures retry and how long they wait is explicit.
        self.client = openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=timeout)

    def call(self, what: str, request, batch: Batch | None = None):
        """`request()`, retried on connection errors, timeouts, 429 and 5xx with exponential backoff.

        Other HTTP errors are raised as they are. With retries 3 and backoff 1 s, a dead
        endpoint is given up on after 4 attempts and 1 + 2 + 4 = 7 s of waiting.

        Raises:
            RuntimeError: one line naming the endpoint and the last failure, once the retries
                are spent (or another request of `batch` gave up).
        """
        import openai

        batch = batch or Batch()
        for attempt in range(self.retries + 1):
            if batch.gave_up.is_set():
                break
            try:
                return request()
            except openai.APIStatusError as e:
                if e.status_code != 429 and e.status_code < 500:
                    raise
                reason = f"HTTP {e.status_code}: {http_reason(e)}"
            except openai.APITimeoutError:  # before APIConnectionError, its base class
                reason = f"no reply within --timeout {self.timeout:g} s"
            except openai.APIConnectionError as e:
                reason = first_line(e.__cause__ or e)
            if attempt < self.retries:
                batch.gave_up.wait(self.backoff * 2**attempt)  # wakes at once if another request gave up
        else:
            attempts = f"{self.retries + 1} attempt" + "s" * (self.retries > 0)
            batch.failure = batch.failure or f"{self.name}: {what} failed after {attempts} ({reason})"
            batch.gave_up.set()
        raise RuntimeError(batch.failure or f"{self.name}: {what} abandoned: the batch failed")


def http_reason(e) -> str:
    """The message of an HTTP error's body (OpenAI's `{"error": {"message": ...}}`), in one line."""
    body = e.body if isinstance(e.body, dict) else {}
    return first_line(body.get("message") or e.message)


def first_line(e) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
