"""The `ragtune` command: parse flags, call a stage's pure function, show its result.

    ragtune ingest docs/ [--prune] [--json]
    ragtune search "how do I prune deleted files?" -k 5 [--source "*guide*"]
    ragtune ask "how do I prune deleted files?" --mode rag [--json]
    ragtune serve --port 8000
    ragtune synth [--generator extractive|local|openai] [--json]
    ragtune train [--data DIR] [--out DIR] [--max-steps N] [--resume]
    ragtune eval --questions questions.jsonl --limit 200 [--modes base,rag,ft,ft-rag] [--json]
    ragtune export --adapter DIR --out DIR [--merged]
    ragtune app [--host 127.0.0.1] [--port 7860] [--auth USER:PASS]
    ragtune demo [--no-app]                 # the whole job on the bundled sample corpus

Heavy libraries are imported inside the commands, so `ragtune --help` starts at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ragtune.core import present
from ragtune.core.workdir import existing_workdir  # light: the commands that only read a work dir check it first


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    from ragtune.core.config import ConfigError

    try:
        return args.run(args)
    except ConfigError as e:
        parser.error(str(e))
    except KeyboardInterrupt:
        print("ragtune: interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, ValueError) as e:  # a missing model, an empty question, a prompt too long: one line
        print(f"ragtune: error: {e}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """`ragtune COMMAND ...`: each command's flags derive from the `setting()`s of the configs it reads."""
    parser = argparse.ArgumentParser(prog="ragtune", description="Documents in, a measured assistant out: prompting vs RAG vs fine-tuning.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shared = _shared_flags()
    _add_corpus_commands(sub, shared)
    _add_answer_commands(sub, shared)
    _add_training_commands(sub, shared)
    _add_shell_commands(sub, shared)
    return parser


@dataclass(frozen=True)
class _Shared:
    """Flag groups that several commands take (argparse parents)."""

    common: argparse.ArgumentParser  # --workdir, --config
    index: argparse.ArgumentParser  # the index's settings
    output: argparse.ArgumentParser  # --json
    answering: argparse.ArgumentParser  # the model's, ask's and the LLM's settings
    decoding: argparse.ArgumentParser


def _shared_flags() -> _Shared:
    from ragtune.core.config import add_flags  # the configs and yaml only: light
    from ragtune.rag.config import IndexConfig

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workdir", help="work directory (default: $RAGTUNE_WORKDIR or ./.ragtune)")
    common.add_argument("--config", help="a YAML file to read instead of configs/<stage>.yaml")
    index = argparse.ArgumentParser(add_help=False)
    add_flags(index, IndexConfig)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print a machine-readable report")
    return _Shared(common, index, output, _answering_flags(), _decoding_flags(seed=True))


def _answering_flags(llm_names: dict | None = None) -> argparse.ArgumentParser:
    """The flags of every command that answers: the model's, ask's (but --mode) and the LLM's.

    `llm_names`: the LLM flags' spellings where a command's own flags take the usual ones.
    """
    from ragtune.core.config import add_flags
    from ragtune.engine.config import AskConfig, LLMConfig, ModelConfig
    from ragtune.rag.config import SearchConfig

    answering = argparse.ArgumentParser(add_help=False)
    add_flags(answering, ModelConfig, skip=("threads",))  # threads: train's flag
    add_flags(answering, AskConfig, skip=("mode",))  # only ask and chat answer in one mode
    add_flags(answering, SearchConfig, only=("source",), section="search")  # the documents the rag modes read
    add_flags(answering, LLMConfig, section="llm", names=llm_names)  # `llm_model` apart from ModelConfig's `model`
    return answering


def _decoding_flags(seed: bool) -> argparse.ArgumentParser:
    """Decoding flags; `eval` has a --seed of its own (its sample), so it goes without this one."""
    from ragtune.core.config import add_flags
    from ragtune.engine.config import DecodingConfig

    decoding = argparse.ArgumentParser(add_help=False)
    add_flags(decoding, DecodingConfig, skip=() if seed else ("seed",))
    return decoding


def _add_corpus_commands(sub, shared: _Shared) -> None:
    """ingest and search."""
    from ragtune.core.config import add_flags
    from ragtune.rag.config import IngestConfig, SearchConfig

    p = sub.add_parser("ingest", parents=[shared.common, shared.index, shared.output], help="load, chunk and index files and folders")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_flags(p, IngestConfig)
    p.set_defaults(run=cmd_ingest)

    p = sub.add_parser("search", parents=[shared.common, shared.index, shared.output], help="retrieve the chunks that best match a query")
    p.add_argument("query", metavar="QUERY")
    add_flags(p, SearchConfig)
    p.set_defaults(run=cmd_search)


def _add_answer_commands(sub, shared: _Shared) -> None:
    """ask, chat, eval and serve: the four modes answering."""
    from ragtune.core.config import add_flags
    from ragtune.engine.config import AskConfig, ServeConfig
    from ragtune.evals.config import EvalConfig

    answering = [shared.common, shared.index, shared.answering]
    p = sub.add_parser("ask", parents=[*answering, shared.decoding, shared.output], help="answer a question in one of the four modes")
    p.add_argument("question", metavar="QUESTION")
    add_flags(p, AskConfig, only=("mode",))
    p.set_defaults(run=cmd_ask)

    p = sub.add_parser(
        "chat", parents=[*answering, shared.decoding], help="questions line after line, the model kept loaded; /help lists the commands"
    )
    add_flags(p, AskConfig, only=("mode",))
    p.set_defaults(run=cmd_chat)

    p = sub.add_parser(
        "eval",
        parents=[*answering, _decoding_flags(seed=False), shared.output],
        help="the same questions in every mode: scores, intervals, verdict, error analysis",
    )
    add_flags(p, EvalConfig)
    p.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="print the score deltas of two report folders, and exit")
    p.set_defaults(run=cmd_eval)

    serving = _answering_flags(llm_names={"api_key_env": ("--llm-api-key-env",)})  # serve's own --api-key-env is the key its clients send
    p = sub.add_parser(
        "serve", parents=[shared.common, shared.index, serving, shared.decoding], help="an OpenAI-compatible API over the four modes"
    )
    add_flags(p, ServeConfig)
    p.set_defaults(run=cmd_serve)


