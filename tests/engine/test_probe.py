"""The writing probe's verdict is cached per model and per precision."""

from types import SimpleNamespace

from ragtune.engine import probe
from ragtune.engine import prompts as P


def test_a_verdict_is_cached_per_model_and_precision(tmp_path, monkeypatch):
    runs = []
    monkeypatch.setattr(
        probe, "run", lambda engine, templates: runs.append(engine.model.dtype) or {"bf16": 1 / 3, "fp32": 2 / 3}[engine.model.dtype]
    )
    templates = P.load_templates("prompts.yaml")
    engine = {d: SimpleNamespace(base_path=tmp_path / "model", model=SimpleNamespace(dtype=d)) for d in ("bf16", "fp32")}
    assert not probe.writes(engine["bf16"], templates, tmp_path / "cache")
    assert probe.writes(engine["fp32"], templates, tmp_path / "cache")  # not the bf16 verdict
    assert not probe.writes(engine["bf16"], templates, tmp_path / "cache")  # read back, not run again
    assert runs == ["bf16", "fp32"]
