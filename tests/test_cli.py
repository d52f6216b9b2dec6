"""The `ragtune` command as a user runs it: exit codes, --json, one-line errors."""

import json
import subprocess
import sys

from helpers import free_port

CLI = [sys.executable, "-m", "ragtune.cli"]


def run(*args, **kw):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=300, **kw)


def test_ingest_json_then_search(tmp_path, sample_docs, capsys):
    from ragtune.cli import main

    wd = str(tmp_path / "w")
    assert main(["ingest", str(sample_docs), "--workdir", wd, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["ok"] == 7 and report["chunks"]["added"] == report["chunks"]["total"] > 0
    assert report["elapsed_s"] > 0
    assert main(["search", "how are synthetic question pairs generated?", "-k", "2", "--workdir", wd, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 2 and {"score", "source", "page", "section", "text", "chunk_id"} <= set(hits[0])
    text = run("search", "how are synthetic question pairs generated?", "--workdir", wd)  # the console entry itself, once
    assert text.returncode == 0 and text.stdout.startswith("1. [")


def test_search_scoped_to_documents_by_glob(tmp_path, capsys):
    from ragtune.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ACME_10K.md").write_text("# Acme Corp annual report\n\nAcme net sales were $120 million in fiscal 2023.\n")
    (docs / "GLOBEX_10Q.md").write_text("# Globex quarterly report\n\nGlobex net sales were $45 million in the quarter.\n")
    wd = str(tmp_path / "w")
    assert main(["ingest", str(docs), "--workdir", wd]) == 0
    capsys.readouterr()
    assert main(["search", "Acme net sales", "--source", "*globex*", "--workdir", wd]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [") and "Globex quarterly report — " in out and "ACME" not in out
    assert main(["search", "net sales", "--source", "*ACME*", "--json", "--workdir", wd]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [h["title"] for h in hits] == ["Acme Corp annual report"]
    assert main(["search", "net sales", "--source", "*hooli*", "--workdir", wd]) == 1
    none = capsys.readouterr()
    assert none.out == ""
    assert none.err == "ragtune: error: --source '*hooli*' matches no indexed document; indexed: ACME_10K.md, GLOBEX_10Q.md\n"
    assert "--source GLOB" in run("ask", "--help").stdout and "--source GLOB" in run("eval", "--help").stdout


def test_exit_status_nothing_ingested_and_strict(tmp_path, sample_docs, capsys):
    from ragtune.cli import main

    (tmp_path / "bad.json").write_text("{")
    wd = str(tmp_path / "w")
    assert main(["ingest", str(tmp_path / "bad.json"), "--workdir", wd]) == 1
    assert f"{tmp_path / 'bad.json'}: malformed JSON" in capsys.readouterr().err
    mixed = [str(tmp_path / "bad.json"), str(sample_docs / "01-overview.md")]
    assert main(["ingest", *mixed, "--workdir", wd]) == 0
    assert main(["ingest", *mixed, "--workdir", wd, "--strict"]) == 1


def test_usage_errors_are_one_line(tmp_path):
    bad_flag = run("ingest", "x", "--chunk-sise", "3")
    assert bad_flag.returncode == 2 and "unrecognized arguments: --chunk-sise" in bad_flag.stderr
    bad_value = run("ingest", str(tmp_path), "--chunk-size", "8", "--workdir", str(tmp_path / "w"))
    assert bad_value.returncode == 2 and "--chunk-size must be at least 16" in bad_value.stderr
    (tmp_path / "empty").mkdir()
    empty = run("search", "anything", "--workdir", str(tmp_path / "empty"))
    assert empty.returncode == 1 and "is empty: run `ragtune ingest PATH` first" in empty.stderr
    unknown = run("frobnicate")
    assert unknown.returncode == 2 and "invalid choice: 'frobnicate'" in unknown.stderr
    no_server = run("search", "x", "--chroma", "http", "--chroma-port", str(free_port()), "--workdir", str(tmp_path / "empty"))
    assert no_server.returncode == 1 and "cannot reach a Chroma server" in no_server.stderr
    (tmp_path / "a-file").write_text("x")
    workdir_is_file = run("search", "x", "--workdir", str(tmp_path / "a-file"))
    assert workdir_is_file.returncode == 2 and "exists and is not a directory" in workdir_is_file.stderr
    outputs = bad_flag.stderr + bad_value.stderr + empty.stderr + unknown.stderr + no_server.stderr + workdir_is_file.stderr
    assert "Traceback" not in outputs


def test_read_only_commands_refuse_a_missing_work_dir_and_create_nothing(tmp_path, capsys):
    from ragtune.cli import main

    missing = tmp_path / "typo" / "wrok"
    says = f"ragtune: error: work dir {missing} does not exist (ingest into it first: ragtune ingest DOCS --workdir {missing})\n"
    for command in (["search", "x"], ["ask", "x"], ["chat"], ["eval"], ["serve"], ["app"]):
        assert main([*command, "--workdir", str(missing)]) == 1, command
        assert capsys.readouterr().err == says, command
    assert not (tmp_path / "typo").exists()
