"""BM25's word rarity, which weights an open answer's evidence (engine/extract.py)."""

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
