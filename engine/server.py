"""`ragtune serve`: an OpenAI-compatible API over the four modes; the request's `model` picks the mode.

    ragtune serve --port 8000
    curl http://127.0.0.1:8000/v1/chat/completions -H "Content-Type: application/json" \
        -d '{"model": "rag", "messages": [{"role": "user", "content": "How do I ingest a folder?"}]}'

Any OpenAI client works: `OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="-")`. Decoding
parameters the request leaves out come from configs/decoding.yaml (greedy by default, not
OpenAI's temperature 1). Beyond OpenAI's, a request may send `top_k`, `repetition_penalty`,
`k` (chunks retrieved) and `source` (globs of the documents to read, as `--source`), and a rag answer carries the chunks it read in a top-level `sources`,
what its `[n]` cite in `citations` (`sources[n - 1]`), and `dropped_citations`: the `[n]` it
wrote for no chunk, removed from the text.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ragtune.core.records import Answer
from ragtune.engine.answer import RAG_MODES, Answerer
from ragtune.engine.config import MODES, DecodingConfig, ServeConfig
from ragtune.engine.generate import with_overrides

# The request, as much of OpenAI's as the modes can honour; other fields are ignored ----------


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str = ""

    @field_validator("content", mode="before")
    @classmethod
    def _join_text_parts(cls, value):
        """OpenAI's content is a string or a list of parts; only text parts make sense here."""
        if value is None or isinstance(value, str):
            return value or ""
        if isinstance(value, list) and all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in value
        ):
            return "\n".join(p["text"] for p in value)
        raise ValueError('expected a string or a list of {"type": "text", "text": ...} parts (only text is supported)')


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # frequency_penalty, logit_bias, user, ...: accepted, not used
    model: str
    messages: list[Message]
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None  # OpenAI's newer name for max_tokens
    stop: list[str] | None = None  # a string is a list of one
    seed: int | None = None
    n: int = Field(1, ge=1, le=1)  # one answer per request
    top_k: int | None = None
    repetition_penalty: float | None = None
    k: int | None = Field(None, ge=1)
    source: list[str] | None = None  # globs of the documents the rag modes read (`--source`); a string is a list of one

    @field_validator("stop", "source", mode="before")
    @classmethod
    def _a_list(cls, value):
        return [value] if isinstance(value, str) else value


