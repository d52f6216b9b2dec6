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
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from filelock import FileLock

from core.config import ConfigError, to_dict
from core.records import Chunk, Draft, Pair
from core.workdir import datasets_dir, make_workdir, write_json, write_jsonl
from rag.index import Index
from synth import filters, rows
from synth.augment import noisy
from synth.config import SynthConfig

# Settings that do not change what the dataset holds: not part of its identity.
NOT_IDENTITY = ("workdir", "out", "format", "batch_size", "concurrency", "timeout", "retries", "api_key_env")


def synthesize(cfg: SynthConfig, progress: Callable[[str, int, int], None] | None = None) -> dict:
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
    chunks = sorted(index.all_chunks(), key=lambda c: (c.source, c.index, c.id))
    if not chunks:
        raise RuntimeError(f"the index in {workdir} (collection '{cfg.search.index.collection}') is empty: run `ragtune ingest PATH` first")
    out = dataset_dir(cfg, version)
    out.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out / ".lock")):
        _claim(out, cfg, version)
        drafts, settings = _generate(out, cfg, chunks, progress)
        card = _build(out, cfg, chunks, drafts, settings, progress)
    card.update(name=out.name, path=str(out), index_version=version, collection=cfg.search.index.collection,
                elapsed_s=round(time.perf_counter() - t0, 2))
    card["pairs_per_s"] = round(card["pairs"]["total"] / max(card["elapsed_s"], 1e-9), 1)
    _write_json(out / "dataset.json", card)
    return card


