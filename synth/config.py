"""The typed config of `ragtune synth` (defaults in configs/synth.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ragtune.core.config import ConfigError, check_settings, resolve_workdir, setting
from ragtune.engine.config import DecodingConfig, ModelConfig
from ragtune.rag.config import SearchConfig

GENERATORS = ("extractive", "local", "openai")
FORMATS = ("messages", "alpaca", "sharegpt")
RAFT_CONTEXTS = ("joint", "single")
NOISE_KINDS = ("delete", "insert", "swap", "case", "order")


@dataclass
class SynthConfig:
    """`ragtune synth`: instruction pairs from every chunk of the index, RAFT-style."""

    config_file = "synth.yaml"
    workdir: str | None = setting("work directory; unset: $RAGTUNE_WORKDIR, else ./.ragtune", cli=False)
    generator: str = setting("extractive (spaCy, no LLM), local (the engine's model) or openai (an OpenAI-compatible endpoint)")
    out: str | None = setting("dataset folder; unset: <workdir>/datasets/<generator>-<hash of these settings and the index version>")
    pairs_per_chunk: int = setting("facts asked about per chunk, each with its paraphrases", low=1, step=1, widget_high=10)
    paraphrases: int = setting(
        "extra wordings per fact: a fact is learnt from several (see docs/ft-rag.md)", low=0, high=25, step=1, widget_high=4
    )
    distractors: int = setting("K hard distractors per RAFT row: the retriever's hits for the question, the oracle excluded")
    oracle_p: float = setting(
        "P: share of RAFT rows whose context holds the oracle chunk; the rest answer from memory", low=0, high=1, step=0.05
    )
    raft_context: str = setting(
        "joint: the oracle among the distractors in one context; single: one chunk a row, as the span reader reads (docs/ft-rag.md, item 8)",
        choices=RAFT_CONTEXTS,
    )
    eval_fraction: float = setting("F: share of chunks (or documents) held out for evaluation; none feeds both splits")
    split_by: str = setting("hold out whole chunks or whole documents", choices=("chunk", "document"))
    seed: int = setting("seed of the split, the sampling and the noise")
    format: str = setting("also export the rows in this format (messages rows are always written)", choices=FORMATS)
    cot: bool = setting("RAFT answers open with the quoted supporting sentence")
    cross_questions: bool = setting(
        "also ask each train fact with the question of another chunk's fact that has the same answer (RAFT rows only), "
        "so question and evidence share fewer words (synth/cross.py)"
    )
    min_question_words: int = setting("questions shorter than this are dropped", cli=False)
    max_question_words: int = setting("questions longer than this are dropped", cli=False)
    max_answer_words: int = setting("answers longer than this are dropped: the span reader answers short spans", cli=False)
    grounding_overlap: float = setting("share of an answer's tokens its chunk must hold when the answer is not in it verbatim", cli=False)
    dedup_threshold: float = setting("embedding cosine above which questions of different facts are near-duplicates", cli=False)
    round_trip: bool = setting("keep only pairs the engine, reading their chunk in rag mode, answers alike (slow: one answer a pair)")
    noise: float = setting("share of train questions that also get a noisy copy (typos, case, word order)")
    noise_kinds: list[str] = setting("comma-separated kinds of noise: delete, insert, swap, case, order")
    shuffle_context: bool = setting("RAFT rows: the oracle's place among the distractors is random", cli=False)
    max_tokens: int = setting("RAFT rows fit this many tokens, train's --max-length: distractors are dropped to fit, never the oracle")
    batch_size: int = setting("chunks per generator call", cli=False)
    # The LLM generators (local, openai)
    model: str | None = setting("local: an HF id or folder (unset: the packaged model); openai: the endpoint's model name")
    base_url: str | None = setting("openai: the endpoint, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str | None = setting("openai: the env var holding the API key", metavar="NAME")
    concurrency: int = setting("openai: requests in flight")
    timeout: float = setting("openai: seconds per request")
    retries: int = setting("openai: attempts after the first, with exponential backoff")
    prompts: str = setting("the engine's prompt templates: RAFT rows are delimited exactly as `ragtune ask` does", cli=False)
    decoding: DecodingConfig = field(default=None)  # local/openai generators; overrides of configs/decoding.yaml
    search: SearchConfig = field(default=None)  # the index read, and the distractors' retrieval
    llm: ModelConfig = field(default=None)  # configs/model.yaml, for --generator local

    def __post_init__(self):
        check_settings(self)
        self.workdir = resolve_workdir(self.workdir)
        self.search.workdir = self.workdir
        if self.model and self.generator == "local":
            self.llm.model = self.model
        checks = [
            (self.generator in GENERATORS, f"--generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}"),
            (0 <= self.eval_fraction < 1, f"--eval-fraction must be at least 0 and below 1, got {self.eval_fraction}"),
            (self.distractors >= 0, f"--distractors must be 0 or more, got {self.distractors}"),
            (self.max_tokens >= 64, f"--max-tokens must be at least 64, got {self.max_tokens}"),
            (0 <= self.noise <= 1, f"--noise must be between 0 and 1, got {self.noise}"),
            (set(self.noise_kinds) <= set(NOISE_KINDS), f"--noise-kinds must be among {', '.join(NOISE_KINDS)}, got {self.noise_kinds}"),
            (0 < self.grounding_overlap <= 1, f"grounding_overlap in configs/synth.yaml must be in (0, 1], got {self.grounding_overlap}"),
            (0 < self.dedup_threshold <= 1, f"dedup_threshold in configs/synth.yaml must be in (0, 1], got {self.dedup_threshold}"),
            (
                1 <= self.min_question_words <= self.max_question_words,
                "min_question_words in configs/synth.yaml must be at least 1 and at most max_question_words",
            ),
            (self.max_answer_words >= 1, f"max_answer_words in configs/synth.yaml must be at least 1, got {self.max_answer_words}"),
            (self.batch_size >= 1, f"batch_size in configs/synth.yaml must be at least 1, got {self.batch_size}"),
            (self.concurrency >= 1, f"--concurrency must be at least 1, got {self.concurrency}"),
            (self.timeout > 0, f"--timeout must be positive, got {self.timeout}"),
            (self.retries >= 0, f"--retries must be 0 or more, got {self.retries}"),
            (
                self.generator != "openai" or bool(self.base_url),
                "--generator openai needs --base-url (an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
