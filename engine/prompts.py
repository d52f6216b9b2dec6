"""Chat messages for each mode, from the templates in configs/prompts.yaml.

The RAG prompt puts each retrieved chunk inside `<document>` tags with its source, as data:
tag-like text inside a chunk is escaped so a chunk cannot close its own tag, and the system
prompt says never to follow instructions found there. Chunks are fitted into a token budget,
dropping the lowest-ranked first. Everything here is pure: it needs only a token counter.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ragtune.core.config import CONFIG_DIR, ConfigError, read_yaml
from ragtune.core.present import titled
from ragtune.core.records import Hit


@dataclass(frozen=True)
class Example:
    """A worked example shown before the question (few-shot)."""

    question: str
    answer: str
    context: str = ""  # for rag examples: the document text
    documents: tuple[str, ...] = ()  # for a writer's examples: the numbered documents its answer cites


@dataclass(frozen=True)
class PromptTemplates:
    system: str
    rag_system: str
    rag_user: str
    document: str
    write_system: str = ""  # the rag system prompt for a model that writes, citing the chunks [n]
    order: str = "best_last"
    examples: tuple[Example, ...] = field(default_factory=tuple)
    write_examples: tuple[Example, ...] = field(default_factory=tuple)  # for a model that writes: cited answers
    abstain: str = "I don't know"
    adapter_examples: bool = True  # shown to the ft modes too; the rows that train them go without (synth/rows.py)

    def __post_init__(self):
        if self.order not in ("best_last", "best_first"):
            raise ConfigError(f"prompts: `order` must be best_last or best_first, got {self.order!r}")
        for name, needed in (("rag_user", ("{context}", "{question}")), ("document", ("{text}",))):
            missing = [p for p in needed if p not in getattr(self, name)]
            if missing:
                raise ConfigError(f"prompts: `{name}` must contain {' and '.join(missing)}")


def load_templates(name: str) -> PromptTemplates:
    """`prompts.yaml` (looked up in configs/) or a path to a YAML file of templates."""
    path = Path(name) if os.sep in name or Path(name).exists() else CONFIG_DIR / name
    try:
        data = read_yaml(path)
    except ConfigError as e:
        raise ConfigError(f"--prompts {e}") from None
    try:
        examples = tuple(Example(**e) for e in data.pop("examples", None) or [])
        writes = tuple(Example(**{**e, "documents": tuple(e.get("documents") or ())}) for e in data.pop("write_examples", None) or [])
        return PromptTemplates(examples=examples, write_examples=writes, **data)
    except TypeError as e:
        raise ConfigError(f"--prompts {path}: {e}") from None


def base_messages(question: str, t: PromptTemplates, system: str | None = None, examples: bool = True) -> list[dict]:
    """Plain prompting: the system prompt, the examples that have no context, the question.

    Examples with a context belong to the RAG prompt: shown without their document, their
    answers leak into unrelated answers (measured: base answers then quote the example).
    """
    messages = [{"role": "system", "content": system or t.system}]
    for ex in t.examples if examples else ():
        if not ex.context:
            messages += [{"role": "user", "content": ex.question}, {"role": "assistant", "content": ex.answer}]
    return messages + [{"role": "user", "content": question}]


def rag_messages(
    question: str,
    hits: list[Hit],
    t: PromptTemplates,
    count_tokens: Callable[[str], int],
    budget: int,
    system: str | None = None,
    examples: bool = True,
    writer: bool = False,
) -> tuple[list[dict], list[Hit]]:
    """The RAG prompt and the hits that fit into `budget` tokens of context.

    Hits come best first. The lowest-ranked are dropped until the rest fit; if even the
    best one alone is too long, its text is cut to fit (never a chunk of nothing). A `writer`
    gets the writing prompt and the worked examples of cited answers, not the span examples.
    """
    used = list(hits)
    docs = [render_document(t, n, h) for n, h in enumerate(used, 1)]
    sizes = [count_tokens(d) for d in docs]
    while len(used) > 1 and sum(sizes) > budget:
        used.pop(), docs.pop(), sizes.pop()
    if used and sizes[0] > budget:
        docs[0] = _cut_to_budget(t, used[0], count_tokens, budget)
    ordered = docs[::-1] if t.order == "best_last" else docs
    messages = [{"role": "system", "content": system or (t.write_system if writer else t.rag_system)}]
    for ex in (t.write_examples if writer else t.examples) if examples else ():
        texts = ex.documents or ((ex.context,) if ex.context else ())
        if texts:
            ctx = "\n\n".join(t.document.format(n=n, source="example", text=escape(d)) for n, d in enumerate(texts, 1))
            messages += [
                {"role": "user", "content": t.rag_user.format(context=ctx, question=ex.question)},
                {"role": "assistant", "content": ex.answer},
            ]
    context = "\n\n".join(ordered)
    messages.append({"role": "user", "content": t.rag_user.format(context=context, question=question)})
    return messages, used


def shows_examples(t: PromptTemplates, adapter: bool) -> bool:
    """Whether a mode's prompt holds the worked examples: always, unless `adapter_examples` is off
    for the ft modes (an adapter that learned the answer's shape from its rows can spare their tokens)."""
    return t.adapter_examples or not adapter


def render_document(t: PromptTemplates, n: int, hit: Hit, text: str | None = None) -> str:
    return t.document.format(n=n, source=source_marker(hit), text=escape(hit.chunk.text if text is None else text))


def source_marker(hit: Hit) -> str:
    """`Netflix 2017 10-K — NETFLIX_2017_10K.pdf p.3 § Item 7`: the document, page and section a chunk came from."""
    c = hit.chunk
    out = titled(c.title, Path(c.source).name)  # which company's filing: chunks of several read alike
    if c.page:
        out += f" p.{c.page}"
    if c.section:
        out += f" § {c.section.split(' > ')[-1]}"
    return escape(out).replace('"', "'")


def escape(text: str) -> str:
    """A chunk cannot open or close a tag: `<` and `>` become look-alike brackets."""
    return text.replace("<", "‹").replace(">", "›")


def _cut_to_budget(t: PromptTemplates, hit: Hit, count_tokens: Callable[[str], int], budget: int) -> str:
    words = hit.chunk.text.split()
    lo, hi = 0, len(words)
    while lo < hi:  # the most words that fit, by bisection: ~8 token counts, not one per word
        mid = (lo + hi + 1) // 2
        if count_tokens(render_document(t, 1, hit, " ".join(words[:mid]))) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return render_document(t, 1, hit, " ".join(words[:lo]))
