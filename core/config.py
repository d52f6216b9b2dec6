"""Typed stage configs: defaults from `configs/<stage>.yaml`, then flags on top.

Every stage has one dataclass. Its YAML file holds every default (tests check that each
YAML file builds its class), and the CLI passes flags as overrides. A setting's name is the
same in the dataclass, the YAML and the CLI (`chunk_size` <-> `--chunk-size`), so every error
names the flag the user can change. Each field is a `setting()`, its one definition: its help line,
range and choices, from which the flag, `--help`, the check of its value and the app's widget derive.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

CONFIG_DIR = Path(resources.files("ragtune")) / "configs"
DEFAULT_WORKDIR = ".ragtune"

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad setting; the message names the flag."""


def flag(name: str) -> str:
    """`chunk_size` -> `--chunk-size`: how a setting is spelled on the command line."""
    return "--" + name.rsplit(".", 1)[-1].replace("_", "-")


def setting(
    help: str,
    *,
    cli: bool = True,
    metavar: str | None = None,
    choices: tuple[str, ...] | None = None,
    names: tuple[str, ...] | None = None,
    repeat: bool = False,
    label: str | None = None,
    low: float | None = None,
    above: float | None = None,
    high: float | None = None,
    step: float | None = None,
    widget_high: float | None = None,
) -> Any:
    """A config field's one definition, beside its YAML default: the help line, from which its
    flag, `--help`, the comment beside its key in `configs/<stage>.yaml` and the app's widget are derived.

    Args:
        help: one line; the YAML comment beside the key says the same (tests/core/test_schema.py).
        cli: False for a setting read from the YAML file (or the app) only, with no flag.
        metavar, choices: as argparse takes them; `check_settings` holds the value to `choices`.
        names: the flag's spellings when not `--field-name` (`-k`).
        repeat: a list given by repeating the flag (`--include A --include B`) rather than comma-separated.
        label: the app widget's label, when the field's name reads badly (`top-k`).
        low, above, high: the valid range, which `check_settings` enforces: at least `low` (or more than
            `above`), at most `high`; the app's slider spans it.
        step: the slider's step.
        widget_high: where the slider ends when `high` is unset or far beyond useful values.
    """
    return dataclasses.field(
        metadata={
            "help": help,
            "cli": cli,
            "metavar": metavar,
            "choices": choices,
            "names": names,
            "repeat": repeat,
            "label": label,
            "low": low,
            "above": above,
            "high": high,
            "step": step,
            "widget_high": widget_high,
        }
    )


def settings(cls: type) -> list[dataclasses.Field]:
    """The fields of `cls` defined with `setting()`, in order."""
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def setting_of(cls: type, name: str) -> dataclasses.Field:
    """The field `name` of `cls`, defined with `setting()`."""
    try:
        return next(f for f in settings(cls) if f.name == name)
    except StopIteration:
        raise KeyError(f"{cls.__name__} has no setting {name!r}") from None


