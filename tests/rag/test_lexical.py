"""BM25's terms (stemmed) and word rarity, which weights an open answer's evidence (engine/extract.py)."""

from ragtune.rag import lexical


def test_idf_ranks_a_rare_word_above_a_common_one_and_an_unseen_one_above_both():
    texts = ["ragtune ingests files", "ragtune searches chunks", "ragtune shows each hit"]
    bm25 = lexical._bm25s().BM25()
    bm25.index([lexical.tokenize(t) for t in texts], show_progress=False)
    lex = lexical.Lexical(bm25, ["a", "b", "c"])
    assert lex.idf("ragtune") < lex.idf("hit") < lex.idf("unseen")
    assert lex.idf("the") == 1.0  # a stop word carries no weight of its own


def test_an_empty_index_weighs_every_word_alike():
    assert lexical.Lexical(lexical._bm25s().BM25(), []).idf("hit") == 1.0


def test_the_stemmer_meets_a_words_forms_and_leaves_short_words_and_numbers():
    for forms in (["crash", "crashed", "crashes"], ["split", "splits", "splitting"], ["continue", "continued", "continuing"]):
        assert len({lexical.stem(f) for f in forms}) == 1, forms
    assert lexical.stem("embedding") == lexical.stem("embeds") == "embed"
    assert [lexical.stem(w) for w in ("runs", "2024", "status", "analysis")] == ["runs", "2024", "status", "analysis"]
    assert lexical.tokenize("The chunks were Crashed") == ["chunk", "crash"]
