"""The typed configs of the index, ingest and search stages (defaults in configs/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.config import ConfigError, resolve_workdir


@dataclass
class IndexConfig:
    """Where the chunks live and how they are embedded; shared by ingest and search."""

    config_file = "index.yaml"
    collection: str
    chroma: str  # persistent | http
    chroma_host: str
    chroma_port: int
    embedding_model: str  # "packaged" or a sentence-transformers folder / HF id
    embed_batch_size: int
    embed_precision: str  # auto | fp32 | bf16

    def __post_init__(self):
        if self.embed_precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"embed_precision in configs/index.yaml must be auto, fp32 or bf16, got {self.embed_precision!r}")
        if self.chroma not in ("persistent", "http"):
            raise ConfigError(f"--chroma must be persistent or http, got {self.chroma!r}")
        if not (3 <= len(self.collection) <= 512) or not self.collection.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError(f"--collection must be 3-512 letters, digits, '.', '_' or '-', got {self.collection!r}")
        if self.embed_batch_size < 1:
            raise ConfigError(f"embed_batch_size in configs/index.yaml must be at least 1, got {self.embed_batch_size}")


@dataclass
class IngestConfig:
    """`ragtune ingest PATH...`"""

    config_file = "ingest.yaml"
    paths: list[str]
    workdir: str | None
    include: list[str]
    exclude: list[str]
    max_file_mb: float
    chunk_size: int  # in embedding-tokenizer tokens
    chunk_overlap: int
    prune: bool
    strict: bool
    index: IndexConfig = field(default=None)

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        if self.chunk_size < 16:
            raise ConfigError(f"--chunk-size must be at least 16 tokens, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(f"--chunk-overlap must be between 0 and --chunk-size ({self.chunk_size}), got {self.chunk_overlap}")
        if self.max_file_mb <= 0:
            raise ConfigError(f"--max-file-mb must be positive, got {self.max_file_mb}")


@dataclass
class SearchConfig:
    """`ragtune search QUERY`"""

    config_file = "search.yaml"
    workdir: str | None
    k: int
    retrieval: str  # hybrid | dense | lexical
    candidates: int  # per retriever, before fusion
    rrf_k: int  # reciprocal-rank-fusion constant: 1 / (rrf_k + rank)
    lexical_weight: float  # dense weight is 1
    query_encoder: str  # onnx | torch
    index: IndexConfig = field(default=None)

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        if self.query_encoder not in ("onnx", "torch"):
            raise ConfigError(f"query_encoder in configs/search.yaml must be onnx or torch, got {self.query_encoder!r}")
        if self.retrieval not in ("hybrid", "dense", "lexical"):
            raise ConfigError(f"--retrieval must be hybrid, dense or lexical, got {self.retrieval!r}")
        if self.k < 1:
            raise ConfigError(f"-k must be at least 1, got {self.k}")
        if self.candidates < self.k:
            self.candidates = self.k
