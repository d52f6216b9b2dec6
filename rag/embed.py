"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (or any sentence-transformers model).

On a CPU with AMX or AVX512-BF16, bf16 autocast embeds twice as fast as fp32 here
(~90 vs ~45 chunks/s on 2 cores) with vectors at cosine 0.99999 to the fp32 ones;
`embed_precision: auto` uses it where the CPU has it (bench/ingest.py measures both).
A lone search query is the exception: autocast costs more than it saves on one short text
(12.9 vs 7.7 ms median), so small batches stay in fp32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core import offline


BF16_MIN_BATCH = 8


@dataclass(frozen=True)
class Embedder:
    model: object  # a SentenceTransformer
    bf16: bool
    batch_size: int

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, so cosine similarity is a dot product."""
        if not texts:
            return np.zeros((0, self.model.get_embedding_dimension()), dtype=np.float32)
        import torch

        bf16 = self.bf16 and len(texts) >= BF16_MIN_BATCH
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx, torch.inference_mode():
            out = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return out.astype(np.float32, copy=False)


@lru_cache(maxsize=4)
def load_embedder(model: str, precision: str = "auto", batch_size: int = 16) -> Embedder:
    """One SentenceTransformer per process: loading it costs a few seconds."""
    offline.setup()
    from sentence_transformers import SentenceTransformer

    path = offline.embedding_model_path(model)
    try:
        st = SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as e:
        raise RuntimeError(f"embedding model {model!r} could not be loaded from {path} ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    bf16 = precision == "bf16" or (precision == "auto" and cpu_has_bf16())
    return Embedder(st, bf16, batch_size)


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags
