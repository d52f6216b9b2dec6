"""`--llm openai`: the four modes answered through an OpenAI-compatible endpoint, here a real `ragtune serve`.

The served tiny model writes gibberish and never cites, so the end-to-end tests check what travels
(the messages engine/prompts.py builds, the model names, the order of a batch), the sources, and
that streamed and whole answers agree; a faked reply checks that `[n]` become citations.
"""

import json
import threading
import time
from types import SimpleNamespace

import httpx
import openai
import pytest

from helpers import ask_cfg, free_port, running
from ragtune.core.config import ConfigError, load_config
from ragtune.engine import cite
from ragtune.engine.answer import Answerer
from ragtune.engine.config import MODES, AskConfig, ServeConfig
from ragtune.engine.remote import RemoteEngine
from ragtune.engine.server import build_app

QUESTION = "How are synthetic question pairs generated?"
TOKENS = 8  # short answers keep the file fast on 2 cores


@pytest.fixture(scope="module")
def workdir(two_doc_index):
    return two_doc_index


@pytest.fixture(scope="module")
def api(tmp_path_factory, tiny_model, random_adapter):
    """`ragtune serve` on loopback: its plain `base` mode is the LLM, its `ft` mode the adapter's served name."""
    workdir = tmp_path_factory.mktemp("served") / "w"
    cfg = load_config(
        ServeConfig,
        {"port": free_port(), "ask.workdir": str(workdir), "ask.model.model": str(tiny_model), "ask.adapter": str(random_adapter)},
    )
    with running(build_app(Answerer(cfg.ask), cfg), cfg.port) as url:
        yield SimpleNamespace(url=url)


def remote_cfg(workdir, url: str, **overrides) -> AskConfig:
    llm = {"llm.kind": "openai", "llm.base_url": url, "llm.model": "base", "llm.adapter_model": "ft"}
    return ask_cfg(workdir, "packaged", **{**llm, "decoding.max_new_tokens": TOKENS, **overrides})  # the local model is never loaded


@pytest.fixture(scope="module")
def remote(workdir, api):
    return Answerer(remote_cfg(workdir, api.url))


def spy(monkeypatch, engine: RemoteEngine) -> list[dict]:
    """Record every /chat/completions request the engine sends."""
    sent, real = [], engine.endpoint.client.chat.completions.create
    monkeypatch.setattr(engine.endpoint.client.chat.completions, "create", lambda **kw: sent.append(kw) or real(**kw))
    return sent


# Answers ---------------------------------------------------------------------------------------


def test_an_openai_llm_config_picks_the_remote_engine_which_writes(remote):
    assert isinstance(remote.engine, RemoteEngine) and remote.engine.writes
    assert remote.rag_answer == "generate"  # auto would pick spans for a model of unknown (0) size
    assert remote.engine.name == "base" and remote.engine.adapter_model == "ft"
    assert remote.unavailable() == {}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_answers_through_the_endpoint(remote, mode, monkeypatch):
    sent = spy(monkeypatch, remote.engine)
    a = remote.answer(QUESTION, mode)
    assert a.text.strip() and a.mode == mode and 0 < a.generated_tokens <= TOKENS and a.prompt_tokens > 0
    assert [r["model"] for r in sent] == ["ft" if mode.startswith("ft") else "base"]
    assert sent[0]["max_tokens"] == TOKENS and sent[0]["temperature"] == 0
    assert sent[0]["messages"] == json.loads(remote.prepare(QUESTION, mode).prompt)  # the messages engine/prompts.py builds
    if mode in ("rag", "ft-rag"):
        hits = remote.retrieve(QUESTION)
        assert [s.chunk_id for s in a.sources] == [h.chunk.id for h in hits][: len(a.sources)] and a.sources
        system, *_, user = sent[0]["messages"]
        assert system["content"] == remote.templates.write_system  # the prompt that asks for [n] citations
        assert '<document id="1"' in user["content"] and QUESTION in user["content"]
        text, cited, dropped = cite.resolve(a.text, remote.retrieve(QUESTION)[: len(a.sources)])
        assert (a.text, a.citations, a.dropped_citations) == (text, cited, 0) and a.form in ("generated", "abstain")
    else:
        assert a.sources == [] and a.citations == [] and a.form == ""
    assert a.adapter == ("ft" if mode.startswith("ft") else None)


