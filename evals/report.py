"""The report folder of `ragtune eval`, and `--compare` of two of them.

report.json   everything: per question, each mode's answer, scores and sources; the summary
report.md     a score table per question type with 95% intervals, the verdict, the error analysis
scores.png    the scores as bars with their intervals
"""

from __future__ import annotations

import json
from pathlib import Path

from ragtune.core.records import EvalReport
from ragtune.core.workdir import new_run_dir, replacing, runs_dir, write_json, write_text
from ragtune.evals.run import BUCKETS, RATE_METRICS, SHORT_WORDS

LABELS = {"exact": "EM", "f1": "F1", "contains": "contains", "rouge_l": "ROUGE-L"}
OPEN_METRICS = ("key_recall", "token_f1", "token_recall", "cited", "citation_precision")  # open questions' table
OPEN_LABELS = {
    "key_recall": "key recall",
    "token_f1": "token F1",
    "token_recall": "token recall",
    "cited": "cited %",
    "citation_precision": "cite prec",
}


def default_out(workdir: str | Path) -> Path:
    """A new report folder under <workdir>/runs, named by the time."""
    return new_run_dir(runs_dir(workdir))


def write(report: EvalReport | dict, out: str | Path, examples: int = 3) -> Path:
    """Write the three files; each appears whole or not at all (written aside, then renamed).

    `report` is an `EvalReport` or its plain data (`evaluate`'s).
    """
    report = report.to_json() if isinstance(report, EvalReport) else report
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report, indent=2, ensure_ascii=False, default=str)
    write_text(out / "report.md", markdown(report, examples))
    _chart(report, out / "scores.png")
    return out


def read(run: str | Path) -> dict:
    """A report written by `write`, from its folder or its report.json.

    Raises:
        ValueError: no report.json there, or not JSON; naming --compare.
    """
    path = Path(run).expanduser()
    path = path / "report.json" if path.is_dir() else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"--compare {run}: no report.json there") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"--compare {path}: not a report ({e.msg} at line {e.lineno})") from None


# report.md ---------------------------------------------------------------------------------------


def markdown(report: dict, examples: int = 3) -> str:
    """report.md: the verdict, a score table per question type, comparisons and the error analysis with `examples` per bucket."""
    lines = _heading(report) + _scores(report) + _comparisons(report) + _errors(report, examples)
    return "\n".join(lines) + "\n"


def _heading(report: dict) -> list[str]:
    """The title, the verdict, and what was asked of which model."""
    modes, q, v = report["modes"], report["questions"], report["versions"]
    lines = [f"# ragtune eval: {q['asked']} questions, {', '.join(modes)}", "", f"**{report['verdict']}**", ""]
    lines += [
        f"Questions: `{q['source']}`"
        + (f", a random sample of {q['asked']} of {q['read']} (seed {q['seed']})" if q["asked"] < q["read"] else ""),
        f"; {len(q['skipped'])} lines skipped." if q["skipped"] else "",
    ]
    lines += [f"- mode `{m}` skipped: {why}" for m, why in report["skipped_modes"].items()]
    return lines + [
        "",
        f"Model `{v['model']}` ({v['model_params'] / 1e6:.0f}M parameters, {v['dtype']}), adapter `{v.get('adapter')}`, "
        f"index {v['index']['collection'] + ' @ ' + v['index']['version'][:8] if v.get('index') else 'none'}, "
        f"k={v['k']}, rag answers: {v['rag_answer']}. {report['elapsed_s']:.0f} s in all.",
        *([f"Readers: {', '.join(f'{m} {r}' for m, r in v['readers'].items())}."] if v.get("readers") else []),
        "",
    ]


def _scores(report: dict) -> list[str]:
    """A score table per question type, what its columns mean, and retrieval."""
    modes, q, types = report["modes"], report["questions"], by_type(report)
    lines = ["## Scores (mean and 95% bootstrap interval)"]
    for qtype, summary in types.items():
        n = next(iter(summary.values())).get("n", q["asked"])
        lines += ["", f"### {qtype.capitalize()} questions ({n})", ""]
        lines += _open_table(summary, modes) if qtype == "open" else _factoid_table(summary, modes)
    if "factoid" in types:
        lines += [
            "",
            "Gold perplexity: per token, of the likeliest gold answer after the mode's prompt (a geometric mean); "
            "lower means the model expects the right answer. Latency of batched modes is their batch's time shared out.",
        ]
    if "open" in types:
        lines += [
            "",
            "Open questions: key recall is the share of key facts the answer states; token F1 and recall compare its "
            "words with the reference answer's; cite prec is the share of cited chunks holding a key fact or the answer, "
            f"over the answers that cite; ≤{SHORT_WORDS} words counts bare spans, abstentions aside.",
        ]
    if report.get("retrieval"):
        r = report["retrieval"]
        lines += [
            "",
            f"Retrieval (shared by the rag modes): hit@{r['k']} {r['hit_at_k']['mean']:.1f}% "
            f"[{r['hit_at_k']['low']:.1f}, {r['hit_at_k']['high']:.1f}] of questions have a chunk holding a gold answer "
            f"(a key fact, for questions with key facts); answer-recall@{r['k']} {r['answer_recall_at_k']['mean']:.1f}% "
            "of the gold answer's words (of the key facts) are in the chunks.",
        ]
    return lines


