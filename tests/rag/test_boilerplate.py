"""The boilerplate classifier: what every filing repeats is marked, content is not."""

import pytest

from ragtune.rag.boilerplate import asks_for, is_boilerplate

BOILERPLATE = [
    "Indicate by check mark whether the registrant (1) has filed all reports required to be filed by Section 13 or 15(d).",
    "NETFLIX, INC. (Exact name of registrant as specified in its charter) Delaware 77-0467272",
    "I, Reed Hastings, certify that: 1. I have reviewed this Annual Report on Form 10-K of Netflix, Inc.;",
    "4. The registrant's other certifying officer and I are responsible for establishing and maintaining disclosure controls.",
    "Pursuant to Section 906 of the Sarbanes-Oxley Act of 2002, each of the undersigned certifies that the Quarterly Report ...",
    "We consent to the incorporation by reference in the following Registration Statements: Form S-8 No. 333-89024.",
    "Pursuant to the requirements of the Securities Exchange Act of 1934, the registrant has duly caused this report to be signed.",
    "This release contains statements reflecting our views about our future performance that constitute forward-looking statements.",
    "☒ QUARTERLY REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934 For the Quarterly Period Ended",
    "Washington, D.C. 20549 FORM 10-K (Mark One)",
    "Large accelerated filer x Accelerated filer o Non-accelerated filer o Smaller reporting company o",
    "This Annual Report on Form 10-K has been signed below by the following persons on behalf of the registrant.",
    "Investors are cautioned not to place undue reliance on any such statements, which speak only as of the date they are made.",
]
CONTENT = [
    "Net revenue grew 10.2% to $17.8 billion in the first quarter, and organic revenue grew 14.3%.",
    "Streaming revenues increased 32% to $11.2 billion in 2017, driven by growth in paid memberships.",
    "Amcor completed the sale of its three Russian plants in December 2022 for $365 million.",
    "ragtune ingest PATH reads files and folders and upserts their chunks into Chroma.",
    "The registrant's headquarters moved to Zurich in 2021.",  # "registrant" alone is not boilerplate
    "We file an annual report pursuant to Section 13 of the Exchange Act; it is free on our Web site.",
]


@pytest.mark.parametrize("text", BOILERPLATE)
def test_cover_pages_certifications_consents_and_notices_are_boilerplate(text):
    assert is_boilerplate(text)


@pytest.mark.parametrize("text", CONTENT)
def test_content_is_not(text):
    assert not is_boilerplate(text)


def test_a_chunk_under_a_boilerplate_heading_is_boilerplate_wherever_it_was_cut():
    rest = "c) evaluated the effectiveness of the controls described above; and"
    assert is_boilerplate(rest, "PART IV > CERTIFICATION OF CHIEF EXECUTIVE OFFICER")
    assert is_boilerplate("Such risks include the conflict in Ukraine.", "Results > Cautionary Statement")
    assert not is_boilerplate(rest, "PART II > Item 9A. Controls and Procedures")
    assert not is_boilerplate("Net revenue grew 10%.", "Certifications > Results")  # only the nearest heading counts


def test_a_query_may_ask_for_boilerplate():
    assert asks_for("What does the cautionary note on forward-looking statements say?")
    assert asks_for("Who certified the 10-K?") and asks_for("Is Netflix a large accelerated filer?")
    assert not asks_for("What were net sales in fiscal 2023?")
