"""The LLM generators: the shared parser, `local` on the tiny model, and `openai` against a real `ragtune serve`.

The tiny model's text is gibberish, so the generator tests check structure (one list per chunk,
every draft valid or carrying its error, the settings) and that both generators send the same
prompt; what well-formed output turns into is the parser tests' job.
"""

import dataclasses
import time
from contextlib import contextmanager
from types import SimpleNamespace

import httpx
import openai
import pytest

from helpers import free_port, running
from ragtune.core.config import load_config
from ragtune.core.records import Chunk
from ragtune.engine.answer import Answerer
from ragtune.engine.config import ServeConfig
from ragtune.engine.server import build_app
from ragtune.synth import llm
from ragtune.synth.config import SynthConfig

TEXT = (
    "The Normans were led by Rollo, who swore fealty to King Charles III in 911. "
    "Their duchy became the Duchy of Normandy. Norman knights later conquered England in 1066."
)
TOKENS = 16  # new tokens per reply: enough for a few lines of gibberish, fast on 2 cores


def synth_cfg(**overrides) -> SynthConfig:
    return load_config(SynthConfig, {"workdir": "/tmp/unused", **overrides})


def chunk(text: str, i: int = 0) -> Chunk:
    return Chunk(f"c{i}", text, "doc.md", "h", "", i, len(text.split()))


CHUNKS = [
    chunk(TEXT, 0),
    chunk("Paris is the capital of France. It has 2.1 million inhabitants.", 1),
    chunk("Water boils at 100 degrees Celsius at sea level.", 2),
]


# The parser --------------------------------------------------------------------------------------


def test_well_formed_output_with_paraphrases():
    cfg = synth_cfg(pairs_per_chunk=2, paraphrases=2)
    out = (
        "Here are the questions:\n"
        "Q1: Who led the Normans?\nA1: Rollo\nQ1b: The Normans were led by whom?\nQ1c: Who was the leader of the Normans?\n"
        '\nQ2: When did the Normans conquer England?\nA2: "in 1066."\nQ2b: In what year was England conquered by the Normans?\n'
    )
    drafts = llm.parse(out, TEXT, cfg)
    assert [(d.question, d.answer, d.group, d.kind, d.error) for d in drafts] == [
        ("Who led the Normans?", "Rollo", 0, "original", ""),
        ("The Normans were led by whom?", "Rollo", 0, "paraphrase", ""),
        ("Who was the leader of the Normans?", "Rollo", 0, "paraphrase", ""),
        ("When did the Normans conquer England?", "in 1066", 1, "original", ""),  # quotes and the full stop go
        ("In what year was England conquered by the Normans?", "in 1066", 1, "paraphrase", ""),
    ]
    assert drafts[0].evidence == "The Normans were led by Rollo, who swore fealty to King Charles III in 911."
    assert drafts[3].evidence == "Norman knights later conquered England in 1066."


def test_extra_facts_paraphrases_and_repeated_lines_are_cut():
    cfg = synth_cfg(pairs_per_chunk=1, paraphrases=1)
    out = (
        "Q1: Who led the Normans?\nA1: Rollo\nQ1b: Whom did the Normans follow?\nQ1c: A third wording?\n"
        "Q1: Who led the Normans again?\nA1: Charles\nA1b: stray\nQ2: When was 1066?\nA2: 1066"
    )
    drafts = llm.parse(out, TEXT, cfg)
    assert [(d.question, d.answer, d.kind) for d in drafts] == [
        ("Who led the Normans?", "Rollo", "original"),
        ("Whom did the Normans follow?", "Rollo", "paraphrase"),
    ]
    assert not any(d.error for d in drafts)


