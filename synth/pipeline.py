"""`synthesize(cfg) -> card`: every chunk of the index into a dataset folder, resumably.

    <workdir>/datasets/<generator>-<hash>/
        config.json      the settings and the index version it was made from
        drafts.jsonl     one line per chunk: what the generator drew from it (appended, fsynced)
        pairs.jsonl      the pairs that passed the filters, with their split and distractors
        train.jsonl      training rows in OpenAI `messages` form (closed-book and RAFT)
        eval.jsonl       the same for the held-out chunks
        train.<format>.jsonl, eval.<format>.jsonl   with --format alpaca | sharegpt
        dataset.json     the card: counts per generator, filter, split and kind; lengths; leakage
        removed.json     pairs removed by hand (the app's Dataset tab): they stay out on every re-run

Generation is the slow stage, so it is the one that resumes: a re-run skips the chunks whose
line is already in drafts.jsonl. Everything after it is a deterministic function of the drafts
and the seed, recomputed and written atomically on each run, so re-running never duplicates a
row. The folder's name hashes the settings and the index version, so the same command finds
its own folder again.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from filelock import FileLock

from ragtune.core.config import ConfigError, to_dict
from ragtune.core.records import Chunk, DatasetCard, Draft, Pair
from ragtune.core.workdir import datasets_dir, make_workdir, write_json, write_jsonl
from ragtune.rag.index import Index
from ragtune.synth import filters, rows
from ragtune.synth.augment import noisy
from ragtune.synth.config import SynthConfig
from ragtune.synth.cross import KIND as CROSS
from ragtune.synth.cross import cross_pairs

# Settings that do not change what the dataset holds: not part of its identity.
NOT_IDENTITY = ("workdir", "out", "format", "batch_size", "concurrency", "timeout", "retries", "api_key_env")


def synthesize(cfg: SynthConfig, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """`synthesize_card`'s card as plain data, as dataset.json holds it."""
    return synthesize_card(cfg, progress).to_json()


def synthesize_card(cfg: SynthConfig, progress: Callable[[str, int, int], None] | None = None) -> DatasetCard:
    """Generate, filter, split and write the dataset; return its card (also in dataset.json).

    `progress(stage, done, total)` is called as chunks are generated and groups retrieved.
    Raises RuntimeError for an empty index or a generator that fails (the chunks already
    written are kept: the next run resumes after them).
    """
    t0 = time.perf_counter()
    progress = progress or (lambda *_: None)
    workdir = make_workdir(cfg.workdir)
    index = Index(cfg.search.index, workdir)
    version = index.load_manifest().get("version", "")
    every = sorted(index.all_chunks(), key=lambda c: (c.source, c.index, c.id))
    if not every:
        raise RuntimeError(f"the index in {workdir} (collection '{cfg.search.index.collection}') is empty: run `ragtune ingest PATH` first")
    chunks = [c for c in every if not c.boilerplate]  # cover pages, certifications: nothing worth asking (rag/boilerplate.py)
    if not chunks:
        raise RuntimeError(f"the index in {workdir} holds only boilerplate (cover pages, certifications, notices): nothing to ask about")
    out = dataset_dir(cfg, version)
    out.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out / ".lock")):
        _claim(out, cfg, version)
        drafts, settings = _generate(out, cfg, chunks, progress)
        card = _build(out, cfg, chunks, drafts, settings, progress, every)
    elapsed = round(time.perf_counter() - t0, 2)
    card = replace(
        card,
        name=out.name,
        path=str(out),
        index_version=version,
        collection=cfg.search.index.collection,
        elapsed_s=elapsed,
        pairs_per_s=round(card.pairs["total"] / max(elapsed, 1e-9), 1),
    )
    _write_json(out / "dataset.json", card.to_json())
    return card


