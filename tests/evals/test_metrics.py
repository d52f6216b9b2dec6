import pytest

from ragtune.evals.metrics import rouge_l, score


def test_squad_scores_and_contains():
    s = score("The Normans", ["Normans", "the Norman people"])
    assert s.exact == 100 and s.f1 == 100 and s.contains
    verbose = score("They were led by Rollo in 911", ["Rollo"])
    assert verbose.exact == 0 and 0 < verbose.f1 < 50 and verbose.contains


def test_rouge_l_takes_the_best_gold_answer():
    assert rouge_l("the cat sat", ["a dog", "the cat sat down"]) == pytest.approx(85.71, abs=0.01)
    assert rouge_l("", ["x"]) == 0 and rouge_l("x", []) == 0 and rouge_l("Rollo", ["Rollo"]) == 100


# Long answers ------------------------------------------------------------------------------------

KEYS = (("content hash", "sha-256"), ("upsert",))


def test_key_recall_counts_facts_any_of_whose_phrasings_is_said():
    from ragtune.evals.metrics import key_recall

    assert key_recall("Chunk ids are SHA-256 digests [1].", KEYS) == 50  # the second phrasing; "-" is dropped on both sides
    assert key_recall("A CONTENT HASH, and re-ingesting does an upsert [1][2].", KEYS) == 100
    assert key_recall("It upserts by content.", KEYS) == 0  # on word boundaries: "upsert" is not "upserts"
    assert key_recall("Chunk 3 [3].", (("3",),)) == 100 and key_recall("See [3].", (("3",),)) == 0  # markers are not words
    assert key_recall("anything", ()) is None


def test_token_f1_and_recall_against_the_best_reference():
    from ragtune.evals.metrics import token_f1, token_recall

    # "the cat sat on the mat" -> cat sat on mat (4 tokens); "a cat sat" -> cat sat (2): 2 shared
    assert token_f1("The cat sat on the mat [1].", ["a cat sat", "dog"]) == pytest.approx(200 / 3)
    assert token_f1("The cat sat on the mat.", ["a cat sat"]) == pytest.approx(score("The cat sat on the mat.", ["a cat sat"]).f1)
    assert token_recall("The cat sat on the mat [1].", ["dog", "a cat sat"]) == 100
    assert token_recall("cat cat", ["cat cat cat"]) == pytest.approx(200 / 3)  # a multiset: two of the three cats
    assert token_f1("cat cat", ["cat cat cat"]) == 80
    assert token_f1("cat [1]", ["cat"]) == 100 and token_recall("", ["cat"]) == 0
    assert token_f1("cat", []) is None and token_recall("cat", ["", "the"]) is None


def test_words_leave_out_citation_markers():
    from ragtune.evals.metrics import words

    assert words("Chunks are hashed [1][2].") == 3 and words("") == 0 and words("Yes [1, 2]") == 1


def test_citation_precision_is_the_share_of_cited_chunks_holding_a_key_or_an_answer():
    from ragtune.evals.metrics import citation_precision

    cited = ["Chunk ids are SHA-256 hashes.", "Unrelated text.", "Re-ingesting upserts them.", "A content hash, always."]
    assert citation_precision(cited, KEYS, []) == 50  # "upserts" is not "upsert"
    assert citation_precision(cited[1:3], KEYS, ["re-ingesting"]) == 50  # a gold answer counts too
    assert citation_precision(cited[1:2], KEYS, ["Rollo"]) == 0
    assert citation_precision([], KEYS, ["x"]) is None  # nothing cited
    assert citation_precision(cited, (), []) is None  # nothing to look for