class ApiError(Exception):
    """A refused request, reported as OpenAI does: a status and an `error` body."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


# The app ------------------------------------------------------------------------------------


def build_app(answerer: Answerer, cfg: ServeConfig) -> FastAPI:
    """The API over one `Answerer`.

    Loads the adapter and opens the index now, so the first request does not pay for them.

    Raises:
        RuntimeError: `cfg.api_key_env` names an environment variable that is not set.
    """
    key = _api_key(cfg.api_key_env)
    worker = _Worker(cfg.max_queue)
    created = int(time.time())
    answerer.unavailable()
    app = FastAPI(title="ragtune", dependencies=[Depends(_check_key(key))])
    _add_error_handlers(app)

    @app.get("/v1/models")
    async def list_models():
        unavailable = await run_in_threadpool(answerer.unavailable)
        return {"object": "list", "data": [_model_card(m, created, unavailable.get(m)) for m in MODES]}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest):
        if req.model not in MODES:
            raise ApiError(404, f"The model `{req.model}` does not exist; use one of {', '.join(MODES)}", "model", "model_not_found")
        question, history, system = _conversation(req.messages)
        decoding = _decoding(answerer.cfg.decoding, req)
        reason = (await run_in_threadpool(answerer.unavailable)).get(req.model)
        if reason:
            raise ApiError(400, reason, "model", "model_unavailable")
        if req.source and req.model in RAG_MODES:
            try:
                answerer.retriever.scope(req.source)  # a glob that matches nothing is the request's error, before any work
            except ValueError as e:
                raise ApiError(400, str(e).replace("--source ", "source "), "source") from None
        events = worker.submit(answerer.stream(question, req.model, decoding, req.k, history, system, req.source))
        reply = _Reply(req.model)
        if req.stream:
            # Wait for the first piece before the headers, so an error before it keeps its status code.
            first = await anext(events)
            return StreamingResponse(_sse(reply, first, events), media_type="text/event-stream")
        async for item in events:
            answer = item
        return reply.completion(answer)

    return app


def serve(cfg: ServeConfig) -> None:
    """Load the model, print where the API listens, and serve until interrupted."""
    import uvicorn

    _api_key(cfg.api_key_env)  # a missing key fails now, not after the model has loaded
    answerer = Answerer(cfg.ask)
    app = build_app(answerer, cfg)
    unavailable = answerer.unavailable()
    modes = ", ".join(m for m in MODES if m not in unavailable)
    if unavailable:
        modes += f"; unavailable: {', '.join(unavailable)} (see /v1/models)"
    print(f"ragtune serve: http://{cfg.host}:{cfg.port}/v1 (modes: {modes})", file=sys.stderr)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


# One answer at a time -------------------------------------------------------------------------


class _Worker:
    """Runs answers one after another on one thread, with at most `max_queue` waiting.

    The engine's lock is an RLock: a thread owns it, and a streamed answer holds it from its
    first `next()` to its end. So every step of one answer must run on the same thread, and
    two answers must never alternate on it (the RLock would let the second in). A single-thread
    executor gives both: each job drives its generator to the end before the next job starts,
    and the event loop only awaits a queue.
    """

    def __init__(self, max_queue: int):
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ragtune-answer")
        self.max_queue = max_queue
        self.pending = 0  # the running job and those waiting; touched only on the event loop

    def submit(self, gen: Generator[str, None, Answer]) -> AsyncIterator[str | Answer]:
        """Queue `gen`; iterate the result for its pieces, then its `Answer`. Leaving early closes it."""
        if self.pending > self.max_queue:
            raise ApiError(503, f"the server is busy: {self.max_queue} requests are waiting for the model; retry later", code="overloaded")
        loop = asyncio.get_running_loop()
        out: asyncio.Queue = asyncio.Queue()
        left = threading.Event()  # the client went away: stop generating

        def put(item) -> None:
            loop.call_soon_threadsafe(out.put_nowait, item)

        def job() -> None:
            if left.is_set():  # it left while waiting
                return
            try:
                try:
                    while not left.is_set():
                        put(next(gen))
                except StopIteration as done:
                    put(done.value)
                finally:
                    gen.close()  # on this thread, which holds the engine's lock
            except Exception as e:
                put(e)

        self.pending += 1
        loop.run_in_executor(self.executor, job).add_done_callback(self._finished)
        return self._events(out, left)

    def _finished(self, _future) -> None:
        self.pending -= 1

    @staticmethod
    async def _events(out: asyncio.Queue, left: threading.Event) -> AsyncIterator[str | Answer]:
        try:
            while True:
                item = await out.get()
                if isinstance(item, ValueError):  # an empty question, generation settings the model rejects
                    raise ApiError(400, str(item))
                if isinstance(item, Exception):
                    raise item
                yield item
                if isinstance(item, Answer):
                    return
        finally:
            left.set()


# Request to answer ----------------------------------------------------------------------------


def _conversation(messages: list[Message]) -> tuple[str, list[dict], str | None]:
    """(question, history, system): the last user message, the turns before it, the system prompt."""
    if not messages:
        raise ApiError(400, "`messages` must not be empty", "messages")
    system = "\n\n".join(m.content for m in messages if m.role in ("system", "developer") and m.content) or None
    turns = [{"role": m.role, "content": m.content} for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "user":
        raise ApiError(400, "`messages` must end with a user message: the question", "messages")
    question = turns[-1]["content"]
    if not question.strip():
        raise ApiError(400, "`messages`: the last user message, the question, is empty", "messages")
    return question, turns[:-1], system


def _decoding(default: DecodingConfig, req: ChatRequest) -> DecodingConfig:
    """The server's decoding settings with the request's on top, validated as the CLI's are."""
    tokens = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    try:
        return with_overrides(
            default,
            temperature=req.temperature,
            top_p=req.top_p,
            top_k=req.top_k,
            seed=req.seed,
            max_new_tokens=getattr(req, tokens),
            repetition_penalty=req.repetition_penalty,
            stop=req.stop,
        )
    except ValueError as e:
        # ConfigError names the CLI flag (`--top-p must be in (0, 1]`); a client knows the JSON field.
        flag = re.match(r"--[\w-]+", str(e))
        if flag is None:  # a stop string with a broken escape (`\x`) fails in unescaping, before the checks
            raise ApiError(400, f"stop: {e}", "stop") from None
        param = tokens if flag.group() == "--max-new-tokens" else flag.group()[2:].replace("-", "_")
        raise ApiError(400, str(e).replace(flag.group(), param, 1), param) from None


