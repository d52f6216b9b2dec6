"""The small records passed between stages: Document -> Chunk -> Hit, Chunk -> Pair, and each stage's report.

Every record carries its provenance (source file, its sha256, page, section), so any answer
can be traced back to the text it came from.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path


@dataclass(frozen=True)
class Document:
    """One element of a loaded file: a paragraph, a title, a list item, a table or a JSON field."""

    text: str
    source: str  # absolute path of the file
    sha256: str  # of the file's bytes
    category: str  # unstructured's element category: Title, NarrativeText, ListItem, ...
    section: str = ""  # title path, " > "-joined: "Guide > Install > From PyPI"
    page: int | None = None  # 1-based, for PDF


@dataclass(frozen=True)
class Chunk:
    """A piece of one section of one file, sized in embedding-tokenizer tokens."""

    id: str  # content hash of source + text: re-ingest upserts, never duplicates
    text: str
    source: str
    sha256: str
    section: str
    index: int  # position of the chunk within its file
    n_tokens: int
    page: int | None = None  # first page the chunk covers
    page_end: int | None = None  # last page the chunk covers
    category: str = "NarrativeText"  # the category of its first element
    title: str = ""  # its document's title (rag/ingest.py): which filing, which report a chunk is from
    boilerplate: bool = False  # cover pages, certifications, legal notices (rag/boilerplate.py): ranked low, never synthesized from

    @property
    def ocr(self) -> bool:
        """Read by OCR (loaders/ocr.py): its words may hold recognition errors, so sources say so."""
        return self.category == "OCR"

    def heading(self) -> str:
        """The chunk's title and section path: the context its text is read in.

        The title is left out when the section path already starts with it (a file's first
        heading is both), so it is not counted twice.
        """
        title = "" if self.section.startswith(self.title) else self.title
        return "\n".join(x for x in (title, self.section) if x)

    def under_heading(self, text: str) -> str:
        """`text` (the chunk's, or a sentence of it) after the chunk's heading, as it is embedded."""
        return "\n".join(x for x in (self.heading(), text) if x)

    def embed_text(self) -> str:
        """What gets embedded and BM25-indexed: the heading gives a chunk its context."""
        return self.under_heading(self.text)

    def metadata(self) -> dict:
        """Chroma metadata: flat scalars only, None left out."""
        return {k: v for k, v in asdict(self).items() if k not in ("id", "text") and v is not None}

    @classmethod
    def from_store(cls, id: str, text: str, meta: dict) -> Chunk:
        """A chunk as Chroma holds it; an index written before a field existed gets its default."""
        names = ("source", "sha256", "section", "index", "n_tokens", "page", "page_end", "category", "title", "boilerplate")
        return cls(id=id, text=text, **{k: meta[k] for k in names if k in meta})


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the ranks that made it."""

    chunk: Chunk
    score: float
    rank: int
    dense_rank: int | None = None
    lexical_rank: int | None = None

    def to_json(self) -> dict:
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "chunk_id": c.id,
            "source": c.source,
            "page": c.page,
            "section": c.section,
            "title": c.title,
            "text": c.text,
            "dense_rank": self.dense_rank,
            "lexical_rank": self.lexical_rank,
        }


@dataclass
class FileReport:
    """What happened to one input file."""

    path: str
    status: str  # ok | unchanged | skipped | failed | pruned
    reason: str = ""  # one line, for skipped and failed
    warnings: list[str] = field(default_factory=list)
    pages: int = 0
    chunks_added: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0

    def line(self) -> str:
        """One line for the summary: `failed  docs/x.pdf: encrypted (password required)`."""
        why = self.reason or "; ".join(self.warnings)
        return f"{self.status:<9} {self.path}" + (f": {why}" if why else "")


