"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (or any sentence-transformers model).

On a CPU with AMX or AVX512-BF16, bf16 autocast embeds batches much faster than fp32, with
vectors that match fp32's (`embed_precision: auto` uses it there; bench/ingest.py measures
both). A lone query stays in fp32, where autocast costs more than it saves; a query goes
through ONNX Runtime when it can (`OnnxQueryEncoder`). Figures: README, Benchmarks, and
docs/measurements.md.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ragtune.core import offline
from ragtune.core.cpu import cpu_has_bf16
from ragtune.core.workdir import replacing

BF16_MIN_BATCH = 8  # below this, autocast's overhead outweighs its gain (docs/measurements.md)


@dataclass(frozen=True)
class Embedder:
    """A loaded sentence-transformers model, with the precision and batch size it embeds at."""

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
            out = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return out.astype(np.float32, copy=False)


@lru_cache(maxsize=4)
def load_embedder(model: str, precision: str = "auto", batch_size: int = 16) -> Embedder:
    """The embedder for `model` ("packaged", a folder or an HF id), loaded once per process: loading costs seconds.

    Raises:
        RuntimeError: the model cannot be loaded offline; one line, naming it and its path.
    """
    offline.setup()
    from sentence_transformers import SentenceTransformer

    path = offline.embedding_model_path(model)
    try:
        st = SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as e:
        raise RuntimeError(
            f"embedding model {model!r} could not be loaded from {path} ({type(e).__name__}: {str(e).splitlines()[0][:160]})"
        ) from None
    bf16 = precision == "bf16" or (precision == "auto" and cpu_has_bf16())
    return Embedder(st, bf16, batch_size)


class OnnxQueryEncoder:
    """The same model run by ONNX Runtime, for one query at a time: a fraction of torch's time,
    which keeps search within its latency target (README, Benchmarks; bench/query.py).

    Exported once from the loaded torch model into the work dir; the export is checked
    against the torch embedding before use, and `build()` returns None (torch is used) if
    anything differs or fails.
    """

    PROBES = ["How do I remove chunks of files I deleted?", "ragtune", "Wer war Nikola Tesla? 1856–1943"]

    def __init__(self, session, tokenizer, max_length: int):
        self.session, self.tokenizer, self.max_length = session, tokenizer, max_length
        self.inputs = [i.name for i in session.get_inputs()]

    def __call__(self, text: str) -> np.ndarray:
        """`text`'s unit-length float32 vector, as `Embedder.embed` would give it."""
        x = self.tokenizer([text], return_tensors="np", truncation=True, max_length=self.max_length)
        hidden = self.session.run(None, {k: x[k].astype(np.int64) for k in self.inputs})[0]
        mask = x["attention_mask"][..., None].astype(np.float32)
        v = (hidden * mask).sum(1) / mask.sum(1)  # mean pooling, as all-MiniLM-L6-v2 does
        return (v / np.linalg.norm(v, axis=1, keepdims=True))[0].astype(np.float32)

    @classmethod
    def build(cls, embedder: Embedder, cache_dir: Path) -> OnnxQueryEncoder | None:
        """The encoder for `embedder`'s model, exported under `cache_dir` on first use; None if it fails or differs."""
        try:
            import onnxruntime as ort

            model = embedder.model
            path = cache_dir / "onnx" / f"{_slug(model)}.onnx"
            if not path.exists():
                _export(model, path)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = min(2, os.cpu_count() or 1)
            opts.log_severity_level = 3
            # No busy-waiting between runs: spinning threads would steal the cores Chroma needs.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            encoder = cls(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]), model.tokenizer, model.max_seq_length)
            reference = embedder.embed(cls.PROBES)
            if min(float(encoder(p) @ r) for p, r in zip(cls.PROBES, reference)) < 0.9999:
                return None  # another pooling or architecture: torch it is
            return encoder
        except Exception:  # no onnx, an unexportable model, a read-only work dir: torch it is
            return None


def _slug(model) -> str:
    """A file name per model from its architecture and first weights: hashing every weight would
    slow each search process's start, and `build()`'s probe check catches the rest."""
    import hashlib

    first = next(model.parameters())
    h = hashlib.sha256(str(model).encode() + first.detach().float().numpy().tobytes()[:65536]).hexdigest()[:16]
    return f"query-encoder-{h}"


def _export(model, path: Path) -> None:
    import torch

    bert = model[0].auto_model.eval()

    class LastHidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    x = model.tokenizer(["a probe sentence"], return_tensors="pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    import warnings

    # Written aside and renamed: a killed export leaves no half-written model behind.
    with replacing(path) as tmp, torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes we fix as dynamic axes
        torch.onnx.export(
            LastHidden(),
            tuple(x[n] for n in names),
            str(tmp),
            input_names=names,
            output_names=["last_hidden_state"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names + ["last_hidden_state"]},
        )