def _comparisons(report: dict) -> list[str]:
    """Each pair of modes: the F1 difference, its interval and p-value."""
    lines = [
        "",
        "## Comparisons (F1, paired bootstrap on the same questions)",
        "",
        "| a vs b | delta | 95% interval | p |",
        "|---|---|---|---|",
    ]
    for c in report["comparisons"]:
        name = f"**{c['a']} vs {c['b']}**" if c["key"] else f"{c['a']} vs {c['b']}"
        lines.append(f"| {name} | {c['delta']:+.1f} | [{c['low']:+.1f}, {c['high']:+.1f}] | {c['p']:.3g} |")
    return lines


def _errors(report: dict, examples: int) -> list[str]:
    """Why wrong answers are wrong: the buckets counted per mode, then `examples` of each."""
    modes, q = report["modes"], report["questions"]
    lines = [
        "",
        "## Error analysis",
        "",
        f"{report['disagreements']} of {q['asked']} questions split the modes: "
        f"some answer right (F1 ≥ {report['config']['correct_f1']:g}) and some wrong.",
        "",
        "| mode | " + " | ".join(BUCKETS) + " |",
        "|---" * (len(BUCKETS) + 1) + "|",
    ]
    for m in modes:
        lines.append(f"| {m} | " + " | ".join(str(report["buckets"][m][b]) for b in BUCKETS) + " |")
    lines += [
        "",
        "- **retrieval miss**: no retrieved chunk holds a gold answer (rag modes).",
        "- **wrong span**: the answer is in the retrieved text, but other words of it are right.",
        "- **verbose**: the gold answer is inside a longer answer.",
        '- **abstained**: "I don\'t know" to a question that has an answer.',
        "- **hallucinated**: words from no retrieved chunk (closed-book: a wrong answer).",
    ]
    for b in BUCKETS:
        shown = _examples(report, b, examples)
        if shown:
            lines += ["", f"### {b}", ""]
            for row in shown:
                lines.append(f"- **{row['question']}** gold: {_quote(row['answers'][0] if row['answers'] else '(none)')}")
                lines += [
                    f"  - {m}: {_quote(row['modes'][m]['answer'])}"
                    + (f" ({b})" if row["modes"][m]["bucket"] == b else " (right)" if row["modes"][m]["correct"] else "")
                    for m in modes
                ]
    return lines


def by_type(report: dict) -> dict:
    """The per-type summaries; a report without them (written before types) is all factoid."""
    return report.get("by_type") or {"factoid": report["summary"]}


def _factoid_table(s: dict, modes: list[str]) -> list[str]:
    lines = [
        "| mode | " + " | ".join(LABELS[k] for k in RATE_METRICS) + " | abstains | gold perplexity | latency p50 / p95 | tokens |",
        "|---" * (len(RATE_METRICS) + 5) + "|",
    ]
    for m in modes:
        cells = [_cell(s[m][k]) for k in RATE_METRICS]
        ppl = s[m].get("gold_perplexity")
        lines.append(
            f"| {m} | "
            + " | ".join(cells)
            + f" | {s[m]['abstain_rate']:.1f}% | "
            + (f"{ppl['mean']:.2f} [{ppl['low']:.2f}, {ppl['high']:.2f}]" if ppl else "n/a")
            + f" | {s[m]['latency_s']['p50']:.2f} / {s[m]['latency_s']['p95']:.2f} s | {s[m]['generated_tokens']:.1f} |"
        )
    return lines


def _open_table(s: dict, modes: list[str]) -> list[str]:
    lines = [
        "| mode | " + " | ".join(OPEN_LABELS[k] for k in OPEN_METRICS) + f" | words p50 | ≤{SHORT_WORDS} words |",
        "|---" * (len(OPEN_METRICS) + 3) + "|",
    ]
    for m in modes:
        cells = [_cell(s[m][k]) if s[m].get(k) else "n/a" for k in OPEN_METRICS]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {s[m]['words_p50']:g} | {s[m]['short_rate']:.1f}% |")
    return lines