@pytest.mark.parametrize(
    "output,expected",
    [
        (
            "Q1: Who led the Normans?\nQ2: When did they conquer England?\nA2: 1066",
            [("Who led the Normans?", "malformed output: no 'A1:' line"), ("When did they conquer England?", "")],
        ),
        (
            "Q1: Who led the Normans?\nQ1b: Whom did they follow?\nA1:   ",
            [
                ("Who led the Normans?", "malformed output: empty answer 'A1:'"),
                ("Whom did they follow?", "malformed output: empty answer 'A1:'"),
            ],
        ),
        (
            "Q1: Who led the Normans?\nA1: Rollo, who swore fealty to King Charles III in 911 and whose duchy became Normandy",
            [("Who led the Normans?", "malformed output: answer over 12 words (15)")],
        ),
        (
            "Q1: The Normans were led by Rollo.\nA1: Rollo\nQ1b: Who led them?",
            [("The Normans were led by Rollo.", "malformed output: 'Q1:' does not end with '?'"), ("Who led them?", "")],
        ),
        ("Q1:\nA1: Rollo", [("", "malformed output: empty question 'Q1:'")]),
        ("A1: Rollo\nQ1b: Who led them?", [("", "malformed output: no 'Q1:' line")]),
        ("The Normans were a people. Rollo! 911", [("", "malformed output: no 'Q1:' line")]),
        ("q1: lower case? a1: is not the format", [("", "malformed output: no 'Q1:' line")]),
        ("   \n", [("", "malformed output: empty")]),
    ],
)
def test_malformed_output_becomes_error_drafts(output, expected):
    drafts = llm.parse(output, TEXT, synth_cfg(pairs_per_chunk=2, paraphrases=1))
    assert [(d.question, d.error) for d in drafts] == expected


def test_the_prompts_example_is_cut_to_the_numbers_asked_and_parses_cleanly():
    for pairs, paraphrases in [(1, 0), (2, 1), (4, 2), (8, 3)]:
        cfg = synth_cfg(pairs_per_chunk=pairs, paraphrases=paraphrases)
        system, example_q, example_a, ask = llm.messages_for(TEXT, cfg)
        assert [m["role"] for m in (system, example_q, example_a, ask)] == ["system", "user", "assistant", "user"]
        assert TEXT in ask["content"] and f"Write {pairs} questions" in ask["content"]
        assert ("other words" in ask["content"]) == (paraphrases > 0)
        drafts = llm.parse(example_a["content"], llm.EXAMPLE_TEXT, cfg)
        assert not any(d.error for d in drafts) and all(d.evidence for d in drafts)  # every example answer is in its text
        assert len({d.group for d in drafts}) == min(pairs, len(llm.EXAMPLE_FACTS))
        assert len(drafts) == min(pairs, len(llm.EXAMPLE_FACTS)) * (1 + paraphrases)


# --generator local -------------------------------------------------------------------------------


def local_cfg(tiny_model, **overrides) -> SynthConfig:
    return synth_cfg(
        generator="local",
        model=str(tiny_model),
        pairs_per_chunk=2,
        paraphrases=1,
        **{"decoding.max_new_tokens": TOKENS, "decoding.temperature": 0, **overrides},
    )


@pytest.fixture(scope="module")
def local(tiny_model):
    return llm.LocalGenerator(local_cfg(tiny_model, batch_size=1))  # unpadded: greedy output equals the server's


def assert_structure(out, chunks):
    assert len(out) == len(chunks) and all(isinstance(ds, list) and ds for ds in out)
    for drafts in out:
        for d in drafts:
            assert d.error or (d.question.endswith("?") and d.answer and len(d.answer.split()) <= 12)
            assert d.kind in ("original", "paraphrase") and 0 <= d.group < 2


def test_local_generator_returns_one_list_per_chunk_and_records_its_settings(local, tiny_model):
    out = local.generate(CHUNKS)
    assert_structure(out, CHUNKS)
    assert local.settings["model"] == str(tiny_model)
    assert local.settings["temperature"] == 0 and local.settings["max_new_tokens"] == TOKENS
    assert local.settings["prompt"] == llm.PROMPT_VERSION
    assert local.generate([]) == []