def read_pairs(data: Path, limit: int | None = None) -> list[Pair]:
    """The pairs of a dataset folder (its pairs.jsonl), the first `limit` of them if given."""
    path = Path(data) / "pairs.jsonl"
    pairs = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if limit is not None and len(pairs) >= limit:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                pairs.append(Pair.from_json(row))
            except ValueError as e:
                raise RuntimeError(f"{path}:{n}: {e}") from None
    return pairs


def remove_pairs(data: Path, ids: list[str]) -> dict:
    """Drop pairs (and their noisy and cross copies) and their rows from a dataset, and keep them out.

    The ids go to removed.json, which every later `synthesize` into this folder honours, so
    re-running synth does not bring them back. Returns {"pairs": n, "rows": n} removed.
    """
    data = Path(data)
    with FileLock(str(data / ".lock")):
        pairs = read_pairs(data)
        gone = {p.id for p in pairs} & set(ids)
        copies = ("noise", CROSS)
        dropped = {(p.group, p.answer) for p in pairs if p.id in gone and p.kind not in copies}
        gone |= {p.id for p in pairs if p.kind in copies and (p.group, p.answer) in dropped}
        _write_json(data / "removed.json", {"ids": sorted(_removed_ids(data) | gone)})
        left = [p for p in pairs if p.id not in gone]
        write_jsonl(data / "pairs.jsonl", [p.to_json() for p in left])
        n_rows = _remove_rows(data, gone)
        card_path = data / "dataset.json"
        if card_path.exists():  # the card counts what the folder holds
            _write_json(card_path, _recount(_read_card(card_path), len(gone), left).to_json())
    return {"pairs": len(gone), "rows": n_rows}


def _remove_rows(data: Path, gone: set[str]) -> int:
    """Drop the rows of removed pairs from every split and export; the number of training rows dropped."""
    n_rows = 0
    for split in ("train", "eval"):
        for name in [f"{split}.jsonl"] + [f"{split}.{fmt}.jsonl" for fmt in rows.EXPORTS]:
            file = data / name
            if not file.exists():
                continue
            records = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
            kept = [r for r in records if r.get("pair_id") not in gone]
            n_rows += (len(records) - len(kept)) * (name == f"{split}.jsonl")
            write_jsonl(file, kept)
    return n_rows


def _recount(card: DatasetCard, n_removed: int, left: list[Pair]) -> DatasetCard:
    """The card after a removal: the removed count grows, the pair counts are those left."""
    return replace(
        card,
        filtered={**card.filtered, "removed": card.filtered.get("removed", 0) + n_removed},
        pairs={**card.pairs, "total": len(left), **Counter(p.split for p in left)},
    )


def _removed_ids(data: Path) -> set[str]:
    """The ids of pairs removed by hand from this dataset folder (removed.json)."""
    path = data / "removed.json"
    return set(_read_json(path).get("ids", [])) if path.exists() else set()


def dataset_dir(cfg: SynthConfig, index_version: str) -> Path:
    """--out, else <workdir>/datasets/<generator>-<hash of the settings, index version and prompts>."""
    if cfg.out:
        return Path(cfg.out).expanduser()
    digest = hashlib.sha256(json.dumps(_identity(cfg, index_version), sort_keys=True, default=str).encode()).hexdigest()[:10]
    return datasets_dir(make_workdir(cfg.workdir)) / f"{cfg.generator}-{digest}"


def _identity(cfg: SynthConfig, index_version: str) -> dict:
    """What the dataset is made from: its settings, the index, and the prompt templates its rows
    are rendered with (a template change makes other rows, so another folder). `adapter_examples`
    is left out: it is read when answering, and rows never hold the examples (synth/rows.py)."""
    templates = repr(replace(_templates(cfg), adapter_examples=False))
    return {
        "config": {k: v for k, v in to_dict(cfg).items() if k not in NOT_IDENTITY},
        "index_version": index_version,
        "rows": rows.VERSION,
        "prompts": hashlib.sha256(templates.encode()).hexdigest()[:16],
    }


