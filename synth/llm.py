"""`--generator local` and `--generator openai`: an LLM writes the questions, one prompt per chunk.

    ragtune synth --generator local                    # the engine's model; any HF model with --model
    ragtune synth --generator openai --base-url http://127.0.0.1:8000/v1 --model base --concurrency 4

Both send the same messages (`messages_for`) and parse the reply alike (`parse`: "Q1:", "A1:",
"Q1b:" lines), so two datasets differ only in the model. What does not parse or fails a check
becomes a Draft with `error` set, counted as malformed rather than lost. `openai` retries
through the client `--llm openai` answers with (`Endpoint`, engine/remote.py).
"""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor

from ragtune.core.records import Chunk, Draft
from ragtune.engine.remote import Batch, Endpoint, http_reason
from ragtune.synth.subject import Subjects

# The prompt ---------------------------------------------------------------------------------
#
# Shaped for small models (the packaged one has 135M parameters):
# - a worked example as an earlier chat turn, not a description of the format: small models
#   copy an example's shape more reliably than they follow a spec (for answers: README, "How rag
#   answers are made"; for synthesis, bench/synth_llm.py counts the valid replies), and
#   placeholders such as "<question>" get copied literally. The example is cut to the numbers
#   asked for, so it never shows more facts than are wanted.
# - numbered "Qn:" / "An:" lines with letter suffixes for paraphrases ("Q1b:"): one regex
#   parses them, the number ties a paraphrase to its fact, and a reply cut off by the token
#   limit loses only its last, incomplete fact.
# - the answer right after its question: the model writes the fact while it is in view, and
#   the paraphrases that follow reword a question whose answer is already fixed.
# - "copied from the text": the answer must be a span of the chunk, so the pipeline can check
#   grounding, and the span scorer (engine/spans.py) can find it at answer time.

SYSTEM = (
    "You write quiz questions about a text. Each answer is a short phrase copied word for word "
    "from the text. You reply only with the numbered lines asked for, nothing else."
)

USER = """Text:
{text}

Write {pairs} questions about different facts in the text, each on a line "Qn:" ending with "?", \
followed by its answer on a line "An:": a phrase copied from the text, at most {max_words} words.{reword}"""

REWORD = " After each answer, ask its question again in other words {times}, on lines {labels}."

EXAMPLE_TEXT = (
    "The Eiffel Tower was completed in 1889 as the entrance arch to the World's Fair in Paris. "
    "It was designed by the company of the engineer Gustave Eiffel and is 330 metres tall. "
    "About seven million people visit it every year, and it was painted for the 19th time in 2019."
)
# (question, answer, paraphrases): the example reply is cut to --pairs-per-chunk and --paraphrases.
EXAMPLE_FACTS = [
    (
        "When was the Eiffel Tower completed?",
        "1889",
        [
            "In what year was the Eiffel Tower finished?",
            "The Eiffel Tower was completed in which year?",
            "What year saw the completion of the Eiffel Tower?",
        ],
    ),
    (
        "How tall is the Eiffel Tower?",
        "330 metres",
        ["What is the height of the Eiffel Tower?", "How many metres high is the Eiffel Tower?", "The Eiffel Tower is how tall?"],
    ),
    (
        "Which engineer's company designed the Eiffel Tower?",
        "Gustave Eiffel",
        [
            "The Eiffel Tower was designed by the company of which engineer?",
            "Who was the engineer whose company designed the Eiffel Tower?",
            "The company of what engineer designed the Eiffel Tower?",
        ],
    ),
    (
        "How many people visit the Eiffel Tower every year?",
        "About seven million",
        [
            "How many visitors does the Eiffel Tower get each year?",
            "What is the yearly number of visitors to the Eiffel Tower?",
            "Each year, how many people go to the Eiffel Tower?",
        ],
    ),
    (
        "For which event was the Eiffel Tower built as the entrance arch?",
        "the World's Fair",
        [
            "The Eiffel Tower was the entrance arch to what event?",
            "What event did the Eiffel Tower serve as the entrance arch for?",
            "Which fair had the Eiffel Tower as its entrance arch?",
        ],
    ),
    (
        "When was the Eiffel Tower painted for the 19th time?",
        "2019",
        [
            "In what year did the Eiffel Tower get its 19th coat of paint?",
            "The 19th painting of the Eiffel Tower happened in which year?",
            "What year was the Eiffel Tower painted for the nineteenth time?",
        ],
    ),
]
SUFFIXES = "bcdefghijklmnopqrstuvwxyz"  # Q1b, Q1c, ...: 25 paraphrases at most
PROMPT_VERSION = hashlib.sha256((SYSTEM + USER + REWORD + EXAMPLE_TEXT + repr(EXAMPLE_FACTS)).encode()).hexdigest()[:12]