# Answer to response ---------------------------------------------------------------------------


class _Reply:
    """The fields every response and chunk of one request share."""

    def __init__(self, mode: str):
        self.head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": mode}

    def completion(self, a: Answer) -> dict:
        message = {"role": "assistant", "content": a.text}
        return {
            **self.head,
            "object": "chat.completion",
            **_extras(a),
            "choices": [{"index": 0, "message": message, "finish_reason": a.finish_reason, "logprobs": None}],
        }

    def chunk(self, delta: dict, finish_reason: str | None = None, **extra) -> str:
        body = {
            **self.head,
            "object": "chat.completion.chunk",
            **extra,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _extras(a: Answer) -> dict:
    usage = {
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.generated_tokens,
        "total_tokens": a.prompt_tokens + a.generated_tokens,
    }
    citations = [{k: getattr(c, k) for k in ("n", "chunk_id", "source", "page", "section", "quote")} for c in a.citations]
    return {
        "usage": usage,
        "sources": [asdict(s) for s in a.sources],
        "citations": citations,
        "dropped_citations": a.dropped_citations,
        "attributed_citations": a.attributed_citations,
    }


async def _sse(reply: _Reply, first: str | Answer, events: AsyncIterator[str | Answer]) -> AsyncIterator[str]:
    """Server-sent events: the role, the pieces, a last chunk with usage, sources and citations, then [DONE]."""
    try:
        yield reply.chunk({"role": "assistant", "content": ""})
        item = first
        while not isinstance(item, Answer):
            yield reply.chunk({"content": item})
            item = await anext(events)
        yield reply.chunk({}, item.finish_reason, **_extras(item))
        yield "data: [DONE]\n\n"
    except Exception as e:  # after the headers, an error can only be an event
        yield f"data: {json.dumps(_error_body(e)[1])}\n\n"
    finally:
        await events.aclose()  # a client that left: stop generating, free the model


def _model_card(mode: str, created: int, reason: str | None) -> dict:
    card = {"id": mode, "object": "model", "created": created, "owned_by": "ragtune", "available": reason is None}
    return card if reason is None else {**card, "unavailable_reason": reason}


# Keys and errors ------------------------------------------------------------------------------


def _api_key(env: str | None) -> bytes | None:
    if not env:
        return None
    key = os.environ.get(env)
    if not key:
        raise RuntimeError(f"--api-key-env {env}: the environment variable {env} is not set; export it or drop the flag")
    return f"Bearer {key}".encode()


def _check_key(expected: bytes | None):
    async def check(request: Request) -> None:
        if expected is None:
            return
        sent = request.headers.get("authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(sent, expected):
            raise ApiError(401, "missing or wrong API key: send `Authorization: Bearer <key>`", code="invalid_api_key")

    return check


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as OpenAI's `{"error": {...}}` body; never a traceback."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        err = e.errors()[0]
        param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"][1:]).lstrip(".") or None
        if err["type"] == "json_invalid":
            message, param = "the request body is not valid JSON", None
        elif param is None:
            message = "the request body must be a JSON object with `model` and `messages` (Content-Type: application/json)"
        else:
            message = f"{param}: {err['msg'].removeprefix('Value error, ')}"
        return _error(ApiError(400, message, param))

    app.add_exception_handler(ApiError, lambda request, e: _error(e))
    app.add_exception_handler(HTTPException, lambda request, e: _error(ApiError(e.status_code, str(e.detail))))
    app.add_exception_handler(Exception, lambda request, e: _error(e))


def _error(e: Exception) -> JSONResponse:
    status, body = _error_body(e)
    return JSONResponse(body, status)


def _error_body(e: Exception) -> tuple[int, dict]:
    if not isinstance(e, ApiError):  # a bug or a failing model: one line, the traceback stays in the log
        first = (str(e).strip().splitlines() or [""])[0]
        e = ApiError(500, f"internal error: {type(e).__name__}" + (f": {first}" if first else ""))
    kind = "invalid_request_error" if e.status < 500 else "server_error"
    return e.status, {"error": {"message": e.message, "type": kind, "param": e.param, "code": e.code}}