def _cell(iv: dict) -> str:
    return f"{iv['mean']:.1f} [{iv['low']:.1f}, {iv['high']:.1f}]"


def _examples(report: dict, bucket: str, n: int) -> list[dict]:
    """Questions where some mode fell in `bucket` and another mode got it right come first."""
    rows = [r for r in report["per_question"] if any(a["bucket"] == bucket for a in r["modes"].values())]
    rows.sort(key=lambda r: not any(a["correct"] for a in r["modes"].values()))  # stable: file order otherwise
    return rows[:n]


def _quote(text: str) -> str:
    text = " ".join(str(text).split())
    return "`" + (text[:160] + "…" if len(text) > 160 else text).replace("`", "'") + "`"


# scores.png --------------------------------------------------------------------------------------


def _chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    s, modes = report["summary"], report["modes"]
    x = np.arange(len(RATE_METRICS))
    width = 0.8 / len(modes)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, m in enumerate(modes):
        means = [s[m][k]["mean"] for k in RATE_METRICS]
        err = [[s[m][k]["mean"] - s[m][k]["low"] for k in RATE_METRICS], [s[m][k]["high"] - s[m][k]["mean"] for k in RATE_METRICS]]
        ax.bar(x + (i - (len(modes) - 1) / 2) * width, means, width, yerr=err, capsize=3, label=m)
    ax.set_xticks(x, [LABELS[k] for k in RATE_METRICS])
    ax.set_ylabel("score (0-100), 95% CI")
    ax.set_ylim(0, 100)
    ax.set_title(f"{report['questions']['asked']} questions", fontsize=10)
    ax.legend(ncols=len(modes), fontsize=8, loc="upper left")
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)  # the temporary name has no .png to infer it from
    plt.close(fig)


# --compare ---------------------------------------------------------------------------------------


def compare(a: dict, b: dict) -> list[str]:
    """Lines of deltas (b minus a) for every mode in both runs, and what differs between the runs."""
    lines = []
    va, vb = a.get("versions", {}), b.get("versions", {})
    for key in ("model", "adapter", "adapter_dataset", "dtype", "k", "rag_answer"):
        if va.get(key) != vb.get(key):
            lines.append(f"{key}: {va.get(key)} -> {vb.get(key)}")
    ia, ib = (va.get("index") or {}).get("version"), (vb.get("index") or {}).get("version")
    if ia != ib:
        lines.append(f"index version: {ia} -> {ib}")
    if a["questions"]["source"] != b["questions"]["source"] or a["questions"]["asked"] != b["questions"]["asked"]:
        lines.append(
            f"questions: {a['questions']['asked']} from {a['questions']['source']} -> {b['questions']['asked']} from {b['questions']['source']}"
        )
    both = [m for m in a["modes"] if m in b["modes"]]
    if not both:
        return lines + ["no mode in common"]
    lines.append(f"{'mode':<8}" + "".join(f"{LABELS[k]:>22}" for k in RATE_METRICS))
    for m in both:
        cells = []
        for k in RATE_METRICS:
            x, y = a["summary"][m][k]["mean"], b["summary"][m][k]["mean"]
            cells.append(f"{x:6.1f} -> {y:5.1f} ({y - x:+5.1f})")
        lines.append(f"{m:<8}" + "".join(f"{c:>22}" for c in cells))
    return lines + _paired(a, b, both)


def _paired(a: dict, b: dict, modes: list[str]) -> list[str]:
    """Each mode's F1 change on the questions both runs asked, by paired bootstrap: two adapters
    compared on the same questions are told apart far sooner than by their intervals."""
    from ragtune.evals import stats

    rows_a = {q["id"]: q["modes"] for q in a.get("per_question", [])}
    pairs = [(rows_a[q["id"]], q["modes"]) for q in b.get("per_question", []) if q["id"] in rows_a]
    lines = [f"paired on the {len(pairs)} questions both runs asked (b minus a, F1):"] if pairs else []
    for m in modes:
        scores = [(x[m]["f1"], y[m]["f1"]) for x, y in pairs if m in x and m in y]
        if scores:
            c = stats.compare([y for _, y in scores], [x for x, _ in scores])
            lines.append(f"  {m:<8} {c.delta:+5.1f} [{c.low:+.1f}, {c.high:+.1f}], p = {c.p:.2g}")
    return lines
