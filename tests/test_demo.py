"""The demo's texts: the shared corpus when it is there, built-in sentences otherwise (no model needed)."""

import json

from zett.demo import SAMPLES, demo_texts


def test_demo_reads_the_corpus_and_falls_back_to_built_in_sentences(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = ["a" * 2000, "second document", "third"]
    (corpus / "en.valid.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n")
    monkeypatch.setenv("ZETT_ASSETS", str(tmp_path))
    texts = demo_texts(["en", "de", "xx"], docs=2, chars=1500)
    assert texts["en"] == ["a" * 1500, "second document"]  # the first `docs` documents, cut to `chars`
    assert texts["de"] == [SAMPLES["de"]]  # no de corpus here: the built-in sentence
    assert "xx" not in texts  # neither: left out rather than evaluated on nothing
