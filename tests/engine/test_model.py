"""Model resolution: the packaged GGUF converts once and answers; bad --model values fail in one line."""

import time

import pytest

from ragtune.core.config import load_config
from ragtune.engine.config import ModelConfig


def test_packaged_model_converts_once_loads_and_answers(model_cache):
    from ragtune.engine.config import DecodingConfig
    from ragtune.engine.generate import Engine
    from ragtune.engine.model import packaged_folder

    cfg = load_config(ModelConfig, {"cache_dir": str(model_cache)})
    engine = Engine(cfg)  # first use: GGUF -> HF folder (~18 s)
    folder = packaged_folder(cfg)
    assert folder.parent.parent == model_cache and (folder / "model.safetensors").exists()
    assert 130e6 < engine.n_params < 140e6
    stamp = (folder / "model.safetensors").stat().st_mtime
    t0 = time.perf_counter()
    again = Engine(cfg)
    assert time.perf_counter() - t0 < 10 and (folder / "model.safetensors").stat().st_mtime == stamp  # no second conversion
    prompt = again.render([{"role": "user", "content": "What is the capital of France?"}])
    answer = again.generate([prompt], load_config(DecodingConfig, {"max_new_tokens": 16}))[0]
    assert "Paris" in answer.text


def test_bad_model_values_fail_with_one_line(tmp_path):
    from ragtune.engine.model import load

    (tmp_path / "not-a-model").mkdir()
    cases = {
        str(tmp_path / "nowhere"): "no such folder",
        str(tmp_path / "not-a-model"): "folder has no config.json",
        "some-org/model-not-in-the-cache": "cannot load it offline",
    }
    for model, message in cases.items():
        with pytest.raises(RuntimeError, match=message) as e:
            load(load_config(ModelConfig, {"model": model}))
        assert "\n" not in str(e.value) and model in str(e.value)


def test_remote_code_stays_off_unless_asked(tiny_model, monkeypatch):
    import transformers

    from ragtune.engine.model import load

    seen = []
    real = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **kw: seen.append(kw.get("trust_remote_code")) or real(*a, **kw)
    )
    load(load_config(ModelConfig, {"model": str(tiny_model)}))
    load(load_config(ModelConfig, {"model": str(tiny_model), "trust_remote_code": True}))
    assert seen == [False, True]
