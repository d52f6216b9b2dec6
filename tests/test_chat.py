"""`ragtune chat`: its line parser, its printing of citations, and a session on the tiny model."""

import io
import re
import sys

import pytest

from helpers import ingest_cfg
from ragtune import cli
from ragtune.core.config import load_config
from ragtune.core.records import Answer, Citation
from ragtune.engine.config import AskConfig


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, sample_docs, model_cache):
    from ragtune.rag.ingest import ingest

    wd = tmp_path_factory.mktemp("chat") / "w"
    ingest(ingest_cfg(wd, [sample_docs / "01-overview.md", sample_docs / "05-training.txt"]))
    return wd


@pytest.mark.parametrize(
    "line,parsed",
    [
        ("  How do I prune?  \n", ("ask", "How do I prune?")),
        ("", ("", None)),
        ("   \n", ("", None)),
        ("/mode ft-rag", ("mode", "ft-rag")),
        ("/MODE  Base ", ("mode", "base")),
        ("/mode", ("mode", None)),
        ("/k 4", ("k", 4)),
        ("/k", ("k", None)),
        ("/sources", ("sources", None)),
        ("/help", ("help", None)),
        ("/quit", ("quit", None)),
        ("/exit", ("quit", None)),
        ("/mode gpt-4", ("error", "unknown mode 'gpt-4': choose one of base, rag, ft, ft-rag")),
        ("/k 0", ("error", "/k takes a number of chunks, 1 or more; got '0'")),
        ("/k four", ("error", "/k takes a number of chunks, 1 or more; got 'four'")),
        ("/frobnicate now", ("error", "unknown command /frobnicate: /help lists the commands")),
    ],
)
def test_parse_chat_line(line, parsed):
    assert cli.parse_chat_line(line) == parsed


def test_an_answer_is_followed_by_its_citations_one_per_line(capsys):
    cited = [
        Citation(1, "c1", "/docs/guide.pdf", 3, "Guide > Install", "Run ingest."),
        Citation(2, "c2", "/docs/notes.md", None, "", "Then train."),
    ]
    answer = Answer("q", "rag", "Run ingest. [1] Then train. [2]", [], citations=cited, dropped_citations=1)

    class Streaming:
        def stream(self, question, mode, k=None):
            yield "Run ingest. [1] "
            yield "Then train. [2]"
            return answer

    assert cli._chat_answer(Streaming(), "q", "rag", 2) is answer
    assert capsys.readouterr().out.splitlines() == [
        "Run ingest. [1] Then train. [2]",
        "[1] guide.pdf p.3 § Install",
        "[2] notes.md",
        "(1 citation to no retrieved chunk removed)",
    ]


def test_a_session_switches_mode_and_k_lists_sources_and_survives_errors(workdir, tiny_model, monkeypatch, capsys):
    from ragtune.engine.answer import Answerer

    real = Answerer.stream

    def stream(self, question, mode=None, decoding=None, k=None, *args, **kw):
        asked.append((question, mode, k))
        if question == "boom":
            raise RuntimeError("the model exploded\nTraceback ...")
        return (yield from real(self, question, mode, decoding, k, *args, **kw))

    asked: list = []
    monkeypatch.setattr(Answerer, "stream", stream)
    lines = [
        "What does ragtune train use?",
        "",
        "/sources",
        "/mode base",
        "/mode nope",
        "/k 3",
        "boom",
        "/frob",
        "What does ingest do?",
        "/mode",
        "/sources",
        "/help",
        "/quit",
        "never asked",
    ]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    code = cli.main(["chat", "--workdir", str(workdir), "--model", str(tiny_model), "--max-new-tokens", "6", "-k", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [(q, m, k) for q, m, k in asked] == [
        ("What does ragtune train use?", "rag", 2),
        ("boom", "base", 3),
        ("What does ingest do?", "base", 3),
    ]
    out_lines = out.splitlines()
    first_sources = [line for line in out_lines if re.match(r"[12]\. \[\d\.\d{4}\] .*0[15]-\w+\.(md|txt)", line)]
    assert len(first_sources) == 2, out
    assert "mode base" in out_lines and "k 3" in out_lines and "mode base, k 3" in out_lines
    assert "the last answer (base) read no sources" in out_lines
    assert "each question is answered on its own" in out.lower() and "/quit" in out
    assert not any(line.startswith("> ") for line in out_lines)  # no prompt when stdin is not a terminal
    err_lines = err.splitlines()
    assert "ragtune chat: mode rag, k 2; /help lists the commands, Ctrl-D ends" in err_lines, err
    assert "ragtune: unknown mode 'nope': choose one of base, rag, ft, ft-rag" in err_lines
    assert "ragtune: error: the model exploded" in err_lines  # one line, and the chat went on
    assert "ragtune: unknown command /frob: /help lists the commands" in err_lines
    assert err_lines[-1] == "ragtune chat: 2 questions answered"


def test_end_of_input_ends_the_chat_and_an_unavailable_mode_is_refused(workdir, tiny_model, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("/mode ft\n/mode\n"))  # no /quit: the input just ends
    code = cli.main(["chat", "--workdir", str(workdir), "--model", str(tiny_model), "--mode", "base"])
    out, err = capsys.readouterr()
    assert code == 0
    assert f"mode base, k {load_config(AskConfig).k}" in out.splitlines()  # the configured k
    refused = [line for line in err.splitlines() if line.startswith("ragtune: mode ft is unavailable:")]
    assert len(refused) == 1 and "adapter" in refused[0] and refused[0].endswith("; still base")
    assert err.splitlines()[-1] == "ragtune chat: 0 questions answered"
