"""`--generator extractive`: questions from the chunk's own sentences, with spaCy and no LLM.

Each main clause (and each coordinated clause with its own subject) gives answer spans (an
entity, a date, a number with its noun, the subject or the object), and the clause becomes a
wh-question about each: "In 1889 the tower was completed by ..." -> "When was the tower
completed by ...?" -> "1889". The question keeps the sentence's words, so it is grounded; the
answer is a span, so the span reader can pick it. Paraphrases word the fact as people ask, as
knowledge needs several wordings (Ovadia et al. 2023; docs/ft-rag.md, item 6).

A question about one of several documents names its document when it needs to (synth/subject.py).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from ragtune.core.records import Chunk, Draft
from ragtune.synth.subject import GENERIC_SUBJECT, Subjects, with_subject

RULES = 2  # the version of the questions written: a dataset is found again by its settings, so a change must show in them
# Clauses hanging off the root that are not part of the main statement.
SUBCLAUSES = {"conj", "cc", "advcl", "ccomp", "parataxis", "punct", "mark", "preconj", "csubj", "dep", "intj", "discourse"}
# Prepositions whose object's wh-word replaces the whole phrase: "in 1889" -> "when".
PLACE_PREPS = {"in", "at", "near", "inside", "within", "on"}
# Prepositions whose phrase reads wrongly set first: "By Rollo, who were led?", "To the king, what ...?"
UNFRONTED = {"by", "of", "to", "as", "than", "with", "into", "onto", "like"}
TIME_PREPS = {"in", "on", "at", "during", "by", "since", "until", "before", "after", "from"}
DEICTIC = {"such", "this", "that", "these", "those", "it", "they"}  # "such a division" means nothing out of context
PRONOUNS = {"it", "he", "she", "they", "this", "that", "these", "those", "we", "i", "you", "which", "who", "its", "there"}
# Answers we prefer to ask about first: specific facts before generic noun phrases.
PRIORITY = {
    "DATE": 0,
    "CARDINAL": 0,
    "QUANTITY": 0,
    "MONEY": 0,
    "PERCENT": 0,
    "PERSON": 1,
    "GPE": 1,
    "LOC": 1,
    "ORG": 1,
    "NORP": 1,
    "FAC": 1,
    "EVENT": 1,
    "WORK_OF_ART": 1,
    "PRODUCT": 1,
    "LAW": 1,
    "TIME": 1,
    "subject": 2,
    "object": 3,
}
MIN_SENT_TOKENS, MAX_SENT_TOKENS = 5, 80
# Sentence adverbs that link to the previous sentence and read wrongly inside a question.
LINKERS = {
    "however",
    "nevertheless",
    "nonetheless",
    "thus",
    "therefore",
    "hence",
    "also",
    "instead",
    "moreover",
    "furthermore",
    "meanwhile",
    "then",
}
CITATION = re.compile(r"\.:\d|\[\d+\]")  # Wikipedia's page citations: "life.:33", "[12]"


@dataclass
class Fact:
    """One answer span of one sentence and the questions that ask for it."""

    answer: str
    questions: list[str]  # the main wording first, then paraphrases
    evidence: str
    priority: int
    sentence: int


class ExtractiveGenerator:
    """The `extractive` generator: a chunk's facts, each asked as a question and its paraphrases."""

    name = "extractive"

    def __init__(self, cfg):
        self.cfg = cfg
        self.settings = {"pairs_per_chunk": cfg.pairs_per_chunk, "paraphrases": cfg.paraphrases, "spacy": "en_core_web_sm", "rules": RULES}
        self.subjects = Subjects()

    @property
    def nlp(self):
        return self.subjects.nlp

    @lru_cache(maxsize=256)  # noqa: B019 - an extractor lives for one synth run
    def _title_person(self, title: str) -> str | None:
        """The document's title, if it names a person ("Nikola Tesla"): who "he" is until another is named."""
        ents = self.nlp(title).ents if title else ()
        return title if len(ents) == 1 and ents[0].label_ == "PERSON" and ents[0].text == title else None

    def generate(self, chunks: list[Chunk]) -> list[list[Draft]]:
        """Drafts for each chunk, in order: up to `pairs_per_chunk` facts, each with `paraphrases` more wordings."""
        parts = [_split_rows(c.text) for c in chunks]
        docs = self.nlp.pipe([prose for prose, _ in parts], batch_size=32)
        return [self._drafts(doc, rows, chunk) for chunk, (_, rows), doc in zip(chunks, parts, docs)]

    def _drafts(self, doc, rows: list[str], chunk: Chunk) -> list[Draft]:
        person = self._title_person(chunk.section.split(" > ")[0])
        subject, name, kinds = self.subjects.of(chunk.title)
        facts, names = [], {}
        for i, sent in enumerate(doc.sents):
            facts += facts_of(sent, i, self.cfg.max_answer_words, person)
            person = next((e.text for e in reversed(sent.ents) if e.label_ == "PERSON"), person)
            names[i] = [e.text for e in sent.ents if e.label_ in kinds]
        for i, row in enumerate(rows, len(names)):
            facts += row_facts(row, i, self.cfg.max_answer_words)
            names[i] = []
        rng = random.Random(f"{self.cfg.seed}:{chunk.id}")
        chosen = _choose(facts, self.cfg.pairs_per_chunk, rng)
        out = []
        for group, fact in enumerate(chosen):
            main, *others = [with_subject(q, subject, name, names[fact.sentence]) for q in fact.questions]
            rng.shuffle(others)
            out.append(Draft(main, fact.answer, group, fact.evidence, "original"))
            out += [Draft(q, fact.answer, group, fact.evidence, "paraphrase") for q in others[: self.cfg.paraphrases]]
        return out


