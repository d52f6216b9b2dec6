"""Each chunk carries its document's title: from the loader, an SEC cover page, a heading, a headline or the file name."""

import json
from pathlib import Path

from ragtune.core.records import Chunk, Document
from ragtune.loaders.jsonfile import load_json, load_jsonl
from ragtune.rag.titles import document_title


def doc(text: str, category: str = "NarrativeText", page: int | None = 1) -> Document:
    return Document(text, "/d/x.pdf", "h", category, page=page)


COVER = [
    doc("UNITED STATES SECURITIES AND EXCHANGE COMMISSION", "Title"),
    doc("Washington, D.C. 20549 ____ FORM 10-K ____"),
    doc(
        "x ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934 For the fiscal year ended December 31, 2017"
    ),
    doc("Commission File Number: 001-35727 ______________ Netflix, Inc."),
    doc("(Exact name of Registrant as specified in its charter) ______ Delaware 77-0467272"),
    doc("DOCUMENTS INCORPORATED BY REFERENCE", "Title"),
]


def test_an_sec_cover_page_names_registrant_form_and_period():
    assert document_title(COVER, Path("/d/NETFLIX_2017_10K.pdf")) == "Netflix, Inc. Form 10-K (fiscal year ended December 31, 2017)"
    amcor = [
        doc("UNITED STATES", "Title"),
        doc("FORM 10-Q", "Title"),
        doc("☒ QUARTERLY REPORT PURSUANT TO SECTION 13 For the Quarterly Period Ended December 31, 2022"),
        doc("AMCOR PLC", "Title"),
        doc("(Exact name of Registrant as specified in its charter)"),
    ]
    assert document_title(amcor, Path("/d/a.pdf")) == "AMCOR PLC Form 10-Q (quarterly period ended December 31, 2022)"


def test_the_loader_title_comes_first_and_the_file_name_last():
    assert document_title(COVER, Path("/d/a.pdf"), loaded_title="  Netflix   annual report ") == "Netflix annual report"
    assert document_title([doc("A long first paragraph that ends with a period.")], Path("/d/NETFLIX_2017_10K.pdf")) == "NETFLIX 2017 10K"


def test_a_heading_that_names_nothing_is_passed_over_and_a_headline_taken():
    release = [doc("PepsiCo Reports First-Quarter 2023 Results; Raises Full-Year Guidance"), doc("Guidance and Outlook", "Title", page=3)]
    assert document_title(release, Path("/d/p.pdf")) == "PepsiCo Reports First-Quarter 2023 Results; Raises Full-Year Guidance"
    covered = [doc("UNITED STATES", "Title"), doc("TABLE OF CONTENTS", "Title"), doc("Acme Annual Review", "Title")]
    assert document_title(covered, Path("/d/p.pdf")) == "Acme Annual Review"
    markdown = [doc("Some text first.", page=None), doc("Install guide", "Title", page=None)]  # no pages: the first heading anywhere
    assert document_title(markdown, Path("/d/guide.md")) == "Install guide"


def test_a_metadata_title_the_first_page_does_not_bear_out_is_passed_over():
    release = [doc("PepsiCo Reports First-Quarter 2023 Results; Raises Full-Year Guidance"), doc("EPS $1.40, up 8% in Q1 2023; 99.1")]
    headline = "PepsiCo Reports First-Quarter 2023 Results; Raises Full-Year Guidance"
    assert document_title(release, Path("/d/p.pdf"), loaded_title="Q1 2023 8-K - Exhibit 99.1") == headline
    assert document_title(release, Path("/d/p.pdf"), loaded_title="PepsiCo first-quarter results") == "PepsiCo first-quarter results"


def test_a_headline_printed_as_the_first_tables_caption_is_the_title():
    table = "PepsiCo Reports First-Quarter 2023 Results; Raises Full-Year Guidance\nReported (GAAP) Results\nNet revenue growth | Q1: 10.2%"
    release = [doc(table, "Table"), doc("PURCHASE, N.Y. - PepsiCo, Inc. today reported results.")]
    assert document_title(release, Path("/d/p.pdf")) == "PepsiCo Reports First-Quarter 2023 Results; Raises Full-Year Guidance"


def test_a_paragraph_taken_for_a_heading_is_cut():
    title = document_title([doc("word " * 60, "Title")], Path("/d/a.pdf"))
    assert len(title) <= 100 and title.endswith("…")


def test_json_title_field_and_jsonl_shared_title(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"title": "Refund policy", "text": "Refunds take 14 days."}))
    assert load_json(path, "h").title == "Refund policy"
    lines = tmp_path / "b.jsonl"
    lines.write_text("\n".join(json.dumps({"title": "FAQ", "text": t}) for t in ("One.", "Two.")))
    assert load_jsonl(lines, "h").title == "FAQ"
    lines.write_text("\n".join(json.dumps({"title": t, "text": t}) for t in ("One", "Two")))
    assert load_jsonl(lines, "h").title == ""  # records with titles of their own: none is the file's


def test_the_title_heads_the_embedded_text_once():
    c = Chunk("c", "Net sales rose.", "/d/a.pdf", "h", "Item 7", 0, 3, title="Acme Form 10-K")
    assert c.embed_text() == "Acme Form 10-K\nItem 7\nNet sales rose."
    same = Chunk("c", "Text.", "/d/a.md", "h", "Install guide > Step 1", 0, 1, title="Install guide")
    assert same.embed_text() == "Install guide > Step 1\nText."  # the first heading is the section path's root already
    assert Chunk("c", "Text.", "/d/a.md", "h", "", 0, 1).embed_text() == "Text."
    assert c.heading() == "Acme Form 10-K\nItem 7" and same.heading() == "Install guide > Step 1"
