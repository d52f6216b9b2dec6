"""The records' JSON: each reads back what it writes, and names what is missing or unknown."""

import json

import pytest

from ragtune.core.records import Chunk, DatasetCard, EvalReport, Hit, Pair, Source

PAIR = Pair(
    "p1",
    "Which command indexes documents?",
    "ragtune ingest",
    "c1",
    "/docs/guide.md",
    None,
    "Guide > Install",
    "extractive",
    {"pairs_per_chunk": 4},
    "c1:0",
    "original",
    "train",
    "Run ragtune ingest PATH.",
    ("c2", "c3"),
)


def test_a_pair_reads_back_its_pairs_jsonl_line():
    line = json.dumps(PAIR.to_json(), ensure_ascii=False)
    assert json.loads(line)["distractors"] == ["c2", "c3"]
    assert Pair.from_json(json.loads(line)) == PAIR
    row = PAIR.to_json()
    del row["evidence"], row["distractors"]  # the fields with defaults may be left out
    assert Pair.from_json(row).distractors == ()


def test_a_missing_or_unknown_field_is_named():
    row = PAIR.to_json()
    with pytest.raises(ValueError, match="not a pair: no chunk_id, split"):
        Pair.from_json({k: v for k, v in row.items() if k not in ("chunk_id", "split")})
    with pytest.raises(ValueError, match="not a pair: unknown score"):
        Pair.from_json({**row, "score": 1})


def _card(pairs: dict) -> DatasetCard:
    return DatasetCard(
        {"name": "extractive", "settings": {}},
        {},
        {"total": 2, "with_pairs": 2, "coverage": 1.0, "eval": 1},
        4,
        1.0,
        1.0,
        {"removed": 0},
        pairs,
        {},
        {"question": 5.0, "answer": 2.0},
        {},
        {},
    )


def test_the_card_keeps_its_split_counts_in_the_order_first_met():
    pairs = {"total": 3, "eval": 1, "train": 2, "by_kind": {"original": 3}, "groups": 3}  # the first pair was an eval one
    data = json.loads(json.dumps(_card(pairs).to_json()))
    assert list(data["pairs"]) == ["total", "eval", "train", "by_kind", "groups"]
    assert list(data)[-6:] == ["name", "path", "index_version", "collection", "elapsed_s", "pairs_per_s"]
    assert DatasetCard.from_json(data) == _card(pairs)
    with pytest.raises(ValueError, match="not a dataset card: no leakage"):
        DatasetCard.from_json({k: v for k, v in data.items() if k != "leakage"})


def test_a_report_written_before_question_types_reads_with_no_by_type():
    report = EvalReport({"asked": 1}, ["base"], {}, {}, {}, {"base": {}}, {}, None, [], {}, 0, [], "V.", 1.0)
    old = {k: v for k, v in report.to_json().items() if k != "by_type"}
    assert EvalReport.from_json(old) == report and list(report.to_json())[-2:] == ["verdict", "elapsed_s"]


def test_a_chunk_keeps_its_title_and_mark_in_chroma_and_an_older_index_reads_without_them():
    chunk = Chunk("c1", "Net sales rose.", "/d/a.pdf", "h", "Item 7", 3, 4, page=2, title="Acme Form 10-K", boilerplate=True)
    meta = chunk.metadata()
    assert meta["title"] == "Acme Form 10-K" and meta["boilerplate"] is True and "page_end" not in meta
    assert Chunk.from_store("c1", "Net sales rose.", meta) == chunk
    old = {k: v for k, v in meta.items() if k not in ("title", "boilerplate")}  # as ingest wrote it before titles
    assert Chunk.from_store("c1", "Net sales rose.", old) == Chunk("c1", "Net sales rose.", "/d/a.pdf", "h", "Item 7", 3, 4, page=2)
    hit = Hit(chunk, 0.5, 1)
    assert Source.from_hit(hit).title == "Acme Form 10-K" and hit.to_json()["title"] == "Acme Form 10-K"