# A table row as loaders/tables.py writes it: "Net Revenue: Europe | 12 Weeks Ended 3/25/2023: 1,886 | ...".
ROW = re.compile(r"^(?P<label>[^|]+?) \| (?P<cells>.*\S)$")


def _split_rows(text: str) -> tuple[str, list[str]]:
    """A chunk's prose, flattened for spaCy, and its table rows, which are no sentences to parse."""
    rows = [ln.strip() for ln in text.splitlines() if ROW.match(ln.strip())]
    prose = [ln for ln in text.splitlines() if not ROW.match(ln.strip())]
    return " ".join(" ".join(prose).split()), rows


def row_facts(row: str, sentence: int, max_answer_words: int) -> list[Fact]:
    """One fact per figure of a table row: "What was Net Revenue: Europe for 12 Weeks Ended 3/25/2023?" -> "1,886"."""
    m = ROW.match(row)
    label = m["label"].strip()
    out = []
    for cell in m["cells"].split(" | "):
        header, _, value = cell.rpartition(": ")
        value = value.strip()
        if not header or not re.search(r"\d", value) or len(value.split()) > min(3, max_answer_words) or value in label:
            continue
        wordings = [
            f"What was {label} for {header}?",
            f"For {header}, what was {label}?",
            f"What figure does the table give for {label}, {header}?",
        ]
        out.append(Fact(value, wordings, row, PRIORITY["CARDINAL"], sentence))
    return out


def _choose(facts: list[Fact], n: int, rng: random.Random) -> list[Fact]:
    """`n` facts, spread over the sentences: each sentence's best fact first, then second bests."""
    by_sentence: dict[int, list[Fact]] = {}
    for f in sorted(facts, key=lambda f: (f.priority, rng.random())):
        if all(f.answer.lower() != g.answer.lower() for g in by_sentence.get(f.sentence, [])):
            by_sentence.setdefault(f.sentence, []).append(f)
    rounds = [
        sorted((fs[i] for fs in by_sentence.values() if len(fs) > i), key=lambda f: (f.priority, rng.random()))
        for i in range(max((len(fs) for fs in by_sentence.values()), default=0))
    ]
    return [f for r in rounds for f in r][:n]


# One sentence -> its facts --------------------------------------------------------------------


