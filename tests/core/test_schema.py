"""One definition per setting: a field's `setting()` help is its flag's help and its YAML key's comment."""

import re

import pytest

from ragtune.cli import build_parser
from ragtune.core.config import CONFIG_DIR, read_yaml, settings
from ragtune.engine.config import AppConfig, AskConfig, DecodingConfig, LLMConfig, ModelConfig, ServeConfig, SpanConfig
from ragtune.evals.config import EvalConfig
from ragtune.pipeline import DemoConfig
from ragtune.rag.config import IndexConfig, IngestConfig, SearchConfig
from ragtune.synth.config import SynthConfig
from ragtune.train.config import TrainConfig

# Every config class: each field is defined with setting() (test_every_config_is_checked_here).
SCHEMAS = [
    TrainConfig,
    SynthConfig,
    EvalConfig,
    IngestConfig,
    SearchConfig,
    IndexConfig,
    DecodingConfig,
    ServeConfig,
    AppConfig,
    ModelConfig,
    AskConfig,
    LLMConfig,
    SpanConfig,
    DemoConfig,
]
KEY_LINE = re.compile(r"^(\w+):\s*(.*?)\s*(?:#\s*(.*))?$")  # a top-level key, its value and its comment


def yaml_comments(cls) -> dict[str, str | None]:
    lines = (CONFIG_DIR / cls.config_file).read_text().splitlines()
    return {m[1]: m[3] for m in map(KEY_LINE.match, lines) if m}


@pytest.mark.parametrize("cls", SCHEMAS, ids=lambda c: c.__name__)
def test_each_yaml_key_is_commented_with_its_fields_help(cls):
    comments, fields = yaml_comments(cls), {f.name: f.metadata["help"] for f in settings(cls)}
    assert set(fields) <= set(comments), f"{cls.config_file} lacks keys {sorted(set(fields) - set(comments))}"
    for name, help in fields.items():
        assert comments[name] == help, f"{cls.config_file}: `{name}` is commented {comments[name]!r}, its field says {help!r}"
    # continuation lines would be a second definition of the setting's meaning
    assert not [line for line in (CONFIG_DIR / cls.config_file).read_text().splitlines() if re.match(r"^\s+#", line)]


@pytest.mark.parametrize("cls", SCHEMAS, ids=lambda c: c.__name__)
def test_every_setting_but_nested_configs_has_a_help_line(cls):
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    nested = {f.name for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}  # their own YAML files
    assert {f.name for f in dataclasses.fields(cls)} - nested == {f.name for f in settings(cls)}


def test_train_flags_come_from_the_fields_with_the_yaml_defaults():
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    by_dest = {a.dest: a for a in train._actions}
    defaults = read_yaml(CONFIG_DIR / TrainConfig.config_file)
    for f in settings(TrainConfig):
        if not f.metadata["cli"]:
            assert f.name not in by_dest or f.name == "workdir"  # --workdir is every command's own flag
            continue
        action = by_dest[f.name]
        assert "--" + f.name.replace("_", "-") in action.option_strings
        assert action.help.startswith(f.metadata["help"].replace("%", "%%"))
        if defaults[f.name] is not None:
            assert "(default: " in action.help, action.help
    args = parser.parse_args(["train", "--lora-r", "8", "--no-packing", "--target-modules", "q_proj,v_proj", "--max-minutes", "2"])
    assert (args.lora_r, args.packing, args.target_modules, args.max_minutes) == (8, False, "q_proj,v_proj", 2.0)
    assert args.lr is None and args.bf16 is None  # not given: the YAML's value stands


