"""The `ragtune` command as a user runs it: exit codes, --json, one-line errors."""

import json
import subprocess
import sys

from helpers import free_port

CLI = [sys.executable, "-m", "ragtune.cli"]


def run(*args, **kw):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=300, **kw)


def test_ingest_json_then_search(tmp_path, sample_docs):
    wd = str(tmp_path / "w")
    out = run("ingest", str(sample_docs), "--workdir", wd, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["counts"]["ok"] == 7 and report["chunks"]["added"] == report["chunks"]["total"] > 0
    assert report["elapsed_s"] > 0
    out = run("search", "how are synthetic question pairs generated?", "-k", "2", "--workdir", wd, "--json")
    hits = json.loads(out.stdout)["hits"]
    assert len(hits) == 2 and {"score", "source", "page", "section", "text", "chunk_id"} <= set(hits[0])
    text = run("search", "how are synthetic question pairs generated?", "--workdir", wd)
    assert text.returncode == 0 and text.stdout.startswith("1. [")


def test_exit_status_nothing_ingested_and_strict(tmp_path, sample_docs):
    (tmp_path / "bad.json").write_text("{")
    wd = str(tmp_path / "w")
    nothing = run("ingest", str(tmp_path / "bad.json"), "--workdir", wd)
    assert nothing.returncode == 1
    assert f"{tmp_path / 'bad.json'}: malformed JSON" in nothing.stderr
    mixed = [str(tmp_path / "bad.json"), str(sample_docs / "01-overview.md")]
    assert run("ingest", *mixed, "--workdir", wd).returncode == 0
    assert run("ingest", *mixed, "--workdir", wd, "--strict").returncode == 1


def test_usage_errors_are_one_line(tmp_path):
    bad_flag = run("ingest", "x", "--chunk-sise", "3")
    assert bad_flag.returncode == 2 and "unrecognized arguments: --chunk-sise" in bad_flag.stderr
    bad_value = run("ingest", str(tmp_path), "--chunk-size", "8", "--workdir", str(tmp_path / "w"))
    assert bad_value.returncode == 2 and "--chunk-size must be at least 16" in bad_value.stderr
    empty = run("search", "anything", "--workdir", str(tmp_path / "empty"))
    assert empty.returncode == 1 and "is empty: run `ragtune ingest PATH` first" in empty.stderr
    unknown = run("frobnicate")
    assert unknown.returncode == 2 and "invalid choice: 'frobnicate'" in unknown.stderr
    no_server = run("search", "x", "--chroma", "http", "--chroma-port", str(free_port()), "--workdir", str(tmp_path / "w"))
    assert no_server.returncode == 1 and "cannot reach a Chroma server" in no_server.stderr
    (tmp_path / "a-file").write_text("x")
    workdir_is_file = run("search", "x", "--workdir", str(tmp_path / "a-file"))
    assert workdir_is_file.returncode == 2 and "exists and is not a directory" in workdir_is_file.stderr
    outputs = bad_flag.stderr + bad_value.stderr + empty.stderr + unknown.stderr + no_server.stderr + workdir_is_file.stderr
    assert "Traceback" not in outputs