def _add_training_commands(sub, shared: _Shared) -> None:
    """synth, train and export: from the index to an adapter."""
    from ragtune.core.config import add_flags
    from ragtune.engine.config import ModelConfig
    from ragtune.synth.config import SynthConfig
    from ragtune.train.config import TrainConfig

    p = sub.add_parser(
        "synth",
        parents=[shared.common, shared.index, shared.output],
        help="synthetic instruction pairs from the indexed chunks, RAFT-style",
    )
    add_flags(p, SynthConfig)
    p.set_defaults(run=cmd_synth)

    p = sub.add_parser("train", parents=[shared.common, shared.output], help="a LoRA adapter from a synthesized dataset")
    add_flags(p, TrainConfig)
    add_flags(p, ModelConfig, skip=("trust_remote_code", "dtype"))  # training loads the model its own way
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("export", help="merge an adapter into its base model: a plain transformers folder")
    p.add_argument("--adapter", required=True, help="adapter folder written by `ragtune train`")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--merged", action="store_true", help="merge the LoRA weights into the base model (else copy the adapter)")
    p.add_argument("--model", help="base model (default: the one the adapter names)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(run=cmd_export)


def _add_shell_commands(sub, shared: _Shared) -> None:
    """app and demo: the workbench, and the whole job on the sample corpus."""
    from ragtune.core.config import add_flags
    from ragtune.engine.config import AppConfig
    from ragtune.pipeline import DemoConfig

    p = sub.add_parser(
        "app",
        parents=[shared.common, shared.index, shared.answering, shared.decoding],
        help="the Gradio workbench: chat with the four modes side by side, ingest, synth, train, eval",
    )
    add_flags(p, AppConfig)
    p.set_defaults(run=cmd_app)

    p = sub.add_parser("demo", parents=[shared.common], help="the whole job on the bundled sample corpus: ingest, synth, train, eval, app")
    p.add_argument("--no-app", action="store_true", help="print the tables and exit instead of launching the app")
    add_flags(p, DemoConfig)
    p.set_defaults(run=cmd_demo)


def _index_overrides(args) -> dict:
    from ragtune.core.config import flag_values
    from ragtune.rag.config import IndexConfig

    return flag_values(args, IndexConfig, prefix="index.")


def cmd_ingest(args) -> int:
    from ragtune.core.config import flag_values, load_config
    from ragtune.rag.config import IngestConfig
    from ragtune.rag.ingest import ingest

    cfg = load_config(
        IngestConfig,
        {"paths": args.paths, "workdir": args.workdir, **flag_values(args, IngestConfig), **_index_overrides(args)},
        args.config,
    )
    bar = _Progress(disable=args.json)
    report = ingest(cfg, on_file=bar.update, on_status=_status("ingest", quiet=args.json))
    bar.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for f in report.files:
            if f.status in ("failed", "skipped", "pruned") or f.warnings:
                print(f.line(), file=sys.stderr)
        print(f"{present.ingest_summary(report)}. {report.elapsed_s:.1f} s")
    ingested = report.count("ok") + report.count("unchanged")
    if ingested == 0 and report.count("pruned") == 0:
        print("ragtune: nothing was ingested", file=sys.stderr)
        return 1
    return 1 if cfg.strict and report.count("failed") else 0


def cmd_search(args) -> int:
    from ragtune.core.config import flag_values, load_config
    from ragtune.rag.config import SearchConfig

    cfg = load_config(SearchConfig, {"workdir": args.workdir, **flag_values(args, SearchConfig), **_index_overrides(args)}, args.config)
    existing_workdir(cfg.workdir)  # before the index opens: Chroma would create a misspelt work dir
    from ragtune.rag.retrieve import Retriever  # seconds of imports, after the checks

    retriever = Retriever(cfg)
    if retriever.size == 0:
        print(f"ragtune: collection '{cfg.index.collection}' is empty: run `ragtune ingest PATH` first", file=sys.stderr)
        return 1
    hits = retriever.search(args.query)
    if args.json:
        print(json.dumps({"query": args.query, "hits": [h.to_json() for h in hits]}, indent=2))
        return 0
    for h in hits:
        c = h.chunk
        print("\n".join(present.hit_lines(h.rank, h.score, c.source, c.page, c.section, c.text, 240, c.title, c.ocr)))
    return 0


def _ask_overrides(args) -> dict:
    from ragtune.core.config import flag_values
    from ragtune.engine.config import AskConfig, DecodingConfig, LLMConfig, ModelConfig
    from ragtune.rag.config import SearchConfig

    llm = flag_values(args, LLMConfig, section="llm")
    if llm["llm.base_url"] and not llm["llm.kind"]:  # --base-url alone means the endpoint: the local model answering would hide the slip
        llm["llm.kind"] = "openai"
    out = {
        "workdir": args.workdir,
        **flag_values(args, AskConfig),
        **flag_values(args, ModelConfig, prefix="model."),
        **llm,
        **flag_values(args, SearchConfig, section="search"),
        **{f"search.{k}": v for k, v in _index_overrides(args).items()},
    }
    out.update(
        {
            k: v
            for k, v in flag_values(args, DecodingConfig, prefix="decoding.").items()
            if not (k == "decoding.seed" and args.command == "eval")
        }
    )  # eval's --seed is its sample's
    if args.stop:  # `--stop '\n'` typed in a shell means a newline
        out["decoding.stop"] = [s.replace("\\n", "\n").replace("\\t", "\t") for s in args.stop]
    return out


def cmd_ask(args) -> int:
    from ragtune.core.config import load_config
    from ragtune.engine.config import AskConfig

    cfg = load_config(AskConfig, _ask_overrides(args), args.config)
    existing_workdir(cfg.workdir)
    answerer = _answerer(cfg)
    why = answerer.unavailable([cfg.mode]).get(cfg.mode)  # the adapter, index and sentence splitter load now: latency_s is the answer's
    if why:
        print(f"ragtune: error: {why}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answerer.answer(args.question, cfg.mode).to_json(), indent=2, ensure_ascii=False))
        return 0
    stream = answerer.stream(args.question, cfg.mode)
    try:
        while True:
            print(next(stream), end="", flush=True)
    except StopIteration as done:
        answer = done.value
    print(flush=True)  # before the sources, which go to stderr
    cited = {c.n for c in answer.citations}
    for n, s in enumerate(answer.sources, 1):  # [n] is how the answer cites the n-th chunk of its prompt
        print(present.source_line(n, s, cited=n in cited), file=sys.stderr)
    if answer.dropped_citations:
        print(present.dropped_citations(answer.dropped_citations), file=sys.stderr)
    return 0


def _answerer(cfg):
    """The Answerer for `ask` and `chat`, saying once when a base model answers through a plain template."""
    from ragtune.engine.answer import Answerer
    from ragtune.engine.model import PLAIN_TEMPLATE_NOTICE

    answerer = Answerer(cfg)
    if getattr(answerer.engine, "plain_template", False):
        print(f"ragtune: --model {cfg.model.model} {PLAIN_TEMPLATE_NOTICE}", file=sys.stderr)
    return answerer


def cmd_chat(args) -> int:
    from ragtune.core.config import load_config
    from ragtune.engine.config import AskConfig

    cfg = load_config(AskConfig, _ask_overrides(args), args.config)
    existing_workdir(cfg.workdir)
    answerer = _answerer(cfg)
    mode, k, last, answered = cfg.mode, cfg.k, None, 0
    why = answerer.unavailable([mode]).get(mode)  # loads the adapter and opens the index now, not at the first question
    print(
        f"ragtune chat: mode {mode}, k {k}" + (f" (unavailable: {why})" if why else "") + "; /help lists the commands, Ctrl-D ends",
        file=sys.stderr,
    )
    try:
        for line in _chat_lines():
            command, arg = parse_chat_line(line)
            if command == "ask":
                try:
                    last = _chat_answer(answerer, arg, mode, k)
                    answered += 1
                except Exception as e:  # one question failed; the chat goes on
                    print(f"ragtune: error: {(str(e).strip().splitlines() or [type(e).__name__])[0]}", file=sys.stderr)
            elif command == "mode" and arg is not None:
                why = answerer.unavailable([arg]).get(arg)
                if why:
                    print(f"ragtune: mode {arg} is unavailable: {why}; still {mode}", file=sys.stderr)
                else:
                    mode = arg
                    print(f"mode {mode}")
            elif command == "k" and arg is not None:
                k = arg
                print(f"k {k}")
            elif command in ("mode", "k"):
                print(f"mode {mode}, k {k}")
            elif command == "sources":
                _chat_sources(last)
            elif command == "help":
                print(CHAT_HELP)
            elif command == "quit":
                break
            elif command == "error":
                print(f"ragtune: {arg}", file=sys.stderr)
    except KeyboardInterrupt:
        print()
    print(f"ragtune chat: {answered} question{'s' * (answered != 1)} answered", file=sys.stderr)
    return 0


CHAT_HELP = """Type a question and press Enter. Each question is answered on its own: the chat keeps no memory of earlier ones.
  /mode base|rag|ft|ft-rag   answer in this mode from now on (/mode alone shows the mode and k)
  /k N                       retrieve N chunks for the rag modes
  /sources                   the chunks the last answer read: rank, file, page or section, score, a snippet
  /help                      this text
  /quit                      end the chat (so do Ctrl-D and Ctrl-C)"""


def _chat_lines():
    """The lines typed, with a prompt and line editing at a terminal; piped input line by line."""
    if not sys.stdin.isatty():
        yield from iter(sys.stdin.readline, "")
        return
    try:
        import readline  # noqa: F401 - line editing and history for input()
    except ImportError:
        pass
    while True:
        try:
            yield input("> ")
        except EOFError:
            print()
            return


def parse_chat_line(line: str) -> tuple[str, str | int | None]:
    """What one line typed into `ragtune chat` asks for, as (command, argument).

    ("ask", question); ("mode", a mode or None); ("k", N or None); ("sources" | "help" | "quit", None);
    ("", None) for a blank line; ("error", why) for a command it cannot take.
    """
    from ragtune.engine.config import MODES

    text = line.strip()
    if not text:
        return "", None
    if not text.startswith("/"):
        return "ask", text
    name, _, arg = text[1:].partition(" ")
    name, arg = name.lower(), arg.strip()
    if name == "mode":
        if arg and arg.lower() not in MODES:
            return "error", f"unknown mode {arg!r}: choose one of {', '.join(MODES)}"
        return "mode", arg.lower() or None
    if name == "k":
        if arg and not (arg.isdigit() and int(arg) >= 1):
            return "error", f"/k takes a number of chunks, 1 or more; got {arg!r}"
        return "k", int(arg) if arg else None
    if name in ("sources", "help", "quit", "exit"):
        return ("quit" if name == "exit" else name), None
    return "error", f"unknown command /{name}: /help lists the commands"


def _chat_answer(answerer, question: str, mode: str, k: int):
    """Stream one answer to stdout, then its citations one per line; returns the `Answer`."""
    stream, shown = answerer.stream(question, mode, k=k), ""
    try:
        while True:
            piece = next(stream)
            shown += piece
            print(piece, end="", flush=True)
    except StopIteration as done:
        answer = done.value
    finally:
        stream.close()  # Ctrl-C mid-answer: stop generating
        if shown:
            print(flush=True)
    if not shown:
        print(answer.text or "(no answer)")
    for c in answer.citations:
        print(c.label())
    if answer.dropped_citations:
        print(f"({present.dropped_citations(answer.dropped_citations)})")
    return answer


def _chat_sources(answer) -> None:
    """The last answer's chunks, best first: rank, file, page or section, score and a one-line snippet."""
    if answer is None:
        print("no answer yet")
        return
    if not answer.sources:
        print(f"the last answer ({answer.mode}) read no sources")
        return
    import shutil

    width = max(shutil.get_terminal_size((100, 20)).columns - 4, 40)
    for s in answer.sources:
        print("\n".join(present.hit_lines(s.rank, s.score, s.source, s.page, s.section, s.text, width, s.title, s.ocr)))


def cmd_eval(args) -> int:
    from ragtune.core.config import flag_values, load_config
    from ragtune.evals import report as R
    from ragtune.evals.config import EvalConfig
    from ragtune.evals.questions import skipped_lines
    from ragtune.evals.run import evaluate_report

    if args.compare:
        lines = R.compare(R.read(args.compare[0]), R.read(args.compare[1]))
        print(json.dumps({"runs": args.compare, "lines": lines}, indent=2) if args.json else "\n".join(lines))
        return 0
    cfg = load_config(
        EvalConfig,
        {"workdir": args.workdir, **flag_values(args, EvalConfig), **{f"ask.{k}": v for k, v in _ask_overrides(args).items()}},
        args.config,
    )
    existing_workdir(cfg.workdir)
    bars = _StageBars(disable=args.json, unit="question")
    try:
        report = evaluate_report(cfg, progress=bars.update)
    finally:
        bars.close()
    out = R.write(report, cfg.out or R.default_out(cfg.workdir), cfg.examples)
    if args.json:
        keep = (
            "verdict",
            "questions",
            "modes",
            "skipped_modes",
            "summary",
            "retrieval",
            "comparisons",
            "buckets",
            "by_type",
            "versions",
            "elapsed_s",
        )
        data = report.to_json()
        print(json.dumps({**{k: data[k] for k in keep}, "out": str(out)}, indent=2, ensure_ascii=False, default=str))
        return 0
    q = report.questions
    if cfg.limit > q["read"]:
        print(f"--limit {cfg.limit}: the questions hold only {q['read']}; all are asked", file=sys.stderr)
    for line in skipped_lines(q["skipped"]):
        print(line, file=sys.stderr)
    for mode, why in report.skipped_modes.items():
        print(f"mode {mode} skipped: {why}", file=sys.stderr)
    _print_scores(report, out)
    return 0


def _print_scores(report, out) -> None:
    """A score table per question type, retrieval, the verdict and where the report is; `report` is an EvalReport or its data."""
    from ragtune.core.records import EvalReport
    from ragtune.evals.run import SHORT_WORDS

    report = report.to_json() if isinstance(report, EvalReport) else report
    for i, table in enumerate(present.score_tables(report, SHORT_WORDS)):
        print(("\n" if i else "") + f"{table.title}:")
        print("\n".join(present.text_table(table)))
    retrieval = present.retrieval_line(report)
    if retrieval:
        print(retrieval)
    print(report["verdict"])
    print(f"Report: {present.short_path(out)}/report.md ({report['elapsed_s']:.0f} s)")


def cmd_serve(args) -> int:
    from ragtune.core.config import flag_values, load_config
    from ragtune.engine.config import ServeConfig

    overrides = {f"ask.{k}": v for k, v in _ask_overrides(args).items()}
    cfg = load_config(ServeConfig, {**flag_values(args, ServeConfig), **overrides}, args.config)
    existing_workdir(cfg.ask.workdir)
    from ragtune.engine.server import serve

    serve(cfg)
    return 0


def cmd_synth(args) -> int:
    from ragtune.core.config import flag_values, load_config
    from ragtune.synth.config import SynthConfig
    from ragtune.synth.pipeline import synthesize_card

    cfg = load_config(
        SynthConfig,
        {"workdir": args.workdir, **flag_values(args, SynthConfig), **{f"search.{k}": v for k, v in _index_overrides(args).items()}},
        args.config,
    )
    bars = _StageBars(disable=args.json)
    try:
        card = synthesize_card(cfg, progress=bars.update)
    finally:
        bars.close()
    if args.json:
        print(json.dumps(card.to_json(), indent=2, ensure_ascii=False, default=str))
        return 0
    dropped = {k: v for k, v in card.filtered.items() if v}
    print(f"{present.synth_summary(card)}, {card.drafts} drafts. {card.elapsed_s:.1f} s, {card.pairs_per_s:.0f} pairs/s")
    print(
        f"Grounded before filters: {100 * card.grounding_rate_before_filters:.1f}%. "
        f"Dropped: {', '.join(f'{v} {k}' for k, v in dropped.items()) or 'none'}. "
        f"Largest eval-train question similarity: {card.leakage['max_eval_train_similarity']:.3f}"
    )
    print(f"Dataset: {present.short_path(card.path)}")
    return 0


def cmd_train(args) -> int:
    from ragtune.core.config import flag_values, load_config
    from ragtune.engine.config import ModelConfig
    from ragtune.train.config import TrainConfig

    cfg = load_config(
        TrainConfig,
        {"workdir": args.workdir, **flag_values(args, ModelConfig, prefix="model."), **flag_values(args, TrainConfig)},
        args.config,
    )
    status = _status("train", quiet=args.json)
    status("starting (importing torch and transformers) ...")
    from ragtune.train.run import train
    from ragtune.train.selftrain import self_train

    bar = _TrainBar(disable=args.json)
    rounds = []
    try:
        if cfg.self_train:
            report, rounds = self_train(cfg, progress=bar.update, on_status=status)
        else:
            report = train(cfg, progress=bar.update, on_status=status)
    finally:
        bar.close()
    if args.json:
        print(json.dumps({**report.to_json(), **({"self_train": [r.__dict__ for r in rounds]} if rounds else {})}, indent=2))
        return 130 if report.interrupted else 0
    for r in rounds[1:]:
        print(present.self_train_round(r))
    rows = report.rows["train"]
    if rows["no_assistant_skipped"] or rows["truncated"] or rows["bad_json_skipped"]:
        print(
            f"train.jsonl: {rows['rows']} rows; {rows['no_assistant_skipped']} without an assistant turn skipped, "
            f"{rows['bad_json_skipped']} malformed skipped, {rows['truncated']} longer than --max-length truncated",
            file=sys.stderr,
        )
    if report.interrupted:
        print(f"ragtune: interrupted: {present.train_stopped(report, present.short_path(report.out))}", file=sys.stderr)
        return 130
    print(f"{present.train_summary(report)}, {report.wall_s:.1f} s, peak RSS {report.peak_rss_mb / 1024:.2f} GiB")
    print(f"Adapter: {present.short_path(report.out)}")
    return 0


def cmd_export(args) -> int:
    from ragtune.train.export import export

    out = export(args.adapter, args.out, merged=args.merged, overwrite=args.overwrite, model=args.model)
    print(f"{'Merged model' if args.merged else 'Adapter'}: {present.short_path(out)}")
    return 0


def cmd_app(args) -> int:
    from ragtune.core.config import flag_values, load_config
    from ragtune.engine.config import AppConfig

    cfg = load_config(
        AppConfig,
        {"workdir": args.workdir, **flag_values(args, AppConfig), **{f"ask.{k}": v for k, v in _ask_overrides(args).items()}},
        args.config,
    )
    existing_workdir(cfg.workdir)
    from ragtune.app import launch  # gradio: seconds of imports, after the checks

    print(f"ragtune app: http://{cfg.host}:{cfg.port} (work dir {present.short_path(str(cfg.workdir))}); Ctrl-C stops it", file=sys.stderr)
    launch(cfg)
    return 0


def cmd_demo(args) -> int:
    """The whole job on the bundled sample corpus (pipeline.run_demo), each stage's line as it ends, then the app."""
    from ragtune.app import launch
    from ragtune.core.config import flag_values, load_config
    from ragtune.pipeline import DemoConfig, run_demo

    cfg = load_config(DemoConfig, {"workdir": args.workdir, **flag_values(args, DemoConfig)}, args.config)
    workdir, took = str(cfg.workdir), {}
    print(f"ragtune demo: {present.short_path(cfg.docs)} -> {present.short_path(workdir)}", file=sys.stderr)
    for step in run_demo(cfg, _demo_bars):
        took[step.stage] = took.get(step.stage, 0.0) + step.seconds
        print(("\n" if step.stage == "eval" else "") + present.demo_line(step))
        if step.stage == "eval":
            _print_scores(step.result.report, step.result.out)
    print(f"\nDemo done in {sum(took.values()):.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()))
    if args.no_app:
        return 0
    print(f"ragtune app: http://{cfg.app.host}:{cfg.app.port} (work dir {present.short_path(workdir)}); Ctrl-C stops it", file=sys.stderr)
    launch(cfg.app)
    return 0


@contextlib.contextmanager
def _demo_bars(stage: str):
    """The demo's progress bar for a stage, closed when the stage ends."""
    bar = (
        _Progress(disable=False)
        if stage == "ingest"
        else _TrainBar(disable=False)
        if stage == "train"
        else _StageBars(disable=False, unit="question" if stage == "eval" else "it")
    )
    try:
        yield bar.update
    finally:
        bar.close()


def _status(command: str, quiet: bool = False):
    """A callback printing a slow phase's line (`ragtune ingest: loading embedding model ...`) to stderr, above any bar."""

    def show(line: str) -> None:
        if not quiet:
            from tqdm import tqdm

            tqdm.write(f"ragtune {command}: {line}", file=sys.stderr)

    return show


class _TrainBar:
    """A tqdm bar over optimizer steps, with the last loss and tokens/s."""

    def __init__(self, disable: bool):
        self.bar, self.disable = None, disable

    def update(self, step: int, total: int, stats: dict) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, initial=step - 1, unit="step", desc="train", disable=self.disable, file=sys.stderr)
        loss = f"loss {stats['loss']:.3f}, " if stats.get("loss") is not None else ""
        self.bar.set_postfix_str(f"{loss}{stats['tokens_per_s']:.0f} tok/s", refresh=False)
        self.bar.update(step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _StageBars:
    """A tqdm bar for the stage of a long job that is running; a new stage closes the last one's."""

    UNITS = {"generate": "chunk", "distractors": "fact"}

    def __init__(self, disable: bool, unit: str = "it"):
        self.stage, self.bar, self.disable, self.unit = None, None, disable, unit

    def update(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, unit=self.UNITS.get(stage, self.unit), desc=stage, disable=self.disable, file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None


class _Progress:
    """A tqdm bar over files, made on the first update (when the total is known)."""

    def __init__(self, disable: bool):
        self.bar, self.disable = None, disable

    def update(self, report, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", desc="ingest", disable=self.disable, file=sys.stderr)
        self.bar.set_postfix_str(f"{Path(report.path).name[:30]}: {report.status}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _quiet_libraries() -> None:
    """Library chatter (weight-loading bars, telemetry notices) is not our user's business."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    from ragtune.core import offline

    offline.setup()


if __name__ == "__main__":
    sys.exit(main())
