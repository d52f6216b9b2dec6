"""The reader head: its input and targets on the packaged tokenizer, and a real training run that
trains it beside LoRA, saves it with the adapter and resumes it from a checkpoint."""

import json
from pathlib import Path

import pytest
from test_train import cfg_for, rows, write_dataset

from ragtune.engine import head as H
from ragtune.train import head as head_lib

CHUNK = (
    "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was designed by the company of Gustave Eiffel. "
    "It was completed in 1889 for the World's Fair."
)
DISTRACTOR = "The Louvre is the world's most-visited museum. It holds the Mona Lisa."


def raft_rows(n: int) -> list[dict]:
    """RAFT-like rows carrying their chunks, as synth writes them."""
    facts = [
        ("When was the tower completed?", "1889", "It was completed in 1889 for the World's Fair."),
        ("Whose company designed the tower?", "Gustave Eiffel", "It was designed by the company of Gustave Eiffel."),
    ]
    out = []
    for i in range(n):
        q, a, ev = facts[i % 2]
        messages = [{"role": "user", "content": f"{CHUNK}\n\nQuestion: {q}"}, {"role": "assistant", "content": a}]
        out.append(
            {
                "messages": messages,
                "kind": "raft",
                "question": q,
                "answer": a,
                "reader": {"context": CHUNK, "evidence": ev, "distractor": DISTRACTOR},
            }
        )
    return out


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_the_answer_maps_to_its_tokens_and_sentence(tokenizer):
    ex = head_lib.Example("When was it completed?", CHUNK, "1889", "It was completed in 1889 for the World's Fair.")
    inp = H.reader_input(tokenizer, ex.question, ex.context)
    t = head_lib.target(inp, ex)
    assert tokenizer.decode(inp.ids[t.start : t.end + 1]).strip() == "1889"
    assert tokenizer.decode(inp.ids[t.sentence[0] : t.sentence[1] + 1]).strip() == ex.evidence
    assert inp.first > inp.null and tokenizer.decode(inp.ids[: inp.first]).startswith("Question: When was it completed?")


def test_a_chunk_without_the_answer_targets_the_null_token_and_a_cut_answer_is_skipped(tokenizer):
    inp = H.reader_input(tokenizer, "Who?", DISTRACTOR)
    assert head_lib.target(inp, head_lib.Example("Who?", DISTRACTOR, "")) == head_lib.Target(inp.null, inp.null, None)
    cut = H.reader_input(tokenizer, "When?", CHUNK, max_tokens=8)
    assert head_lib.target(cut, head_lib.Example("When?", CHUNK, "1889")) is None


def test_examples_come_from_rows_that_carry_chunks(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(2) + raft_rows(2)) + "not json\n")
    examples = head_lib.read_examples(path)
    assert [(e.context, e.answer) for e in examples] == [(CHUNK, "1889"), (DISTRACTOR, ""), (CHUNK, "Gustave Eiffel"), (DISTRACTOR, "")]


def test_a_reading_scores_spans_by_where_they_are(tokenizer):
    import torch

    inp = H.reader_input(tokenizer, "When?", CHUNK)
    start, end = torch.full((len(inp.ids),), -10.0), torch.full((len(inp.ids),), -10.0)
    t = head_lib.target(inp, head_lib.Example("When?", CHUNK, "1889"))
    start[t.start] = end[t.end] = 10.0
    reading = H.Reading(inp, start, end, torch.zeros(len(inp.ids)))
    assert reading.span("1889") > -0.01 > reading.span("Paris") > -float("inf") == reading.span("not in the chunk")
    assert reading.no_answer < -20


def test_the_heads_loss_trains_the_head_alone_never_the_adapter(tiny_model, tokenizer):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.train()
    head = H.ReaderHead(model.config.hidden_size)
    ex = head_lib.Example("When was the tower completed?", CHUNK, "1889", "It was completed in 1889 for the World's Fair.")
    value, _ = head_lib.loss(model, head, tokenizer, ex)
    value.backward()
    lora = [p for name, p in model.named_parameters() if "lora_" in name]
    assert lora and all(p.grad is None for p in lora), "the head's loss reached LoRA"
    assert head.span.weight.grad is not None and head.span.weight.grad.abs().sum() > 0


def test_training_moves_the_head_and_saves_it_and_without_it_there_is_none(tmp_path, tiny_model):
    import torch

    from ragtune.train.run import train

    data = write_dataset(tmp_path / "data", rows(8) + raft_rows(8), raft_rows(4))
    report = train(cfg_for(tmp_path, tiny_model, data, max_steps=4, save_steps=2, reader_head=True))
    out = Path(report.out)
    head = H.load(out)
    fresh = (torch.manual_seed(0), H.ReaderHead(head.hidden))[1]
    assert not torch.equal(head.span.weight, fresh.span.weight), "the head never moved"
    assert report.reader_head["examples"] == 16 and report.reader_head["eval_examples"] == 8
    assert report.reader_head["eval_spans"] == 4, "the held-out oracle examples; the other 4 are distractors"
    assert report.reader_head["read"] == 4, "one example an optimizer step (head_examples 1)"
    assert json.loads((out / "metrics.json").read_text())["reader_head"]["examples"] == 16
    assert json.loads((out / H.CONFIG).read_text())["format"] == H.FORMAT

    off = train(cfg_for(tmp_path, tiny_model, data, max_steps=1, reader_head=False, out=str(tmp_path / "plain")))
    assert H.load(Path(off.out)) is None and off.reader_head == {}

    further = train(
        cfg_for(tmp_path, tiny_model, data, max_steps=1, lr=1e-9, reader_head=True, init_adapter=str(out), out=str(tmp_path / "more"))
    )
    assert torch.allclose(H.load(Path(further.out)).span.weight, head.span.weight, atol=1e-6), "--init-adapter's head goes on training"


def test_a_step_carries_head_examples_examples_over_its_micro_batches(tmp_path, tiny_model):
    from ragtune.train.run import train

    assert [head_lib._share(3, 2, i) for i in range(2)] == [2, 1] and [head_lib._share(1, 8, i) for i in range(8)] == [1] + [0] * 7
    data = write_dataset(tmp_path / "data", rows(8) + raft_rows(8), raft_rows(4))
    report = train(cfg_for(tmp_path, tiny_model, data, max_steps=2, batch_size=2, grad_accum=2, reader_head=True, head_examples=3))
    assert report.reader_head["read"] == 6


def test_a_cut_or_foreign_head_file_is_one_line_naming_the_adapter(tmp_path):
    H.save(H.ReaderHead(8), tmp_path, {})
    (tmp_path / H.WEIGHTS).write_bytes((tmp_path / H.WEIGHTS).read_bytes()[:40])
    with pytest.raises(RuntimeError, match=r"^--adapter .*: its reader head .* is unreadable: [^\n]*$"):
        H.load(tmp_path)
    H.save(H.ReaderHead(8), tmp_path, {})
    (tmp_path / H.CONFIG).write_text('{"hidden": 16, "format": 1}')  # another model's width
    with pytest.raises(RuntimeError, match="unreadable"):
        H.load(tmp_path)
