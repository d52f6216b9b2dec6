"""`ragtune train` and `ragtune export` on a 2-layer random model and a hand-written dataset.

Real SFTTrainer runs of a few steps; the resume test kills a real `cli.py train` process.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT
from ragtune.core.config import ConfigError, load_config
from ragtune.train.config import TrainConfig

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer the question with a short phrase."}
FACTS = [
    ("What colour is the sky?", "blue"),
    ("Which river flows through Paris?", "the Seine"),
    ("How many legs has a spider?", "eight"),
    ("Who wrote Hamlet?", "William Shakespeare"),
    ("What is frozen water called?", "ice"),
    ("Which planet is red?", "Mars"),
]


def rows(n: int, few_shot: bool = True) -> list[dict]:
    out = []
    for i in range(n):
        q, a = FACTS[i % len(FACTS)]
        shots = (
            [{"role": "user", "content": "Question: What is 2 + 2?"}, {"role": "assistant", "content": "four"}]
            if few_shot and i % 2
            else []
        )
        out.append(
            {
                "messages": [SYSTEM, *shots, {"role": "user", "content": f"Question: {q}"}, {"role": "assistant", "content": a}],
                "kind": "closed_book",
                "split": "train",
            }
        )
    return out


def write_dataset(folder: Path, train: list, eval_: list | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" if isinstance(r, dict) else r + "\n" for r in train))
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (eval_ if eval_ is not None else rows(4))))
    (folder / "dataset.json").write_text("{}")
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "extractive-test", rows(16))


def cfg_for(tmp_path: Path, model, data, **overrides) -> TrainConfig:
    base = {
        "workdir": str(tmp_path / "work"),
        "data": str(data),
        "model.model": str(model),
        "batch_size": 4,
        "grad_accum": 1,
        "max_steps": 3,
        "lr": 1e-2,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "max_length": 128,
        "eval_steps": 0,
        "save_steps": 100,
    }
    return load_config(TrainConfig, {**base, **overrides})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model, dataset):
    """One real run: the trainer (to inspect its model), the report and the adapter folder."""
    import trl

    tmp = tmp_path_factory.mktemp("trained")
    caught = {}
    original = trl.SFTTrainer.train

    def spy(self, *a, **kw):
        caught["trainer"] = self
        return original(self, *a, **kw)

    trl.SFTTrainer.train = spy
    try:
        from ragtune.train.run import train

        report = train(cfg_for(tmp, tiny_model, dataset, eval_steps=2))
    finally:
        trl.SFTTrainer.train = original
    return caught["trainer"], report, Path(report.out), tmp


# Training ---------------------------------------------------------------------------------------


def test_a_few_steps_move_the_lora_weights_only(trained, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    trainer, report, out, _ = trained
    assert report.steps == 3 and not report.interrupted
    fresh = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).state_dict()
    lora_b, base_seen = [], 0
    for name, p in trainer.model.named_parameters():
        if "lora_B" in name:
            lora_b.append(p.detach().abs().max().item())  # PEFT starts B at zero
        elif "lora_" not in name:
            key = name.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(p.detach(), fresh[key].to(p.dtype)), f"base weight {key} changed"  # bf16 by default
            assert not p.requires_grad
            base_seen += 1
    assert lora_b and min(lora_b) > 0, "a LoRA B matrix never moved"
    assert base_seen > 10


def test_the_adapter_folder_holds_everything(trained, tiny_model):
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, report, out, tmp = trained
    assert out.parent == tmp / "work" / "adapters"  # where the `ft` modes look for the newest
    for name in ("adapter_config.json", "adapter_model.safetensors", "train_config.json", "metrics.json", "loss.csv", "loss.png"):
        assert (out / name).exists(), name
    assert not list(out.glob("checkpoint-*"))
    with safe_open(out / "adapter_model.safetensors", "pt") as f:
        assert all("lora_" in k for k in f.keys())
    assert AutoTokenizer.from_pretrained(out).chat_template
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), str(out))  # plain PEFT loads it
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("train_loss", "eval_loss", "tokens_per_s", "wall_s", "peak_rss_mb"):
        assert metrics[key] and metrics[key] > 0, key
    csv = (out / "loss.csv").read_text().splitlines()
    assert csv[0] == "step,tokens,train_loss,eval_loss,rss_mb" and len(csv) == 4  # 3 steps; eval at step 2 shares its row
    assert any(line.split(",")[3] for line in csv[1:])
    rss = [float(line.split(",")[4]) for line in csv[1:]]
    assert all(100 < r <= metrics["peak_rss_mb"] + 1 for r in rss)  # each step's resident memory, in MiB, under the peak
    assert json.loads((out / "train_config.json").read_text())["lora_r"] == 4


def test_newest_adapter_is_what_the_engine_picks(trained):
    from ragtune.core.workdir import newest_adapter

    _, _, out, tmp = trained
    assert newest_adapter(tmp / "work") == out


def test_a_finished_run_is_found_only_for_the_same_settings_data_and_model(trained, tiny_model, dataset, tmp_path):
    from ragtune.train.run import finished_run

    _, _, out, tmp = trained
    assert finished_run(cfg_for(tmp, tiny_model, dataset, eval_steps=2)) == out
    assert finished_run(cfg_for(tmp, tiny_model, dataset, eval_steps=2, lr=2e-2)) is None  # another run setting
    other = write_dataset(tmp_path / "other", rows(16))
    assert finished_run(cfg_for(tmp, tiny_model, other, eval_steps=2)) is None  # another dataset


def test_init_adapter_trains_an_adapter_further_from_its_own_weights(trained, tiny_model, dataset, tmp_path):
    import threading

    import torch
    from safetensors.torch import load_file

    from ragtune.train.run import train

    _, _, first, _ = trained
    start = load_file(first / "adapter_model.safetensors")
    # Another rank and lr: the adapter's own LoRA shape wins; a tiny lr keeps the weights near where they began.
    report = train(cfg_for(tmp_path, tiny_model, dataset, init_adapter=str(first), lora_r=8, lr=1e-6, max_steps=1))
    out = Path(report.out)
    further = load_file(out / "adapter_model.safetensors")
    assert further.keys() == start.keys() and all(further[k].shape == start[k].shape for k in start)  # r 4, not 8
    b = [k for k in start if "lora_B" in k]
    assert all(start[k].abs().max() > 0 for k in b)  # the first run's B matrices are not PEFT's zeros ...
    assert all(torch.allclose(further[k], start[k], atol=1e-4) for k in b)  # ... and training went on from them
    assert any(not torch.equal(further[k], start[k]) for k in start)  # while still training
    record = json.loads((out / "train_config.json").read_text())
    assert record["init_adapter"] == str(first) and record["lora_r"] == 4  # what was trained, not the flag
    with pytest.raises(ConfigError, match="--init-adapter .*no adapter_config.json"):
        train(cfg_for(tmp_path, tiny_model, dataset, init_adapter=str(tmp_path)))
    for name, text, why in (
        ("broken", "{oops", "adapter_config.json is not a JSON object"),
        ("ia3", json.dumps({"peft_type": "IA3", "target_modules": ["k_proj"]}), "peft_type IA3, not a LoRA adapter"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(text)
        with pytest.raises(ConfigError, match=f"--init-adapter .*{name}.*{why}"):  # one line naming the file, no traceback
            train(cfg_for(tmp_path, tiny_model, dataset, init_adapter=str(tmp_path / name)))

    # Stopped early, such a run resumes from its checkpoint, still from the same adapter.
    stop, again = threading.Event(), tmp_path / "again"
    stopped = train(
        cfg_for(tmp_path, tiny_model, dataset, init_adapter=str(first), out=str(again)),
        progress=lambda step, total, logs: stop.set(),
        stop=stop,
    )
    assert stopped.interrupted and stopped.steps < 3
    resumed = train(cfg_for(tmp_path, tiny_model, dataset, out=str(again), resume=True))
    assert resumed.steps == 3 and not resumed.interrupted
    assert load_file(again / "adapter_model.safetensors").keys() == start.keys()
    assert json.loads((again / "train_config.json").read_text())["init_adapter"] == str(first)


# Data -------------------------------------------------------------------------------------------


def test_labels_cover_the_final_answer_only(tiny_model):
    from transformers import AutoTokenizer

    from ragtune.train.data import IGNORE, encode

    tok = AutoTokenizer.from_pretrained(tiny_model)
    messages = rows(2)[1]["messages"]  # with a few-shot turn answering "four"
    ids, labels, cut = encode(messages, tok, 512)
    assert not cut and len(ids) == len(labels)
    answer = [t for t, lab in zip(ids, labels) if lab != IGNORE]
    assert tok.decode(answer) == "the Seine<|im_end|>\n"
    first = labels.index(next(lab for lab in labels if lab != IGNORE))
    assert all(lab == IGNORE for lab in labels[:first]) and all(lab != IGNORE for lab in labels[first:])
    assert "four" in tok.decode(ids[:first])  # the few-shot answer is context, not a target
    # Too long: the start goes, the answer stays.
    short_ids, short_labels, cut = encode(messages, tok, 20)
    assert cut and short_ids == ids[-20:] and short_labels == labels[-20:]


def test_bad_rows_are_counted_and_skipped(tmp_path, tiny_model):
    from transformers import AutoTokenizer

    from ragtune.train.data import read_split

    no_answer = {"messages": [SYSTEM, {"role": "user", "content": "Question: hi?"}]}
    long = {"messages": [SYSTEM, {"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "yes"}]}
    path = write_dataset(tmp_path / "d", [*rows(3), no_answer, long, "not json", '{"text": "no messages"}']) / "train.jsonl"
    got = read_split(path, AutoTokenizer.from_pretrained(tiny_model), 100)
    assert got.summary() | {"tokens": 0} == {
        "rows": 4,
        "read": 7,
        "no_assistant_skipped": 1,
        "truncated": 1,
        "bad_json_skipped": 2,
        "tokens": 0,
    }
    assert max(len(x) for x in got.input_ids) == 100


# Bad input --------------------------------------------------------------------------------------


def test_an_empty_dataset_is_a_one_line_error(tmp_path, tiny_model, capsys):
    from ragtune import cli

    data = write_dataset(tmp_path / "empty", [])
    code = cli.main(["train", "--workdir", str(tmp_path), "--data", str(data), "--model", str(tiny_model)])
    said = capsys.readouterr().err.strip().splitlines()
    err = [line for line in said if not line.startswith("ragtune train: ")]  # the status lines of the phases before it
    assert code == 1 and len(err) == 1 and "no training rows" in err[0]
    assert said[:3] == [
        "ragtune train: starting (importing torch and transformers) ...",
        f"ragtune train: loading model {tiny_model} ...",
        f"ragtune train: tokenizing {data} ...",
    ]
    no_answers = write_dataset(tmp_path / "no-answers", [{"messages": [SYSTEM, {"role": "user", "content": "hi"}]}])
    from ragtune.train.run import train

    with pytest.raises(ValueError, match="1 without an assistant turn"):
        train(cfg_for(tmp_path, tiny_model, no_answers))


def test_an_unknown_target_module_lists_the_valid_ones(tmp_path, tiny_model, dataset):
    from ragtune.train.run import train

    with pytest.raises(
        ConfigError, match=r"--target-modules: qkv not in this model; valid: down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj"
    ):
        train(cfg_for(tmp_path, tiny_model, dataset, target_modules="q_proj,qkv"))


def test_an_existing_out_needs_overwrite(tmp_path, tiny_model, dataset):
    from ragtune.train.run import train

    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--overwrite"):
        train(cfg_for(tmp_path, tiny_model, dataset, out=str(out)))
    assert (out / "keep.txt").exists()
    with pytest.raises(ConfigError, match="contradict"):
        cfg_for(tmp_path, tiny_model, dataset, resume=True, overwrite=True)


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"lora_r": 0}, "--lora-r"),
        ({"lr": 0}, "--lr"),
        ({"max_steps": 0}, "--max-steps"),
        ({"lora_dropout": 1.0}, "--lora-dropout"),
        ({"max_length": 4}, "--max-length"),
        ({"batch_size": 0}, "--batch-size"),
        ({"epochs": 0}, "--epochs"),
        ({"eval_rows": -1}, "--eval-rows"),
        ({"max_minutes": -1}, "--max-minutes"),
    ],
)
def test_out_of_range_settings_name_their_flag(tmp_path, overrides, flag):
    with pytest.raises(ConfigError, match=flag):
        load_config(TrainConfig, overrides)


@pytest.mark.parametrize("has_bf16", [True, False])
def test_bf16_follows_the_cpu_unless_set(monkeypatch, has_bf16):
    from ragtune.train import config

    monkeypatch.setattr(config, "cpu_has_bf16", lambda: has_bf16)
    assert load_config(TrainConfig).bf16 is has_bf16  # configs/train.yaml leaves it unset
    assert load_config(TrainConfig, {"bf16": not has_bf16}).bf16 is (not has_bf16)  # --bf16 / --no-bf16 win


def test_a_time_budget_ends_training_early_and_still_writes_the_adapter(tmp_path, tiny_model, dataset):
    from ragtune.train.run import train

    # A budget of ~0 s: the first step passes it, so the run stops there, finished rather than interrupted
    report = train(cfg_for(tmp_path, tiny_model, dataset, max_steps=5, max_minutes=1e-9))
    assert (report.steps, report.max_steps, report.out_of_time, report.interrupted) == (1, 5, True, False)
    out = Path(report.out)
    assert (out / "adapter_model.safetensors").exists() and (out / "metrics.json").exists()
    assert not list(out.glob("checkpoint-*"))
    unbounded = train(cfg_for(tmp_path, tiny_model, dataset, max_steps=2, max_minutes=0))
    assert (unbounded.steps, unbounded.out_of_time) == (2, False)


def test_resume_refuses_a_checkpoint_of_another_base_model(tmp_path, tiny_model, dataset):
    from ragtune.train.run import train

    out = tmp_path / "run"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (out / "checkpoint-2" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "HuggingFaceTB/SmolLM2-360M"}))
    with pytest.raises(RuntimeError, match="trained on base model 'HuggingFaceTB/SmolLM2-360M'"):
        train(cfg_for(tmp_path, tiny_model, dataset, out=str(out), resume=True))
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(cfg_for(tmp_path, tiny_model, dataset, out=str(tmp_path), resume=True))


def test_non_finite_loss_stops_with_a_clear_message(tmp_path, tiny_model, dataset):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragtune.train.run import train

    broken = tmp_path / "nan-model"
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    model.save_pretrained(broken)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(broken)
    with pytest.raises(RuntimeError, match="training stopped: loss is nan at step 1"):
        train(cfg_for(tmp_path, broken, dataset))
    assert not list((tmp_path / "work" / "adapters").glob("*/adapter_config.json"))


# Ctrl-C, kill -9 and --resume -------------------------------------------------------------------


def _start(tmp_path, tiny_model, dataset, out, *extra):
    cmd = [
        sys.executable,
        "-m",
        "ragtune.cli",
        "train",
        "--workdir",
        str(tmp_path),
        "--data",
        str(dataset),
        "--model",
        str(tiny_model),
        "--out",
        str(out),
        "--max-steps",
        "60",
        "--save-steps",
        "2",
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
        "--max-length",
        "64",
        "--eval-steps",
        "0",
        "--lora-r",
        "4",
        "--threads",
        "1",
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for_checkpoint(out: Path, proc, at_least: int, timeout=90) -> None:
    """Until a checkpoint of step >= at_least is complete (older ones are deleted as newer ones land)."""
    t0 = time.time()
    while True:
        done = [int(p.parent.name.split("-")[1]) for p in out.glob("checkpoint-*/trainer_state.json")]
        if done and max(done) >= at_least:
            return
        assert proc.poll() is None, f"train ended early: {proc.communicate()[1][-2000:]}"
        assert time.time() - t0 < timeout, "no checkpoint appeared"
        time.sleep(0.01)


def test_ctrl_c_checkpoints_and_resume_after_kill_finishes_the_same_steps(tmp_path, tiny_model, dataset):
    from ragtune.train.run import _last_checkpoint, train

    out = tmp_path / "run"
    # Ctrl-C after the first checkpoint: a checkpoint of the step it stopped at, exit 130.
    proc = _start(tmp_path, tiny_model, dataset, out)
    _wait_for_checkpoint(out, proc, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "ragtune train --resume --out" in err
    stopped = int(_last_checkpoint(out).name.split("-")[1])
    assert 2 <= stopped < 60 and not (out / "adapter_config.json").exists()
    # Resume, then kill -9 once it has saved again.
    proc = _start(tmp_path, tiny_model, dataset, out, "--resume")
    _wait_for_checkpoint(out, proc, stopped + 2)
    proc.kill()
    proc.wait()
    assert not (out / "adapter_config.json").exists(), "the run finished before the kill; raise --max-steps"
    # Resume in-process with other settings given: the run continues as it was started, to its 60 steps, rank 4.
    report = train(cfg_for(tmp_path, tiny_model, dataset, out=str(out), resume=True, max_steps=5, lora_r=8, batch_size=4))
    assert report.steps == 60 and report.max_steps == 60 and (out / "adapter_config.json").exists()
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4
    table = [line.split(",") for line in (out / "loss.csv").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in table] == list(range(1, 61)), "the loss curve has a gap or a repeat across the two resumes"
    tokens = [int(r[1]) for r in table if r[1]]
    assert len(tokens) >= 50 and tokens == sorted(tokens) and tokens[-1] > tokens[0], "tokens restart after a resume"


# Export -----------------------------------------------------------------------------------------


def test_export_merged_equals_base_plus_adapter(trained, tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragtune import cli
    from ragtune.engine.config import ModelConfig
    from ragtune.engine.generate import Engine

    _, _, adapter, _ = trained
    merged = tmp_path / "merged"
    assert cli.main(["export", "--adapter", str(adapter), "--out", str(merged), "--merged"]) == 0
    tok = AutoTokenizer.from_pretrained(merged)
    batch = tok(["Question: Which river flows through Paris?"], return_tensors="pt")
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
        base_logits = base(**batch).logits
        with_adapter = PeftModel.from_pretrained(base, str(adapter))(**batch).logits
        plain = AutoModelForCausalLM.from_pretrained(merged)
        merged_logits = plain(**batch).logits
    assert (with_adapter - base_logits).abs().max() > 1e-3  # the adapter does something
    torch.testing.assert_close(merged_logits, with_adapter, atol=1e-4, rtol=1e-4)
    assert plain.generate(**batch, max_new_tokens=3, min_new_tokens=3, do_sample=False).shape[1] == batch["input_ids"].shape[1] + 3
    engine = Engine(ModelConfig(model=str(merged), trust_remote_code=False, dtype="auto", cache_dir=None, threads=0))
    assert engine.render([{"role": "user", "content": "hi"}]).endswith("<|im_start|>assistant\n")


def test_export_refuses_an_existing_out_and_a_missing_adapter(tmp_path, trained):
    from ragtune.train.export import export

    _, _, adapter, _ = trained
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    with pytest.raises(ConfigError, match="--overwrite"):
        export(adapter, tmp_path / "x")
    with pytest.raises(ConfigError, match="no such folder"):
        export(tmp_path / "nope", tmp_path / "y")


# Scale ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, kind", [("ddp.yaml", "MULTI_GPU"), ("fsdp.yaml", "FSDP")])
def test_accelerate_configs_parse(name, kind):
    from accelerate.commands.config.config_args import ClusterConfig

    cfg = ClusterConfig.from_yaml_file(str(ROOT / "configs" / "accelerate" / name))
    assert cfg.distributed_type.value == kind and cfg.num_processes >= 2
    if kind == "FSDP":
        assert cfg.fsdp_config["fsdp_version"] == 2