def facts_of(sent, index: int, max_answer_words: int, person: str | None = None) -> list[Fact]:
    """Every answer span of the sentence's clauses, with its questions.

    The clauses are the main one and those coordinated with it that have a subject of their
    own ("Rollo led them, and he settled in Rouen"). A "he" or "she" subject is read as
    `person`, the last person named before it: "He moved to Karlovac in 1870" asks "When did
    Nikola Tesla move to Karlovac?".
    """
    root = sent.root
    if not (MIN_SENT_TOKENS <= len(sent) <= MAX_SENT_TOKENS) or sent.text.rstrip().endswith("?"):
        return []
    heads = [root] + [c for c in root.children if c.dep_ == "conj"]
    facts = []
    for head in heads:
        subj = next((c for c in head.children if c.dep_ in ("nsubj", "nsubjpass")), None)
        if head.pos_ in ("VERB", "AUX") and subj is not None:
            facts += _clause_facts(sent, head, subj, index, max_answer_words, person if subj.lower_ in ("he", "she") else None)
    return facts


def _clause_facts(sent, root, subj, index: int, max_answer_words: int, referent: str | None) -> list[Fact]:
    """The facts of one clause headed by the verb `root`."""
    if subj.lower_ in PRONOUNS and referent is None:
        return []
    clause = _main_clause(root)
    subj_span = _subtree(subj)
    facts = []
    for answer, wh, drop in _answer_spans(sent, root, subj, clause):
        text = _text(answer)
        if not text or len(text.split()) > max_answer_words or text.lower() in PRONOUNS or GENERIC_SUBJECT.fullmatch(text):
            continue  # "What paid dividends?" "The Company": no answer at all
        if answer[0].lower_ in DEICTIC:
            continue
        if not _well_cut(answer, text):
            continue
        taken = {t.i for t in drop} | {t.i for t in subj_span} | {root.i}
        if not _left_to_look_up(clause, taken) and len(wh.split()) < 3:
            continue  # "Who concluded?", "When did Goodell state?": nothing a reader could look up ("How many employees" is)
        subject_asked = answer[0].i == subj_span[0].i and answer[-1].i == subj_span[-1].i

        def ask(wh: str, tokens: list) -> list[str]:
            """The question about this answer over `tokens` (the clause, or part of it); for an object, then the answer left in place."""
            if subject_asked:  # noqa: B023 - called within this iteration only
                return _subject_questions(wh, tokens, subj_span)
            return _object_questions(wh, tokens, root, subj_span, drop, referent)  # noqa: B023

        questions = ask(wh, clause)
        if short := _short_clause(clause, root, taken, subject_asked):
            questions += ask(wh, short)[:1]
        if typed := _typed_wh(wh, answer):
            questions += ask(typed, clause)[:1]
        if scene := _scene(clause, root, taken):
            questions += [f"{_upper_first(_text(scene))}, {_lower_wh(q)}" for q in ask(wh, [t for t in clause if t not in scene])[:1]]
        questions = list(dict.fromkeys(q for q in questions if q and _balanced(q) and not CITATION.search(q)))
        if questions:
            label = answer[0].ent_type_ or ("subject" if answer[0].i == subj_span[0].i else "object")
            facts.append(Fact(text, questions, sent.text.strip(), PRIORITY.get(label, 3), index))
    return facts


def _main_clause(root) -> list:
    """The root's subtree without its subordinate and coordinated clauses, in sentence order."""
    cut = set()
    for child in root.children:
        if child.dep_ in SUBCLAUSES and child.dep_ != "punct":
            cut.update(t.i for t in child.subtree)
    for t in root.children:  # "however", "thus": they link to a sentence the question does not have
        if t.dep_ == "advmod" and t.lower_ in LINKERS:
            cut.add(t.i)
            for edge in (t.i - 1, t.i + 1):
                if 0 <= edge < len(t.doc) and t.doc[edge].text == ",":
                    cut.add(edge)
    for t in root.subtree:  # ", which assembled the Tico, ...": a non-restrictive aside, not the statement
        if t.dep_ in ("relcl", "appos", "acl") and t.left_edge.i > 0 and t.doc[t.left_edge.i - 1].text == ",":
            cut.update(x.i for x in t.subtree)
            cut.add(t.left_edge.i - 1)
    tokens = [t for t in root.subtree if t.i not in cut]
    while tokens and (tokens[-1].is_punct or tokens[-1].pos_ in ("CCONJ", "SCONJ", "DET", "ADP") or tokens[-1].lower_ in ("then", "also")):
        tokens.pop()  # "... run and then": what a cut clause leaves behind
    return tokens