def test_streamed_modes_add_up_to_their_answers_and_match_the_batch(remote):
    pieces = {m: "" for m in MODES}
    stream = remote.stream_modes(QUESTION, MODES)
    try:
        while True:
            mode, piece = next(stream)
            pieces[mode] += piece
    except StopIteration as done:
        answers = done.value
    assert {m: a.text for m, a in answers.items()} == pieces
    assert all(a.first_token_s is not None and a.latency_s >= a.first_token_s for a in answers.values())
    assert answers["base"].text != answers["ft"].text  # two served models: a mix-up would show
    assert pieces["base"] == remote.answer(QUESTION, "base").text  # greedy: streamed or whole, the same words


def test_a_batch_comes_back_in_order_with_concurrency_requests_in_flight(workdir, api, monkeypatch):
    answerer = Answerer(remote_cfg(workdir, api.url, **{"llm.concurrency": 2}))
    questions = [f"{QUESTION} ({i})" for i in range(5)]
    one_by_one = [answerer.answer(q, "base").text for q in questions]
    real, lock, flight = answerer.engine.endpoint.client.chat.completions.create, threading.Lock(), {"now": 0, "most": 0}

    def counted(**kw):
        with lock:
            flight["now"] += 1
            flight["most"] = max(flight["most"], flight["now"])
        try:
            time.sleep(0.05)  # so requests overlap if they can
            return real(**kw)
        finally:
            with lock:
                flight["now"] -= 1

    monkeypatch.setattr(answerer.engine.endpoint.client.chat.completions, "create", counted)
    assert [a.text for a in answerer.answer_batch(questions, "base")] == one_by_one
    assert flight["most"] == 2


def test_the_endpoint_s_citations_resolve_to_the_prompt_s_chunks(remote, monkeypatch):
    reply = "Pairs come from every chunk [1], as the docs say [9]."
    fake = SimpleNamespace(
        choices=[SimpleNamespace(message=SimpleNamespace(content=reply), finish_reason="stop")],
        usage=SimpleNamespace(prompt_tokens=300, completion_tokens=14),
    )
    monkeypatch.setattr(remote.engine.endpoint.client.chat.completions, "create", lambda **kw: fake)
    hits = remote.retrieve(QUESTION)
    for mode in ("rag", "ft-rag"):
        a = remote.answer(QUESTION, mode)
        assert a.text == "Pairs come from every chunk [1], as the docs say."  # [9]: no such chunk in the prompt
        assert [(c.n, c.chunk_id) for c in a.citations] == [(1, hits[0].chunk.id)] and a.dropped_citations == 1
        assert a.form == "generated" and (a.prompt_tokens, a.generated_tokens) == (300, 14)
    assert remote.answer(QUESTION, "base").text == reply  # no chunks, nothing to resolve


# What cannot answer ----------------------------------------------------------------------------


def test_without_an_adapter_model_the_ft_modes_are_unavailable_in_one_line(workdir, api, random_adapter):
    answerer = Answerer(remote_cfg(workdir, api.url, **{"llm.adapter_model": None, "adapter": str(random_adapter)}))
    reasons = answerer.unavailable()
    assert set(reasons) == {"ft", "ft-rag"}
    assert reasons["ft"].startswith("the ft modes with --llm openai need --llm-adapter-model NAME") and "\n" not in reasons["ft"]
    with pytest.raises(RuntimeError, match="--llm-adapter-model"):
        answerer.answer(QUESTION, "ft")
    assert answerer.answer(QUESTION, "rag").text  # the others still answer


def test_a_down_or_wrong_endpoint_is_one_line_naming_base_url(workdir, api):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(RuntimeError) as down:
        Answerer(remote_cfg(workdir, dead, **{"llm.retries": 0}))
    assert str(down.value).startswith(f"--base-url {dead}: GET /models failed after 1 attempt (") and "\n" not in str(down.value)
    root = api.url.removesuffix("/v1")
    with pytest.raises(RuntimeError, match=rf"^--base-url {root}: GET /models: HTTP 404: not an OpenAI-compatible API"):
        Answerer(remote_cfg(workdir, root))
    with pytest.raises(RuntimeError, match=r"^--llm-model gpt-4: .* does not serve it \(its models: base, rag, ft, ft-rag\)$"):
        Answerer(remote_cfg(workdir, api.url, **{"llm.model": "gpt-4"}))
    with pytest.raises(RuntimeError, match=r"^--llm-adapter-model my-ft: "):
        Answerer(remote_cfg(workdir, api.url, **{"llm.adapter_model": "my-ft"}))


