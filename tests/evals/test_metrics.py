import pytest

from evals.metrics import rouge_l, score


def test_squad_scores_and_contains():
    s = score("The Normans", ["Normans", "the Norman people"])
    assert s.exact == 100 and s.f1 == 100 and s.contains
    verbose = score("They were led by Rollo in 911", ["Rollo"])
    assert verbose.exact == 0 and 0 < verbose.f1 < 50 and verbose.contains


def test_rouge_l_takes_the_best_gold_answer():
    assert rouge_l("the cat sat", ["a dog", "the cat sat down"]) == pytest.approx(85.71, abs=0.01)
    assert rouge_l("", ["x"]) == 0 and rouge_l("x", []) == 0 and rouge_l("Rollo", ["Rollo"]) == 100