def _attached(token, root) -> bool:
    """The phrase headed by `token` hangs off the verb (or its xcomp): a subject, object or
    prepositional object, not part of another phrase, whose removal would leave "of" dangling."""
    verbs = {root.i} | {c.i for c in root.children if c.dep_ == "xcomp"}
    if token.head.i in verbs and token.dep_ in ("nsubj", "nsubjpass", "dobj", "attr", "npadvmod", "oprd"):
        return True
    return token.dep_ == "pobj" and token.head.dep_ in ("prep", "agent") and token.head.head.i in verbs


def _answer_spans(sent, root, subj, clause):
    """(answer tokens, wh-phrase, tokens the wh-phrase replaces) for each askable span of the clause."""
    in_clause = {t.i for t in clause}
    taken: set[int] = set()
    for ent in sent.ents:
        head = ent.root
        if head.dep_ == "nummod" and head.head.i == ent.end:  # "300 employees": the noun phrase is what hangs off the verb
            noun = head.head
            if ent.label_ != "CARDINAL" or not _attached(noun, root) or noun.i == subj.i:
                continue
            tokens = list(ent)
        elif ent.label_ == "ORDINAL" or not _attached(head, root) or head.i == subj.i:
            continue
        else:  # the entity, with its article: "the United States", not what the parse hangs off it
            tokens = (
                [ent[0].nbor(-1)] if ent.start > 0 and ent[0].nbor(-1).dep_ == "det" and ent[0].nbor(-1).head.i == head.i else []
            ) + list(ent)
        if not all(t.i in in_clause for t in tokens) or taken & {t.i for t in tokens}:
            continue
        wh, drop = _wh_for(ent.label_, head, tokens)
        if wh:
            taken.update(t.i for t in drop)
            yield tokens, wh, drop
    subj_tokens = _subtree(subj)
    yield subj_tokens, "Who" if _is_person(subj) else "What", subj_tokens
    for child in [c for v in [root, *(c for c in root.children if c.dep_ == "xcomp")] for c in v.children]:
        target = child
        if child.dep_ == "agent":  # "completed by the company": the preposition stays, stranded
            target = next((c for c in child.children if c.dep_ == "pobj"), None)
        elif child.dep_ not in ("dobj", "attr", "oprd"):
            continue
        if target is None or target.pos_ not in ("NOUN", "PROPN"):
            continue
        tokens = _subtree(target)
        if all(t.i in in_clause for t in tokens) and not taken & {t.i for t in tokens}:
            yield tokens, "Who" if _is_person(target) else "What", tokens


def _wh_for(label: str, head, tokens: list):
    """The wh-phrase for an entity, and the tokens it replaces (with its preposition for when/where)."""
    prep = head.head if head.dep_ == "pobj" else None
    with_prep = ([prep] + tokens) if prep is not None and prep.i == tokens[0].i - 1 else None
    if label in ("DATE", "TIME"):
        if with_prep and prep.lower_ in TIME_PREPS and prep.lower_ not in ("by", "since", "until", "before", "after", "from"):
            return "When", with_prep
        if prep is not None:
            return None, None  # "over the past decade" -> "what date ... over?" reads wrongly
        return ("What year" if tokens[-1].shape_ == "dddd" and len(tokens) == 1 else "What date"), tokens
    if label in ("GPE", "LOC", "FAC"):
        if with_prep and prep.lower_ in PLACE_PREPS:
            return "Where", with_prep
        return "What place", tokens
    if label == "PERSON":
        return "Who", tokens
    if label in ("CARDINAL", "QUANTITY"):
        if label == "CARDINAL" and len(tokens) == 1 and tokens[0].shape_ == "dddd" and with_prep and prep.lower_ in ("in", "by", "since"):
            return ("When" if prep.lower_ == "in" else f"{prep.text.capitalize()} what year"), with_prep  # "in 911": a year
        noun = head.head if head.dep_ == "nummod" and head.head.pos_ == "NOUN" else None
        if noun is not None and noun.i == tokens[-1].i + 1:
            return f"How many {noun.text}", tokens + [noun]
        return ("How much", tokens) if label == "QUANTITY" else (None, None)  # a bare count: "how many" of what?
    if label == "MONEY":
        return "How much", tokens
    if label == "PERCENT":
        return "What percentage", tokens
    if label in ("ORG", "NORP", "EVENT", "WORK_OF_ART", "PRODUCT", "LAW", "LANGUAGE"):
        return "What", tokens
    return None, None


