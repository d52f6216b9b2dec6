"""The typed config of `ragtune synth` (defaults in configs/synth.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.config import ConfigError, resolve_workdir
from engine.config import DecodingConfig, ModelConfig
from rag.config import SearchConfig

GENERATORS = ("extractive", "local", "openai")
FORMATS = ("messages", "alpaca", "sharegpt")
RAFT_CONTEXTS = ("joint", "single")
NOISE_KINDS = ("delete", "insert", "swap", "case", "order")


@dataclass
class SynthConfig:
    """`ragtune synth`: instruction pairs from every chunk of the index, RAFT-style."""

    config_file = "synth.yaml"
    workdir: str | None
    generator: str  # extractive | local | openai
    out: str | None  # the dataset folder; null = <workdir>/datasets/<generator>-<config hash>
    pairs_per_chunk: int  # facts asked about per chunk (each with its paraphrases)
    paraphrases: int  # extra wordings of each question
    distractors: int  # K hard distractors per RAFT row: the retriever's hits for the question, oracle excluded
    oracle_p: float  # P: share of RAFT rows whose context holds the oracle chunk
    raft_context: str  # joint: the oracle among the distractors | single: one chunk a row, as the span reader reads
    eval_fraction: float  # F: share of chunks (or documents) held out for evaluation
    split_by: str  # chunk | document
    seed: int
    format: str  # messages | alpaca | sharegpt
    cot: bool  # RAFT answers open with the quoted supporting sentence
    min_question_words: int
    max_question_words: int
    max_answer_words: int
    grounding_overlap: float  # an answer not contained in its chunk needs this share of its tokens there
    dedup_threshold: float  # questions of different facts this similar (embedding cosine) are near-duplicates
    round_trip: bool  # keep a pair only if the engine, reading its chunk in rag mode, agrees
    noise: float  # share of train questions that also get a noisy copy (typos, case, word order)
    noise_kinds: list[str]
    shuffle_context: bool  # RAFT rows: the oracle's place among the distractors is random
    max_tokens: int  # RAFT rows fit train's --max-length: the weakest distractors are dropped to fit, never the oracle
    batch_size: int  # chunks per generator call
    # The LLM generators (local, openai)
    model: str | None  # local: an HF id or folder (null = the packaged model); openai: the endpoint's model name
    base_url: str | None  # openai: e.g. http://127.0.0.1:8000/v1
    api_key_env: str | None  # openai: the env var holding the key
    concurrency: int  # openai: requests in flight
    timeout: float  # openai: seconds per request
    retries: int  # openai: attempts after the first, with exponential backoff
    prompts: str  # the engine's prompt templates: RAFT rows are delimited exactly as `ragtune ask` does it
    decoding: DecodingConfig = field(default=None)
    search: SearchConfig = field(default=None)
    llm: ModelConfig = field(default=None)

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        self.search.workdir = self.workdir
        if self.model and self.generator == "local":
            self.llm.model = self.model
        checks = [
            (self.generator in GENERATORS, f"--generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}"),
            (self.raft_context in RAFT_CONTEXTS, f"--raft-context must be one of {', '.join(RAFT_CONTEXTS)}, got {self.raft_context!r}"),
            (0 <= self.oracle_p <= 1, f"--oracle-p must be between 0 and 1, got {self.oracle_p}"),
            (0 <= self.eval_fraction < 1, f"--eval-fraction must be at least 0 and below 1, got {self.eval_fraction}"),
            (self.split_by in ("chunk", "document"), f"--split-by must be chunk or document, got {self.split_by!r}"),
            (self.format in FORMATS, f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}"),
            (self.pairs_per_chunk >= 1, f"--pairs-per-chunk must be at least 1, got {self.pairs_per_chunk}"),
            (0 <= self.paraphrases <= 25, f"--paraphrases must be between 0 and 25, got {self.paraphrases}"),
            (self.distractors >= 0, f"--distractors must be 0 or more, got {self.distractors}"),
            (self.max_tokens >= 64, f"--max-tokens must be at least 64, got {self.max_tokens}"),
            (0 <= self.noise <= 1, f"--noise must be between 0 and 1, got {self.noise}"),
            (set(self.noise_kinds) <= set(NOISE_KINDS), f"--noise-kinds must be among {', '.join(NOISE_KINDS)}, got {self.noise_kinds}"),
            (0 < self.grounding_overlap <= 1, f"grounding_overlap in configs/synth.yaml must be in (0, 1], got {self.grounding_overlap}"),
            (0 < self.dedup_threshold <= 1, f"dedup_threshold in configs/synth.yaml must be in (0, 1], got {self.dedup_threshold}"),
            (1 <= self.min_question_words <= self.max_question_words, "min_question_words in configs/synth.yaml must be at least 1 and at most max_question_words"),
            (self.max_answer_words >= 1, f"max_answer_words in configs/synth.yaml must be at least 1, got {self.max_answer_words}"),
            (self.batch_size >= 1, f"batch_size in configs/synth.yaml must be at least 1, got {self.batch_size}"),
            (self.concurrency >= 1, f"--concurrency must be at least 1, got {self.concurrency}"),
            (self.timeout > 0, f"--timeout must be positive, got {self.timeout}"),
            (self.retries >= 0, f"--retries must be 0 or more, got {self.retries}"),
            (self.generator != "openai" or bool(self.base_url), "--generator openai needs --base-url (an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