def messages_for(text: str, cfg) -> list[dict]:
    """The chat messages asking for `cfg.pairs_per_chunk` facts of `text`, each with `cfg.paraphrases` rewordings."""
    example = [
        {"role": "user", "content": _user(EXAMPLE_TEXT, cfg)},
        {"role": "assistant", "content": _example_reply(cfg.pairs_per_chunk, cfg.paraphrases)},
    ]
    return [{"role": "system", "content": SYSTEM}, *example, {"role": "user", "content": _user(text, cfg)}]


def stop_after(cfg) -> list[str]:
    """The decoding's stop strings plus the line that would start one fact too many: small models run on."""
    return [*cfg.decoding.stop, f"\nQ{cfg.pairs_per_chunk + 1}:"]


def _user(text: str, cfg) -> str:
    n = cfg.paraphrases
    times = {1: "once", 2: "twice"}.get(n, f"{n} times")
    reword = REWORD.format(times=times, labels=", ".join(f'"Qn{s}:"' for s in SUFFIXES[:n])) if n else ""
    return USER.format(text=text.strip(), pairs=cfg.pairs_per_chunk, max_words=cfg.max_answer_words, reword=reword)


def _example_reply(pairs: int, paraphrases: int) -> str:
    lines = []
    for n, (q, a, rewordings) in enumerate(EXAMPLE_FACTS[:pairs], 1):
        lines += [f"Q{n}: {q}", f"A{n}: {a}"] + [f"Q{n}{s}: {p}" for s, p in zip(SUFFIXES, rewordings[:paraphrases])]
    return "\n".join(lines)


# The parser ---------------------------------------------------------------------------------

# "Q3:", "Q3b:" or "A3:" at the start of a line; anything else (a preamble, a blank line, an
# "A3b:") is skipped, so chatty models still parse, but a reply with no such line is an error.
LINE = re.compile(r"^(?:Q(\d+)([b-z]?)|A(\d+)):(.*)$")
QUOTES = "\"'`“”‘’"


def parse(output: str, chunk_text: str, cfg) -> list[Draft]:
    """The drafts in one reply: each fact's question, then its paraphrases, all sharing its answer.

    Facts are kept in the order they appear, at most `cfg.pairs_per_chunk` of them, and at most
    `cfg.paraphrases` rewordings each; a repeated line keeps its first version. A fact that
    fails a check yields a Draft with `error` set for each of its questions.
    """
    facts: dict[int, dict] = {}  # fact number -> {"q": ..., "a": ..., "more": {suffix: question}}
    for raw in output.splitlines():
        m = LINE.match(raw.strip())
        if not m:
            continue
        q_num, suffix, a_num, text = m.groups()
        fact = facts.setdefault(int(q_num or a_num), {"q": None, "a": None, "more": {}})
        if a_num:
            fact["a"] = text.strip() if fact["a"] is None else fact["a"]
        elif suffix:
            fact["more"].setdefault(suffix, text.strip())
        elif fact["q"] is None:
            fact["q"] = text.strip()
    if not facts:
        return [Draft("", "", 0, error="malformed output: " + ("empty" if not output.strip() else "no 'Q1:' line"))]
    drafts = []
    for group, (n, fact) in enumerate(list(facts.items())[: cfg.pairs_per_chunk]):
        drafts += _fact_drafts(n, group, fact, chunk_text, cfg)
    return drafts