def _is_person(token) -> bool:
    return token.ent_type_ in ("PERSON", "NORP") or token.lower_ in ("people", "king", "queen", "emperor", "leader", "president")


# Questions ------------------------------------------------------------------------------------


def _subject_questions(wh: str, clause: list, subj: list) -> list[str]:
    """The subject is asked about: the wh-word simply takes its place."""
    subj_ids = {t.i for t in subj}
    rest = _text([t for t in clause if t.i not in subj_ids and t.i > subj[-1].i])
    before = [t for t in clause if t.i not in subj_ids and t.i < subj[0].i]
    if not rest:
        return []
    tail = f" {_lower_first(before)}" if _text(before) else ""
    return [f"{wh} {rest}{tail}?"]


def _object_questions(wh: str, clause: list, root, subj: list, drop: list, referent: str | None = None) -> list[str]:
    """The answer is elsewhere: front the wh-phrase and invert subject and auxiliary (do-support)."""
    dropped = {t.i for t in drop}
    for edge in (drop[0].i - 1, drop[-1].i + 1):  # the commas around a taken-out phrase go with it
        if 0 <= edge < len(root.doc) and root.doc[edge].is_punct:
            dropped.add(edge)
    aux = next((c for c in root.children if c.dep_ in ("aux", "auxpass") and c.i < root.i and c.i > subj[-1].i), None)
    if aux is None and root.lemma_ == "be":
        aux = root
    kept = [t for t in clause if t.i not in dropped]
    front = [t for t in kept if t.i < subj[0].i]  # "In 1889, the tower ..." -> the fronted phrase goes last
    after = [t for t in kept if t.i > subj[-1].i]
    subject = referent or _lower_first(subj)
    if aux is not None:  # "was completed" -> "was the tower completed"
        verb_phrase = [t for t in after if t.i != aux.i]
        inverted = f"{aux.lower_} {subject} {_text(verb_phrase)}".strip()
    else:
        do = {"VBD": "did", "VBZ": "does", "VBP": "do"}.get(root.tag_)
        if do is None:
            return []
        verb_phrase = [t for t in after if t.i != root.i]
        before_root = _text([t for t in verb_phrase if t.i < root.i])
        after_root = _text([t for t in verb_phrase if t.i > root.i])
        inverted = " ".join(x for x in (do, subject, before_root, root.lemma_, after_root) if x)
    tail = f" {_lower_first(front)}" if _text(front) else ""
    in_situ = ""
    if drop[0].i > subj[-1].i:  # "the tower was completed in what year": only if the answer was not fronted
        in_situ = " ".join(
            f"{subject} {_text([t for t in after if t.i < drop[0].i])} {_in_situ(wh, drop)} "
            f"{_text([t for t in after if t.i > drop[-1].i])}{tail}".split()
        )
    return [f"{wh} {inverted}{tail}?", f"{_upper_first(in_situ)}?" if in_situ else ""]


def _modifiers(clause: list, root, taken: set[int]) -> list[list]:
    """The verb's modifiers (prepositional phrases, adverbs) that hold none of `taken`, in order."""
    verbs = {root.i} | {c.i for c in root.children if c.dep_ == "xcomp"}
    in_clause = {t.i for t in clause}
    phrases = [
        [x for x in t.subtree if x.i in in_clause]
        for t in clause
        if t.head.i in verbs and t.i not in verbs and t.dep_ in ("prep", "agent", "advmod", "npadvmod")
    ]
    return [p for p in phrases if p and not {x.i for x in p} & taken]