def _claim(out: Path, cfg: SynthConfig, version: str) -> None:
    """Record what this folder is made from; refuse to mix another dataset's drafts into it."""
    mine = _identity(cfg, version)
    path = out / "config.json"
    if path.exists():
        theirs = _read_json(path)
        if theirs != json.loads(json.dumps(mine, default=str)):
            raise ConfigError(
                f"--out {out} holds a dataset made with other settings or another index; "
                "choose another --out, or delete the folder to start over"
            )
    else:
        _write_json(path, mine)


# Generation: resumable, one line per chunk --------------------------------------------------------


def _generate(out: Path, cfg: SynthConfig, chunks: list[Chunk], progress) -> tuple[dict[str, list[Draft]], dict]:
    """Drafts for every chunk, generating only those not yet in drafts.jsonl; each batch is fsynced."""
    path = out / "drafts.jsonl"
    done = _read_drafts(path)
    settings_path = out / "generator.json"
    todo = [c for c in chunks if c.id not in done]
    progress("generate", len(chunks) - len(todo), len(chunks))
    if todo:
        from ragtune.synth.generators import build

        generator = build(cfg)
        with path.open("a", encoding="utf-8") as f:
            for start in range(0, len(todo), cfg.batch_size):
                batch = todo[start : start + cfg.batch_size]
                for chunk, drafts in zip(batch, generator.generate(batch)):
                    f.write(json.dumps({"chunk_id": chunk.id, "drafts": [asdict(d) for d in drafts]}, ensure_ascii=False) + "\n")
                    done[chunk.id] = drafts
                f.flush()
                os.fsync(f.fileno())
                progress("generate", len(chunks) - len(todo) + start + len(batch), len(chunks))
        _write_json(settings_path, {"name": generator.name, "settings": generator.settings})
    gen = _read_json(settings_path) if settings_path.exists() else {"name": cfg.generator, "settings": {}}
    return done, gen


def _read_drafts(path: Path) -> dict[str, list[Draft]]:
    """The chunks already generated. A last line torn by a kill is cut off, so appends stay whole."""
    done: dict[str, list[Draft]] = {}
    if not path.exists():
        return done
    data = path.read_bytes()
    good = data.rfind(b"\n") + 1
    if good < len(data):
        with path.open("r+b") as f:
            f.truncate(good)
    for n, line in enumerate(data[:good].decode("utf-8", errors="replace").splitlines(), 1):
        try:
            rec = json.loads(line)
            done[rec["chunk_id"]] = [Draft(**d) for d in rec["drafts"]]
        except (ValueError, KeyError, TypeError) as e:
            raise RuntimeError(
                f"{path}:{n}: not a line ragtune wrote ({type(e).__name__}); delete the dataset folder to start over"
            ) from None
    return done


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise RuntimeError(f"{path}: damaged ({type(e).__name__}); delete the dataset folder to start over") from None


def _read_card(path: Path) -> DatasetCard:
    try:
        return DatasetCard.from_json(_read_json(path))
    except ValueError as e:
        raise RuntimeError(f"{path}: {e}; delete the dataset folder to start over") from None


# Everything after generation: a pure function of the drafts and the seed ------------------------------


@dataclass
class _Kept:
    """The drafts that passed every filter, their questions' vectors, and what the filters dropped."""

    keyed: list[filters.Keyed]
    vectors: np.ndarray  # a row per kept draft, for the near-duplicate filter and the leakage check
    counts: Counter  # drops per reason of filters.REASONS
    grounding_rate: float  # of the parseable drafts, before any filter


def _build(
    out: Path, cfg: SynthConfig, chunks: list[Chunk], drafts: dict[str, list[Draft]], gen: dict, progress, every: list[Chunk] | None = None
) -> DatasetCard:
    """Filter, split, add distractors and noise, write pairs and rows; return the card.

    `chunks` are those asked about; `every` chunk of the index (boilerplate too) may be a distractor.
    """
    by_id = {c.id: c for c in every or chunks}
    kept = _filter(out, cfg, chunks, drafts, by_id)
    splits = _splits(cfg, chunks)
    pairs = _pairs(cfg, kept.keyed, by_id, splits, gen, progress)
    out_rows = _rows(cfg, pairs, by_id)
    _write_dataset(out, cfg, pairs, out_rows)
    card = _card(cfg, chunks, drafts, gen, kept, splits, pairs, out_rows)
    return replace(card, chunks={**card.chunks, "boilerplate": len(every or chunks) - len(chunks)})