def _fact_drafts(n: int, group: int, fact: dict, chunk_text: str, cfg) -> list[Draft]:
    answer = (fact["a"] or "").strip().strip(QUOTES).rstrip(".").strip()
    questions = [(fact["q"], "original", f"Q{n}")] + [
        (q, "paraphrase", f"Q{n}{s}") for s, q in list(fact["more"].items())[: cfg.paraphrases]
    ]
    if fact["q"] is None:  # an answer or rewordings of a question never asked: nothing to anchor them
        return [Draft("", answer, group, error=f"malformed output: no 'Q{n}:' line")]
    if fact["a"] is None:
        problem = f"no 'A{n}:' line"
    elif not answer:
        problem = f"empty answer 'A{n}:'"
    elif len(answer.split()) > cfg.max_answer_words:
        problem = f"answer over {cfg.max_answer_words} words ({len(answer.split())})"
    else:
        problem = ""
    evidence = _sentence_with(answer, chunk_text) if not problem else ""
    out = []
    for question, kind, label in questions:
        error = problem or (
            "" if question.endswith("?") else f"'{label}:' does not end with '?'" if question else f"empty question '{label}:'"
        )
        out.append(Draft(question, answer, group, evidence, kind, "malformed output: " + error if error else ""))
    return out


def _sentence_with(answer: str, text: str) -> str:
    """The chunk's first sentence that holds the answer verbatim (RAFT's chain of thought quotes it), or ""."""
    needle = answer.lower()
    return next((s for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if needle in s.lower()), "")


# --generator local: the engine's model, one batched call per batch of chunks -------------------


class LocalGenerator:
    """`--generator local`: the engine's model, one batched `Engine.generate` call per batch of chunks."""

    name = "local"

    def __init__(self, cfg):
        self.cfg = cfg
        d = cfg.decoding
        self.settings = {
            "model": cfg.llm.model,
            "dtype": cfg.llm.dtype,
            "temperature": d.temperature,
            "top_p": d.top_p,
            "top_k": d.top_k,
            "max_new_tokens": d.max_new_tokens,
            "repetition_penalty": d.repetition_penalty,
            "seed": d.seed,
            "pairs_per_chunk": cfg.pairs_per_chunk,
            "paraphrases": cfg.paraphrases,
            "max_answer_words": cfg.max_answer_words,
            "prompt": PROMPT_VERSION,
            "subject": "title",
        }
        self.subjects = Subjects()  # questions name their document when ambiguous (synth/subject.py)
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:  # loaded on first use: building the generator stays cheap
            from ragtune.engine.generate import Engine

            self._engine = Engine(self.cfg.llm)
        return self._engine

    def generate(self, chunks: list[Chunk]) -> list[list[Draft]]:
        """Drafts for each chunk, in order; all prompts that fit the model's context go in one batched call."""
        from ragtune.engine.generate import with_overrides

        prompts = [self.engine.render(messages_for(c.text, self.cfg)) for c in chunks]
        # Engine.generate refuses a whole batch if one prompt overflows the context: such a
        # chunk gets an error draft instead, and the rest of the batch goes on.
        limit = self.engine.max_context - self.cfg.decoding.max_new_tokens
        sizes = [self.engine.count_tokens(p) for p in prompts]
        decoding = with_overrides(self.cfg.decoding, stop=stop_after(self.cfg))
        replies = iter(self.engine.generate([p for p, n in zip(prompts, sizes) if n <= limit], decoding, batch_size=self.cfg.batch_size))
        too_long = "prompt of {} tokens leaves no room for {} new ones in the model's context of {}"
        return [
            self.subjects.name_in(parse(next(replies).text, c.text, self.cfg), c)
            if n <= limit
            else [Draft("", "", 0, error=too_long.format(n, decoding.max_new_tokens, self.engine.max_context))]
            for c, n in zip(chunks, sizes)
        ]