def test_a_chunk_too_long_for_the_context_is_an_error_draft_not_a_failed_batch(local):
    huge = chunk("word " * 2500, 9)  # the tiny model's context is 2048 tokens
    short, long = local.generate([CHUNKS[0], huge])
    assert "in the model's context of 2048" in long[0].error and len(long) == 1
    assert short and not any("context" in d.error for d in short)


def test_an_llms_question_names_its_document_when_ambiguous_without(local, monkeypatch):
    parse = llm.parse
    reply = "Q1: What were our revenues in 2017?\nA1: $11.7 billion\nQ2: Who founded Netflix?\nA2: Reed Hastings"
    monkeypatch.setattr(llm, "parse", lambda output, text, cfg: parse(reply, text, cfg))
    text = "Our revenues were $11.7 billion in 2017. Reed Hastings founded Netflix in 1997."
    filing = dataclasses.replace(chunk(text), title="Netflix, Inc. Form 10-K (fiscal year ended December 31, 2017)")
    (drafts,) = local.generate([filing])
    assert [d.question for d in drafts if d.kind == "original"] == [
        "In Netflix, Inc. Form 10-K (fiscal year ended December 31, 2017), what were our revenues in 2017?",
        "Who founded Netflix?",  # it names its own subject
    ]
    (untitled,) = local.generate([chunk(text)])
    assert untitled[0].question == "What were our revenues in 2017?"


# --generator openai, against a real `ragtune serve` ----------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory, tiny_model):
    """The tiny model served in base mode: no index needed, its replies are garbage."""
    workdir = tmp_path_factory.mktemp("serve") / "w"
    cfg = load_config(ServeConfig, {"port": free_port(), "ask.workdir": str(workdir), "ask.model.model": str(tiny_model)})
    with running(build_app(Answerer(cfg.ask), cfg), cfg.port) as url:
        yield SimpleNamespace(url=url)


def openai_cfg(url: str, **overrides) -> SynthConfig:
    return synth_cfg(
        generator="openai",
        base_url=url,
        pairs_per_chunk=2,
        paraphrases=1,
        **{"decoding.max_new_tokens": TOKENS, "decoding.temperature": 0, **overrides},
    )


def test_openai_generator_against_ragtune_serve(api, local, monkeypatch):
    replies = {"openai": {}, "local": {}}
    parse = llm.parse

    def spy(output, chunk_text, cfg):
        replies[who][chunk_text] = output
        return parse(output, chunk_text, cfg)

    monkeypatch.setattr(llm, "parse", spy)
    gen = llm.OpenAIGenerator(openai_cfg(api.url, concurrency=2))
    assert gen.model == "base"  # no --model: the first the endpoint lists
    who = "openai"
    out = gen.generate(CHUNKS)
    assert_structure(out, CHUNKS)
    # The tiny model's garbage is counted as malformed, never raised.
    assert all(d.error.startswith("malformed output: ") for drafts in out for d in drafts)
    # Same prompt, same greedy model: the endpoint replies what the engine generates, word for word.
    who = "local"
    assert out == local.generate(CHUNKS)
    assert replies["openai"] == replies["local"] and len(replies["local"]) == 3 and all(replies["local"].values())
    assert gen.settings == {
        "model": "base",
        "base_url": api.url,
        "api_key_env": None,
        "temperature": 0,
        "top_p": 0.95,
        "max_tokens": TOKENS,
        "seed": 0,
        "pairs_per_chunk": 2,
        "paraphrases": 1,
        "max_answer_words": 12,
        "prompt": llm.PROMPT_VERSION,
        "subject": "title",
    }


def test_a_request_the_endpoint_refuses_is_an_error_draft_but_an_unknown_model_stops(api):
    gen = llm.OpenAIGenerator(openai_cfg(api.url, model="base"))
    fine, huge = gen.generate([CHUNKS[0], chunk("word " * 2500, 9)])  # over the tiny model's 2048 tokens
    assert fine and huge[0].error.startswith("refused by the endpoint: HTTP 400: the prompt is ")
    with pytest.raises(RuntimeError, match=r"^http://127\.0\.0\.1:\d+/v1: HTTP 404: The model `gpt-4` does not exist"):
        llm.OpenAIGenerator(openai_cfg(api.url, model="gpt-4")).generate(CHUNKS[:1])


