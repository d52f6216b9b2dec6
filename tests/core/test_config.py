import re
from pathlib import Path

import pytest

from helpers import STAGES
from ragtune.core.config import CONFIG_DIR, ConfigError, load_config, resolve_workdir
from ragtune.engine.config import AskConfig, DecodingConfig, LLMConfig, ModelConfig, ServeConfig, SpanConfig
from ragtune.pipeline import DemoConfig
from ragtune.rag.config import IngestConfig, SearchConfig


def test_every_yaml_file_builds_its_config_class():
    from ragtune.engine.prompts import PromptTemplates, load_templates

    files = sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))
    assert files == sorted([*STAGES, "prompts.yaml"]), "a YAML file in configs/ has no config class checked here"
    assert isinstance(load_templates("prompts.yaml"), PromptTemplates)
    for name, cls in STAGES.items():
        cfg = load_config(cls)
        assert isinstance(cfg, cls)
        assert (CONFIG_DIR / name).read_text().startswith("#"), f"{name} should open with its command"


def test_flags_override_yaml_and_nested_index_settings():
    cfg = load_config(IngestConfig, {"chunk_size": "120", "index.collection": "my-docs", "prune": None})
    assert cfg.chunk_size == 120 and cfg.index.collection == "my-docs"
    assert cfg.prune is False  # None means "flag not given": the YAML default stands


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"chunk_size": "abc"}, "--chunk-size"),
        ({"chunk_overlap": 500}, "--chunk-overlap"),
        ({"index.chroma": "cloud"}, "--chroma"),
        ({"index.collection": "x"}, "--collection"),
        ({"bogus_setting": 1}, "--bogus-setting"),
        ({"prune": "maybe"}, "--prune"),
    ],
)
def test_errors_name_the_flag(overrides, flag):
    with pytest.raises(ConfigError, match=flag):
        load_config(IngestConfig, overrides)


def test_unknown_key_in_a_user_yaml_file(tmp_path):
    bad = tmp_path / "ingest.yaml"
    bad.write_text((CONFIG_DIR / "ingest.yaml").read_text() + "\nchunk_sise: 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting --chunk-sise"):
        load_config(IngestConfig, path=bad)


def test_nested_section_must_be_a_mapping(tmp_path):
    bad = tmp_path / "search.yaml"
    bad.write_text(re.sub(r"^index:\s*\{\}", "index: 5", (CONFIG_DIR / "search.yaml").read_text(), flags=re.M))
    with pytest.raises(ConfigError, match="`index` must be a mapping"):
        load_config(SearchConfig, path=bad)


def test_workdir_comes_from_flag_then_env_then_default(monkeypatch):
    monkeypatch.setenv("RAGTUNE_WORKDIR", "/tmp/from-env")
    assert resolve_workdir(None) == Path("/tmp/from-env")
    assert resolve_workdir("/tmp/flag") == Path("/tmp/flag")
    monkeypatch.delenv("RAGTUNE_WORKDIR")
    assert resolve_workdir(None) == Path(".ragtune")


# One definition per setting: ranges, choices and widgets come from `setting()` -----------------------


@pytest.mark.parametrize(
    "cls, overrides, message",
    [
        (DecodingConfig, {"temperature": 2.5}, "--temperature must be between 0 and 2, got 2.5"),
        (DecodingConfig, {"top_p": 0}, "--top-p must be in (0, 1], got 0.0"),
        (DecodingConfig, {"top_k": -1}, "--top-k must be 0 or more, got -1"),
        (AskConfig, {"k": 0}, "-k must be 1 or more, got 0"),  # the flag as it is spelled
        (AskConfig, {"mode": "gpt"}, "--mode must be one of base, rag, ft, ft-rag, got 'gpt'"),
        (AskConfig, {"llm.kind": "vllm"}, "--llm must be one of local, openai, got 'vllm'"),
        (AskConfig, {"batch_size": 0}, "batch_size in configs/ask.yaml must be 1 or more, got 0"),  # no flag: its key and file
        (SpanConfig, {"max_sentences": 11}, "max_sentences in configs/spans.yaml must be between 1 and 10, got 11"),
        (DemoConfig, {"open_limit": -1}, "open_limit in configs/demo.yaml must be 0 or more, got -1"),
    ],
)
def test_a_settings_range_and_choices_are_checked_where_they_are_defined(cls, overrides, message):
    with pytest.raises(ConfigError) as e:
        load_config(cls, overrides)
    assert str(e.value).endswith(message)


def test_a_widget_is_derived_from_its_setting():
    from ragtune.core.config import Widget, widget

    assert widget(DecodingConfig, "temperature") == Widget(
        "temperature", "0 = greedy and deterministic; up to 2, OpenAI's range", 0, 2, 0.05
    )
    top_p = widget(DecodingConfig, "top_p")
    assert (top_p.label, top_p.low, top_p.high) == ("top-p", 0.05, 1)  # an open bound: the slider starts a step above it
    tokens = widget(DecodingConfig, "max_new_tokens")
    assert tokens.label == "max new tokens" and tokens.high < DecodingConfig.__dataclass_fields__["max_new_tokens"].metadata["high"]
    assert widget(AskConfig, "mode").choices == ("base", "rag", "ft", "ft-rag")
    with pytest.raises(KeyError, match="no setting 'nope'"):
        widget(AskConfig, "nope")


def test_a_section_keeps_its_flags_apart_and_a_command_may_spell_one_its_own_way():
    import argparse

    from ragtune.core.config import add_flags, flag_values

    ask, serve = argparse.ArgumentParser(), argparse.ArgumentParser()
    add_flags(ask, ModelConfig, only=("model",))
    add_flags(ask, LLMConfig, section="llm")
    add_flags(serve, LLMConfig, section="llm", names={"api_key_env": ("--llm-api-key-env",)})
    add_flags(serve, ServeConfig, skip=("host", "port", "max_queue"))
    args = ask.parse_args(["--model", "local-dir", "--llm-model", "remote", "--api-key-env", "KEY"])
    assert (args.model, args.llm_model) == ("local-dir", "remote")
    assert flag_values(args, LLMConfig, section="llm") == {
        "llm.kind": None,
        "llm.base_url": None,
        "llm.model": "remote",
        "llm.adapter_model": None,
        "llm.api_key_env": "KEY",
    }
    args = serve.parse_args(["--llm-api-key-env", "UPSTREAM", "--api-key-env", "CLIENTS"])
    assert (args.llm_api_key_env, args.api_key_env) == ("UPSTREAM", "CLIENTS")
    assert flag_values(args, ServeConfig) == {"api_key_env": "CLIENTS"}