def remove_pairs(data: Path, ids: list[str]) -> dict:
    """Drop pairs (and their noisy copies) and their rows from a dataset, and keep them out.

    The ids go to removed.json, which every later `synthesize` into this folder honours, so
    re-running synth does not bring them back. Returns {"pairs": n, "rows": n} removed.
    """
    data = Path(data)
    with FileLock(str(data / ".lock")):
        pairs = [json.loads(line) for line in (data / "pairs.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        gone = {p["id"] for p in pairs} & set(ids)
        dropped = {(p["group"], p["answer"]) for p in pairs if p["id"] in gone and p["kind"] != "noise"}
        gone |= {p["id"] for p in pairs if p["kind"] == "noise" and (p["group"], p["answer"]) in dropped}
        _write_json(data / "removed.json", {"ids": sorted(_removed_ids(data) | gone)})
        left = [p for p in pairs if p["id"] not in gone]
        write_jsonl(data / "pairs.jsonl", left)
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
        card_path = data / "dataset.json"
        if card_path.exists():  # the card counts what the folder holds
            card = _read_json(card_path)
            card.setdefault("filtered", {})["removed"] = card["filtered"].get("removed", 0) + len(gone)
            card["pairs"] = {**card.get("pairs", {}), "total": len(left), **Counter(p["split"] for p in left)}
            _write_json(card_path, card)
    return {"pairs": len(gone), "rows": n_rows}


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
    are rendered with (a template change makes other rows, so another folder)."""
    templates = repr(_templates(cfg))
    return {"config": {k: v for k, v in to_dict(cfg).items() if k not in NOT_IDENTITY}, "index_version": index_version,
            "prompts": hashlib.sha256(templates.encode()).hexdigest()[:16]}


def _claim(out: Path, cfg: SynthConfig, version: str) -> None:
    """Record what this folder is made from; refuse to mix another dataset's drafts into it."""
    mine = _identity(cfg, version)
    path = out / "config.json"
    if path.exists():
        theirs = _read_json(path)
        if theirs != json.loads(json.dumps(mine, default=str)):
            raise ConfigError(f"--out {out} holds a dataset made with other settings or another index; "
                              "choose another --out, or delete the folder to start over")
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
        from synth.generators import build

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
            raise RuntimeError(f"{path}:{n}: not a line ragtune wrote ({type(e).__name__}); delete the dataset folder to start over") from None
    return done


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise RuntimeError(f"{path}: damaged ({type(e).__name__}); delete the dataset folder to start over") from None


# Everything after generation: a pure function of the drafts and the seed ------------------------------


def _build(out: Path, cfg: SynthConfig, chunks: list[Chunk], drafts: dict[str, list[Draft]], gen: dict, progress) -> dict:
    """Filter, split, add distractors and noise, write pairs and rows; return the card."""
    counts: Counter = Counter()
    by_id = {c.id: c for c in chunks}
    kept, checkable, grounded = [], 0, 0
    for c in chunks:
        for d in drafts.get(c.id, []):
            if not d.error:
                checkable += 1
                grounded += filters.grounded(d.answer, c.text, cfg.grounding_overlap)
            reason = filters.check(d, c.text, cfg)
            if reason:
                counts[reason] += 1
            else:
                kept.append(filters.Keyed(d, c.id, f"{c.id}:{d.group}"))
    kept = filters.exact_duplicates(kept, counts)
    embed = _embedder(cfg)
    vectors = embed([k.draft.question for k in kept])
    mask = filters.near_duplicates(kept, vectors, cfg.dedup_threshold, counts)
    kept, vectors = [k for k, m in zip(kept, mask) if m], vectors[mask]
    if cfg.round_trip and kept:
        agree = _round_trip(cfg, kept, by_id)
        counts["round_trip"] += len(kept) - sum(agree)
        kept, vectors = [k for k, a in zip(kept, agree) if a], vectors[[bool(a) for a in agree]]

    removed = _removed_ids(out)
    if removed:
        keep = [_pair_id(k.chunk_id, k.draft.question, k.draft.answer) not in removed for k in kept]
        counts["removed"] += len(kept) - sum(keep)
        kept, vectors = [k for k, m in zip(kept, keep) if m], vectors[keep]

    eval_keys = _eval_keys(cfg, chunks)

    def split_of(chunk: Chunk) -> str:
        return "eval" if (chunk.id if cfg.split_by == "chunk" else chunk.source) in eval_keys else "train"

    distractors = _distractors(cfg, kept, progress)
    pairs = []
    for k in kept:
        c = by_id[k.chunk_id]
        d = k.draft
        pairs.append(Pair(_pair_id(c.id, d.question, d.answer), d.question, d.answer, c.id, c.source, c.page, c.section,
                          gen["name"], gen["settings"], k.group, d.kind, split_of(c), d.evidence, tuple(distractors.get(k.group, ()))))
    pairs += _noise(cfg, pairs)

    templates = _templates(cfg)
    out_rows = {"train": [], "eval": []}
    for p in pairs:
        rng = random.Random(f"{cfg.seed}:{p.id}")
        out_rows[p.split].append(rows.closed_book_row(p, templates))
        oracle, others = by_id[p.chunk_id], [by_id[i] for i in p.distractors]
        if cfg.raft_context == "single":
            out_rows[p.split].append(rows.single_chunk_row(p, oracle, others, templates, rng, cfg.oracle_p, cfg.cot))
        else:
            out_rows[p.split].append(rows.raft_row(p, oracle, others, templates, rng, cfg.oracle_p, cfg.shuffle_context,
                                                   cfg.cot, cfg.max_tokens))
    write_jsonl(out / "pairs.jsonl", [p.to_json() for p in pairs])
    for split, rs in out_rows.items():
        write_jsonl(out / f"{split}.jsonl", rs)
        if cfg.format != "messages":
            write_jsonl(out / f"{split}.{cfg.format}.jsonl", [rows.EXPORTS[cfg.format](r) for r in rs])

    train_v = vectors[[i for i, p in enumerate(pairs[: len(kept)]) if p.split == "train"]]
    eval_v = vectors[[i for i, p in enumerate(pairs[: len(kept)]) if p.split == "eval"]]
    leak_max, leak_mean = filters.max_similarity(eval_v, train_v)
    with_pairs = {p.chunk_id for p in pairs}
    n_drafts = sum(len(v) for v in drafts.values())
    return {
        "generator": gen,
        "config": to_dict(cfg),
        "chunks": {"total": len(chunks), "with_pairs": len(with_pairs), "coverage": round(len(with_pairs) / len(chunks), 4),
                   "eval": sum(split_of(c) == "eval" for c in chunks)},
        "drafts": n_drafts,
        "grounding_rate_before_filters": round(grounded / max(checkable, 1), 4),
        "grounding_rate_after_filters": round(sum(filters.grounded(p.answer, by_id[p.chunk_id].text, cfg.grounding_overlap)
                                                  for p in pairs) / max(len(pairs), 1), 4),
        "filtered": {r: counts[r] for r in filters.REASONS},
        "pairs": {"total": len(pairs), **Counter(p.split for p in pairs), "by_kind": dict(Counter(p.kind for p in pairs)),
                  "groups": len({p.group for p in pairs})},
        "rows": {s: dict(Counter(r["kind"] for r in rs)) for s, rs in out_rows.items()},
        "mean_words": {"question": _mean(len(p.question.split()) for p in pairs), "answer": _mean(len(p.answer.split()) for p in pairs)},
        "raft": {"context": cfg.raft_context, "distractors": cfg.distractors, "oracle_p": cfg.oracle_p, "max_tokens": cfg.max_tokens,
                 "oracle_in_context": _mean(r["oracle_in_context"] for rs in out_rows.values() for r in rs if r["kind"] == "raft"),
                 "mean_chunks": _mean(r["chunks"] for rs in out_rows.values() for r in rs if r["kind"] == "raft")},
        "leakage": {"split_by": cfg.split_by, "max_eval_train_similarity": round(leak_max, 4), "mean_best_similarity": round(leak_mean, 4)},
    }


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
    from rag.retrieve import Retriever

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
            out.append(Pair(_pair_id(p.chunk_id, q, p.answer), q, p.answer, p.chunk_id, p.source, p.page, p.section,
                            p.generator, p.settings, p.group, "noise", p.split, p.evidence, p.distractors))
    return out


def _round_trip(cfg: SynthConfig, kept: list, by_id: dict) -> list[bool]:
    """Does the engine, reading the oracle chunk alone in rag mode, give (about) the pair's answer?"""
    from core.config import load_config
    from core.records import Hit
    from engine.answer import Answerer
    from engine.cite import strip
    from engine.config import AskConfig
    from evals.metrics import score

    answerer = Answerer(load_config(AskConfig, {"workdir": str(cfg.workdir), "model.model": cfg.llm.model, "prompts": cfg.prompts}))
    answers = answerer.answer_batch([k.draft.question for k in kept], "rag", hits=[[Hit(by_id[k.chunk_id], 1.0, 1)] for k in kept])
    return [score(a.span or strip(a.text), [k.draft.answer]).f1 >= 50 for a, k in zip(answers, kept)]  # a factoid's span, not its quote


def _embedder(cfg: SynthConfig):
    from rag.embed import load_embedder

    ix = cfg.search.index
    return load_embedder(ix.embedding_model, ix.embed_precision, ix.embed_batch_size).embed


def _templates(cfg: SynthConfig):
    from engine.prompts import load_templates

    return load_templates(cfg.prompts)


def _pair_id(chunk_id: str, question: str, answer: str) -> str:
    return hashlib.sha256(f"{chunk_id}\x00{question}\x00{answer}".encode()).hexdigest()[:16]


def _mean(xs) -> float:
    xs = list(xs)
    return round(sum(xs) / len(xs), 3) if xs else 0.0


def _write_json(path: Path, data: dict) -> None:
    """A JSON file of the dataset folder: indented, UTF-8, atomic."""
    write_json(path, data, indent=1, ensure_ascii=False, default=str)
