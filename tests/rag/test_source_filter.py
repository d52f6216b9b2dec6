"""Scoping a search to documents, titles on chunks and boilerplate ranked low: a real Chroma in a temp dir."""

import json

import pytest

from helpers import ingest_cfg, search_cfg
from ragtune.rag import lexical
from ragtune.rag.index import Index
from ragtune.rag.ingest import ingest
from ragtune.rag.retrieve import Retriever, match_sources

NOTICE = (
    "This report contains forward-looking statements within the meaning of the Private Securities Litigation Reform Act. "
    "Net sales and net revenue figures in it are subject to risks and uncertainties."
)
FILINGS = {
    "acme_10k.md": "# Acme Corp annual report\n\n## Results\n\nAcme net sales were $120 million in fiscal 2023.\n\n"
    f"## Notice\n\n{NOTICE}\n",
    "globex_10q.md": "# Globex quarterly report\n\n## Results\n\nGlobex net sales were $45 million in the second quarter.\n",
    "initech_release.md": "# Initech earnings release\n\n## Results\n\nInitech net sales were $9 million, up 3%.\n",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    docs = tmp_path_factory.mktemp("filings")
    for name, text in FILINGS.items():
        (docs / name).write_text(text)
    wd = tmp_path_factory.mktemp("w")
    ingest(ingest_cfg(wd, [docs]))
    return wd


def test_each_chunk_carries_its_title_and_the_manifest_too(workdir):
    r = Retriever(search_cfg(workdir))
    chunks = list(r.index.all_chunks())
    assert {c.title for c in chunks} == {"Acme Corp annual report", "Globex quarterly report", "Initech earnings release"}
    assert sorted(e["title"] for e in r.files.values()) == [
        "Acme Corp annual report",
        "Globex quarterly report",
        "Initech earnings release",
    ]
    assert [c.boilerplate for c in chunks if "forward-looking" in c.text] == [True]
    assert not any(c.boilerplate for c in chunks if "forward-looking" not in c.text)


@pytest.mark.parametrize("retrieval", ["hybrid", "dense", "lexical"])
def test_a_source_glob_restricts_the_search_inside_both_retrievers(workdir, retrieval):
    r = Retriever(search_cfg(workdir, retrieval=retrieval))
    hits = r.search("Acme net sales", 2, source=["*globex*"])
    assert hits and {h.chunk.source.rsplit("/", 1)[-1] for h in hits} == {"globex_10q.md"}
    both = r.search("net sales", 5, source=["*GLOBEX*", "*initech*"])  # case aside, several globs
    assert {h.chunk.source.rsplit("/", 1)[-1] for h in both} == {"globex_10q.md", "initech_release.md"}
    assert len(r.search("net sales", 5, source=[])) == 4  # [] is every document
    scoped = Retriever(search_cfg(workdir, retrieval=retrieval, source=["acme_*"]))  # the config's --source is the default
    assert {h.chunk.source.rsplit("/", 1)[-1] for h in scoped.search("net sales", 5)} == {"acme_10k.md"}


def test_a_glob_that_matches_nothing_is_a_one_line_error_naming_it_and_the_files(workdir):
    with pytest.raises(ValueError) as e:
        Retriever(search_cfg(workdir, source=["*hooli*"]))
    assert str(e.value) == "--source '*hooli*' matches no indexed document; indexed: acme_10k.md, globex_10q.md, initech_release.md"
    many = [f"/d/f{i}.md" for i in range(8)]
    with pytest.raises(ValueError, match=r"indexed: f0.md, f1.md, f2.md, f3.md, f4.md, ... \(8 files\)$"):
        match_sources(["*.pdf"], many)


def test_globs_match_the_name_the_whole_path_or_a_path_from_here(tmp_path, monkeypatch):
    sources = [str(tmp_path / "q1" / "Report[1].md"), str(tmp_path / "q2" / "report.md")]
    assert match_sources([sources[0]], sources) == [sources[0]]  # an exact path, brackets and all
    assert match_sources(["REPORT.md"], sources) == [sources[1]]
    assert match_sources([f"{tmp_path}/q*/*.md"], sources) == sources
    monkeypatch.chdir(tmp_path)
    assert match_sources(["q2/*"], sources) == [sources[1]]


def test_boilerplate_ranks_below_content_unless_the_query_asks_for_it(workdir):
    query = "net revenue figures and uncertainties"
    unweighted = Retriever(search_cfg(workdir, boilerplate_weight=1.0)).search(query, 2, source=["*acme*"])
    assert [h.chunk.boilerplate for h in unweighted] == [True, False]  # the notice says it more often
    r = Retriever(search_cfg(workdir))
    assert [h.chunk.boilerplate for h in r.search(query, 2, source=["*acme*"])] == [False, True]
    asked = r.search("forward-looking statements about net sales", 1, source=["*acme*"])
    assert asked[0].chunk.boilerplate


def test_a_lexical_index_saved_before_files_were_recorded_is_rebuilt(workdir):
    index = Index(search_cfg(workdir).index, workdir)
    version = index.load_manifest()["version"]
    ids = index.lexical_dir / "ids.json"
    saved = json.loads(ids.read_text())
    ids.write_text(json.dumps({"version": version, "ids": saved["ids"]}))  # as an older ragtune wrote it
    assert not lexical.is_fresh(index, version)
    rebuilt = lexical.load(index, version)
    assert len(rebuilt.files) == 3 and len(rebuilt.file_of) == len(rebuilt.ids) and len(rebuilt.boilerplate) == 1
    assert lexical.is_fresh(index, version)
    saved = json.loads(ids.read_text())
    ids.write_text(json.dumps({**saved, "tokens": lexical.TOKENS - 1}))  # its terms cut another way: unstemmed
    assert not lexical.is_fresh(index, version)
    lexical.load(index, version)
    assert json.loads(ids.read_text())["tokens"] == lexical.TOKENS
