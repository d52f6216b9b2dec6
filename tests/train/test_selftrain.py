"""`ragtune train --self-train N`: real rounds on the tiny model, and the re-labeling they rest on."""

import json
from pathlib import Path

import torch
from test_head import CHUNK, raft_rows
from test_train import cfg_for, rows, write_dataset

from ragtune.engine import head as H
from ragtune.train import selftrain


def test_the_best_span_is_the_heads_likeliest_and_no_answer_is_empty(tiny_model):
    from transformers import AutoTokenizer

    inp = H.reader_input(AutoTokenizer.from_pretrained(tiny_model), "When?", CHUNK)
    start, end = torch.full((len(inp.ids),), -20.0), torch.full((len(inp.ids),), -20.0)
    ((a, b),) = H.occurrences(inp.text, "1889")
    first, last = inp.token_span(a, b)
    start[first], end[last] = 20.0, 20.0
    answer, p = selftrain.best_span(H.Reading(inp, start, end, torch.zeros(len(inp.ids))))
    assert answer == "1889" and p > 0.99
    start[inp.null], end[inp.null] = 40.0, 40.0
    assert selftrain.best_span(H.Reading(inp, start, end, torch.zeros(len(inp.ids))))[0] == ""


def test_rounds_relabel_confident_answers_and_train_further(tmp_path, tiny_model):
    data = write_dataset(tmp_path / "data", rows(4) + raft_rows(8), raft_rows(2))
    for row in (lines := [json.loads(x) for x in (data / "train.jsonl").read_text().splitlines()]):
        row.setdefault("pair_id", f"p{len(row['messages'])}-{row.get('question', '')}")
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))

    cfg = cfg_for(tmp_path, tiny_model, data, max_steps=2, reader_head=True, self_train=2, self_train_threshold=0.0)
    said = []
    report, rounds = selftrain.self_train(cfg, on_status=said.append)
    assert [r.round for r in rounds] == [0, 1, 2] and rounds[1].threshold == 0.0
    assert [line for line in said if line.endswith(" read")][:8] == [f"  {n} of 8 read" for n in range(1, 9)]  # each tenth
    assert rounds[1].rows == 8 and rounds[1].changed > 0  # a random head disagrees with most labels, and p >= 0 always holds
    relabeled = [json.loads(x) for x in Path(rounds[1].data, "train.jsonl").read_text().splitlines()]
    changed = [r for r in relabeled if "relabeled_from" in r]
    assert changed and all(r["messages"][-1]["content"] == r["answer"] != r["relabeled_from"] for r in changed)
    assert Path(report.out) == Path(rounds[2].adapter) and H.load(Path(report.out)) is not None
    saved = json.loads((Path(report.out) / "self_train.json").read_text())
    assert [r["changed"] for r in saved] == [r.changed for r in rounds]
