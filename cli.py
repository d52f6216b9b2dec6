"""The `ragtune` command: parse flags, call a stage's pure function, show its result.

    ragtune ingest docs/ [--prune] [--json]
    ragtune search "how do I prune deleted files?" -k 5
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
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    from core.config import ConfigError

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
    from core.config import add_flags  # the configs and yaml only: light
    from engine.config import AppConfig, AskConfig, ModelConfig, ServeConfig
    from evals.config import EvalConfig
    from rag.config import IndexConfig, IngestConfig, SearchConfig
    from synth.config import SynthConfig
    from train.config import TrainConfig

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workdir", help="work directory (default: $RAGTUNE_WORKDIR or ./.ragtune)")
    common.add_argument("--config", help="a YAML file to read instead of configs/<stage>.yaml")
    index = argparse.ArgumentParser(add_help=False)
    add_flags(index, IndexConfig)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print a machine-readable report")

    parser = argparse.ArgumentParser(prog="ragtune", description="Documents in, a measured assistant out: prompting vs RAG vs fine-tuning.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", parents=[common, index, output], help="load, chunk and index files and folders")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_flags(p, IngestConfig)
    p.set_defaults(run=cmd_ingest)

    p = sub.add_parser("search", parents=[common, index, output], help="retrieve the chunks that best match a query")
    p.add_argument("query", metavar="QUERY")
    add_flags(p, SearchConfig)
    p.set_defaults(run=cmd_search)

    model = argparse.ArgumentParser(add_help=False)
    add_flags(model, ModelConfig, skip=("threads",))  # threads: train's flag
    add_flags(model, AskConfig)
    model.add_argument("--llm", choices=["local", "openai"], help="who answers: the local --model (default), or a model behind an OpenAI-compatible endpoint")
    model.add_argument("--base-url", help="--llm openai: the endpoint, e.g. http://127.0.0.1:8000/v1")
    model.add_argument("--llm-model", metavar="NAME", help="--llm openai: the model's name there (default: the first it lists)")
    model.add_argument("--llm-adapter-model", metavar="NAME",
                       help="--llm openai: the name it serves the adapter under, for ft/ft-rag (vLLM: --lora-modules NAME=DIR)")
    serve_model = argparse.ArgumentParser(add_help=False, parents=[model])  # serve's own --api-key-env is the key its clients send
    serve_model.add_argument("--llm-api-key-env", dest="llm_api_key_env", metavar="NAME", help="--llm openai: env var holding the endpoint's key")
    model.add_argument("--api-key-env", dest="llm_api_key_env", metavar="NAME", help="--llm openai: env var holding the endpoint's key")
    decoding = _decoding_flags(seed=True)

    p = sub.add_parser("ask", parents=[common, index, model, decoding, output], help="answer a question in one of the four modes")
    p.add_argument("question", metavar="QUESTION")
    p.add_argument("--mode", choices=["base", "rag", "ft", "ft-rag"], help="default: rag")
    p.set_defaults(run=cmd_ask)

    p = sub.add_parser("chat", parents=[common, index, model, decoding], help="questions line after line, the model kept loaded; /help lists the commands")
    p.add_argument("--mode", choices=["base", "rag", "ft", "ft-rag"], help="the first questions' mode; /mode changes it (default: rag)")
    p.set_defaults(run=cmd_chat)

    p = sub.add_parser("eval", parents=[common, index, model, _decoding_flags(seed=False), output],
                       help="the same questions in every mode: scores, intervals, verdict, error analysis")
    add_flags(p, EvalConfig)
    p.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="print the score deltas of two report folders, and exit")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("serve", parents=[common, index, serve_model, decoding], help="an OpenAI-compatible API over the four modes")
    add_flags(p, ServeConfig)
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("synth", parents=[common, index, output], help="synthetic instruction pairs from the indexed chunks, RAFT-style")
    add_flags(p, SynthConfig)
    p.set_defaults(run=cmd_synth)

    p = sub.add_parser("train", parents=[common, output], help="a LoRA adapter from a synthesized dataset")
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

    p = sub.add_parser("app", parents=[common, index, model, decoding], help="the Gradio workbench: chat with the four modes side by side, ingest, synth, train, eval")
    add_flags(p, AppConfig)
    p.set_defaults(run=cmd_app)

    p = sub.add_parser("demo", parents=[common], help="the whole job on the bundled sample corpus: ingest, synth, train, eval, app")
    p.add_argument("--no-app", action="store_true", help="print the tables and exit instead of launching the app")
    p.add_argument("--model", help="'packaged' (SmolLM2-135M-Instruct, the default), an HF model id, a local folder or a .gguf file")
    p.set_defaults(run=cmd_demo)
    return parser


def _decoding_flags(seed: bool) -> argparse.ArgumentParser:
    """Decoding flags; `eval` has a --seed of its own (its sample), so it goes without this one."""
    from core.config import add_flags
    from engine.config import DecodingConfig

    decoding = argparse.ArgumentParser(add_help=False)
    add_flags(decoding, DecodingConfig, skip=() if seed else ("seed",))
    return decoding


def _index_overrides(args) -> dict:
    from core.config import flag_values
    from rag.config import IndexConfig

    return flag_values(args, IndexConfig, prefix="index.")


def cmd_ingest(args) -> int:
    from core.config import flag_values, load_config
    from rag.config import IngestConfig
    from rag.ingest import ingest

    cfg = load_config(IngestConfig, {"paths": args.paths, "workdir": args.workdir, **flag_values(args, IngestConfig),
                                      **_index_overrides(args)}, args.config)
    bar = _Progress(disable=args.json)
    report = ingest(cfg, on_file=bar.update)
    bar.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for f in report.files:
            if f.status in ("failed", "skipped", "pruned") or f.warnings:
                print(f.line(), file=sys.stderr)
        counts = ", ".join(f"{report.count(s)} {s}" for s in ("ok", "unchanged", "skipped", "failed", "pruned") if report.count(s))
        print(f"{len(report.files)} files: {counts or 'none'}. Chunks: {report.chunks_added} added, "
              f"{report.chunks_unchanged} unchanged, {report.chunks_removed} removed; "
              f"{report.total_chunks} in collection '{report.collection}'. {report.elapsed_s:.1f} s")
    ingested = report.count("ok") + report.count("unchanged")
    if ingested == 0 and report.count("pruned") == 0:
        print("ragtune: nothing was ingested", file=sys.stderr)
        return 1
    return 1 if cfg.strict and report.count("failed") else 0


def cmd_search(args) -> int:
    from core.config import flag_values, load_config
    from rag.config import SearchConfig
    from rag.retrieve import Retriever

    cfg = load_config(SearchConfig, {"workdir": args.workdir, **flag_values(args, SearchConfig), **_index_overrides(args)}, args.config)
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
        where = f"p.{c.page}" if c.page else ""
        where += (" " if where else "") + (f"§ {c.section}" if c.section else "")
        snippet = " ".join(c.text.split())
        print(f"{h.rank}. [{h.score:.4f}] {_short(c.source)} {where}".rstrip())
        print(f"   {snippet[:240]}{'…' if len(snippet) > 240 else ''}")
    return 0


def _ask_overrides(args) -> dict:
    from core.config import flag_values
    from engine.config import AskConfig, DecodingConfig, ModelConfig

    out = {"workdir": args.workdir, **flag_values(args, AskConfig), **flag_values(args, ModelConfig, prefix="model."),
           # --base-url alone means the endpoint: answering with the local model instead would hide the slip
           "llm.kind": args.llm or ("openai" if args.base_url else None), "llm.base_url": args.base_url,
           "llm.model": args.llm_model, "llm.adapter_model": args.llm_adapter_model, "llm.api_key_env": args.llm_api_key_env,
           **{f"search.{k}": v for k, v in _index_overrides(args).items()}}
    out.update({k: v for k, v in flag_values(args, DecodingConfig, prefix="decoding.").items()
                if not (k == "decoding.seed" and args.command == "eval")})  # eval's --seed is its sample's
    if args.stop:  # `--stop '\n'` typed in a shell means a newline
        out["decoding.stop"] = [s.replace("\\n", "\n").replace("\\t", "\t") for s in args.stop]
    return out


def cmd_ask(args) -> int:
    from core.config import load_config
    from engine.config import AskConfig

    cfg = load_config(AskConfig, {**_ask_overrides(args), "mode": args.mode}, args.config)
    answerer = _answerer(cfg)
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
        where = " ".join(x for x in (f"p.{s.page}" if s.page else "", f"§ {s.section}" if s.section else "") if x)
        print(f"[{n}] {_short(s.source)} {where}{'  (cited)' if n in cited else ''}".rstrip(), file=sys.stderr)
    if answer.dropped_citations:
        print(f"{answer.dropped_citations} citation(s) to no retrieved chunk removed", file=sys.stderr)
    return 0


def _answerer(cfg):
    """The Answerer for `ask` and `chat`, saying once when a base model answers through a plain template."""
    from engine.answer import Answerer
    from engine.model import PLAIN_TEMPLATE_NOTICE

    answerer = Answerer(cfg)
    if getattr(answerer.engine, "plain_template", False):
        print(f"ragtune: --model {cfg.model.model} {PLAIN_TEMPLATE_NOTICE}", file=sys.stderr)
    return answerer


def cmd_chat(args) -> int:
    from core.config import load_config
    from engine.config import AskConfig

    cfg = load_config(AskConfig, {**_ask_overrides(args), "mode": args.mode}, args.config)
    answerer = _answerer(cfg)
    mode, k, last, answered = cfg.mode, cfg.k, None, 0
    why = answerer.unavailable([mode]).get(mode)  # loads the adapter and opens the index now, not at the first question
    print(f"ragtune chat: mode {mode}, k {k}" + (f" (unavailable: {why})" if why else "") + "; /help lists the commands, Ctrl-D ends",
          file=sys.stderr)
    tty = sys.stdin.isatty()
    if tty:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
    try:
        while True:
            if tty:
                try:
                    line = input("> ")
                except EOFError:
                    print()
                    break
            else:
                line = sys.stdin.readline()
                if not line:
                    break
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


def parse_chat_line(line: str) -> tuple[str, str | int | None]:
    """What one line typed into `ragtune chat` asks for, as (command, argument).

    ("ask", question); ("mode", a mode or None); ("k", N or None); ("sources" | "help" | "quit", None);
    ("", None) for a blank line; ("error", why) for a command it cannot take.
    """
    from engine.config import MODES

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
        print(f"({answer.dropped_citations} citation{'s' * (answer.dropped_citations != 1)} to no retrieved chunk removed)")
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
        where = " ".join(x for x in (f"p.{s.page}" if s.page else "", f"§ {s.section}" if s.section else "") if x)
        snippet = " ".join(s.text.split())
        print(f"{s.rank}. [{s.score:.4f}] {_short(s.source)} {where}".rstrip())
        print(f"   {snippet[:width]}{'…' if len(snippet) > width else ''}")


def cmd_eval(args) -> int:
    from core.config import flag_values, load_config
    from evals import report as R
    from evals.config import EvalConfig
    from evals.run import evaluate

    if args.compare:
        lines = R.compare(R.read(args.compare[0]), R.read(args.compare[1]))
        print(json.dumps({"runs": args.compare, "lines": lines}, indent=2) if args.json else "\n".join(lines))
        return 0
    cfg = load_config(EvalConfig, {"workdir": args.workdir, **flag_values(args, EvalConfig),
                                   **{f"ask.{k}": v for k, v in _ask_overrides(args).items()}}, args.config)
    bars = _StageBars(disable=args.json, unit="question")
    try:
        report = evaluate(cfg, progress=bars.update)
    finally:
        bars.close()
    out = R.write(report, cfg.out or R.default_out(cfg.workdir), cfg.examples)
    if args.json:
        keep = ("verdict", "questions", "modes", "skipped_modes", "summary", "retrieval", "comparisons", "buckets", "by_type", "versions", "elapsed_s")
        print(json.dumps({**{k: report[k] for k in keep}, "out": str(out)}, indent=2, ensure_ascii=False, default=str))
        return 0
    q = report["questions"]
    if cfg.limit > q["read"]:
        print(f"--limit {cfg.limit}: the questions hold only {q['read']}; all are asked", file=sys.stderr)
    if q["skipped"]:
        print(f"{len(q['skipped'])} question lines skipped; first: {q['skipped'][0]}", file=sys.stderr)
    for mode, why in report["skipped_modes"].items():
        print(f"mode {mode} skipped: {why}", file=sys.stderr)
    _print_scores(report, out)
    return 0


def _print_scores(report: dict, out) -> None:
    """A score table per question type, retrieval, the verdict and where the report is."""
    from evals.run import SHORT_WORDS

    def mean(iv: dict | None) -> str:  # n/a: the metric applies to no answer (no keys, no citation)
        return f"{iv['mean']:.1f}" if iv else "n/a"

    for i, (qtype, summary) in enumerate((report.get("by_type") or {"factoid": report["summary"]}).items()):
        print(("\n" if i else "") + f"{qtype} questions ({next(iter(summary.values())).get('n', report['questions']['asked'])}):")
        if qtype == "open":
            print(f"{'mode':<8}{'key rec':>9}{'tok F1':>8}{'tok rec':>9}{'cited':>7}{'cite prec':>11}{'words p50':>11}{f'≤{SHORT_WORDS} words':>10}")
            for m in report["modes"]:
                s = summary[m]
                print(f"{m:<8}{mean(s['key_recall']):>9}{mean(s['token_f1']):>8}{mean(s['token_recall']):>9}{mean(s['cited']):>6}%"
                      f"{mean(s['citation_precision']):>11}{s['words_p50']:>11g}{s['short_rate']:9.1f}%")
            continue
        print(f"{'mode':<8}{'EM':>7}{'F1':>7}{'contains':>10}{'ROUGE-L':>9}{'abstain':>9}{'gold ppl':>10}{'p50 s':>8}")
        for m in report["modes"]:
            s = summary[m]
            ppl = f"{s['gold_perplexity']['mean']:.2f}" if s.get("gold_perplexity") else "n/a"
            print(f"{m:<8}{s['exact']['mean']:7.1f}{s['f1']['mean']:7.1f}{s['contains']['mean']:9.1f}%{s['rouge_l']['mean']:9.1f}"
                  f"{s['abstain_rate']:8.1f}%{ppl:>10}{s['latency_s']['p50']:8.2f}")
    if report.get("retrieval"):
        r = report["retrieval"]
        print(f"retrieval: hit@{r['k']} {r['hit_at_k']['mean']:.1f}%, answer-recall@{r['k']} {r['answer_recall_at_k']['mean']:.1f}%")
    print(report["verdict"])
    print(f"Report: {_short(str(out))}/report.md ({report['elapsed_s']:.0f} s)")


def cmd_serve(args) -> int:
    from core.config import flag_values, load_config
    from engine.config import ServeConfig
    from engine.server import serve

    overrides = {f"ask.{k}": v for k, v in _ask_overrides(args).items()}
    cfg = load_config(ServeConfig, {**flag_values(args, ServeConfig), **overrides}, args.config)
    serve(cfg)
    return 0


def cmd_synth(args) -> int:
    from core.config import flag_values, load_config
    from synth.config import SynthConfig
    from synth.pipeline import synthesize

    cfg = load_config(SynthConfig, {"workdir": args.workdir, **flag_values(args, SynthConfig),
                                    **{f"search.{k}": v for k, v in _index_overrides(args).items()}}, args.config)
    bars = _StageBars(disable=args.json)
    try:
        card = synthesize(cfg, progress=bars.update)
    finally:
        bars.close()
    if args.json:
        print(json.dumps(card, indent=2, ensure_ascii=False, default=str))
        return 0
    pairs, chunks, dropped = card["pairs"], card["chunks"], {k: v for k, v in card["filtered"].items() if v}
    print(f"{pairs['total']} pairs ({pairs.get('train', 0)} train, {pairs.get('eval', 0)} eval; {pairs['groups']} facts) "
          f"from {chunks['with_pairs']} of {chunks['total']} chunks ({100 * chunks['coverage']:.0f}% coverage), "
          f"{card['drafts']} drafts. {card['elapsed_s']:.1f} s, {card['pairs_per_s']:.0f} pairs/s")
    print(f"Grounded before filters: {100 * card['grounding_rate_before_filters']:.1f}%. "
          f"Dropped: {', '.join(f'{v} {k}' for k, v in dropped.items()) or 'none'}. "
          f"Largest eval-train question similarity: {card['leakage']['max_eval_train_similarity']:.3f}")
    print(f"Dataset: {_short(card['path'])}")
    return 0


def cmd_train(args) -> int:
    from core.config import flag_values, load_config
    from engine.config import ModelConfig
    from train.config import TrainConfig
    from train.run import train

    cfg = load_config(TrainConfig, {"workdir": args.workdir, **flag_values(args, ModelConfig, prefix="model."),
                                    **flag_values(args, TrainConfig)}, args.config)
    bar = _TrainBar(disable=args.json)
    try:
        report = train(cfg, progress=bar.update)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 130 if report.interrupted else 0
    rows = report.rows["train"]
    if rows["no_assistant_skipped"] or rows["truncated"] or rows["bad_json_skipped"]:
        print(f"train.jsonl: {rows['rows']} rows; {rows['no_assistant_skipped']} without an assistant turn skipped, "
              f"{rows['bad_json_skipped']} malformed skipped, {rows['truncated']} longer than --max-length truncated", file=sys.stderr)
    if report.interrupted:
        print(f"ragtune: interrupted at step {report.steps}/{report.max_steps}; checkpoint saved. "
              f"Continue with: ragtune train --resume --out {_short(report.out)}", file=sys.stderr)
        return 130
    eval_loss = f", eval loss {report.eval_loss:.4f}" if report.eval_loss is not None else ""
    steps = f"{report.steps} of {report.max_steps} steps (--max-minutes)" if report.out_of_time else f"{report.steps} steps"
    print(f"{steps}, train loss {report.train_loss:.4f}{eval_loss}. {report.tokens_per_s:.0f} tokens/s, "
          f"{report.wall_s:.1f} s, peak RSS {report.peak_rss_mb / 1024:.2f} GiB")
    print(f"Adapter: {_short(report.out)}")
    return 0


def cmd_export(args) -> int:
    from train.export import export

    out = export(args.adapter, args.out, merged=args.merged, overwrite=args.overwrite, model=args.model)
    print(f"{'Merged model' if args.merged else 'Adapter'}: {_short(str(out))}")
    return 0


def cmd_app(args) -> int:
    from app import launch
    from core.config import flag_values, load_config
    from engine.config import AppConfig

    cfg = load_config(AppConfig, {"workdir": args.workdir, **flag_values(args, AppConfig),
                                  **{f"ask.{k}": v for k, v in _ask_overrides(args).items()}}, args.config)
    print(f"ragtune app: http://{cfg.host}:{cfg.port} (work dir {_short(str(cfg.workdir))}); Ctrl-C stops it", file=sys.stderr)
    launch(cfg)
    return 0


def cmd_demo(args) -> int:
    """The whole job on the bundled sample corpus (pipeline.run_demo), each stage's line as it ends, then the app."""
    from app import launch
    from core.config import load_config
    from pipeline import DemoConfig, run_demo

    cfg = load_config(DemoConfig, {"workdir": args.workdir, "model": args.model}, args.config)
    workdir, took = str(cfg.workdir), {}
    print(f"ragtune demo: {_short(cfg.docs)} -> {_short(workdir)}", file=sys.stderr)
    for step in run_demo(cfg, _demo_bars):
        took[step.stage] = took.get(step.stage, 0.0) + step.seconds
        _print_demo_step(step)
    print(f"\nDemo done in {sum(took.values()):.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()))
    if args.no_app:
        return 0
    print(f"ragtune app: http://{cfg.app.host}:{cfg.app.port} (work dir {_short(workdir)}); Ctrl-C stops it", file=sys.stderr)
    launch(cfg.app)
    return 0


@contextlib.contextmanager
def _demo_bars(stage: str):
    """The demo's progress bar for a stage, closed when the stage ends."""
    bar = (_Progress(disable=False) if stage == "ingest" else _TrainBar(disable=False) if stage == "train"
           else _StageBars(disable=False, unit="question" if stage == "eval" else "it"))
    try:
        yield bar.update
    finally:
        bar.close()


def _print_demo_step(step) -> None:
    r, took = step.result, f"{step.seconds:.0f} s"
    if step.stage == "ingest":
        print(f"1/4 ingest: {r.count('ok') + r.count('unchanged')} files, {r.total_chunks} chunks, {r.count('failed')} failed ({took})")
    elif step.stage == "synth":
        print(f"2/4 synth: {r['pairs']['total']} pairs, {sum(sum(n.values()) for n in r['rows'].values())} rows ({took})")
    elif step.stage == "train" and isinstance(r, Path):
        print(f"3/4 train: reusing {_short(str(r))}, trained with these settings on this dataset ({took})")
    elif step.stage == "train":
        steps = f"{r.steps} of {r.max_steps} steps (time budget)" if r.out_of_time else f"{r.steps} steps"
        print(f"3/4 train: {steps}, {r.train_tokens} tokens, loss {r.train_loss:.3f}, {r.tokens_per_s:.0f} tokens/s ({took})")
    else:
        asked, read = r.report["questions"]["asked"], r.report["questions"]["read"]
        print(f"\n4/4 eval on {r.name}: {asked} questions" + (f" (a fixed sample of the {read})" if asked < read else ""))
        _print_scores(r.report, r.out)


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


def _short(path: str) -> str:
    """The path relative to the current folder when it lies below it; otherwise as given."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def _quiet_libraries() -> None:
    """Library chatter (weight-loading bars, telemetry notices) is not our user's business."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    from core import offline

    offline.setup()


if __name__ == "__main__":
    sys.exit(main())