def test_every_flag_an_error_names_exists():
    """A range check names the flag to change; its command must have it (a YAML-only key is named with its file)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    commands = build_parser()._subparsers._group_actions[0].choices
    flags = {name: {s for a in sub._actions for s in a.option_strings} for name, sub in commands.items()}
    # a stage's config is read by these commands; any other module's messages are checked against them all
    readers = {
        "rag/config.py": ("ingest", "search"),
        "engine/config.py": ("ask", "serve", "train", "app"),
        "synth/config.py": ("synth",),
        "train/config.py": ("train",),
        "evals/config.py": ("eval",),
    }
    named = {
        (path.relative_to(root).as_posix(), m[1])
        for pkg in ("core", "loaders", "rag", "engine", "evals", "synth", "train")
        for path in (root / pkg).glob("*.py")
        for m in re.finditer(r'f?"(--[a-z][a-z0-9-]+) must ', path.read_text())
    }
    assert named, "no error names a flag: the pattern above is stale"
    missing = sorted((f, flag) for f, flag in named if not any(flag in flags[c] for c in readers.get(f, tuple(commands))))
    assert not missing


def test_decoding_flags_reach_the_ask_config_and_eval_keeps_its_seed():
    from ragtune.cli import _ask_overrides

    asked = _ask_overrides(build_parser().parse_args(["ask", "q", "--top-k", "40", "--seed", "3", "--stop", "\\n", "--stop", "END"]))
    assert (asked["decoding.top_k"], asked["decoding.seed"], asked["decoding.stop"]) == (40, 3, ["\n", "END"])
    assert asked["decoding.temperature"] is None  # not given: configs/decoding.yaml's value stands
    evaluated = _ask_overrides(build_parser().parse_args(["eval", "--seed", "7", "--temperature", "0.5"]))
    assert "decoding.seed" not in evaluated and evaluated["decoding.temperature"] == 0.5  # eval's --seed seeds its sample


def test_every_config_is_checked_here():
    from helpers import STAGES

    assert set(SCHEMAS) == set(STAGES.values())


def _command(name: str):
    return build_parser()._subparsers._group_actions[0].choices[name]


def test_the_llm_flags_come_from_its_fields_and_serve_spells_the_key_flag_its_own_way():
    from ragtune.core.config import setting_of

    for command in ("ask", "chat", "eval", "serve", "app"):
        by_flag = {s: a for a in _command(command)._actions for s in a.option_strings}
        key_flag = "--llm-api-key-env" if command == "serve" else "--api-key-env"
        for spelling, name in (
            ("--llm", "kind"),
            ("--base-url", "base_url"),
            ("--llm-model", "model"),
            ("--llm-adapter-model", "adapter_model"),
            (key_flag, "api_key_env"),
        ):
            action = by_flag[spelling]
            assert action.dest == f"llm_{name}" and action.help.startswith(setting_of(LLMConfig, name).metadata["help"]), (
                command,
                spelling,
            )
        assert by_flag["--llm"].choices == ("local", "openai") and "(default: local)" in by_flag["--llm"].help
    assert _command("serve").parse_args(["--api-key-env", "CLIENTS"]).api_key_env == "CLIENTS"  # serve's own, for its clients


def test_ask_and_chat_take_mode_from_the_ask_config_and_no_other_command_does():
    from ragtune.engine.config import MODES

    for command in ("ask", "chat"):
        (action,) = [a for a in _command(command)._actions if "--mode" in a.option_strings]
        assert action.choices == MODES and action.help.startswith(AskConfig.__dataclass_fields__["mode"].metadata["help"])
        assert action.help.endswith("(default: rag)")
    for command in ("eval", "serve", "app"):
        assert not [a for a in _command(command)._actions if "--mode" in a.option_strings], command


def test_the_demo_takes_its_model_flag_from_its_config():
    args = build_parser().parse_args(["demo", "--no-app", "--model", "tiny"])
    assert (args.model, args.no_app) == ("tiny", True)
    (action,) = [a for a in _command("demo")._actions if "--model" in a.option_strings]
    assert action.help == DemoConfig.__dataclass_fields__["model"].metadata["help"]  # unset in demo.yaml: no default shown