def add_flags(
    parser,
    cls: type,
    skip: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
    section: str = "",
    names: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """One flag per `setting()` of `cls` (`lora_r` -> `--lora-r`), its help ending with the YAML default.

    Args:
        skip, only: settings left out, or the only ones in.
        section: the nested section the settings fill (`llm`), when their names would clash with the
            stage's own (`llm.model`, `model.model`): their dests are `llm_model`; `flag_values` takes it too.
        names: spellings for this command only, by field (serve's `--llm-api-key-env`).
    """
    import argparse

    defaults = read_yaml(CONFIG_DIR / cls.config_file)
    hints = typing.get_type_hints(cls)
    for f in settings(cls):
        meta = f.metadata
        if not meta["cli"] or f.name in skip or (only is not None and f.name not in only):
            continue
        typ = _plain(hints[f.name])
        kw: dict[str, Any] = {"dest": _dest(f.name, section), "default": None, "help": _help(meta["help"], defaults.get(f.name))}
        if typ is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif meta["repeat"]:
            kw["action"] = "append"
        else:
            kw["type"] = str if typing.get_origin(typ) in (list, tuple) else typ  # a list is comma-separated
        if typ is not bool:
            kw.update({k: meta[k] for k in ("metavar", "choices") if meta[k]})
        parser.add_argument(*((names or {}).get(f.name) or meta["names"] or (flag(f.name),)), **kw)


def flag_values(args: Any, cls: type, prefix: str = "", section: str = "") -> dict[str, Any]:
    """The values of `add_flags`' flags in parsed `args`, as `load_config` overrides (None: not given);
    `prefix` places them in a nested section (`index.`); a `section` given to `add_flags` is the prefix too."""
    prefix = prefix or (section + "." if section else "")
    return {
        prefix + f.name: getattr(args, _dest(f.name, section))
        for f in settings(cls)
        if f.metadata["cli"] and hasattr(args, _dest(f.name, section))
    }


def _dest(name: str, section: str) -> str:
    return f"{section}_{name}" if section else name


def _plain(typ: Any) -> Any:
    """`int | None` -> `int`: the type a flag parses to."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(typ) if a is not type(None))
    return typ


def _help(text: str, default: Any) -> str:
    shown = (
        ",".join(map(str, default)) if isinstance(default, list) else ("on" if default is True else "off" if default is False else default)
    )
    text = text if default is None or default == [] else f"{text} (default: {shown})"
    return text.replace("%", "%%")  # argparse formats help with %


@dataclass(frozen=True)
class Widget:
    """What the app's widget for a setting shows: its label, help line, range or choices."""

    label: str
    info: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple | None = None


def widget(cls: type, name: str) -> Widget:
    """The app's widget for setting `name` of `cls`: a slider starts one step above an open bound."""
    meta = setting_of(cls, name).metadata
    low = meta["low"] if meta["low"] is not None else None if meta["above"] is None else meta["above"] + (meta["step"] or 0)
    high = meta["widget_high"] if meta["widget_high"] is not None else meta["high"]
    return Widget(meta["label"] or name.replace("_", " "), meta["help"], low, high, meta["step"], meta["choices"])


def check_settings(cfg: Any) -> None:
    """Hold each setting of `cfg` to its range and choices; a config's `__post_init__` calls it.

    Raises:
        ConfigError: naming the flag, or for a setting without one its key and file.
    """
    for f in settings(type(cfg)):
        meta, value = f.metadata, getattr(cfg, f.name)
        if value is None:
            continue
        name = (meta["names"] or (flag(f.name),))[0] if meta["cli"] else f"{f.name} in configs/{cfg.config_file}"
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")
        low, above, high = meta["low"], meta["above"], meta["high"]
        if (low is not None and value < low) or (above is not None and value <= above) or (high is not None and value > high):
            raise ConfigError(f"{name} must be {_range(low, above, high)}, got {value}")


def _range(low, above, high) -> str:
    """`between 0 and 2`, `in (0, 1]`, `0 or more`: a range as an error message says it."""
    low, above, high = (None if x is None else _number(x) for x in (low, above, high))
    if high is None:
        return f"{low} or more" if above is None else f"more than {above}"
    if low is None and above is None:
        return f"at most {high}"
    return f"between {low} and {high}" if above is None else f"in ({above}, {high}]"


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def resolve_workdir(value: str | os.PathLike | None) -> Path:
    """`--workdir`, else $RAGTUNE_WORKDIR, else ./.ragtune."""
    return Path(value or os.environ.get("RAGTUNE_WORKDIR") or DEFAULT_WORKDIR).expanduser()


def load_config(cls: type[T], overrides: Mapping[str, Any] | None = None, path: str | Path | None = None) -> T:
    """Build `cls` from its YAML defaults plus overrides.

    Args:
        cls: a dataclass with a `config_file` class attribute (e.g. "ingest.yaml").
        overrides: dotted keys (`index.collection`) or plain field names; None values mean
            "flag not given" and are ignored.
        path: another YAML file to read instead of the default one.
    Raises:
        ConfigError: unknown key, wrong type or invalid value; the message names the flag.
    """
    path = Path(path) if path else CONFIG_DIR / cls.config_file
    data = read_yaml(path)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
    return _build(cls, data, str(path))


def to_dict(cfg: Any) -> dict:
    """A config as plain data (for reports and resolved-config files)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}


def read_yaml(path: Path) -> dict:
    """A YAML file of settings, as a mapping; a one-line ConfigError if it is missing or malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def _set_dotted(data: dict, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[leaf] = value


def _build(cls: type, data: dict, source: str, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown setting {flag(unknown[0])} (valid: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            # A nested config (the index settings) has a YAML file of its own; the stage's
            # file may override part of it.
            base = read_yaml(CONFIG_DIR / typ.config_file)
            section = data.get(name) or {}
            if not isinstance(section, dict):
                raise ConfigError(f"{source}: `{prefix}{name}` must be a mapping of settings, got {section!r}")
            base.update(section)
            kwargs[name] = _build(typ, base, source, prefix + name + ".")
        elif name in data:
            kwargs[name] = _coerce(data[name], typ, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing setting {flag(name)}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: {e}") from None


def _coerce(value: Any, typ: Any, name: str) -> Any:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        typ = next(a for a in args if a is not type(None))
        return _coerce(value, typ, name)
    if origin in (list, tuple):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{flag(name)} expects a list, got {value!r}")
        return [_coerce(v.strip() if isinstance(v, str) else v, args[0], name) for v in items if v != ""]
    if typ is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{flag(name)} expects true or false, got {value!r}")
    if typ in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{flag(name)} expects a number, got {value!r}")
        try:
            out = typ(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{flag(name)} expects {'an integer' if typ is int else 'a number'}, got {value!r}") from None
        if typ is int and isinstance(value, float) and value != out:
            raise ConfigError(f"{flag(name)} expects an integer, got {value!r}")
        return out
    if typ is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{flag(name)} expects text, got {value!r}")
        return str(value)
    return value
