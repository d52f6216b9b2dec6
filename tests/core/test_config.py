import re
from pathlib import Path

import pytest

from core.config import CONFIG_DIR, ConfigError, load_config, resolve_workdir
from engine.config import AppConfig, AskConfig, DecodingConfig, LLMConfig, ModelConfig, ServeConfig, SpanConfig
from evals.config import EvalConfig
from pipeline import DemoConfig
from rag.config import IndexConfig, IngestConfig, SearchConfig
from synth.config import SynthConfig
from train.config import TrainConfig

STAGES = {"ingest.yaml": IngestConfig, "search.yaml": SearchConfig, "index.yaml": IndexConfig, "model.yaml": ModelConfig,
          "decoding.yaml": DecodingConfig, "ask.yaml": AskConfig, "serve.yaml": ServeConfig, "spans.yaml": SpanConfig,
          "synth.yaml": SynthConfig, "train.yaml": TrainConfig, "eval.yaml": EvalConfig, "app.yaml": AppConfig,
          "demo.yaml": DemoConfig, "llm.yaml": LLMConfig}


def test_every_yaml_file_builds_its_config_class():
    from engine.prompts import PromptTemplates, load_templates

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


@pytest.mark.parametrize("overrides, flag", [
    ({"chunk_size": "abc"}, "--chunk-size"),
    ({"chunk_overlap": 500}, "--chunk-overlap"),
    ({"index.chroma": "cloud"}, "--chroma"),
    ({"index.collection": "x"}, "--collection"),
    ({"bogus_setting": 1}, "--bogus-setting"),
    ({"prune": "maybe"}, "--prune"),
])
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
