"""`Answerer`: a question in, an `Answer` out, in any of the four modes.

    base    the model alone                      ft      the model with its LoRA adapter
    rag     the model reading retrieved chunks   ft-rag  the adapter reading retrieved chunks

The CLI, the API, evaluation and the app all answer through this, so a mode means the same
prompt everywhere. Retrieval and the adapter are loaded on first need: `base` never opens
the index, and `rag` never reads an adapter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ragtune.core.records import Answer, Hit, Source
from ragtune.core.workdir import adapters_dir, newest_adapter
from ragtune.engine import cite
from ragtune.engine import prompts as P
from ragtune.engine.config import MODES, AskConfig, DecodingConfig
from ragtune.engine.generate import Engine, Generation, Reading, one_of

ADAPTER_MODES = ("ft", "ft-rag")
RAG_MODES = ("rag", "ft-rag")


@dataclass
class Prepared:
    """A prompt ready for the model, with the chunks it holds."""

    prompt: str
    hits: list[Hit]
    processor: object | None = None  # copy decoding's logits processor, for the rag modes
    chunk_prompts: list[str] | None = None  # span answers: one prompt per chunk, each holding it alone
    shared: str = ""  # the start every prompt of this mode has: the system prompt and the worked examples


class Answerer:
    """Answers questions in the four modes with one engine; the index and adapter load on first need."""

    def __init__(self, cfg: AskConfig, engine: Engine | None = None, retriever=None):
        self.cfg = cfg
        self.templates = P.load_templates(cfg.prompts)
        if engine is None and cfg.llm is not None and cfg.llm.kind == "openai":
            from ragtune.engine.remote import RemoteEngine

            engine = RemoteEngine(cfg.llm)
        self.engine = engine or Engine(cfg.model)
        self._retriever = retriever
        self._prefixes = None  # span answers' PrefixCache, made on first use
        self._heads: dict = {}  # the adapter folder's reader head (or None), loaded on first use
        self.rag_answer = cfg.rag_answer
        if getattr(self.engine, "writes", False):  # an endpoint can neither score spans nor constrain decoding
            self.rag_answer = "generate"
        elif cfg.rag_answer == "auto":  # measured, not guessed from the size: engine/probe.py
            from ragtune.engine import probe
            from ragtune.engine.model import cache_dir

            self.rag_answer = "generate" if probe.writes(self.engine, self.templates, cache_dir(cfg.model)) else "spans"

    # What can answer --------------------------------------------------------------------

    def adapter_for(self, mode: str) -> Path | None:
        """The adapter the `ft` modes use: `--adapter`, else the newest one trained here."""
        if mode not in ADAPTER_MODES:
            return None
        if getattr(self.engine, "writes", False):  # an endpoint serves its adapter by name, or says why not
            with self.engine.using(True):
                return self.engine.adapter_path
        if self.engine.adapter_path is not None and (
            self.cfg.adapter is None or Path(self.cfg.adapter).expanduser() == self.engine.adapter_path
        ):
            return self.engine.adapter_path
        path = Path(self.cfg.adapter).expanduser() if self.cfg.adapter else newest_adapter(self.cfg.workdir)
        if path is None:
            raise RuntimeError(
                f"mode {mode} needs an adapter: pass --adapter DIR, or train one with `ragtune train` "
                f"(none under {adapters_dir(self.cfg.workdir)})"
            )
        self.engine.load_adapter(path)
        return path

    def unavailable(self, modes=MODES) -> dict[str, str]:
        """Of `modes`, those that cannot answer now, with the reason (no adapter, empty index)."""
        out = {}
        for mode in (m for m in ADAPTER_MODES if m in modes):
            try:
                self.adapter_for(mode)
            except RuntimeError as e:
                out[mode] = str(e)
        if not any(m in RAG_MODES for m in modes):
            return out
        try:
            if self.retriever.size == 0:
                for mode in (m for m in RAG_MODES if m in modes):
                    out.setdefault(mode, self._empty_index())
        except RuntimeError as e:
            for mode in (m for m in RAG_MODES if m in modes):
                out.setdefault(mode, str(e))
        if any(self.picks_span(m) for m in modes):  # the span reader's sentence splitter, loaded now rather than in the first answer
            from ragtune.engine.spans import _nlp

            _nlp()
        return out

    @property
    def retriever(self):
        """The search over the index, opened on first use: `base` and `ft` never need it."""
        if self._retriever is None:
            from ragtune.rag.retrieve import Retriever

            self._retriever = Retriever(self.cfg.search)
        return self._retriever

    def reopen_index(self) -> None:
        """The next question opens the index afresh (after an ingest added chunks)."""
        self._retriever = None

    def retrieve(self, question: str, k: int | None = None, source: list[str] | None = None) -> list[Hit]:
        """The question's top chunks, from the documents `source` globs (default: the config's `--source`);
        an empty index is an error that says what to run."""
        if self.retriever.size == 0:
            raise RuntimeError(self._empty_index())
        return self.retriever.search(question, k or self.cfg.k, source)

    def _empty_index(self) -> str:
        return f"collection '{self.cfg.search.index.collection}' is empty: run `ragtune ingest PATH` first"

    # Answering --------------------------------------------------------------------------

    def prepare(
        self,
        question: str,
        mode: str,
        k: int | None = None,
        history: list[dict] | None = None,
        system: str | None = None,
        hits: list[Hit] | None = None,
    ) -> Prepared:
        """The prompt for one question: retrieval, budgeting and the chat template.

        `history` holds earlier turns of a chat; `hits` skips retrieval (evaluation shares
        one retrieval across the rag modes).
        """
        if not question.strip():
            raise ValueError("the question is empty")
        shots = P.shows_examples(self.templates, adapter=mode in ADAPTER_MODES)
        if mode not in RAG_MODES:
            messages = P.base_messages(question, self.templates, system, shots)
            return Prepared(self.engine.render(_with_history(messages, history)), [], shared=self._shared(messages, history))
        if hits is None:
            hits = self.retrieve(question, k)
        writer = self.rag_answer == "generate" and bool(self.templates.write_system)  # span examples would teach a writer spans
        messages, used = P.rag_messages(
            question, hits, self.templates, self.engine.count_tokens, self.cfg.context_tokens, system, shots, writer
        )
        prepared = Prepared(self.engine.render(_with_history(messages, history)), used, shared=self._shared(messages, history))
        if self.picks_span(mode):
            prepared.chunk_prompts = [
                self.engine.render(
                    _with_history(
                        P.rag_messages(question, [h], self.templates, self.engine.count_tokens, self.cfg.context_tokens, system, shots)[0],
                        history,
                    )
                )
                for h in used
            ]
        if self.rag_answer == "copy" and used:
            from ragtune.engine.copy import CopyProcessor

            prepared.processor = CopyProcessor(self.engine.tokenizer, [P.escape(h.chunk.text) for h in used], self.templates.abstain)
        return prepared

    def answer(self, question: str, mode: str | None = None, decoding: DecodingConfig | None = None, k: int | None = None) -> Answer:
        """One question's `Answer` in `mode` (default: the config's)."""
        return self.answer_batch([question], mode, decoding, k)[0]

    def answer_batch(
        self,
        questions: list[str],
        mode: str | None = None,
        decoding: DecodingConfig | None = None,
        k: int | None = None,
        hits: list[list[Hit]] | None = None,
        golds: list[list[str]] | None = None,
    ) -> list[Answer]:
        """Many questions in one mode, generated in batches (evaluation, synthesis).

        `golds` (evaluation): each question's reference answers; `Answer.gold_perplexity` is then
        the per-token perplexity of the likeliest of them under this mode's model and prompt.
        """
        mode = mode or self.cfg.mode
        decoding = decoding or self.cfg.decoding
        adapter = self.adapter_for(mode)
        t0 = time.perf_counter()
        prepared = [self.prepare(q, mode, k, hits=hits[i] if hits else None) for i, q in enumerate(questions)]
        gold = [None] * len(questions)
        if self.picks_span(mode):  # the golds are scored with the candidates, in the same passes
            picked = [
                self._pick_span(q, p, adapter is not None, golds[i] if golds else ()) for i, (q, p) in enumerate(zip(questions, prepared))
            ]
            gens, gold = [g for g, _ in picked], [ppl for _, ppl in picked]
        else:
            gens = self.engine.generate(
                [p.prompt for p in prepared],
                decoding,
                adapter=adapter is not None,
                batch_size=self.cfg.batch_size,
                processors=[p.processor for p in prepared],
            )
            if golds and not getattr(self.engine, "writes", False):  # an endpoint gives no log-probs of our golds
                gold = [self._gold_perplexity([p.prompt], p.shared, g, adapter is not None) for p, g in zip(prepared, golds)]
        per_question = (time.perf_counter() - t0) / max(len(questions), 1)
        return [
            replace(self._answer(q, mode, p, g, adapter, per_question if len(questions) > 1 else None), gold_perplexity=ppl)
            for q, p, g, ppl in zip(questions, prepared, gens, gold)
        ]

    def stream(
        self,
        question: str,
        mode: str | None = None,
        decoding: DecodingConfig | None = None,
        k: int | None = None,
        history: list[dict] | None = None,
        system: str | None = None,
        source: list[str] | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it comes; the generator's return value is the `Answer`."""
        mode = mode or self.cfg.mode
        return (yield from one_of(self.stream_modes(question, [mode], decoding, k, history, system, source), mode))

    def stream_modes(
        self,
        question: str,
        modes=MODES,
        decoding: DecodingConfig | None = None,
        k: int | None = None,
        history: list[dict] | None = None,
        system: str | None = None,
        source: list[str] | None = None,
    ) -> Iterator[tuple[str, str]]:
        """Yield `(mode, text)` as several modes' answers grow; the return value maps mode -> `Answer`.

        The side-by-side chat: one retrieval serves the rag modes. Span answers (a small
        model's rag modes) are chosen whole and come first; the generated modes then stream
        together, one batch, so they grow in parallel. Latencies count from the question.
        `history` holds earlier turns of a chat; `source`, globs of the documents to retrieve from.
        """
        if not question.strip():  # before retrieval, which would search for nothing
            raise ValueError("the question is empty")
        decoding = decoding or self.cfg.decoding
        t0 = time.perf_counter()
        adapters = {m: self.adapter_for(m) for m in modes}
        hits = self.retrieve(question, k, source) if any(m in RAG_MODES for m in modes) else None
        prepared = {m: self.prepare(question, m, k, history, system, hits if m in RAG_MODES else None) for m in modes}
        answers = {}
        for m in (m for m in modes if self.picks_span(m)):
            gen, _ = self._pick_span(question, prepared[m], adapters[m] is not None)
            gen.latency_s = gen.first_token_s = time.perf_counter() - t0
            yield m, gen.text
            answers[m] = self._answer(question, m, prepared[m], gen, adapters[m], None)
        rest = [m for m in modes if not self.picks_span(m)]
        if rest:
            offset = time.perf_counter() - t0
            many = self.engine.stream_many(
                [prepared[m].prompt for m in rest], decoding, [adapters[m] is not None for m in rest], [prepared[m].processor for m in rest]
            )
            try:
                while True:
                    i, piece = next(many)
                    yield rest[i], piece
            except StopIteration as end:
                for m, gen in zip(rest, end.value):
                    gen.latency_s += offset
                    gen.first_token_s = None if gen.first_token_s is None else gen.first_token_s + offset
                    answers[m] = self._answer(question, m, prepared[m], gen, adapters[m], None)
            finally:
                many.close()
        return {m: answers[m] for m in modes}

    def picks_span(self, mode: str) -> bool:
        """Whether `mode` answers with the span reader rather than by generating."""
        return mode in RAG_MODES and self.rag_answer == "spans"

    def _shared(self, messages: list[dict], history: list[dict] | None) -> str:
        """The rendered start of the prompt before the question: the same for every question of a mode."""
        prompt, last = self.engine.render(_with_history(messages, history)), messages[-1]["content"]
        return prompt[: prompt.rfind(last)] if last in prompt else ""

    def _pick_span(self, question: str, p: Prepared, adapter: bool, golds=()) -> tuple[Generation, float | None]:
        """The span reader's answer in the form the question wants (engine/qtype.py): a factoid's best
        span quoted in its sentence, an open question's best sentences, or "I don't know". Each chunk
        is scored in a prompt of its own; `golds` ride along in the same passes (their perplexity:
        the lowest over the chunks). The Generation's `reading` carries the form and citations."""
        from ragtune.engine import extract as X
        from ragtune.engine import spans as S
        from ragtune.engine.qtype import classify

        t0 = time.perf_counter()
        cfg, abstain, golds = self.cfg.spans, self.templates.abstain, list(golds)
        kind = classify(question)
        sentences = []
        if kind.kind == "open":  # evidence weighs each question word by its rarity, when BM25 is there to say it
            lexical = self.retriever.lexical
            sentences = X.split_sentences(p.hits, question, lexical.idf if lexical else None)
        ranked, lm, relevance, prompt_tokens, says_abstain, margins, gold_ppl = [], {}, {}, 0, None, [], None
        self._prefixes = self._prefixes or S.PrefixCache()
        key = self.engine.model.active_adapter if adapter else None  # named afresh on each load: a new adapter, a new cache
        weight = cfg.sentence_head_weight if kind.kind == "open" else cfg.head_weight
        head = self.reader_head() if adapter and weight else None  # a weight of 0 saves the head's pass
        with self.engine.lock, self.engine.using(adapter):
            for r, (hit, prompt) in enumerate(zip(p.hits, p.chunk_prompts or [])):
                cands = S.candidate_spans(hit.chunk.text, question, r) if kind.kind == "factoid" else []
                sents = [s for s in sentences if s.hit == r]
                texts = [c.text for c in cands] + [s.text for s in sents] + golds + [abstain]
                scored = S.score_spans(
                    self.engine.model, self.engine.tokenizer, prompt, texts, prefix=p.shared, cache=self._prefixes, key=key
                )
                says_abstain = scored.pop()
                margins.append(says_abstain.logprob - max((s.logprob for s in scored[: len(cands)]), default=-float("inf")))
                gold_ppl = _lowest([gold_ppl] + [_perplexity(s) for s in scored[len(cands) + len(sents) :]])
                reading = self._read(head, question, hit) if head is not None else None
                ranked += S.rank(cands, scored[: len(cands)], cfg, [reading.span(c.text) for c in cands] if reading else None)
                lm.update({(s.hit, s.pos): sc.logprob / (sc.tokens + 1) for s, sc in zip(sents, scored[len(cands) :])})
                relevance.update({(s.hit, s.pos): reading.sentence(s.text) for s in sents} if reading else {})
                prompt_tokens += self.engine.count_tokens(prompt)
        if kind.kind == "open":
            gen = self._extract(question, sentences, lm, kind.is_list, p.hits, relevance)
        else:
            gen = self._quote(ranked, margins, p.hits)
        gen.prompt_tokens, gen.latency_s = prompt_tokens, time.perf_counter() - t0
        return gen, gold_ppl

    def _quote(self, ranked: list, margins: list[float], hits: list[Hit]) -> Generation:
        """A factoid's answer: the best span in its quoted sentence, or "I don't know"."""
        from ragtune.engine import extract as X
        from ragtune.engine import spans as S

        ranked.sort(key=lambda t: -t[0])
        supported = bool(ranked) and max(c.evidence for _, c, _ in ranked) > 0
        if S.abstains(margins, supported, self.cfg.spans.abstain_margin):
            return self._abstain()
        _, best, scored = ranked[0]
        text, cited = X.quote_span(best.text, best.sentence, best.rank + 1, hits[best.rank])
        return Generation(text, 0, scored.tokens, "stop", 0.0, reading=Reading("factoid", best.text, [cited]))

    def reader_head(self):
        """The loaded adapter's reader head (engine/head.py), or None if it has none."""
        from ragtune.engine import head as H

        path = self.engine.adapter_path
        if path not in self._heads:
            self._heads = {path: H.load(path) if path is not None and not getattr(self.engine, "writes", False) else None}
        return self._heads[path]

    def reader(self, mode: str) -> str:
        """How `mode` answers, for reports: the span reader with or without a head, or generation."""
        if not self.picks_span(mode):
            return "generate" if mode in RAG_MODES else "model"
        weights = (self.cfg.spans.head_weight, self.cfg.spans.sentence_head_weight)
        if mode in ADAPTER_MODES and any(weights) and self.adapter_for(mode) is not None and self.reader_head() is not None:
            return "spans+head"
        return "spans"

    def _read(self, head, question: str, hit: Hit):
        import torch

        from ragtune.engine import head as H

        with torch.inference_mode():
            return H.read(self.engine.model, head, self.engine.tokenizer, question, hit.chunk.text)

    def _extract(self, question: str, sentences: list, lm: dict, is_list: bool, hits: list[Hit], relevance: dict) -> Generation:
        """An open question's answer: its best sentences, cited, or "I don't know"."""
        from ragtune.engine import extract as X

        if not sentences or max(s.evidence for s in sentences) == 0:
            return self._abstain()
        # a sentence is embedded under its chunk's heading, as chunks are: "EM and F1" under "Metrics"
        vectors = self.retriever.embedder.embed([question] + [hits[s.hit].chunk.under_heading(s.text) for s in sentences])
        vectors = vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9)
        similarity = (vectors[1:] @ vectors[0]).tolist()
        head = [relevance[(s.hit, s.pos)] for s in sentences] if relevance else None
        ranked = X.rank(sentences, [lm[(s.hit, s.pos)] for s in sentences], similarity, self.cfg.spans, head, is_list)
        chosen = X.choose(ranked, sentences, is_list, self.cfg.spans)
        text, cited = X.render(chosen, hits, is_list)
        form = "list" if is_list and len(chosen) > 1 else "open"
        return Generation(text, 0, self.engine.count_tokens(text), "stop", 0.0, reading=Reading(form, "", cited))

    def _abstain(self) -> Generation:
        text = self.templates.abstain
        return Generation(text, 0, self.engine.count_tokens(text), "stop", 0.0, reading=Reading("abstain"))

    def _gold_perplexity(self, prompts: list[str], shared: str, golds: list[str], adapter: bool) -> float | None:
        """The lowest per-token perplexity of any gold answer after any of the prompts."""
        from ragtune.engine import spans as S

        golds = [g for g in golds if g.strip()]
        if not golds:
            return None
        self._prefixes = self._prefixes or S.PrefixCache()
        key = self.engine.model.active_adapter if adapter else None
        with self.engine.lock, self.engine.using(adapter):
            return _lowest(
                [
                    _perplexity(s)
                    for prompt in prompts
                    for s in S.score_spans(
                        self.engine.model, self.engine.tokenizer, prompt, golds, prefix=shared, cache=self._prefixes, key=key
                    )
                ]
            )

    def _answer(self, question: str, mode: str, p: Prepared, g: Generation, adapter: Path | None, latency: float | None) -> Answer:
        text, reading, dropped, attributed = g.text, g.reading, 0, 0
        if reading is None and mode in RAG_MODES:  # a written answer: its [n] resolved to the prompt's chunks
            text, _, dropped = cite.resolve(g.text, p.hits)
            text, attributed = cite.attribute(text, p.hits)
            _, cited, _ = cite.resolve(text, p.hits)
            abstained = self.templates.abstain.lower() in text.lower() and not cited
            reading = Reading("abstain" if abstained else "generated", "", cited)
        reading = reading or Reading()
        return Answer(
            question,
            mode,
            text,
            [Source.from_hit(h) for h in p.hits],
            g.prompt_tokens,
            g.generated_tokens,
            g.latency_s if latency is None else latency,
            g.finish_reason,
            g.first_token_s,
            getattr(self.engine, "name", self.cfg.model.model),
            str(adapter) if adapter else None,
            form=reading.form,
            span=reading.span,
            citations=reading.citations,
            dropped_citations=dropped,
            attributed_citations=attributed,
        )


def _with_history(messages: list[dict], history: list[dict] | None) -> list[dict]:
    """Earlier chat turns go between the system prompt and the new question."""
    if not history:
        return messages
    return messages[:1] + [m for m in history if m["role"] in ("user", "assistant")] + messages[1:]


def _perplexity(scored) -> float:
    """exp of the mean negative log-prob per token, the end-of-answer token included."""
    return math.exp(-scored.logprob / (scored.tokens + 1))


def _lowest(values) -> float | None:
    values = [v for v in values if v is not None]
    return min(values) if values else None
