"""Decoding on a tiny random-weight model: greedy, seeds, limits, stop strings, batching, streaming."""

import pytest

from ragtune.core.config import ConfigError, load_config
from ragtune.engine.config import DecodingConfig


@pytest.fixture(scope="module")
def engine(tiny_model):
    from ragtune.engine.config import ModelConfig
    from ragtune.engine.generate import Engine

    return Engine(load_config(ModelConfig, {"model": str(tiny_model)}))


@pytest.fixture(scope="module")
def prompts(engine):
    questions = ["hi", "What is the capital of France?", "Summarise the ingest stage in one line, please."]
    return [engine.render([{"role": "user", "content": q}]) for q in questions]


def dec(**kw) -> DecodingConfig:
    return load_config(DecodingConfig, kw)


def test_greedy_is_deterministic_and_batching_does_not_change_it(engine, prompts):
    d = dec(max_new_tokens=12)
    batched = engine.generate(prompts, d, batch_size=3)
    again = engine.generate(prompts, d, batch_size=3)
    alone = [engine.generate([p], d)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in again] == [g.text for g in alone]
    assert all(g.text for g in batched)
    assert [g.prompt_tokens for g in batched] == [engine.count_tokens(p) for p in prompts]


def test_seed_makes_sampling_reproducible(engine, prompts):
    a = engine.generate(prompts, dec(temperature=1.0, seed=7, max_new_tokens=12))
    b = engine.generate(prompts, dec(temperature=1.0, seed=7, max_new_tokens=12))
    c = engine.generate(prompts, dec(temperature=1.0, seed=8, max_new_tokens=12))
    greedy = engine.generate(prompts, dec(max_new_tokens=12))
    assert [g.text for g in a] == [g.text for g in b]
    assert [g.text for g in a] != [g.text for g in c]
    assert [g.text for g in a] != [g.text for g in greedy]


def test_max_new_tokens_is_respected(engine, prompts):
    for n in (1, 5):
        for g in engine.generate(prompts, dec(max_new_tokens=n)):
            assert g.generated_tokens == n and g.finish_reason == "length"


def test_stop_strings_end_the_answer(engine, prompts):
    free = engine.generate(prompts[:1], dec(max_new_tokens=16))[0].text
    stop = free.split()[2]  # a word the greedy answer is known to contain
    cut = engine.generate(prompts[:1], dec(max_new_tokens=16, stop=[stop]))[0]
    assert cut.text == free[: free.index(stop)].strip() and cut.finish_reason == "stop"
    assert stop not in cut.text and cut.generated_tokens < 16


def test_stream_matches_generate_and_releases_the_model(engine, prompts):
    d = dec(max_new_tokens=12)
    stream = engine.stream(prompts[1], d)
    pieces = []
    with pytest.raises(StopIteration) as done:
        while True:
            pieces.append(next(stream))
    assert len(pieces) > 1, "tokens arrive one by one, not all at the end"
    result = done.value.value  # the generator's return value
    assert "".join(pieces) == result.text == engine.generate([prompts[1]], d)[0].text
    assert result.first_token_s is not None and result.first_token_s <= result.latency_s
    early = engine.stream(prompts[1], dec(max_new_tokens=200))
    next(early)
    early.close()  # a client that leaves: generation stops and the lock is free again
    assert engine.lock.acquire(timeout=5)
    engine.lock.release()


def test_stream_many_grows_answers_in_parallel_and_matches_generate(engine, prompts):
    d = dec(max_new_tokens=12)
    many = engine.stream_many(prompts, d)
    events = []
    with pytest.raises(StopIteration) as done:
        while True:
            events.append(next(many))
    results = done.value.value
    alone = [engine.generate([p], d)[0] for p in prompts]
    assert [r.text for r in results] == [g.text for g in alone]
    for i, r in enumerate(results):
        assert "".join(piece for j, piece in events if j == i) == r.text
    order = [i for i, _ in events]
    last_of_first = max(n for n, i in enumerate(order) if i == order[0])
    assert len(set(order[:last_of_first])) > 1, "the answers interleave: none waits for another to end"
    early = engine.stream_many(prompts, dec(max_new_tokens=200))
    next(early)
    early.close()
    assert engine.lock.acquire(timeout=5)
    engine.lock.release()


def test_stream_holds_back_a_stop_string(engine, prompts):
    free = engine.generate(prompts[0:1], dec(max_new_tokens=16))[0].text
    stop = free.split()[1]
    streamed = "".join(engine.stream(prompts[0], dec(max_new_tokens=16, stop=[stop])))
    assert stop not in streamed and streamed.strip() == free[: free.index(stop)].strip()


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("temperature", -0.1, "--temperature must be between 0 and 2"),
        ("top_p", 0.0, "--top-p must be in (0, 1]"),
        ("top_k", -1, "--top-k must be 0"),
        ("max_new_tokens", 0, "--max-new-tokens must be between 1 and"),
        ("max_new_tokens", 10**9, "--max-new-tokens must be between 1 and"),
        ("repetition_penalty", 0, "--repetition-penalty must be in (0, 10]"),
        ("seed", -3, "--seed must be a non-negative integer"),
        ("stop", [str(i) for i in range(17)], "--stop takes 1 to 16 non-empty strings"),
    ],
)
def test_bad_decoding_values_name_the_flag(flag, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        dec(**{flag: value})


def test_a_prompt_beyond_the_context_is_refused(engine, prompts):
    with pytest.raises(ValueError, match="exceeds the model's context of 2048 tokens"):
        engine.generate(prompts[:1], dec(max_new_tokens=2040))
    with pytest.raises(ValueError, match="exceeds the model's context"):
        next(engine.stream(prompts[0], dec(max_new_tokens=2040)))
    assert engine.lock.acquire(timeout=1)  # a refused stream does not keep the model
    engine.lock.release()
