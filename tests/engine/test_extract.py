"""Open answers read the documents' structure: lists with or without bullets, FAQs, rare words."""

from ragtune.core.config import load_config
from ragtune.core.records import Chunk, Hit
from ragtune.engine import extract as X
from ragtune.engine.config import SpanConfig


def _hits(*texts: str, source: str = "doc.md") -> list[Hit]:
    return [Hit(Chunk(f"c{i}", t, source, "0" * 64, "S", i, 50), 1.0 / (i + 1), i + 1) for i, t in enumerate(texts)]


def _answer(question: str, hits: list[Hit], is_list: bool, weight=None) -> str:
    """The extract chosen with the shipped weights, the model's and the embedder's scores left out."""
    sentences = X.split_sentences(hits, question, weight)
    ranked = X.rank(sentences, [0.0] * len(sentences), [0.0] * len(sentences), load_config(SpanConfig), None, is_list)
    return X.render(X.choose(ranked, sentences, is_list, load_config(SpanConfig)), hits, is_list)[0]


def test_lines_under_a_line_ending_with_a_colon_are_a_list_bulleted_or_not():
    text = (
        "The adapter folder holds:\n\nthe adapter weights file;\nthe tokenizer and its template;\nthe metrics file.\n\nLogs are optional."
    )
    sentences = X.split_sentences(_hits(text), "What does the adapter folder hold?")
    assert [s.bullet for s in sentences] == [False, True, True, True, False]
    assert sentences[0].intro


def test_a_list_items_label_stays_and_a_json_fields_name_goes():
    labelled = X.split_sentences(_hits("There are two modes:\nbase: the model alone.\nrag: the model with chunks."), "Which modes?")
    assert [s.text for s in labelled] == ["There are two modes:", "base: the model alone.", "rag: the model with chunks."]
    fields = X.split_sentences(_hits("question: Why?\nanswer: It is a scanned PDF.", source="faq.jsonl"), "Why?")
    assert [s.text for s in fields] == ["It is a scanned PDF."]


def test_a_list_question_is_answered_by_a_list_over_a_sentence_that_shares_its_words():
    hits = _hits(
        "Each file's format is recorded with its digest in the manifest of formats.",
        "Files are read by their extension:\n- PDF, read with pdfium;\n- HTML and Markdown, read with unstructured;\n- DOCX files.",
    )
    answer = _answer("Which file formats can it read?", hits, is_list=True)
    assert answer.splitlines() == ["- PDF, read with pdfium; [2]", "- HTML and Markdown, read with unstructured; [2]", "- DOCX files. [2]"]


def test_the_answer_under_a_documents_own_matching_question_is_read_whole_from_its_start():
    hits = _hits(
        "question: Why are the ft modes unavailable?\nanswer: They need a LoRA adapter. Run the trainer first. "
        "Training and the app share a folder.\n\nquestion: Why is loading slow?\nanswer: The model is converted once.",
        "The chat shows the ft modes beside the rag modes.",
        source="faq.jsonl",
    )
    answer = _answer("Why are the ft modes shown as unavailable?", hits, is_list=False)
    assert answer == "They need a LoRA adapter. [1] Run the trainer first. [1] Training and the app share a folder. [1]"
    no_faq = load_config(SpanConfig, {"sentence_faq_weight": 0.0, "faq_match": 0.0})
    sentences = X.split_sentences(hits, "Why are the ft modes shown as unavailable?")
    ranked = X.rank(sentences, [0.0] * len(sentences), [0.0] * len(sentences), no_faq)
    assert ranked[0][1].hit == 1  # without the FAQ's question, the sentence that shares the most words wins


def test_a_rare_question_word_counts_for_more_evidence_than_a_common_one():
    hits = _hits("The ragtune index keeps chunks.", "Each hit shows its rank.")
    plain = X.split_sentences(hits, "What does ragtune show for each hit?")
    assert plain[0].evidence == plain[1].evidence == 1 / 2  # "ragtune" and "hit": "show" is a stop word
    rarity = {"ragtune": 0.1, "hit": 2.0}.get
    weighted = X.split_sentences(hits, "What does ragtune show for each hit?", rarity)
    assert weighted[0].evidence == 0.1 / 2.1 and weighted[1].evidence == 2.0 / 2.1


def test_an_open_answer_quotes_one_chunk_unless_told_otherwise():
    hits = _hits("The index keeps chunks on disk. It keeps them in Chroma.", "The index is rebuilt after each ingest.")
    question = "Where does the index keep chunks after an ingest?"
    sentences = X.split_sentences(hits, question)
    ranked = X.rank(sentences, [0.0] * len(sentences), [0.0] * len(sentences), load_config(SpanConfig))
    both = load_config(SpanConfig, {"one_chunk": False, "sentence_margin": 10.0})
    assert {s.hit for s in X.choose(ranked, sentences, False, both)} == {0, 1}
    one = load_config(SpanConfig, {"sentence_margin": 10.0})
    assert {s.hit for s in X.choose(ranked, sentences, False, one)} == {0}


def test_a_chunk_whose_heading_holds_the_questions_words_is_preferred():
    from dataclasses import replace

    overview = "Synth writes pairs for every chunk, and the report counts them."
    rules = "Each of the pairs must be grounded in its chunk, and near-duplicates are dropped."
    hits = _hits(overview, rules)
    hits[1] = replace(hits[1], chunk=replace(hits[1].chunk, section="Synthetic data > Filters"))
    question = "Which filters does synth apply to the pairs?"
    sentences = X.split_sentences(hits, question)
    assert [s.heading for s in sentences] == [0.0, 2 / 4]  # of filters, synth, apply, pairs: "Filters", "Synth(etic)"
    assert _answer(question, hits, is_list=False) == f"{rules} [2]"
    no_heading = load_config(SpanConfig, {"sentence_heading_weight": 0.0})
    ranked = X.rank(sentences, [0.0] * len(sentences), [0.0] * len(sentences), no_heading)
    assert ranked[0][1].hit == 0  # without the heading, the sentence that shares more words wins
