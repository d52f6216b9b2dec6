"""Answers a user can use: rag answers by question type, against the obvious baseline.

    python bench/answers.py                                   # the sample corpus, packaged model, span reader
    python bench/answers.py --model /tmp/ggufs/qwen.gguf --reader spans,generate
    python bench/answers.py --long --limit 200 --seed 0       # SQuAD dev: the answer's sentence as the reference
    python bench/answers.py --long --adapter DIR              # and ft-rag with a trained adapter beside rag

The sample corpus (sample/docs) is ingested into --workdir first (skipped when unchanged) and
asked its 28 factoid questions (sample/questions.jsonl) and its open ones
(sample/open_questions.jsonl, with key facts). Each model answers in the rag mode with each
reader: `spans` (the span reader: a quoted span, or cited sentences for an open question) or
`generate` (the model writes, citing the chunks). The baseline, from the same retrieved chunks,
is the two sentences of the top two chunks that share the most words with the question
(engine/extract.baseline). Two ceilings bound what any extractive answer can reach from the same
chunks: the chunks whole, and the best sentences within the answer's limits. Also printed: the question classifier's agreement with each set's
type, each model's writing probe (engine/probe.py, what `rag_answer: auto` decides by) and its
generation speed. Columns: `cited` is the share of answers citing any chunk, `prec` the mean
share of cited chunks holding a key fact or the gold answer, `keycit` the share of answers
citing at least one such chunk; a written answer's citations include those attributed by
engine/cite.attribute, and the line below its row says how many the model wrote itself.

--long asks SQuAD dev questions instead; each one's long reference is the sentence of the
articles that holds its gold answer and shares most words with the question.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "eval" / "squad"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=None, help="default: /tmp/ragtune-bench-sample, or -squad with --long")
    ap.add_argument("--model", default="packaged", help="comma-separated: packaged, HF folders or .gguf files")
    ap.add_argument("--reader", default="spans", help="comma-separated: spans, generate")
    ap.add_argument("--long", action="store_true", help="SQuAD dev questions, scored against the answer's sentence")
    ap.add_argument("--limit", type=int, default=200, help="--long: questions asked")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=None, help="chunks retrieved; default: configs/ask.yaml's k")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--sets", default="factoid,open", help="of the sample's: factoid, open")
    ap.add_argument("--adapter", help="also answer in ft-rag with this adapter, from the same chunks")
    ap.add_argument("--show", type=int, default=0, help="print this many open answers per run")
    args = ap.parse_args()

    from ragtune.core import offline

    offline.setup()
    from ragtune.core.config import load_config
    from ragtune.rag.config import IngestConfig
    from ragtune.rag.ingest import ingest

    workdir = args.workdir or f"/tmp/ragtune-bench-{'squad' if args.long else 'sample'}"
    docs = SQUAD / "docs" if args.long else ROOT / "sample" / "docs"
    print(f"ingesting {docs} into {workdir} ...", flush=True)
    ingest(load_config(IngestConfig, {"paths": [str(docs)], "workdir": workdir}))
    sets = (
        _squad_long(workdir, args.limit, args.seed) if args.long else {k: v for k, v in _sample_sets().items() if k in args.sets.split(",")}
    )
    _classifier_table(sets)

    for model in args.model.split(","):
        _bench_model(model, args, workdir, sets)


# The question sets -------------------------------------------------------------------------------


def _sample_sets() -> dict[str, list[dict]]:
    read = lambda name: [json.loads(line) for line in (ROOT / "sample" / name).read_text().splitlines() if line.strip()]
    return {"factoid": read("questions.jsonl"), "open": read("open_questions.jsonl")}


def _squad_long(workdir: str, limit: int, seed: int) -> dict[str, list[dict]]:
    """SQuAD dev questions whose long reference is the sentence that holds the gold answer."""
    from ragtune.core.config import load_config
    from ragtune.core.text import normalize
    from ragtune.engine.spans import _nlp
    from ragtune.rag.config import SearchConfig
    from ragtune.rag.index import Index

    rows = [json.loads(line) for line in (SQUAD / "questions.jsonl").read_text().splitlines() if line.strip()]
    sample = random.Random(seed).sample(rows, min(limit, len(rows)))
    cfg = load_config(SearchConfig, {"workdir": workdir})
    sentences = [s.text.strip() for c in Index(cfg.index, Path(workdir)).all_chunks() for s in _nlp()(" ".join(c.text.split())).sents]
    normed = [normalize(s) for s in sentences]
    out = []
    for r in sample:
        golds = [normalize(a) for a in r["answers"] if normalize(a)]
        asked = set(normalize(r["question"]).split())
        holding = [i for i, s in enumerate(normed) if any(f" {g} " in f" {s} " for g in golds)]
        if holding:
            best = max(holding, key=lambda i: len(asked & set(normed[i].split())))
            out.append({**r, "short": r["answers"], "answers": [sentences[best]]})
    print(f"--long: {len(out)} of {len(sample)} SQuAD questions (seed {seed}) have a sentence holding their answer")
    return {"long": out}


def _classifier_table(sets: dict[str, list[dict]]) -> None:
    """How often engine/qtype.py gives each set its own type (SQuAD's questions are all factoid)."""
    from ragtune.engine.qtype import classify

    print("\nquestion classifier (engine/qtype.py)")
    squad = [json.loads(line)["question"] for line in (SQUAD / "questions.jsonl").read_text().splitlines() if line.strip()]
    named = {**{k: [q["question"] for q in v] for k, v in sets.items() if k != "long"}, "squad-dev (factoid)": squad}
    for name, questions in named.items():
        want = "open" if name == "open" else "factoid"
        hits = sum(classify(q).kind == want for q in questions)
        print(f"  {name:<22} {hits}/{len(questions)} classified {want} ({100 * hits / len(questions):.1f}%)")


# One model ---------------------------------------------------------------------------------------


def _bench_model(model: str, args, workdir: str, sets: dict[str, list[dict]]) -> None:
    from ragtune.core.config import load_config
    from ragtune.engine import probe
    from ragtune.engine.answer import Answerer
    from ragtune.engine.config import AskConfig
    from ragtune.engine.generate import Engine

    k = {"k": args.k} if args.k else {}
    base_cfg = load_config(AskConfig, {"workdir": workdir, "model.model": model, "model.dtype": args.dtype, **k})
    print(f"\nmodel {model}: loading ...", flush=True)
    engine = Engine(base_cfg.model)
    answerer = Answerer(base_cfg, engine)
    score = probe.run(engine, answerer.templates)
    print(
        f"model {model}: {engine.n_params / 1e6:.0f}M params, writing probe {score:.2f} "
        f"(auto: {'generate' if score >= probe.PASS_MARK else 'spans'}), {_tokens_per_s(engine):.1f} tokens/s generated"
    )
    retriever = answerer.retriever
    hits = {name: [retriever.search(q["question"], base_cfg.k) for q in qs] for name, qs in sets.items()}
    print(
        f"\n{'run':<24} {'set':<8} {'n':>4} {'F1':>6} {'keys':>6} {'tokF1':>6} {'tokRec':>6} {'cited':>6} {'prec':>5} "
        f"{'keycit':>7} {'words':>6} {'<=3w':>5} {'p50 s':>6}"
    )
    for name, qs in sets.items():
        _print_row("baseline", name, [_baseline(q, h) for q, h in zip(qs, hits[name])], qs)
    for name, qs in ((n, qs) for n, qs in sets.items() if any(q.get("keys") for q in qs)):
        _print_row("ceiling: chunks", name, [_chunks(h) for h in hits[name]], qs)
        _print_row("ceiling: best sentences", name, [_best_sentences(q, h, base_cfg.spans) for q, h in zip(qs, hits[name])], qs)
    for reader in args.reader.split(","):
        cfg = load_config(
            AskConfig,
            {
                "workdir": workdir,
                "model.model": model,
                "model.dtype": args.dtype,
                **k,
                "rag_answer": reader,
                "decoding.max_new_tokens": 96,
                **({"adapter": args.adapter} if args.adapter else {}),
            },
        )
        run = Answerer(cfg, engine, retriever)
        for mode, name in ((m, n) for m in ("rag", "ft-rag")[: 1 + bool(args.adapter)] for n in sets):
            qs, answers = sets[name], []
            for q, h in zip(qs, hits[name]):
                t0 = time.perf_counter()
                a = run.answer_batch([q["question"]], mode, hits=[h])[0]
                answers.append((a, time.perf_counter() - t0))
            _print_row(reader if mode == "rag" else f"{reader} ft-rag", name, answers, qs)
            if reader == "generate":
                _print_attribution(answers)
            for (a, _), q in list(zip(answers, qs))[: args.show if name != "factoid" else 0]:
                print(f"      Q: {q['question']}\n      A: {a.text}")


def _print_attribution(answers: list) -> None:
    """How many written answers cite a chunk themselves, and how many only through engine/cite.attribute."""
    from ragtune.engine.cite import MARKER

    own = sum(len(MARKER.findall(a.text)) > a.attributed_citations for a, _ in answers)
    added = sum(a.attributed_citations > 0 for a, _ in answers)
    print(f"{'':<24} the model cites in {own} of {len(answers)} answers; {added} gained attributed citations")


def _baseline(q: dict, hits) -> tuple:
    from types import SimpleNamespace

    from ragtune.engine.extract import baseline

    t0 = time.perf_counter()
    text = baseline(q["question"], hits)
    sources = [SimpleNamespace(chunk_id=h.chunk.id, text=h.chunk.text) for h in hits]
    return SimpleNamespace(text=text, span="", citations=sources[:2], sources=sources), time.perf_counter() - t0  # it quotes the top two


def _chunks(hits) -> tuple:
    """What an extractive answer could hold at most: the retrieved chunks whole."""
    from types import SimpleNamespace

    sources = [SimpleNamespace(chunk_id=h.chunk.id, text=h.chunk.text) for h in hits]
    return SimpleNamespace(text="\n".join(h.chunk.text for h in hits), span="", citations=sources, sources=sources), 0.0


def _best_sentences(q: dict, hits, cfg) -> tuple:
    """An oracle within the open answer's limits: of every choice of up to `max_sentences`
    sentences of the chunks within `max_words`, the one holding most key facts (the fewest
    chunks cited on ties). It reads the keys, so it bounds what any sentence ranker can reach."""
    from itertools import combinations
    from types import SimpleNamespace

    from ragtune.engine.extract import split_sentences
    from ragtune.evals import metrics as M

    keys = [list(k) for k in q["keys"]]
    sents = split_sentences(hits, q["question"])
    choices = [
        c for n in range(1, cfg.max_sentences + 1) for c in combinations(sents, n) if n == 1 or sum(s.words for s in c) <= cfg.max_words
    ]
    best = max(choices, key=lambda c: (M.key_recall(" ".join(s.text for s in c), keys), -len({s.hit for s in c})), default=())
    sources = [SimpleNamespace(chunk_id=h.chunk.id, text=h.chunk.text) for h in hits]
    return SimpleNamespace(
        text=" ".join(s.text for s in best), span="", citations=[sources[h] for h in sorted({s.hit for s in best})], sources=sources
    ), 0.0


def _print_row(run: str, name: str, answers: list, qs: list[dict]) -> None:
    from ragtune.evals import metrics as M

    f1, keys, tf, tr, cited, prec, keycited, words, short, lat = [], [], [], [], [], [], [], [], [], []
    for (a, seconds), q in zip(answers, qs):
        text = _strip(a.text)
        golds = q.get("short", q["answers"])
        f1.append(M.score(a.span or text, golds).f1)
        if q.get("keys"):
            keys.append(M.key_recall(a.text, [list(k) for k in q["keys"]]))
        tf.append(M.token_f1(a.text, q["answers"]) or 0.0)
        tr.append(M.token_recall(a.text, q["answers"]) or 0.0)
        texts = {s.chunk_id: s.text for s in a.sources}
        chunks = [texts[c.chunk_id] for c in a.citations if c.chunk_id in texts]
        cited.append(bool(chunks))
        p = M.citation_precision(chunks, [list(k) for k in q.get("keys", [])], golds) if chunks else None
        if p is not None:
            prec.append(p)
        keycited.append(bool(p))  # cites at least one chunk that holds a key fact or the gold answer
        words.append(M.words(a.text))
        short.append(M.words(a.text) <= 3 and "know" not in a.text.lower())
        lat.append(seconds)
    mean = lambda xs: f"{statistics.mean(xs):6.1f}" if xs else f"{'-':>6}"
    print(
        f"{run:<24} {name:<8} {len(qs):>4} {mean(f1)} {mean(keys)} {mean(tf)} {mean(tr)} {100 * statistics.mean(cited):5.0f}% "
        f"{(statistics.mean(prec) / 100 if prec else 0):5.2f} {100 * statistics.mean(keycited):6.0f}% {statistics.median(words):6.0f} {sum(short):>5} {statistics.median(lat):6.2f}",
        flush=True,
    )


def _strip(text: str) -> str:
    from ragtune.engine.cite import strip

    return strip(text)


def _tokens_per_s(engine) -> float:
    """Greedy generation speed, one prompt, 48 new tokens (what a chat user waits for)."""
    from ragtune.engine.config import DecodingConfig

    prompt = engine.render([{"role": "user", "content": "Explain in two sentences what a search index is."}])
    d = DecodingConfig(0.0, 0, 1.0, 48, 1.0, None, [])
    engine.generate([prompt], d)  # warm-up
    t0 = time.perf_counter()
    g = engine.generate([prompt], d)[0]
    return g.generated_tokens / (time.perf_counter() - t0)


if __name__ == "__main__":
    main()
