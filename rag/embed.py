"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (or any sentence-transformers model)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from core import offline


@lru_cache(maxsize=2)
def load_embedder(model: str):
    """One SentenceTransformer per process: loading it costs about a second."""
    offline.setup()
    from sentence_transformers import SentenceTransformer

    path = offline.embedding_model_path(model)
    try:
        return SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as e:
        raise RuntimeError(f"embedding model {model!r} could not be loaded from {path} ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None


def embed(model, texts: list[str], batch_size: int) -> np.ndarray:
    """Unit-length float32 vectors, so cosine similarity is a dot product."""
    if not texts:
        return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
