"""The hand-written open questions about the sample corpus are well formed and grounded in their chapters."""

import json
import re
from collections import Counter
from difflib import SequenceMatcher

from helpers import ROOT

OPEN = ROOT / "sample" / "open_questions.jsonl"
FACTOIDS = ROOT / "sample" / "questions.jsonl"
CHAPTERS = ROOT / "sample" / "src"
KINDS = {"how", "why", "what-happens", "list", "explain"}
GENERIC = {"a", "an", "the", "data", "model", "text", "file", "ragtune"}  # would match almost any answer


def load(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def norm(text):
    # Punctuation, Markdown marks and underscores become spaces, so "`--max-length`" matches "max-length".
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def found(phrase, text):
    return f" {norm(phrase)} " in f" {norm(text)} "


def sentences(text):
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


QUESTIONS = load(OPEN)
DOCS = {p.stem: p.read_text(encoding="utf-8") for p in CHAPTERS.glob("*.md")}


def test_enough_questions_with_unique_ids():
    ids = [q["id"] for q in QUESTIONS]
    assert len(QUESTIONS) >= 40
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]


def test_rows_have_the_expected_fields():
    for q in QUESTIONS:
        assert set(q) == {"id", "question", "answers", "keys", "doc", "type", "kind"}, q["id"]
        assert q["type"] == "open" and q["kind"] in KINDS and q["doc"] in DOCS, q["id"]


def test_every_chapter_has_at_least_five_questions():
    counts = Counter(q["doc"] for q in QUESTIONS)
    assert len(DOCS) == 7 and all(counts[doc] >= 5 for doc in DOCS), counts


def test_every_kind_has_at_least_seven_questions():
    counts = Counter(q["kind"] for q in QUESTIONS)
    assert all(counts[kind] >= 7 for kind in KINDS), counts


def test_keys_are_one_to_four_short_specific_facts():
    for q in QUESTIONS:
        assert 1 <= len(q["keys"]) <= 4, q["id"]
        for fact in q["keys"]:
            assert fact, q["id"]
            for alt in fact:
                assert 1 <= len(norm(alt).split()) <= 4 and norm(alt) not in GENERIC, (q["id"], alt)


def test_every_key_fact_is_worded_as_in_its_chapter():
    for q in QUESTIONS:
        for fact in q["keys"]:
            assert any(found(alt, DOCS[q["doc"]]) for alt in fact), (q["id"], fact)


def test_reference_answer_contains_its_own_key_facts():
    for q in QUESTIONS:
        for fact in q["keys"]:
            assert any(found(alt, q["answers"][0]) for alt in fact), (q["id"], fact)


def test_reference_answer_is_one_to_three_sentences():
    for q in QUESTIONS:
        assert len(q["answers"]) == 1, q["id"]
        answer = q["answers"][0]
        assert 1 <= len(sentences(answer)) <= 3 and answer.rstrip().endswith((".", "!", "?")), q["id"]
        assert 15 <= len(answer.split()) <= 60, (q["id"], len(answer.split()))


def test_no_question_repeats_a_factoid_question():
    factoids = [norm(f["question"]) for f in load(FACTOIDS)]
    for q in QUESTIONS:
        mine = norm(q["question"])
        for other in factoids:
            overlap = len(set(mine.split()) & set(other.split())) / len(set(mine.split()) | set(other.split()))
            assert SequenceMatcher(None, mine, other).ratio() < 0.8 and overlap < 0.6, (q["id"], other)
