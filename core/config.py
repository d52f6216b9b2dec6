"""Typed stage configs: defaults from `configs/<stage>.yaml`, then flags on top.

Every stage has one dataclass. Its YAML file holds every default (tests check that each
YAML file builds its class), and the CLI passes flags as overrides. A setting's name is the
same in the dataclass, the YAML and the CLI (`chunk_size` <-> `--chunk-size`), so every error
names the flag the user can change.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_WORKDIR = ".ragtune"

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad setting; the message names the flag."""


def flag(name: str) -> str:
    """`chunk_size` -> `--chunk-size`: how a setting is spelled on the command line."""
    return "--" + name.rsplit(".", 1)[-1].replace("_", "-")


def setting(help: str, *, cli: bool = True, metavar: str | None = None, choices: tuple[str, ...] | None = None,
            names: tuple[str, ...] | None = None, repeat: bool = False) -> Any:
    """A config field's one definition, beside its YAML default: the help line, from which its
    flag, `--help` and the comment beside its key in `configs/<stage>.yaml` are derived.

    Args:
        help: one line; the YAML comment beside the key says the same (tests/core/test_schema.py).
        cli: False for a setting read from the YAML file (or the app) only, with no flag.
        metavar, choices: as argparse takes them.
        names: the flag's spellings when not `--field-name` (`-k`).
        repeat: a list given by repeating the flag (`--include A --include B`) rather than comma-separated.
    """
    return dataclasses.field(metadata={"help": help, "cli": cli, "metavar": metavar, "choices": choices, "names": names, "repeat": repeat})


def settings(cls: type) -> list[dataclasses.Field]:
    """The fields of `cls` defined with `setting()`, in order."""
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def add_flags(parser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One flag per `setting()` of `cls` (`lora_r` -> `--lora-r`), its help ending with the YAML default."""
    import argparse

    defaults = read_yaml(CONFIG_DIR / cls.config_file)
    hints = typing.get_type_hints(cls)
    for f in settings(cls):
        meta = f.metadata
        if not meta["cli"] or f.name in skip:
            continue
        typ = _plain(hints[f.name])
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": _help(meta["help"], defaults.get(f.name))}
        if typ is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif meta["repeat"]:
            kw["action"] = "append"
        else:
            kw["type"] = str if typing.get_origin(typ) in (list, tuple) else typ  # a list is comma-separated
        if typ is not bool:
            kw.update({k: meta[k] for k in ("metavar", "choices") if meta[k]})
        parser.add_argument(*(meta["names"] or (flag(f.name),)), **kw)


def flag_values(args: Any, cls: type, prefix: str = "") -> dict[str, Any]:
    """The values of `add_flags`' flags in parsed `args`, as `load_config` overrides (None: not given);
    `prefix` places them in a nested section (`index.`)."""
    return {prefix + f.name: getattr(args, f.name) for f in settings(cls) if f.metadata["cli"] and hasattr(args, f.name)}


def _plain(typ: Any) -> Any:
    """`int | None` -> `int`: the type a flag parses to."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(typ) if a is not type(None))
    return typ


def _help(text: str, default: Any) -> str:
    shown = ",".join(map(str, default)) if isinstance(default, list) else ("on" if default is True else "off" if default is False else default)
    text = text if default is None or default == [] else f"{text} (default: {shown})"
    return text.replace("%", "%%")  # argparse formats help with %


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
