"""kill -9 in the middle of an ingest, then a re-run; and the same code against a `chroma run` server."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from helpers import collection_ids, free_port, ingest_cfg, search_cfg
from ragtune.rag.ingest import ingest
from ragtune.rag.retrieve import Retriever

CLI = [sys.executable, "-m", "ragtune.cli"]


def test_kill_9_mid_ingest_then_rerun_gives_exactly_the_uninterrupted_chunks(tmp_path, sample_docs):
    docs = tmp_path / "docs"
    shutil.copytree(sample_docs, docs)
    for i in range(12):  # more files, so the kill lands between the first and the last
        shutil.copy(sample_docs / "01-overview.md", docs / f"copy-{i}.md")
        with open(docs / f"copy-{i}.md", "a") as f:
            f.write(f"\n\n## Copy {i}\n\nThis copy is number {i}.\n")
    clean = ingest(ingest_cfg(tmp_path / "clean", [docs]))
    expected = collection_ids(tmp_path / "clean")
    assert clean.count("ok") == 19

    wd = tmp_path / "killed"
    manifest = wd / "manifests" / "docs.json"
    proc = subprocess.Popen(CLI + ["ingest", str(docs), "--workdir", str(wd)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            done = len(json.loads(manifest.read_text())["files"])
        except (FileNotFoundError, ValueError):
            done = 0
        if done >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the ingest ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= done < 19
    partial = collection_ids(wd)
    assert 0 < len(partial) < len(expected)

    rerun = subprocess.run(CLI + ["ingest", str(docs), "--workdir", str(wd), "--json"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads(rerun.stdout)
    assert report["counts"]["unchanged"] >= 2 and report["counts"]["failed"] == 0
    assert collection_ids(wd) == expected, "the re-run must end with exactly the chunks of an uninterrupted run"
    assert report["chunks"]["total"] == len(expected)


@pytest.fixture
def chroma_server(tmp_path):
    chroma = shutil.which("chroma", path=os.path.dirname(sys.executable)) or shutil.which("chroma")
    if chroma is None:
        pytest.skip("the chroma CLI is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "server-data")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma run did not start within 60 s")
    yield port
    proc.terminate()
    proc.wait(10)


def test_same_code_talks_to_a_chroma_server(tmp_path, sample_docs, chroma_server):
    server = {"index.chroma": "http", "index.chroma_port": chroma_server}
    first = ingest(ingest_cfg(tmp_path / "w", [sample_docs], **server))
    assert first.count("ok") == 7 and first.total_chunks == first.chunks_added
    again = ingest(ingest_cfg(tmp_path / "w", [sample_docs], **server))
    assert again.count("unchanged") == 7 and again.total_chunks == first.total_chunks
    assert not (tmp_path / "w" / "chroma").exists(), "server mode must not write an embedded store"
    hits = Retriever(search_cfg(tmp_path / "w", **server)).search("reciprocal rank fusion", 3)
    assert hits[0].chunk.source.endswith("03-search.html")