@dataclass
class IngestReport:
    """The result of one `ingest` run; `--json` prints it."""

    collection: str
    files: list[FileReport] = field(default_factory=list)
    elapsed_s: float = 0.0
    total_chunks: int = 0

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def chunks_added(self) -> int:
        return sum(f.chunks_added for f in self.files)

    @property
    def chunks_unchanged(self) -> int:
        return sum(f.chunks_unchanged for f in self.files)

    @property
    def chunks_removed(self) -> int:
        return sum(f.chunks_removed for f in self.files)

    def to_json(self) -> dict:
        return {
            "collection": self.collection,
            "files": {s: [asdict(f) for f in self.files if f.status == s] for s in ("ok", "unchanged", "skipped", "failed", "pruned")},
            "counts": {s: self.count(s) for s in ("ok", "unchanged", "skipped", "failed", "pruned")},
            "chunks": {
                "added": self.chunks_added,
                "unchanged": self.chunks_unchanged,
                "removed": self.chunks_removed,
                "total": self.total_chunks,
            },
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class Source:
    """A chunk an answer was given, as the user sees it: where it is and how it ranked."""

    chunk_id: str
    source: str
    page: int | None
    section: str
    score: float
    rank: int
    text: str
    title: str = ""  # its document's title; "" for a chunk indexed before titles were
    ocr: bool = False  # its text was read by OCR from a scanned page

    @classmethod
    def from_hit(cls, hit: Hit) -> Source:
        c = hit.chunk
        return cls(c.id, c.source, c.page, c.section, round(hit.score, 6), hit.rank, c.text, c.title, c.ocr)


@dataclass(frozen=True)
class Citation:
    """What an answer's `[n]` points at: the n-th chunk of its prompt (its `sources[n - 1]`)."""

    n: int  # 1-based, as written in the answer's text
    chunk_id: str
    source: str
    page: int | None
    section: str
    quote: str = ""  # extractive answers: the sentence cited, as printed in the answer
    bold: tuple[int, int] | None = None  # factoid answers: the span's character offsets within `quote`

    def label(self) -> str:
        """`[1] guide.pdf p.3 § Install`: where the citation leads, in one line."""
        out = f"[{self.n}] {Path(self.source).name}"
        if self.page:
            out += f" p.{self.page}"
        if self.section:
            out += f" § {self.section.split(' > ')[-1]}"
        return out


@dataclass
class Answer:
    """One question answered in one mode; `ragtune ask --json` prints it."""

    question: str
    mode: str  # base | rag | ft | ft-rag
    text: str
    sources: list[Source] = field(default_factory=list)  # the chunks in the prompt, best first
    prompt_tokens: int = 0
    generated_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str = "stop"
    first_token_s: float | None = None
    model: str = ""
    adapter: str | None = None
    gold_perplexity: float | None = None  # evaluation only: of the likeliest reference answer, per token
    form: str = ""  # rag modes: factoid | open | list (extracted), generated, or abstain; "" for base and ft
    span: str = ""  # factoid form: the short answer alone, which `text` quotes in its sentence
    citations: list[Citation] = field(default_factory=list)  # in the order the text cites them
    dropped_citations: int = 0  # `[n]` the model wrote for no chunk of its prompt: removed from `text`
    attributed_citations: int = 0  # `[n]` added to sentences a writing model left uncited (engine/cite.attribute)

    def to_json(self) -> dict:
        out = asdict(self)
        out["latency_s"] = round(self.latency_s, 4)
        if self.first_token_s is not None:
            out["first_token_s"] = round(self.first_token_s, 4)
        return out


@dataclass(frozen=True)
class Draft:
    """A question and answer a generator drew from one chunk, before filtering.

    Drafts of one chunk that ask the same fact share `group` (the original and its paraphrases).
    A generator that could not parse its model's output returns a Draft with `error` set, so
    malformed output is counted, not silently lost.
    """

    question: str
    answer: str
    group: int = 0  # the fact's number within its chunk
    evidence: str = ""  # the sentence that supports the answer, if the generator knows it
    kind: str = "original"  # original | paraphrase
    error: str = ""  # why the generator's output was unusable; the pair is then dropped


@dataclass(frozen=True)
class Pair:
    """A kept question-answer pair with everything needed to trace it to its text."""

    id: str  # hash of the oracle chunk id, the question and the answer
    question: str
    answer: str
    chunk_id: str  # the oracle chunk
    source: str
    page: int | None
    section: str
    generator: str
    settings: dict  # the generator's settings (model, temperature, ...)
    group: str  # paraphrase group: "<chunk id>:<n>"; its pairs ask the same fact
    kind: str  # original | paraphrase | noise | cross (asked in another chunk's words: synth/cross.py)
    split: str  # train | eval
    evidence: str = ""
    distractors: tuple[str, ...] = ()  # chunk ids the retriever returned for the question, oracle excluded

    def to_json(self) -> dict:
        """A line of pairs.jsonl."""
        out = asdict(self)
        out["distractors"] = list(self.distractors)
        return out

    @classmethod
    def from_json(cls, data: dict) -> Pair:
        return cls(**{**_known(cls, data, "pair"), "distractors": tuple(data.get("distractors", ()))})


@dataclass(frozen=True)
class DatasetCard:
    """What `ragtune synth` made (synth/pipeline.py); dataset.json holds `to_json()`.

    The sections are plain data, in the order dataset.json has always written them.
    """

    generator: dict  # name, settings: the generator that drew the drafts
    config: dict  # the SynthConfig, as plain data
    chunks: dict  # total, with_pairs, coverage, eval (the held-out ones)
    drafts: int
    grounding_rate_before_filters: float
    grounding_rate_after_filters: float
    filtered: dict  # pairs dropped, per reason of synth/filters.py
    pairs: dict  # total, a count per split (in the order first met), by_kind, groups
    rows: dict  # per split: rows per kind (closed_book, raft)
    mean_words: dict  # question, answer
    raft: dict  # the RAFT settings, oracle_in_context and mean_chunks
    leakage: dict  # split_by and how alike eval questions are to train ones
    name: str = ""  # the dataset folder's name
    path: str = ""
    index_version: str = ""
    collection: str = ""
    elapsed_s: float = 0.0
    pairs_per_s: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DatasetCard:
        return cls(**_known(cls, data, "dataset card"))


@dataclass(frozen=True)
class EvalReport:
    """What `ragtune eval` found (evals/run.py); report.json holds `to_json()`.

    The sections are plain data, in the order report.json has always written them.
    """

    questions: dict  # source, asked, read, skipped (lines, with why), limit, seed
    modes: list[str]  # the modes that answered
    skipped_modes: dict  # mode -> why it could not answer
    versions: dict  # the model, adapter, dataset and index behind the numbers
    config: dict  # the EvalConfig, as plain data
    summary: dict  # mode -> scores with 95% intervals, over every question
    by_type: dict  # question type -> mode -> the summary over that type's questions
    retrieval: dict | None  # hit@k and answer-recall@k, shared by the rag modes; None without them
    comparisons: list[dict]  # F1 of each pair of modes (paired bootstrap), the key pairs first
    buckets: dict  # mode -> why its wrong answers are wrong, counted
    disagreements: int  # questions some modes answer right and others wrong
    per_question: list[dict]  # each question with every mode's answer, scores and sources
    verdict: str = ""
    elapsed_s: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> EvalReport:
        """A report as report.json holds it; one written before question types has no by_type."""
        return cls(**_known(cls, {"by_type": {}, **data}, "eval report"))


def _known(cls, data: dict, what: str) -> dict:
    """The fields of `cls` in `data`; a missing or unknown one is an error that names it."""
    names = {f.name for f in fields(cls)}
    required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
    if missing := sorted(required - data.keys()):
        raise ValueError(f"not a {what}: no {', '.join(missing)}")
    if unknown := sorted(data.keys() - names):
        raise ValueError(f"not a {what}: unknown {', '.join(unknown)}")
    return {k: v for k, v in data.items() if k in names}