# --generator openai: any OpenAI-compatible endpoint -----------------------------------------


class OpenAIGenerator:
    """`--generator openai`: any OpenAI-compatible endpoint, `concurrency` requests in flight."""

    name = "openai"
    PLACEHOLDER_KEY = Endpoint.PLACEHOLDER_KEY

    def __init__(self, cfg, backoff: float = 1.0):
        """Connect to `cfg.base_url`; with no `cfg.model`, ask the endpoint for its first model.

        Args:
            backoff: seconds before the first retry; each next one waits twice as long.
        Raises:
            RuntimeError: the key's environment variable is unset, or the endpoint is down.
        """
        self.cfg, self.endpoint = cfg, Endpoint(cfg.base_url, cfg.api_key_env, cfg.timeout, cfg.retries, backoff)
        self.url, self.client = self.endpoint.url, self.endpoint.client
        self._batch = Batch()  # the requests of one `generate` call: the first that gives up stops the others retrying
        self.model = cfg.model or self._first_model()
        d = cfg.decoding
        self.settings = {
            "model": self.model,
            "base_url": self.url,
            "api_key_env": cfg.api_key_env,
            "temperature": d.temperature,
            "top_p": d.top_p,
            "max_tokens": d.max_new_tokens,
            "seed": d.seed,
            "pairs_per_chunk": cfg.pairs_per_chunk,
            "paraphrases": cfg.paraphrases,
            "max_answer_words": cfg.max_answer_words,
            "prompt": PROMPT_VERSION,
            "subject": "title",
        }
        self.subjects = Subjects()  # questions name their document when ambiguous (synth/subject.py)

    def generate(self, chunks: list[Chunk]) -> list[list[Draft]]:
        """Drafts for each chunk, in order, with `cfg.concurrency` requests in flight.

        Raises:
            RuntimeError: the endpoint stayed down through the retries, or refuses every request (bad key, unknown model).
        """
        self._batch = Batch()
        pool = ThreadPoolExecutor(self.cfg.concurrency, thread_name_prefix="ragtune-synth")
        try:
            futures = [pool.submit(self._drafts, c) for c in chunks]
            return [self.subjects.name_in(f.result(), c) for f, c in zip(futures, chunks)]  # spaCy in this thread only
        except BaseException:  # down, refused, or Ctrl+C: requests in flight end, none retries
            self._batch.gave_up.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # queued chunks never start

    def _drafts(self, chunk: Chunk) -> list[Draft]:
        import openai

        d = self.cfg.decoding
        request = dict(
            model=self.model,
            messages=messages_for(chunk.text, self.cfg),
            temperature=d.temperature,
            top_p=d.top_p,
            max_tokens=d.max_new_tokens,
            stop=stop_after(self.cfg),
        )
        if d.seed is not None:
            request["seed"] = d.seed
        try:
            resp = self._call("POST /chat/completions", lambda: self.client.chat.completions.create(**request))
        except openai.APIStatusError as e:
            if e.status_code in (401, 403, 404):  # a wrong key or model: every other request fails alike
                raise RuntimeError(f"{self.url}: HTTP {e.status_code}: {http_reason(e)}") from None
            # Another 4xx is about this request (a chunk too long for the model's context, say).
            return [Draft("", "", 0, error=f"refused by the endpoint: HTTP {e.status_code}: {http_reason(e)}")]
        content = resp.choices[0].message.content if resp.choices else None
        return parse(content or "", chunk.text, self.cfg)

    def _first_model(self) -> str:
        models = self._call("GET /models", lambda: self.client.models.list().data)
        if not models:
            raise RuntimeError(f"{self.url}: /models lists no model; pass --model")
        return models[0].id

    def _call(self, what: str, request):
        """`request()` through the endpoint's retries (`Endpoint.call`), as one of this batch's requests."""
        return self.endpoint.call(what, request, self._batch)
