"""The work dir's layout: its folders, the newest finished dataset and adapter, new run folders, atomic writes."""

import json
import os
import threading
from datetime import UTC, datetime

import pytest

from ragtune.core import workdir as W
from ragtune.core.config import ConfigError


def test_each_kind_has_its_folder_under_the_workdir(tmp_path):
    folders = {
        W.chroma_dir: "chroma",
        W.manifests_dir: "manifests",
        W.lexical_dir: "lexical",
        W.datasets_dir: "datasets",
        W.adapters_dir: "adapters",
        W.runs_dir: "runs",
        W.uploads_dir: "uploads",
    }
    for folder, name in folders.items():
        assert folder(tmp_path) == folder(str(tmp_path)) == tmp_path / name
    assert not list(tmp_path.iterdir()), "naming a folder must not create it"


def test_make_workdir_creates_it_or_names_the_flag(tmp_path):
    assert W.make_workdir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="--workdir .*file: exists and is not a directory"):
        W.make_workdir(tmp_path / "file")


def _folder(parent, name, files, age):
    """A folder holding `files`, each written `age` seconds ago."""
    folder = parent / name
    folder.mkdir(parents=True)
    for f in files:
        path = folder / f
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        os.utime(path, (1_700_000_000 - age, 1_700_000_000 - age))
    return folder


def test_newest_dataset_is_the_newest_finished_one(tmp_path):
    assert W.newest_dataset(tmp_path) is None and W.newest_dataset(tmp_path / "absent") is None
    datasets = W.datasets_dir(tmp_path)
    _folder(datasets, "extractive-old", ["dataset.json", "pairs.jsonl"], age=300)
    done = _folder(datasets, "extractive-new", ["dataset.json", "pairs.jsonl"], age=200)
    _folder(datasets, "local-running", ["config.json", "drafts.jsonl", "dataset.json.tmp1-0"], age=10)  # no card yet
    _folder(datasets, "local-nested", ["sub/dataset.json"], age=5)
    (datasets / "dataset.json").write_text("{}")  # a stray file beside the folders
    assert W.newest_dataset(tmp_path) == W.newest_dataset(str(tmp_path)) == done


def test_newest_adapter_is_the_newest_finished_one(tmp_path):
    assert W.newest_adapter(tmp_path) is None
    adapters = W.adapters_dir(tmp_path)
    _folder(adapters, "20261124-081500", ["adapter_config.json", "metrics.json"], age=300)
    done = _folder(adapters, "20261124-091500", ["adapter_config.json", "adapter_model.safetensors"], age=200)
    # Still training: its checkpoint holds an adapter_config.json, the run folder none yet.
    _folder(adapters, "20261124-101500", ["train_config.json", "checkpoint-4/adapter_config.json"], age=10)
    _folder(adapters, "merged.tmp", ["config.json", "model.safetensors"], age=5)
    assert W.newest_adapter(tmp_path) == done


class _Frozen(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 11, 24, 8, 15, 0, tzinfo=UTC)


def test_new_run_dirs_in_one_second_never_share_a_name(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "datetime", _Frozen)
    parent = tmp_path / "runs"
    made = [W.new_run_dir(parent) for _ in range(3)]
    assert [p.name for p in made] == ["20261124-081500", "20261124-081500-1", "20261124-081500-2"]
    assert all(p.is_dir() and p.parent == parent for p in made)

    found = []
    threads = [threading.Thread(target=lambda: found.append(W.new_run_dir(parent))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 8 and not set(found) & set(made)


def test_a_new_run_dir_skips_a_file_of_its_name(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "datetime", _Frozen)
    tmp_path.joinpath("20261124-081500").write_text("not a run")
    assert W.new_run_dir(tmp_path).name == "20261124-081500-1"


def test_writers_write_the_bytes_asked_and_leave_nothing_aside(tmp_path):
    W.write_text(tmp_path / "a.md", "naïve\n")
    W.write_bytes(tmp_path / "b.png", b"\x89PNG")
    W.write_json(tmp_path / "c.json", {"b": "é", "a": [1]}, indent=1, sort_keys=True)
    W.write_jsonl(tmp_path / "d.jsonl", iter([{"q": "é"}, {"n": 2}]))
    W.write_text(tmp_path / "a.md", "replaced")
    assert (tmp_path / "a.md").read_bytes() == b"replaced"
    assert (tmp_path / "b.png").read_bytes() == b"\x89PNG"
    assert (tmp_path / "c.json").read_text() == json.dumps({"b": "é", "a": [1]}, indent=1, sort_keys=True)
    assert (tmp_path / "d.jsonl").read_text(encoding="utf-8") == '{"q": "é"}\n{"n": 2}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "b.png", "c.json", "d.jsonl"]


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_one(tmp_path):
    target = tmp_path / "pairs.jsonl"
    target.write_text('{"old": 1}\n')
    records = ({"n": n} if n < 100 else {"n": object()} for n in range(101))  # fails after 100 lines
    with pytest.raises(TypeError):
        W.write_jsonl(target, records)
    with pytest.raises(TypeError):
        W.write_json(target, {"bad": object()})
    with pytest.raises(RuntimeError), W.replacing(target) as tmp:
        tmp.write_text("half of a")
        raise RuntimeError("killed")
    assert target.read_text() == '{"old": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]

    with pytest.raises(TypeError):
        W.write_jsonl(tmp_path / "new.jsonl", [{"a": 1}, {"b": {1, 2}}])
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"], "a first write that fails leaves no file"
