"""`--model file.gguf`: a tiny GGUF written here converts once, loads and answers; bad files fail in one line."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ragtune.core.config import load_config
from ragtune.engine.config import DecodingConfig, ModelConfig

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_gguf(path: Path, arch: str = "llama", chat_template: str | None = CHAT_TEMPLATE, add_bos: bool = False) -> Path:
    """A 2-layer random-weight llama in f32, with a byte-level BPE vocabulary of ~260 tokens in its metadata."""
    import gguf
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    hidden, inter, heads, kv_heads, layers = 64, 128, 4, 2, 2
    merges = ["Ġ t", "h e", "Ġt he", "i n"]
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *bytes_to_unicode().values(), "Ġt", "he", "Ġthe", "in"]
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_context_length(256)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(inter)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))  # 3 = control: kept whole as special tokens
    writer.add_token_merges(merges)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(add_bos)
    if chat_template:
        writer.add_chat_template(chat_template)
    rng = np.random.default_rng(0)
    weights = lambda *shape: (rng.standard_normal(shape) * 0.2).astype(np.float32)  # noqa: E731
    writer.add_tensor("token_embd.weight", weights(len(tokens), hidden))
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight", weights(hidden, hidden))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weights(kv_heads * hidden // heads, hidden))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weights(kv_heads * hidden // heads, hidden))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weights(hidden, hidden))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weights(inter, hidden))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weights(inter, hidden))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weights(hidden, inter))
    writer.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def model_cfg(model, cache: Path) -> ModelConfig:
    return load_config(ModelConfig, {"model": str(model), "cache_dir": str(cache)})


@pytest.fixture
def conversions(monkeypatch) -> list:
    """Each GGUF conversion, recorded as it happens."""
    import ragtune.engine.model as model_lib

    seen, real = [], model_lib._convert_gguf
    monkeypatch.setattr(model_lib, "_convert_gguf", lambda gguf, folder: seen.append(gguf) or real(gguf, folder))
    return seen


def folders(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "models").glob("*") if p.is_dir()) if (cache / "models").exists() else []


def test_gguf_converts_once_loads_and_generates(tmp_path, conversions):
    from ragtune.engine.generate import Engine

    gguf, cache = write_gguf(tmp_path / "tiny-chat.gguf"), tmp_path / "cache"
    engine = Engine(model_cfg(gguf, cache))
    assert conversions == [gguf] and folders(cache) == [Path(engine.base_path).name]
    assert Path(engine.base_path).parent == cache / "models" and not engine.plain_template
    prompt = engine.render([{"role": "user", "content": "the thin"}])
    assert prompt.endswith("<|im_start|>assistant\n")
    answer = engine.generate([prompt], load_config(DecodingConfig, {"max_new_tokens": 4}))[0]
    assert 1 <= answer.generated_tokens <= 4

    again = Engine(model_cfg(gguf, cache))  # the cached folder: no second conversion
    assert conversions == [gguf] and again.base_path == engine.base_path
    os.utime(gguf, ns=(gguf.stat().st_atime_ns, gguf.stat().st_mtime_ns + 10**9))  # rewritten in place
    assert Engine(model_cfg(gguf, cache)).base_path != engine.base_path and len(conversions) == 2


def test_base_gguf_uses_a_plain_template(tmp_path):
    from ragtune.engine.generate import Engine
    from ragtune.engine.model import load

    gguf, cache = write_gguf(tmp_path / "tiny-base.gguf", chat_template=None, add_bos=True), tmp_path / "cache"
    assert load(model_cfg(gguf, cache)).plain_template
    engine = Engine(model_cfg(gguf, cache))
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Who?"},
        {"role": "assistant", "content": "Ann."},
        {"role": "user", "content": "the thin"},
    ]
    prompt = engine.render(messages)
    # The BOS the tokenizer adds is written out: prompts are tokenized without special tokens.
    assert prompt == "<|endoftext|>Answer briefly.\n\nQuestion: Who?\nAnswer: Ann.\n\nQuestion: the thin\nAnswer:"
    rag = engine.render([{"role": "user", "content": "<document>the</document>\n\nQuestion: the thin"}])
    assert rag.count("Question:") == 1  # the rag prompt labels its own question
    answer = engine.generate([prompt], load_config(DecodingConfig, {"max_new_tokens": 4}))[0]
    assert 1 <= answer.generated_tokens <= 4


def test_bad_gguf_files_fail_in_one_line_and_leave_no_folder(tmp_path, conversions):
    from ragtune.engine.model import load

    good = write_gguf(tmp_path / "good.gguf")
    data = good.read_bytes()
    (tmp_path / "truncated.gguf").write_bytes(data[: len(data) // 2])
    (tmp_path / "short-header.gguf").write_bytes(data[:1000])
    (tmp_path / "notes.gguf").write_text("my notes, renamed by mistake\n")
    write_gguf(tmp_path / "mystery.gguf", arch="mystery")
    cases = {
        "truncated.gguf": "truncated or corrupt GGUF",
        "short-header.gguf": "truncated or corrupt GGUF",
        "notes.gguf": "not a GGUF file",
        "mystery.gguf": "transformers cannot convert this GGUF .*architecture mystery",
        "missing.gguf": "no such file",
    }
    cache = tmp_path / "cache"
    for name, reason in cases.items():
        with pytest.raises(RuntimeError, match=reason) as e:
            load(model_cfg(tmp_path / name, cache))
        assert "\n" not in str(e.value) and str(tmp_path / name) in str(e.value)
        assert folders(cache) == [], f"{name} left {folders(cache)} in the cache"
    assert [p.name for p in conversions] == ["truncated.gguf", "short-header.gguf", "mystery.gguf"]


def test_a_failed_write_leaves_no_partial_folder(tmp_path, monkeypatch):
    from transformers import PreTrainedTokenizerBase

    from ragtune.engine.model import load

    def disk_full(self, folder, **kw):
        (Path(folder) / "tokenizer.json").write_text("{")  # half-written, beside the saved weights
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", disk_full)
    gguf, cache = write_gguf(tmp_path / "tiny.gguf"), tmp_path / "cache"
    with pytest.raises(RuntimeError, match="cannot write its converted folder .*No space left") as e:
        load(model_cfg(gguf, cache))
    assert "\n" not in str(e.value) and str(gguf) in str(e.value) and folders(cache) == []


def test_an_existing_packaged_folder_is_used_as_it_is(tmp_path, monkeypatch):
    import ragtune.engine.model as model_lib

    cache = tmp_path / "cache"
    converted = model_lib.gguf_folder(model_cfg("packaged", cache), write_gguf(tmp_path / "tiny.gguf"))
    packaged = model_lib.packaged_gguf()
    # Where a converted packaged model sat before .gguf files were taken: it must still be found there.
    shutil.copytree(converted, cache / "models" / f"{packaged.stem}-{packaged.stat().st_size}")
    monkeypatch.setattr(model_lib, "_convert_gguf", lambda *a: pytest.fail("converted the packaged model again"))
    loaded = model_lib.load(model_cfg("packaged", cache))
    assert loaded.path == str(cache / "models" / f"{packaged.stem}-{packaged.stat().st_size}")
    assert loaded.n_params < 1e6 and not loaded.plain_template