def _filter(out: Path, cfg: SynthConfig, chunks: list[Chunk], drafts: dict[str, list[Draft]], by_id: dict[str, Chunk]) -> _Kept:
    """Each draft through the per-draft checks, then duplicates, the round trip and the pairs removed by hand."""
    counts: Counter = Counter()
    keyed, checkable, grounded = [], 0, 0
    for c in chunks:
        for d in drafts.get(c.id, []):
            if not d.error:
                checkable += 1
                grounded += filters.grounded(d.answer, c.text, cfg.grounding_overlap)
            reason = filters.check(d, c.text, cfg)
            if reason:
                counts[reason] += 1
            else:
                keyed.append(filters.Keyed(d, c.id, f"{c.id}:{d.group}"))
    keyed = filters.exact_duplicates(keyed, counts)
    vectors = _embedder(cfg)([k.draft.question for k in keyed])
    keyed, vectors = _keep(keyed, vectors, filters.near_duplicates(keyed, vectors, cfg.dedup_threshold, counts))
    if cfg.round_trip and keyed:
        agree = _round_trip(cfg, keyed, by_id)
        counts["round_trip"] += len(keyed) - sum(agree)
        keyed, vectors = _keep(keyed, vectors, [bool(a) for a in agree])
    removed = _removed_ids(out)
    if removed:
        mask = [_pair_id(k.chunk_id, k.draft.question, k.draft.answer) not in removed for k in keyed]
        counts["removed"] += len(keyed) - sum(mask)
        keyed, vectors = _keep(keyed, vectors, mask)
    return _Kept(keyed, vectors, counts, round(grounded / max(checkable, 1), 4))


def _keep(keyed: list, vectors: np.ndarray, mask) -> tuple[list, np.ndarray]:
    return [k for k, m in zip(keyed, mask) if m], vectors[mask]


def _splits(cfg: SynthConfig, chunks: list[Chunk]) -> dict[str, str]:
    """Each chunk's split by its id: eval for the held-out chunks (or documents), else train."""
    eval_keys = _eval_keys(cfg, chunks)
    return {c.id: "eval" if (c.id if cfg.split_by == "chunk" else c.source) in eval_keys else "train" for c in chunks}


def _pairs(cfg: SynthConfig, keyed: list, by_id: dict[str, Chunk], splits: dict[str, str], gen: dict, progress) -> list[Pair]:
    """A pair per kept draft, with its split and hard distractors; then the facts asked in another
    sentence's words (synth/cross.py) and the noisy copies."""
    distractors = _distractors(cfg, keyed, progress)
    pairs = []
    for k in keyed:
        c, d = by_id[k.chunk_id], k.draft
        pairs.append(
            Pair(
                _pair_id(c.id, d.question, d.answer),
                d.question,
                d.answer,
                c.id,
                c.source,
                c.page,
                c.section,
                gen["name"],
                gen["settings"],
                k.group,
                d.kind,
                splits[c.id],
                d.evidence,
                tuple(distractors.get(k.group, ())),
            )
        )
    return pairs + (cross_pairs(pairs, _pair_id) if cfg.cross_questions else []) + _noise(cfg, pairs)


