"""Text that is not UTF-8 is decoded by detection with a warning naming the encoding; only binary data is refused."""

import json

import pytest

from ragtune.loaders import LoadError, load_file

MB = 10**6
ACCENTS = "Le café crème coûte déjà trop cher à Noël, même en février."
QUOTES = "He said \u201cthe index is ready\u201d \u2014 and it\u2019s fast."


@pytest.mark.parametrize(
    "name, text, codec, guessed",
    [
        ("notes.txt", f"Menu\n\n{ACCENTS}\n", "latin-1", "cp1252"),
        ("notes.md", f"# Résumé\n\n{ACCENTS}\n", "latin-1", "cp1252"),
        ("quotes.txt", f"Quotes\n\n{QUOTES}\n", "cp1252", "cp1252"),
        ("page.html", f"<html><body><h1>Résumé</h1><p>{ACCENTS}</p></body></html>", "cp1252", "cp1252"),
        ("wide.txt", f"Menu\n\n{ACCENTS}\n", "utf-16", "UTF-16"),
        ("no-bom.txt", f"Menu\n\n{ACCENTS}\n", "utf-16-le", "utf_16_le"),  # NUL bytes, yet text
        ("doc.json", json.dumps({"title": "Résumé", "text": ACCENTS}, ensure_ascii=False), "latin-1", "cp1252"),
        ("doc.jsonl", json.dumps({"text": QUOTES}, ensure_ascii=False) + "\n", "cp1252", "cp1252"),
    ],
)
def test_text_that_is_not_utf8_is_decoded_with_a_warning(tmp_path, name, text, codec, guessed):
    path = tmp_path / name
    path.write_bytes(text.encode(codec))
    loaded = load_file(path, MB)
    joined = " ".join(d.text for d in loaded.documents)
    assert ("coûte déjà" in joined) or ("\u201cthe index is ready\u201d" in joined), joined
    assert any(f"decoded as {guessed}" in w for w in loaded.warnings), loaded.warnings


def test_utf8_gets_no_warning(tmp_path):
    path = tmp_path / "plain.md"
    path.write_text(f"# Résumé\n\n{ACCENTS}\n", encoding="utf-8")
    assert load_file(path, MB).warnings == []


@pytest.mark.parametrize("data", [bytes(range(256)) * 20, bytes(range(1, 256)) * 20], ids=["nul-bytes", "no-nul-bytes"])
def test_binary_data_with_a_text_suffix_is_refused_in_one_line(tmp_path, data):
    path = tmp_path / "image.txt"
    path.write_bytes(data)
    with pytest.raises(LoadError) as err:
        load_file(path, MB)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert "binary data, not text" in message, message
