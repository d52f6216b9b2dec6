"""Answer scores: SQuAD exact match and F1 (torchmetrics' maintained implementation), and contains;
for long answers, key-fact recall, token F1 and recall, length and citation precision.

SQuAD normalisation lowercases, drops punctuation and the articles a/an/the, and takes the
best score over the gold answers; F1 is token overlap. `contains` asks whether any gold
answer, normalised, appears inside the (normalised) prediction: lenient to verbose answers.
The long-answer scores read an answer without its `[n]` citation markers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ragtune.core.text import normalize
from ragtune.engine.cite import strip


@dataclass(frozen=True)
class Score:
    """One answer's SQuAD scores."""

    exact: float  # 0 or 100
    f1: float  # 0-100
    contains: bool


def score(prediction: str, answers: list[str]) -> Score:
    """SQuAD exact match and F1 (torchmetrics), and contains, of `prediction` against the best of `answers`."""
    from torchmetrics.functional.text import squad

    out = squad(
        preds=[{"prediction_text": prediction, "id": "q"}],
        target=[{"answers": {"answer_start": [0] * len(answers), "text": answers}, "id": "q"}],
    )
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


# Long answers ------------------------------------------------------------------------------------


def key_recall(prediction: str, keys) -> float | None:
    """The share (0-100) of key facts the prediction states: a fact counts when any of its
    phrasings appears in it, normalised and on word boundaries. None when there are no keys.

    Args:
        prediction: the answer; `[n]` markers are ignored.
        keys: key facts, each a sequence of alternative phrasings.
    """
    if not keys:
        return None
    said = normalize(strip(prediction))
    return 100 * sum(any(_holds(said, normalize(alt)) for alt in key) for key in keys) / len(keys)


def token_f1(prediction: str, references: list[str]) -> float | None:
    """SQuAD token F1 (0-100) against the best reference, markers ignored; None without references."""
    return _best(prediction, references, lambda common, pred, ref: 2 * common / (pred + ref))


def token_recall(prediction: str, references: list[str]) -> float | None:
    """The share (0-100) of the best reference's tokens, counted with repeats, that the prediction
    holds (SQuAD-normalised, markers ignored); None without references."""
    return _best(prediction, references, lambda common, pred, ref: common / ref)


def words(prediction: str) -> int:
    """The answer's length in words, citation markers not counted."""
    return len(strip(prediction).split())


def citation_precision(cited: list[str], keys, answers: list[str]) -> float | None:
    """The share (0-100) of cited chunks whose text holds a key fact (any phrasing of any key) or
    a gold answer, normalised and on word boundaries.

    Args:
        cited: the text of each chunk the answer cites.
        keys: key facts, each a sequence of alternative phrasings.
        answers: the gold answers.
    Returns None when nothing is cited, or there is nothing to look for (no keys, no answers).
    """
    golds = [normalize(g) for g in [*(alt for key in keys for alt in key), *answers]]
    golds = [g for g in golds if g]
    if not cited or not golds:
        return None
    return 100 * sum(any(_holds(normalize(text), g) for g in golds) for text in cited) / len(cited)


def _holds(said: str, phrase: str) -> bool:
    # both normalised; on word boundaries, so the key "k" is not in "keys", nor "all" in "generally"
    return bool(phrase) and f" {phrase} " in f" {said} "


def _best(prediction: str, references: list[str], measure) -> float | None:
    """The best score over the references of `measure(common, prediction tokens, reference tokens)`."""
    refs = [normalize(r).split() for r in references]
    refs = [r for r in refs if r]
    if not refs:
        return None
    pred = Counter(normalize(strip(prediction)).split())
    best = 0.0
    for ref in refs:
        common = sum((pred & Counter(ref)).values())
        if common:
            best = max(best, 100 * measure(common, sum(pred.values()), len(ref)))
    return best
