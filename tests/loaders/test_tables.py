"""Tables in PDFs (found from pdfium's text and character boxes), HTML and DOCX, as rows that name their columns."""

import pytest

from helpers import SHARED
from ragtune.loaders import load_file
from ragtune.loaders.tables import is_value, table_from_html, table_text, trailing_values

MB = 10**6
FILINGS = SHARED / "bench" / "pdfs"


def write_statement(path):
    """A one-page PDF: a paragraph, then a borderless income statement as filings print them."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 5, "Our revenue grew in 2023 as more customers bought the product. The statement below shows it.")
    pdf.ln(6)
    for text, style in [("Example Corp", "B"), ("Statement of Income", "B"), ("(in millions)", "")]:
        pdf.set_font("Helvetica", style, 10)
        pdf.cell(0, 5, text, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.set_x(120)
    pdf.cell(70, 5, "Year Ended December 31,", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(120)
    pdf.cell(35, 5, "2023", align="R")
    pdf.cell(35, 5, "2022", align="R", new_x="LMARGIN", new_y="NEXT")
    rows = [
        (10, "Revenue", "$ 1,200", "$ 1,000"),
        (10, "Operating expenses:", "", ""),
        (16, "Research and development", "(300)", "(250)"),
        (16, "Sales and marketing", "(200)", "-"),
        (10, "Total operating expenses", "(500)", "(250)"),
        (10, "Net income", "$ 700", "$ 750"),
    ]
    for x, label, a, b in rows:
        pdf.set_x(x)
        pdf.cell(110 - x, 5, label)
        pdf.set_x(120)
        pdf.cell(35, 5, a, align="R")
        pdf.cell(35, 5, b, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 5, "See the accompanying notes, which are part of these statements.")
    pdf.output(str(path))
    return path


def test_a_pdf_statement_becomes_one_table_of_self_contained_rows(tmp_path):
    docs = load_file(write_statement(tmp_path / "statement.pdf"), MB).documents
    tables = [d for d in docs if d.category == "Table"]
    assert len(tables) == 1 and tables[0].page == 1
    heading, *rows = tables[0].text.split("\n")
    assert heading == "Example Corp Statement of Income (in millions)"
    assert rows == [
        "Revenue | Year Ended December 31, 2023: $ 1,200 | Year Ended December 31, 2022: $ 1,000",
        "Operating expenses: Research and development | Year Ended December 31, 2023: (300) | Year Ended December 31, 2022: (250)",
        "Operating expenses: Sales and marketing | Year Ended December 31, 2023: (200) | Year Ended December 31, 2022: -",
        "Total operating expenses | Year Ended December 31, 2023: (500) | Year Ended December 31, 2022: (250)",
        "Net income | Year Ended December 31, 2023: $ 700 | Year Ended December 31, 2022: $ 750",
    ]
    # The table's lines are not read again as text; the paragraphs around it are.
    text = [d.text for d in docs if d.category != "Table"]
    assert text[0].startswith("Our revenue grew in 2023") and text[-1].startswith("See the accompanying notes")
    assert not any("1,200" in t or "Example Corp" in t for t in text)


def test_text_with_figures_at_line_ends_is_not_a_table(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    for year in (2019, 2020, 2021, 2022):
        pdf.multi_cell(0, 6, f"Sales rose again in {year}", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(
        0, 6, "and the board approved a dividend of 25 cents per share, paid in March 2023 to holders of record on 1 March 2023."
    )
    pdf.output(str(tmp_path / "prose.pdf"))
    assert not [d for d in load_file(tmp_path / "prose.pdf", MB).documents if d.category == "Table"]


def test_figures_and_the_lines_they_end():
    assert all(is_value(t) for t in ["1,944", "(3,322)", "$7.8", "12%", "(10)%", "—", "n/m", "0.309"])
    assert not any(is_value(t) for t in ["15)", "30,", "Note", "(1,2", "2017."])
    assert trailing_values("Net income $ 1,944 $ 4,273") == 2
    assert trailing_values("Frito-Lay North America 15 % — — 16 %") == 4
    assert trailing_values("Commitments and contingencies (See Note 15)") == 0


def test_html_table_with_two_header_rows_a_group_and_a_caption():
    html = """<table><thead>
      <tr><th></th><th colspan="2">Year ended</th></tr>
      <tr><th>Segment</th><th>2023</th><th>2022</th></tr></thead><tbody>
      <tr><td>Revenue:</td><td></td><td></td></tr>
      <tr><td>North America</td><td>5,583</td><td>4,839</td></tr>
      <tr><td>Total revenue</td><td>7,469</td><td>6,636</td></tr>
      <tr><td>Employees</td><td>310</td><td>295</td></tr></tbody></table>"""
    table = table_from_html(html, caption="Table 3: Results (in millions)")
    assert table_text(table).split("\n") == [
        "Table 3: Results (in millions)",
        "Segment: Revenue: North America | Year ended 2023: 5,583 | Year ended 2022: 4,839",
        "Segment: Revenue: Total revenue | Year ended 2023: 7,469 | Year ended 2022: 6,636",
        "Segment: Employees | Year ended 2023: 310 | Year ended 2022: 295",
    ]
    assert table_from_html("<table></table>") is None


@pytest.mark.parametrize("suffix", [".html", ".docx"])
def test_html_and_docx_tables_come_out_as_rows_under_their_caption(tmp_path, suffix):
    rows = [["Item", "2023", "2022"], ["Rent", "10", "9"], ["Staff", "20", "18"]]
    path = tmp_path / f"costs{suffix}"
    if suffix == ".html":
        cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
        path.write_text(f"<html><body><h1>Budget</h1><p>Table 2: Costs (in millions)</p><table>{cells}</table><p>After.</p></body></html>")
    else:
        import docx

        d = docx.Document()
        d.add_heading("Budget", 1)
        d.add_paragraph("Table 2: Costs (in millions)")
        t = d.add_table(rows=3, cols=3)
        for i, r in enumerate(rows):
            for j, c in enumerate(r):
                t.cell(i, j).text = c
        d.add_paragraph("After.")
        d.save(str(path))
    docs = load_file(path, MB).documents
    table = next(d for d in docs if d.category == "Table")
    assert table.text == "Table 2: Costs (in millions)\nItem: Rent | 2023: 10 | 2022: 9\nItem: Staff | 2023: 20 | 2022: 18"
    assert table.section == "Budget"
    assert "Table 2: Costs (in millions)" not in [d.text for d in docs], "the caption is read into the table, not repeated"


@pytest.mark.parametrize(
    "name, page, row",
    [
        (
            "PEPSICO_2023Q1_EARNINGS.pdf",
            5,
            "Net Revenue: Frito-Lay North America | 12 Weeks Ended 3/25/2023: $ 5,583 | 12 Weeks Ended 3/19/2022: $ 4,839",
        ),
        (
            "AMCOR_2023Q2_10Q.pdf",
            5,
            "Net sales | Three Months Ended December 31, 2022: $ 3,642 | Three Months Ended December 31, 2021: $ 3,507"
            " | Six Months Ended December 31, 2022: $ 7,354 | Six Months Ended December 31, 2021: $ 6,927",
        ),
        (
            "NETFLIX_2017_10K.pdf",
            42,
            "Revenues | Year ended December 31, 2017: $ 11,692,713 | Year ended December 31, 2016: $ 8,830,669"
            " | Year ended December 31, 2015: $ 6,779,511",
        ),
    ],
)
def test_filings_statements_keep_their_row_labels_and_column_headers(name, page, row):
    path = FILINGS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not beside this checkout)")
    tables = [d for d in load_file(path, 100 * MB).documents if d.category == "Table" and d.page == page]
    assert any(row in t.text.split("\n") for t in tables), [t.text[:300] for t in tables]