def _short_clause(clause: list, root, taken: set[int], subject_asked: bool) -> list | None:
    """The clause without the verb's trailing modifiers while something is left to look up (or the
    verb needs nothing more): people ask "When was the tower completed?", not the sentence back.
    None if nothing could be taken out."""
    complete = not subject_asked and not any(c.dep_ in ("dobj", "ccomp", "xcomp", "attr", "oprd", "dative", "acomp") for c in root.children)
    kept = list(clause)
    for phrase in reversed(_modifiers(clause, root, taken)):  # the last modifier first
        rest = [t for t in kept if t not in phrase]
        if complete or _left_to_look_up(rest, taken):
            kept = rest
    return kept if len(kept) < len(clause) else None


def _scene(clause: list, root, taken: set[int]) -> list | None:
    """The clause's last modifier that reads well put first, as people often set the scene: "In
    1889, what was completed by the company of Gustave Eiffel?"."""
    phrases = [p for p in _modifiers(clause, root, taken) if p[0].dep_ != "agent" and p[0].lower_ not in UNFRONTED]
    return phrases[-1] if phrases else None


def _left_to_look_up(tokens: list, taken: set[int]) -> bool:
    """A content word besides the answer, the subject and the verb (`taken`): something a reader could look up."""
    return any(t.i not in taken and not (t.is_stop or t.is_punct) for t in tokens)


def _typed_wh(wh: str, answer: list) -> str | None:
    """The wh-phrase a person would type, where the answer says what kind of thing it is: "In what
    year" for a year, "Which company" for "the company of Gustave Eiffel". None where it does not."""
    if wh == "When" and len(answer) == 1 and answer[0].shape_ == "dddd":
        return "In what year"
    ids = {t.i for t in answer}
    head = next((t for t in answer if t.head.i not in ids or t.head.i == t.i), None)
    content = [t for t in answer if not (t.is_stop or t.is_punct)]
    if wh in ("Who", "What") and head is not None and head.pos_ == "NOUN" and len(content) > 1:
        return f"Which {head.lower_}"  # the rest of the answer ("of Gustave Eiffel") is what is asked
    return None


def _well_cut(answer: list, text: str) -> bool:
    """The answer is whole words ("Co" of "Co-constructivist" is not) and not an abbreviation's stub ("St.")."""
    nxt = answer[-1].nbor(1) if answer[-1].i + 1 < len(answer[-1].doc) else None
    if nxt is not None and not answer[-1].whitespace_ and nxt.text in ("-", "–"):
        return False
    return len(text) >= 2 and not text.endswith(".") and _balanced(text)


def _balanced(text: str) -> bool:
    """Brackets and quotes come in pairs: a cut that split "(plural)" reads as garbage."""
    return text.count("(") == text.count(")") and text.count('"') % 2 == 0


def _in_situ(wh: str, drop: list) -> str:
    """The wh-phrase left where the answer was: "in 1889" -> "when", "by the company" -> "by whom"."""
    return {"When": "when", "Where": "where", "Who": "whom" if drop[0].i > 0 and drop[0].nbor(-1).pos_ == "ADP" else "who"}.get(
        wh, _lower_wh(wh)
    )


def _lower_wh(wh: str) -> str:
    return wh[0].lower() + wh[1:]


def _subtree(token) -> list:
    return [t for t in token.subtree if t.dep_ != "punct" or t.i not in (token.left_edge.i, token.right_edge.i)]


def _text(tokens: list) -> str:
    """Tokens back to text with their own spacing (a space where tokens were taken out); stray
    commas and quotes trimmed."""
    tokens = sorted(tokens, key=lambda t: t.i)
    out = "".join(t.text + (t.whitespace_ if j + 1 < len(tokens) and tokens[j + 1].i == t.i + 1 else " ") for j, t in enumerate(tokens))
    out = re.sub(r"\s+([,;:.)])", r"\1", re.sub(r"([,;:]\s*)+([,;:])", r"\2", out))
    return " ".join(out.split()).strip(" ,;:-\"'")


def _lower_first(tokens: list) -> str:
    text = _text(tokens)
    first = min((t for t in tokens if not t.is_punct), key=lambda t: t.i, default=None)
    if first is None:
        return text
    return text if first.pos_ == "PROPN" or first.text == "I" or not text else text[0].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
