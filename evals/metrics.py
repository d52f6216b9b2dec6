"""Answer scores: SQuAD exact match and F1 (torchmetrics' maintained implementation), and contains.

SQuAD normalisation lowercases, drops punctuation and the articles a/an/the, and takes the
best score over the gold answers; F1 is token overlap. `contains` asks whether any gold
answer, normalised, appears inside the (normalised) prediction: lenient to verbose answers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    exact: float  # 0 or 100
    f1: float  # 0-100
    contains: bool


def normalize(text: str) -> str:
    """SQuAD's normalisation (torchmetrics'): lower case, no punctuation, no articles, single spaces.
    Synthesis uses it too, so "grounded" and "correct" mean the same match."""
    from torchmetrics.functional.text.squad import _normalize_text

    return _normalize_text(text)


def score(prediction: str, answers: list[str]) -> Score:
    from torchmetrics.functional.text import squad

    out = squad(preds=[{"prediction_text": prediction, "id": "q"}],
                target=[{"answers": {"answer_start": [0] * len(answers), "text": answers}, "id": "q"}])
    pred = normalize(prediction)
    contains = any(normalize(a) and normalize(a) in pred for a in answers)
    return Score(float(out["exact_match"]), float(out["f1"]), contains)


def rouge_l(prediction: str, answers: list[str]) -> float:
    """ROUGE-L F-measure (0-100) against the best gold answer (torchmetrics): partial credit for
    answers that share a subsequence of words with the gold but are not a SQuAD token match."""
    from torchmetrics.functional.text.rouge import rouge_score

    golds = [a for a in answers if a.strip()]
    if not prediction.strip() or not golds:
        return 0.0
    return 100 * max(float(rouge_score(prediction, a, rouge_keys="rougeL")["rougeL_fmeasure"]) for a in golds)