def test_an_endpoint_that_goes_down_fails_the_answer_in_one_line(workdir, api):
    answerer = Answerer(remote_cfg(workdir, api.url, **{"llm.retries": 1}))
    answerer.engine.endpoint.backoff = 0.01
    answerer.engine.endpoint.client = openai.OpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="-", max_retries=0)
    with pytest.raises(RuntimeError, match=rf"^--base-url {api.url}: POST /chat/completions failed after 2 attempts \("):
        answerer.answer_batch([QUESTION] * 3, "base")
    with pytest.raises(RuntimeError, match=rf"^--base-url {api.url}: POST /chat/completions failed after 2 attempts \("):
        list(answerer.stream_modes(QUESTION, ["base", "ft"]))


def test_refusals_name_the_flag_to_change(remote):
    def refused(status):
        def call():
            response = httpx.Response(status, request=httpx.Request("POST", remote.engine.url))
            raise openai.APIStatusError(f"HTTP {status}", response=response, body={"message": f"status {status}"})

        return call

    engine = remote.engine
    with pytest.raises(RuntimeError, match="^--llm-adapter-model ft: POST /chat/completions at .*: HTTP 404: status 404$"):
        engine._call("ft", "POST /chat/completions", refused(404))
    with pytest.raises(RuntimeError, match="^--llm-model base: "):
        engine._call("base", "POST /chat/completions", refused(404))
    with pytest.raises(RuntimeError, match=r"HTTP 401: status 401 \(the key is the variable --api-key-env names\)$"):
        engine._call("base", "POST /chat/completions", refused(401))
    with pytest.raises(ValueError, match="^--base-url .*: HTTP 400: status 400$"):  # about this request: the server answers 400
        engine._call("base", "POST /chat/completions", refused(400))


def test_a_missing_key_variable_is_one_line_naming_api_key_env(workdir, api, monkeypatch):
    monkeypatch.delenv("RAGTUNE_LLM_KEY", raising=False)
    with pytest.raises(RuntimeError, match="^--api-key-env RAGTUNE_LLM_KEY: the environment variable RAGTUNE_LLM_KEY is not set"):
        Answerer(remote_cfg(workdir, api.url, **{"llm.api_key_env": "RAGTUNE_LLM_KEY"}))
    monkeypatch.setenv("RAGTUNE_LLM_KEY", "s3cret")
    assert Answerer(remote_cfg(workdir, api.url, **{"llm.api_key_env": "RAGTUNE_LLM_KEY"})).engine.endpoint.client.api_key == "s3cret"


def test_the_cli_takes_the_flags_and_prints_one_line_errors(workdir, api, monkeypatch, capsys, tmp_path):
    from ragtune import cli
    from ragtune.core.config import CONFIG_DIR

    monkeypatch.delenv("RAGTUNE_LLM_KEY", raising=False)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    no_retries = tmp_path / "ask.yaml"  # a dead endpoint fails at once, not after 1 + 2 + 4 s of backoff
    no_retries.write_text((CONFIG_DIR / "ask.yaml").read_text().replace("\nllm: {}", "\nllm: {retries: 0}"))
    base = ["ask", QUESTION, "--workdir", str(workdir), "--mode", "rag", "--json", "--config", str(no_retries)]
    for flags, says in [
        (["--llm", "openai", "--base-url", dead, "--llm-model", "base"], f"ragtune: error: --base-url {dead}: GET /models failed"),
        (["--base-url", api.url, "--api-key-env", "RAGTUNE_LLM_KEY"], "ragtune: error: --api-key-env RAGTUNE_LLM_KEY: "),
    ]:
        assert cli.main(base + flags) == 1
        err = capsys.readouterr().err
        assert err.startswith(says) and err.count("\n") == 1, err
    assert cli.main(base + ["--llm", "openai", "--base-url", api.url, "--llm-model", "base", "--max-new-tokens", str(TOKENS)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["mode"] == "rag" and answer["text"] and answer["sources"]


def test_llm_settings_are_checked_with_the_flag_named():
    for overrides, flag in [
        ({"llm.kind": "openai"}, "--base-url"),
        ({"llm.kind": "vllm"}, "--llm"),
        ({"llm.kind": "openai", "llm.base_url": "127.0.0.1:8000"}, "--base-url"),
        ({"llm.concurrency": 0}, "llm.concurrency"),
    ]:
        with pytest.raises(ConfigError, match=flag):
            load_config(AskConfig, overrides)