def test_a_down_endpoint_fails_with_its_url_after_the_retries(api):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    gen = llm.OpenAIGenerator(openai_cfg(url, model="base", retries=1), backoff=0.01)
    real, attempts = gen.client.chat.completions.create, []
    gen.client.chat.completions.create = lambda **kw: attempts.append(1) or real(**kw)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError) as down:
        gen.generate(CHUNKS[:1])
    assert time.perf_counter() - t0 < 5 and len(attempts) == 2
    message = str(down.value)
    assert message.startswith(f"{url}: POST /chat/completions failed after 2 attempts (") and "\n" not in message
    with pytest.raises(RuntimeError, match=f"^{url}: GET /models failed after 2 attempts"):
        llm.OpenAIGenerator(openai_cfg(url, retries=1), backoff=0.01)  # no --model: asks the endpoint, which is down


def test_a_hung_endpoint_times_out_and_many_chunks_give_up_together():
    with socket_that_never_answers() as port:
        url = f"http://127.0.0.1:{port}/v1"
        gen = llm.OpenAIGenerator(openai_cfg(url, model="base", retries=1, timeout=0.3, concurrency=2), backoff=0.01)
        t0 = time.perf_counter()
        with pytest.raises(RuntimeError, match=r"failed after 2 attempts \(no reply within --timeout 0.3 s\)"):
            gen.generate(CHUNKS * 4)  # 12 chunks: the first to give up stops the rest
        assert time.perf_counter() - t0 < 3


@contextmanager
def socket_that_never_answers():
    """A listening TCP socket nobody reads: connections open, requests go out, no reply ever comes."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def test_429_and_5xx_are_retried_with_backoff_other_errors_are_not(api):
    def generator():
        return llm.OpenAIGenerator(openai_cfg(api.url, model="base", retries=3), backoff=0.01)

    def failing(statuses):
        def call():
            status = statuses.pop(0)
            if status == 200:
                return "ok"
            response = httpx.Response(status, request=httpx.Request("POST", api.url))
            raise openai.APIStatusError(f"HTTP {status}", response=response, body={"message": f"status {status}"})

        return call

    assert generator()._call("POST", failing([429, 503, 500, 200])) == "ok"
    with pytest.raises(RuntimeError, match=r"failed after 4 attempts \(HTTP 502: status 502\)"):
        generator()._call("POST", failing([502] * 4))
    with pytest.raises(openai.APIStatusError):  # a 400 goes back to the caller at once
        generator()._call("POST", failing([400, 200]))


def test_the_api_key_comes_from_the_named_variable_and_is_never_recorded(api, monkeypatch):
    monkeypatch.delenv("RAGTUNE_SYNTH_KEY", raising=False)
    with pytest.raises(RuntimeError, match="^--api-key-env RAGTUNE_SYNTH_KEY: the environment variable RAGTUNE_SYNTH_KEY is not set"):
        llm.OpenAIGenerator(openai_cfg(api.url, model="base", api_key_env="RAGTUNE_SYNTH_KEY"))
    monkeypatch.setenv("RAGTUNE_SYNTH_KEY", "s3cret")
    gen = llm.OpenAIGenerator(openai_cfg(api.url, model="base", api_key_env="RAGTUNE_SYNTH_KEY"))
    assert gen.client.api_key == "s3cret"
    assert gen.settings["api_key_env"] == "RAGTUNE_SYNTH_KEY" and "s3cret" not in repr(gen.settings)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-this-endpoint")
    assert llm.OpenAIGenerator(openai_cfg(api.url, model="base")).client.api_key == llm.OpenAIGenerator.PLACEHOLDER_KEY


def test_the_registry_builds_both(tiny_model, api):
    from ragtune.synth.generators import build

    assert build(local_cfg(tiny_model)).name == "local"
    assert build(openai_cfg(api.url, model="base")).name == "openai"