def _rows(cfg: SynthConfig, pairs: list[Pair], by_id: dict[str, Chunk]) -> dict[str, list[dict]]:
    """Training rows per split: each pair closed-book, and with its context (RAFT or a single chunk)."""
    templates = _templates(cfg)
    out = {"train": [], "eval": []}
    for p in pairs:
        rng = random.Random(f"{cfg.seed}:{p.id}")
        if p.kind != CROSS:  # its question and answer are its partner's: the same closed-book row again
            out[p.split].append(rows.closed_book_row(p, templates))
        oracle, others = by_id[p.chunk_id], [by_id[i] for i in p.distractors]
        if cfg.raft_context == "single":
            row = rows.single_chunk_row(p, oracle, others, templates, rng, cfg.oracle_p, cfg.cot)
        else:
            row = rows.raft_row(p, oracle, others, templates, rng, cfg.oracle_p, cfg.shuffle_context, cfg.cot, cfg.max_tokens)
        out[p.split].append({**row, "reader": rows.reader_chunks(p, oracle, others)})
    return out


def _write_dataset(out: Path, cfg: SynthConfig, pairs: list[Pair], out_rows: dict[str, list[dict]]) -> None:
    """pairs.jsonl, and each split's rows: as messages, and in --format if another."""
    write_jsonl(out / "pairs.jsonl", [p.to_json() for p in pairs])
    for split, rs in out_rows.items():
        write_jsonl(out / f"{split}.jsonl", rs)
        if cfg.format != "messages":
            write_jsonl(out / f"{split}.{cfg.format}.jsonl", [rows.EXPORTS[cfg.format](r) for r in rs])


def _card(
    cfg: SynthConfig,
    chunks: list[Chunk],
    drafts: dict[str, list[Draft]],
    gen: dict,
    kept: _Kept,
    splits: dict[str, str],
    pairs: list[Pair],
    out_rows: dict[str, list[dict]],
) -> DatasetCard:
    """The card of a fresh build; where the folder is and how long it took are set by `synthesize_card`."""
    text = {c.id: c.text for c in chunks}
    originals = pairs[: len(kept.keyed)]  # the kept drafts' pairs, row for row with their vectors; noise follows
    train_v = kept.vectors[[i for i, p in enumerate(originals) if p.split == "train"]]
    eval_v = kept.vectors[[i for i, p in enumerate(originals) if p.split == "eval"]]
    leak_max, leak_mean = filters.max_similarity(eval_v, train_v)
    with_pairs = {p.chunk_id for p in pairs}
    raft_rows = [r for rs in out_rows.values() for r in rs if r["kind"] == "raft"]
    return DatasetCard(
        generator=gen,
        config=to_dict(cfg),
        chunks={
            "total": len(chunks),
            "with_pairs": len(with_pairs),
            "coverage": round(len(with_pairs) / len(chunks), 4),
            "eval": sum(s == "eval" for s in splits.values()),
        },
        drafts=sum(len(v) for v in drafts.values()),
        grounding_rate_before_filters=kept.grounding_rate,
        grounding_rate_after_filters=round(
            sum(filters.grounded(p.answer, text[p.chunk_id], cfg.grounding_overlap) for p in pairs) / max(len(pairs), 1), 4
        ),
        filtered={r: kept.counts[r] for r in filters.REASONS},
        pairs={
            "total": len(pairs),
            **Counter(p.split for p in pairs),
            "by_kind": dict(Counter(p.kind for p in pairs)),
            "groups": len({p.group for p in pairs}),
        },
        rows={s: dict(Counter(r["kind"] for r in rs)) for s, rs in out_rows.items()},
        mean_words={"question": _mean(len(p.question.split()) for p in pairs), "answer": _mean(len(p.answer.split()) for p in pairs)},
        raft={
            "context": cfg.raft_context,
            "distractors": cfg.distractors,
            "oracle_p": cfg.oracle_p,
            "max_tokens": cfg.max_tokens,
            "oracle_in_context": _mean(r["oracle_in_context"] for r in raft_rows),
            "mean_chunks": _mean(r["chunks"] for r in raft_rows),
        },
        leakage={"split_by": cfg.split_by, "max_eval_train_similarity": round(leak_max, 4), "mean_best_similarity": round(leak_mean, 4)},
    )


