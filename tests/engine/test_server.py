"""The OpenAI-compatible API through the official `openai` client, against real servers on loopback.

The tiny model's text is gibberish, so the tests check shapes, modes, sources, status codes, and
that streamed, concurrent and non-streamed greedy answers agree, not what the answers say.
"""

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import SimpleNamespace

import httpx
import openai
import pytest

from helpers import free_port, running
from ragtune.core.config import load_config
from ragtune.core.records import Answer, Citation, Source
from ragtune.engine.answer import Answerer
from ragtune.engine.config import MODES, ServeConfig
from ragtune.engine.server import build_app

CLI = [sys.executable, "-m", "ragtune.cli"]
QUESTION = "How are synthetic question pairs generated?"
TOKENS = 8  # short answers keep the file fast on 2 cores


@pytest.fixture(scope="module")
def workdir(two_doc_index):
    return two_doc_index


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, tiny_model):
    """A LoRA adapter with random (non-zero) weights, so `ft` differs from `base`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), lora).save_pretrained(path)
    return path


def serve_cfg(workdir, model, **overrides) -> ServeConfig:
    return load_config(ServeConfig, {"port": free_port(), "ask.workdir": str(workdir), "ask.model.model": str(model), **overrides})


@pytest.fixture(scope="module")
def api(workdir, adapter, tiny_model):
    cfg = serve_cfg(workdir, tiny_model, **{"ask.adapter": str(adapter)})
    answerer = Answerer(cfg.ask)
    with running(build_app(answerer, cfg), cfg.port) as url:
        yield SimpleNamespace(url=url, cfg=cfg, answerer=answerer, client=openai.OpenAI(base_url=url, api_key="-", max_retries=0))


def ask(client, mode: str, question: str = QUESTION, **kw):
    return client.chat.completions.create(model=mode, messages=[{"role": "user", "content": question}], max_tokens=TOKENS, **kw)


def streamed(client, mode: str, question: str = QUESTION, **kw) -> tuple[str, list]:
    chunks = list(ask(client, mode, question, stream=True, **kw))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


# Answers ---------------------------------------------------------------------------------------


def test_models_lists_the_four_modes(api):
    models = api.client.models.list().data
    assert [m.id for m in models] == list(MODES)
    assert all(m.object == "model" and m.available for m in models)


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_answers_with_usage_and_rag_sources(api, mode):
    resp = ask(api.client, mode, extra_body={"k": 2})
    choice = resp.choices[0]
    assert resp.object == "chat.completion" and resp.model == mode and resp.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    # max_tokens bounds generation; the span reader's answers are read out of the sources, not generated
    assert 0 < resp.usage.completion_tokens <= (TOKENS if mode in ("base", "ft") else 200)
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    if mode in ("rag", "ft-rag"):
        retrieved = {h.chunk.id for h in api.answerer.retriever.search(QUESTION, 2)}
        assert 0 < len(resp.sources) <= 2
        assert {s["chunk_id"] for s in resp.sources} <= retrieved
        assert {"chunk_id", "source", "page", "section", "score", "rank", "text", "title", "ocr"} == set(resp.sources[0])
        # Each [n] in the text is a citation of sources[n - 1], and each citation is an [n] of the text.
        assert {c["n"] for c in resp.citations} == {int(n) for n in re.findall(r"\[(\d+)\]", choice.message.content)}
        for c in resp.citations:
            assert {"n", "chunk_id", "source", "page", "section", "quote"} == set(c)
            assert c["chunk_id"] == resp.sources[c["n"] - 1]["chunk_id"] and c["source"] == resp.sources[c["n"] - 1]["source"]
        assert isinstance(resp.dropped_citations, int) and resp.dropped_citations >= 0
    else:
        assert resp.sources == []
        assert resp.citations == [] and resp.dropped_citations == 0


def test_source_scopes_the_rag_modes_to_the_matching_documents(api):
    resp = ask(api.client, "rag", extra_body={"k": 4, "source": "*training*"})
    assert resp.sources and {s["source"].rsplit("/", 1)[-1] for s in resp.sources} == {"05-training.txt"}
    with pytest.raises(openai.BadRequestError) as none:
        ask(api.client, "rag", extra_body={"source": ["*nothing*"]})
    assert none.value.body["param"] == "source" and "source '*nothing*' matches no indexed document" in none.value.body["message"]


def test_history_system_prompt_and_text_parts_are_accepted(api):
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is ragtune?"},
        {"role": "assistant", "content": "A tool."},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ]
    resp = api.client.chat.completions.create(model="base", messages=messages, max_tokens=TOKENS)
    plain = ask(api.client, "base")
    assert resp.usage.prompt_tokens > plain.usage.prompt_tokens  # the history is in the prompt


@pytest.mark.parametrize("mode", ["base", "ft-rag"])
def test_streaming_concatenates_to_the_non_streamed_answer(api, mode):
    whole = ask(api.client, mode)
    text, chunks = streamed(api.client, mode)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == whole.choices[0].finish_reason
    assert last.usage.completion_tokens == whole.usage.completion_tokens
    assert last.sources == whole.sources
    assert last.citations == whole.citations and last.dropped_citations == whole.dropped_citations


def test_citations_reach_the_client_streamed_or_not(api, monkeypatch):
    quote = "Pairs are generated by spaCy from every chunk."
    source = Source("c1", "/docs/guide.md", 2, "Guide > Synth", 0.5, 1, quote)
    cited = Citation(1, "c1", "/docs/guide.md", 2, "Guide > Synth", quote, (27, 32))
    answer = Answer(
        QUESTION, "rag", f'spaCy: "{quote}" [1]', [source], form="factoid", span="spaCy", citations=[cited], dropped_citations=2
    )

    def stream(*args, **kw):
        yield answer.text
        return answer

    monkeypatch.setattr(api.answerer, "stream", stream)
    expected = [{"n": 1, "chunk_id": "c1", "source": "/docs/guide.md", "page": 2, "section": "Guide > Synth", "quote": quote}]
    whole = ask(api.client, "rag")
    assert whole.citations == expected and whole.dropped_citations == 2
    assert whole.sources[0]["chunk_id"] == "c1" and whole.choices[0].message.content == answer.text
    text, chunks = streamed(api.client, "rag")
    assert text == answer.text
    assert chunks[-1].citations == expected and chunks[-1].dropped_citations == 2
    assert not any("citations" in (c.model_extra or {}) for c in chunks[:-1])  # only the last chunk carries them


def test_concurrent_streams_each_get_their_own_answer(api):
    # Mixed modes: interleaving would show as mixed text, and an adapter switched mid-answer as a changed one.
    jobs = [(mode, f"{QUESTION} ({i})") for i, mode in enumerate(["base", "ft", "rag", "ft-rag", "base", "ft"])]
    expected = [ask(api.client, mode, q).choices[0].message.content for mode, q in jobs]
    with ThreadPoolExecutor(len(jobs)) as pool:
        got = list(pool.map(lambda job: streamed(api.client, *job)[0], jobs))
    assert got == expected
    assert len(set(expected)) > 1  # the answers differ, so a mix-up would show


def test_full_queue_gets_503_and_a_client_that_leaves_frees_the_model(api):
    cfg = replace(api.cfg, port=free_port(), max_queue=1)
    with running(build_app(api.answerer, cfg), cfg.port) as url, ThreadPoolExecutor(1) as pool:
        client = openai.OpenAI(base_url=url, api_key="-", max_retries=0)
        long = {
            "model": "base",
            "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": 1800,
            "stream": True,
        }  # within the 2048-token context
        with httpx.stream("POST", f"{url}/chat/completions", json=long, timeout=30) as running_stream:
            assert running_stream.status_code == 200
            lines = running_stream.iter_lines()
            assert sum(line.startswith("data: ") for line in [next(lines) for _ in range(6)]) >= 3
            waiting = pool.submit(ask, client, "base")
            time.sleep(0.5)  # it is queued behind the stream
            with pytest.raises(openai.APIStatusError) as full:
                ask(client, "base")
            assert full.value.status_code == 503 and full.value.body["code"] == "overloaded"
            t0 = time.perf_counter()
            assert client.models.list().data and time.perf_counter() - t0 < 2, "generation must not block the event loop"
            left = time.perf_counter()
        assert waiting.result(timeout=20).choices[0].message.content is not None
        assert time.perf_counter() - left < 3, "closing the stream must stop its generation"


# Errors ----------------------------------------------------------------------------------------

USER = [{"role": "user", "content": QUESTION}]
BAD_REQUESTS = [
    ({"model": "gpt-4", "messages": USER}, 404, "model", "model_not_found"),
    ({"model": "base", "messages": []}, 400, "messages", None),
    ({"model": "base", "messages": [{"role": "system", "content": "hi"}]}, 400, "messages", None),
    ({"model": "base", "messages": USER + [{"role": "assistant", "content": "x"}]}, 400, "messages", None),
    ({"model": "base", "messages": [{"role": "user", "content": "  "}]}, 400, "messages", None),
    ({"model": "base", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400, None, None),
    ({"model": "base", "messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0].role", None),
    ({"model": "base", "messages": "hi"}, 400, "messages", None),
    ({"messages": USER}, 400, "model", None),
    ({"model": "base", "messages": USER, "max_tokens": 10**9}, 400, "max_tokens", None),
    ({"model": "base", "messages": USER, "max_completion_tokens": 0}, 400, "max_completion_tokens", None),
    ({"model": "base", "messages": USER, "temperature": 5}, 400, "temperature", None),
    ({"model": "base", "messages": USER, "temperature": "hot"}, 400, "temperature", None),
    ({"model": "base", "messages": USER, "top_p": 0}, 400, "top_p", None),
    ({"model": "base", "messages": USER, "stop": [""]}, 400, "stop", None),
    ({"model": "base", "messages": USER, "seed": -1}, 400, "seed", None),
    ({"model": "rag", "messages": USER, "k": 0}, 400, "k", None),
    ({"model": "base", "messages": USER, "n": 2}, 400, "n", None),
    ({"model": "base", "messages": USER, "stream": True, "max_tokens": 0}, 400, "max_tokens", None),
    ([1, 2], 400, None, None),
]


@pytest.mark.parametrize("body,status,param,code", BAD_REQUESTS)
def test_bad_requests_get_an_openai_error_body(api, body, status, param, code):
    r = httpx.post(f"{api.url}/chat/completions", json=body, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
    if param:
        assert error["param"] == param
        assert param.split("[")[0] in error["message"]
    if code:
        assert error["code"] == code


def test_out_of_range_message_names_the_openai_param(api):
    r = httpx.post(f"{api.url}/chat/completions", json={"model": "base", "messages": USER, "max_tokens": 10**9})
    assert r.json()["error"]["message"] == "max_tokens must be between 1 and 4096, got 1000000000"


@pytest.mark.parametrize(
    "raw,path,method,status",
    [
        (b"{not json", "/chat/completions", "POST", 400),
        (b"", "/chat/completions", "POST", 400),
        (None, "/nowhere", "GET", 404),
        (None, "/chat/completions", "GET", 405),
    ],
)
def test_malformed_bodies_and_unknown_routes(api, raw, path, method, status):
    r = httpx.request(method, api.url + path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert r.json()["error"]["message"]


def test_unexpected_failures_are_a_500_with_one_line(api, monkeypatch):
    def explode(*args, **kw):
        raise RuntimeError("the model exploded\nTraceback (most recent call last): ...")
        yield

    def explode_later(*args, **kw):
        yield "a few words"
        raise RuntimeError("the model exploded mid-answer")

    monkeypatch.setattr(api.answerer, "stream", explode)
    for stream in (False, True):
        r = httpx.post(f"{api.url}/chat/completions", json={"model": "base", "messages": USER, "stream": stream})
        assert r.status_code == 500
        assert r.json()["error"] == {
            "message": "internal error: RuntimeError: the model exploded",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    monkeypatch.setattr(api.answerer, "stream", explode_later)
    with pytest.raises(openai.APIError, match="mid-answer"):
        streamed(api.client, "base")


# The command -----------------------------------------------------------------------------------


def test_cli_serve_needs_the_key_and_reports_unavailable_modes(workdir, tiny_model, tmp_path):
    port, key = free_port(), "s3cret"
    env = {**os.environ, "RAGTUNE_TEST_KEY": key}
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen(
            CLI
            + [
                "serve",
                "--port",
                str(port),
                "--workdir",
                str(workdir),
                "--model",
                str(tiny_model),
                "--api-key-env",
                "RAGTUNE_TEST_KEY",
                "--max-new-tokens",
                str(TOKENS),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            try:
                httpx.get(f"{url}/models", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert proc.poll() is None, (tmp_path / "stderr").read_text()[-2000:]

        anonymous = httpx.get(f"{url}/models")
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
        wrong = openai.OpenAI(base_url=url, api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            ask(wrong, "base")

        client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
        cards = {m.id: m for m in client.models.list().data}
        assert cards["base"].available and cards["rag"].available
        assert not cards["ft"].available and "adapter" in cards["ft"].unavailable_reason
        with pytest.raises(openai.BadRequestError) as no_adapter:
            ask(client, "ft")
        assert no_adapter.value.body["code"] == "model_unavailable" and "adapter" in no_adapter.value.body["message"]
        assert ask(client, "rag").sources
    finally:
        proc.terminate()
        proc.wait(10)
    banner = (tmp_path / "stderr").read_text()
    assert f"ragtune serve: http://127.0.0.1:{port}/v1 (modes: base, rag; unavailable: ft, ft-rag" in banner


def test_a_missing_key_variable_is_a_one_line_error(workdir, tiny_model):
    env = {k: v for k, v in os.environ.items() if k != "RAGTUNE_UNSET_KEY"}
    out = subprocess.run(
        CLI
        + [
            "serve",
            "--port",
            str(free_port()),
            "--workdir",
            str(workdir),
            "--model",
            str(tiny_model),
            "--api-key-env",
            "RAGTUNE_UNSET_KEY",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "ragtune: error: --api-key-env RAGTUNE_UNSET_KEY: the environment variable RAGTUNE_UNSET_KEY is not set; export it or drop the flag"
    ]
