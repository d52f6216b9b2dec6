"""The bundled corpus is what its build script makes from the Markdown sources."""

import hashlib
import subprocess
import sys

from helpers import ROOT


def test_sample_docs_rebuild_byte_identical_from_sources(tmp_path, sample_docs):
    out = subprocess.run([sys.executable, str(ROOT / "sample" / "build.py"), str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    built = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    shipped = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sample_docs.iterdir()}
    assert len(shipped) == 7 and built == shipped, "sample/docs is stale: run python sample/build.py"
    suffixes = sorted(p.suffix for p in sample_docs.iterdir())
    assert suffixes == [".docx", ".html", ".json", ".jsonl", ".md", ".pdf", ".txt"]