def _eval_keys(cfg: SynthConfig, chunks: list[Chunk]) -> set[str]:
    """The chunks (or documents) held out: a seeded, exact share F of them, at least one if F > 0."""
    keys = sorted({c.id if cfg.split_by == "chunk" else c.source for c in chunks})
    n = round(cfg.eval_fraction * len(keys))
    if cfg.eval_fraction > 0 and len(keys) > 1:
        n = max(n, 1)
    keys.sort(key=lambda k: hashlib.sha256(f"{cfg.seed}:{k}".encode()).hexdigest())
    return set(keys[:n])


def _distractors(cfg: SynthConfig, kept: list, progress) -> dict[str, list[str]]:
    """Hard distractors per fact: what the real retriever returns for its question, oracle excluded."""
    if cfg.distractors == 0 or not kept:
        return {}
    from ragtune.rag.retrieve import Retriever

    retriever = Retriever(cfg.search)
    first = {}
    for k in kept:
        first.setdefault(k.group, k)
    out = {}
    for n, (group, k) in enumerate(first.items(), 1):
        hits = retriever.search(k.draft.question, cfg.distractors + 1)
        out[group] = [h.chunk.id for h in hits if h.chunk.id != k.chunk_id][: cfg.distractors]
        if n % 50 == 0 or n == len(first):
            progress("distractors", n, len(first))
    return out


def _noise(cfg: SynthConfig, pairs: list[Pair]) -> list[Pair]:
    """Noisy copies of a share `noise` of the train questions (never of eval: it must stay clean)."""
    if not cfg.noise:
        return []
    out = []
    for p in pairs:
        rng = random.Random(f"{cfg.seed}:noise:{p.id}")
        if p.split == "train" and p.kind == "original" and rng.random() < cfg.noise:
            q = noisy(p.question, p.answer, rng.choice(cfg.noise_kinds), rng)
            out.append(
                Pair(
                    _pair_id(p.chunk_id, q, p.answer),
                    q,
                    p.answer,
                    p.chunk_id,
                    p.source,
                    p.page,
                    p.section,
                    p.generator,
                    p.settings,
                    p.group,
                    "noise",
                    p.split,
                    p.evidence,
                    p.distractors,
                )
            )
    return out


def _round_trip(cfg: SynthConfig, kept: list, by_id: dict) -> list[bool]:
    """Does the engine, reading the oracle chunk alone in rag mode, give (about) the pair's answer?"""
    from ragtune.core.config import load_config
    from ragtune.core.records import Hit
    from ragtune.engine.answer import Answerer
    from ragtune.engine.cite import strip
    from ragtune.engine.config import AskConfig
    from ragtune.evals.metrics import score

    answerer = Answerer(load_config(AskConfig, {"workdir": str(cfg.workdir), "model.model": cfg.llm.model, "prompts": cfg.prompts}))
    answers = answerer.answer_batch([k.draft.question for k in kept], "rag", hits=[[Hit(by_id[k.chunk_id], 1.0, 1)] for k in kept])
    return [score(a.span or strip(a.text), [k.draft.answer]).f1 >= 50 for a, k in zip(answers, kept)]  # a factoid's span, not its quote


def _embedder(cfg: SynthConfig):
    from ragtune.rag.embed import load_embedder

    ix = cfg.search.index
    return load_embedder(ix.embedding_model, ix.embed_precision, ix.embed_batch_size).embed


def _templates(cfg: SynthConfig):
    from ragtune.engine.prompts import load_templates

    return load_templates(cfg.prompts)


def _pair_id(chunk_id: str, question: str, answer: str) -> str:
    return hashlib.sha256(f"{chunk_id}\x00{question}\x00{answer}".encode()).hexdigest()[:16]


def _mean(xs) -> float:
    xs = list(xs)
    return round(sum(xs) / len(xs), 3) if xs else 0.0


def _write_json(path: Path, data: dict) -> None:
    """A JSON file of the dataset folder: indented, UTF-8, atomic."""
    write_json(path, data, indent=1, ensure_ascii=False, default=str)
