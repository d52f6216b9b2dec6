"""The app is a shell over its resolved config: `ragtune app --collection X` works on X in every tab,
and the page's defaults are the YAML files' (configs/decoding.yaml, configs/train.yaml).

The app is launched as `ragtune app` builds it (cli.main, with its server started non-blocking)
and called through gradio_client, on the tiny model and real Chroma in a temp dir.
"""

import re
import threading
import types
from pathlib import Path

import pytest

from helpers import free_port, ingest_cfg

NOTE = "# Zorblax\n\nThe refund window of the Zorblax store is 45 days from delivery.\n"


@pytest.fixture(scope="module")
def other(tmp_path_factory, sample_docs, tiny_model):
    """`ragtune app --collection other` on a work dir whose default collection, docs, already holds a file.

    Yields (the app's config, the work dir, docs' chunk count and files before the app ran).
    """
    from ragtune import app as A
    from ragtune import cli
    from ragtune.core.config import load_config
    from ragtune.rag.config import IndexConfig
    from ragtune.rag.index import Index
    from ragtune.rag.ingest import ingest

    wd = tmp_path_factory.mktemp("app-other") / "w"
    ingest(ingest_cfg(wd, [sample_docs / "01-overview.md"]))
    docs = Index(load_config(IndexConfig, {}), wd)
    before = docs.count(), docs.load_manifest()["files"]
    assert before[0] > 0

    launch, launched = A.launch, []
    A.launch = lambda cfg, block=True: launched.append(cfg)  # cmd_app's config, served below without blocking
    try:
        assert cli.main(["app", "--workdir", str(wd), "--collection", "other", "--model", str(tiny_model), "--port", str(free_port())]) == 0
    finally:
        A.launch = launch
    (cfg,) = launched
    demo = A.launch(cfg, block=False)
    yield cfg, wd, before
    demo.close()


@pytest.fixture(scope="module")
def client(other):
    from gradio_client import Client

    cfg = other[0]
    return Client(f"http://127.0.0.1:{cfg.port}/", verbose=False)


def _rows(table):
    return table["data"] if isinstance(table, dict) else table


def test_app_collection_is_the_one_ingested_listed_searched_and_chatted_over(other, client, tmp_path):
    from ragtune.core.config import load_config
    from ragtune.rag.config import IndexConfig
    from ragtune.rag.index import Index

    cfg, wd, (docs_count, docs_files) = other
    assert cfg.ask.search.index.collection == "other"
    note = tmp_path / "notes" / "zorblax.md"
    note.parent.mkdir()
    note.write_text(NOTE)

    status, table = client.predict(str(note.parent), api_name="/ingest_folder")
    assert "1 ingested" in status, status
    assert [Path(r[0]).name for r in _rows(table)] == ["zorblax.md"]  # other's files, not docs' 01-overview.md
    hits = _rows(client.predict("Zorblax refund window", 3, api_name="/search"))
    assert hits and {h[2] for h in hits} == {"zorblax.md"}
    history = client.predict("What is the refund window of the Zorblax store?", [], "rag", 0.0, 0, 1.0, 4, api_name="/chat")
    reply = history[1]["content"] if isinstance(history[1]["content"], str) else str(history[1]["content"])
    assert "Sources" in reply and "zorblax.md" in reply and "01-overview.md" not in reply

    other_index = Index(load_config(IndexConfig, {"collection": "other"}), wd)
    assert [Path(p).name for p in other_index.load_manifest()["files"]] == ["zorblax.md"] and other_index.count() > 0
    docs = Index(load_config(IndexConfig, {}), wd)
    assert (docs.count(), docs.load_manifest()["files"]) == (docs_count, docs_files)  # docs untouched


def test_every_stage_the_app_runs_uses_its_work_dir_index_and_model(other):
    from ragtune import app as A

    cfg, wd, _ = other
    ingest = A.ingest_config(cfg, ["x"])
    synth = A.synth_config(cfg)
    evals = A.eval_config(cfg)
    train = A.train_config(cfg)
    for stage, index in (("ingest", ingest.index), ("synth", synth.search.index), ("eval", evals.ask.search.index)):
        assert index == cfg.ask.search.index, stage
    assert {Path(c.workdir) for c in (ingest, synth, evals, train)} == {Path(wd)}
    assert synth.llm == train.model == cfg.ask.model
    assert evals.ask.model.model == cfg.ask.model.model and evals.ask.adapter == cfg.ask.adapter and evals.ask.k == cfg.ask.k


def test_the_evaluate_tab_keeps_evals_own_answering_settings(other):
    from ragtune import app as A
    from ragtune.core.config import load_config
    from ragtune.evals.config import EvalConfig

    own = load_config(EvalConfig).ask  # configs/eval.yaml's `ask` over configs/ask.yaml
    page = A.eval_config(other[0]).ask
    assert (page.decoding.max_new_tokens, page.model.dtype) == (own.decoding.max_new_tokens, own.model.dtype)


def _page_defaults(client, endpoint: str) -> list:
    params = client.view_api(print_info=False, return_format="dict")["named_endpoints"][endpoint]["parameters"]
    return [p["parameter_default"] for p in params]


