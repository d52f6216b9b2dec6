"""Citations in written answers: resolving `[n]` and attributing the sentences a model left uncited."""

from ragtune.core.records import Chunk, Hit
from ragtune.engine import cite


def hit(rank: int, text: str) -> Hit:
    return Hit(Chunk(f"c{rank}", text, f"/docs/{rank}.md", "x", "", rank, len(text.split())), 1.0 / rank, rank)


HITS = [hit(1, "Backups run every night and are kept for 30 days."), hit(2, "A late book costs 20 cents a day.")]


def test_an_uncited_sentence_is_cited_to_the_chunk_that_holds_its_words():
    text, added = cite.attribute("A late book costs 20 cents each day. Backups are kept for 30 days [1].", HITS)
    assert text == "A late book costs 20 cents each day [2]. Backups are kept for 30 days [1]."
    assert added == 1
    _, cited, dropped = cite.resolve(text, HITS)
    assert [c.chunk_id for c in cited] == ["c2", "c1"] and dropped == 0


def test_a_sentence_the_chunks_do_not_hold_stays_uncited():
    text = "I don't know.\n- The moon is made of cheese!"
    assert cite.attribute(text, HITS) == (text, 0)
    assert cite.attribute("Backups are kept for 30 days.", []) == ("Backups are kept for 30 days.", 0)


def test_bullets_are_attributed_one_by_one():
    text, added = cite.attribute("- backups kept 30 days\n- late book costs 20 cents", HITS)
    assert text == "- backups kept 30 days [1]\n- late book costs 20 cents [2]" and added == 2