def test_the_pages_defaults_are_the_configs(other, client):
    from ragtune.core.config import load_config
    from ragtune.engine.config import DecodingConfig
    from ragtune.train.config import TrainConfig

    cfg = other[0]
    yaml = load_config(DecodingConfig)
    d = cfg.ask.decoding  # configs/decoding.yaml, under configs/app.yaml's `ask.decoding`
    assert (d.temperature, d.top_k, d.top_p) == (yaml.temperature, yaml.top_k, yaml.top_p)
    docs = list(cfg.ask.search.source)  # the document picker: every document unless --source says otherwise
    assert _page_defaults(client, "/side_by_side")[1:] == [d.temperature, d.top_k, d.top_p, d.max_new_tokens, docs]
    assert _page_defaults(client, "/chat")[2:] == [cfg.ask.mode, d.temperature, d.top_k, d.top_p, d.max_new_tokens, docs]
    t = load_config(TrainConfig, {})
    assert _page_defaults(client, "/train") == [t.max_steps, t.epochs, t.lr, t.lora_r]


class _Recorder:
    """An answerer that records the decoding it is asked to use, and answers nothing."""

    def __init__(self, cfg):
        self.cfg, self.decodings = cfg, []

    def unavailable(self, modes):
        return {}

    def stream_modes(self, question, modes, decoding, *args, **kw):
        self.decodings.append(decoding)
        return {}
        yield

    def stream(self, question, mode, decoding, **kw):
        self.decodings.append(decoding)
        return types.SimpleNamespace(text="", sources=[])
        yield


def test_the_answer_functions_default_to_the_decoding_config(tmp_path, monkeypatch):
    from ragtune import app as A
    from ragtune.core.config import load_config
    from ragtune.engine.config import DecodingConfig

    cfg = load_config(A.AppConfig, {"workdir": str(tmp_path)})
    bench = A.Workbench(cfg)
    bench._answerer = recorder = _Recorder(cfg.ask)
    monkeypatch.setattr(A, "BENCH", bench)
    list(A.side_by_side("a question"))
    list(A.chat("a question", []))
    yaml = load_config(DecodingConfig)
    for used in recorder.decodings:
        assert used == cfg.ask.decoding
        assert (used.temperature, used.top_k, used.top_p) == (yaml.temperature, yaml.top_k, yaml.top_p)
    assert len(recorder.decodings) == 2


def test_the_train_function_defaults_to_train_yaml(tmp_path, monkeypatch):
    from ragtune import app as A
    from ragtune.core.config import load_config
    from ragtune.train import run
    from ragtune.train.config import TrainConfig

    cfg = load_config(A.AppConfig, {"workdir": str(tmp_path)})
    monkeypatch.setattr(A, "BENCH", A.Workbench(cfg))
    seen, done = [], threading.Event()

    def record(tcfg, progress, stop):  # what the tab would train with; trains nothing
        seen.append(tcfg)
        done.set()
        return types.SimpleNamespace(interrupted=False, out=str(tmp_path / "adapter"))

    monkeypatch.setattr(run, "train", record)
    assert A.start_training() == "training started"
    assert done.wait(30)
    (used,) = seen
    want = load_config(TrainConfig, {"workdir": str(tmp_path)})
    assert (used.max_steps, used.epochs, used.lr, used.lora_r) == (want.max_steps, want.epochs, want.lr, want.lora_r)
    assert used.model == cfg.ask.model


def _cli_flags() -> set[str]:
    import argparse

    from ragtune import cli

    flags, parsers = set(), [cli.build_parser()]
    while parsers:
        p = parsers.pop()
        for action in p._actions:
            flags.update(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    return flags


@pytest.mark.parametrize(
    "cls, overrides",
    [("ragtune.rag.config.IndexConfig", {"embed_precision": "fp16"}), ("ragtune.engine.config.AskConfig", {"context_tokens": 8})],
)
def test_config_errors_name_a_flag_or_key_that_exists(cls, overrides):
    import importlib

    from ragtune.core.config import CONFIG_DIR, ConfigError, load_config, read_yaml

    module, name = cls.rsplit(".", 1)
    with pytest.raises(ConfigError) as e:
        load_config(getattr(importlib.import_module(module), name), overrides)
    message = str(e.value)
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", message))
    keys = re.findall(r"\b(\w+) in configs/(\w+\.yaml)", message)
    assert flags or keys, message
    assert flags <= _cli_flags(), message
    for key, file in keys:
        assert key in read_yaml(CONFIG_DIR / file), message
    assert {k for k, _ in keys} | {f[2:].replace("-", "_") for f in flags} == set(overrides), message


def test_the_pages_widgets_take_their_labels_help_and_ranges_from_the_settings(tmp_path, monkeypatch):
    import gradio as gr

    from ragtune import app as A
    from ragtune.core.config import load_config, setting_of, widget
    from ragtune.engine.config import AskConfig, DecodingConfig

    monkeypatch.setattr(A, "BENCH", A.BENCH)  # build() sets the module's Workbench: the served app's comes back after
    page = A.build(load_config(A.AppConfig, {"workdir": str(tmp_path)}))
    sliders = {b.label: b for b in page.blocks.values() if isinstance(b, gr.Slider)}
    for name in ("temperature", "top_k", "top_p", "max_new_tokens"):
        w, slider = widget(DecodingConfig, name), sliders[widget(DecodingConfig, name).label]
        assert (slider.minimum, slider.maximum, slider.step, slider.info) == (w.low, w.high, w.step, w.info), name
    meta = setting_of(DecodingConfig, "top_p").metadata
    assert sliders["top-p"].minimum > meta["above"] and sliders["top-p"].maximum == meta["high"]  # inside the range the config checks
    (mode,) = [b for b in page.blocks.values() if isinstance(b, gr.Radio)]
    assert [c[0] for c in mode.choices] == list(setting_of(AskConfig, "mode").metadata["choices"])
    assert mode.info == setting_of(AskConfig, "mode").metadata["help"]
