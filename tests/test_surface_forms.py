"""Joined surface forms reproduce the text's bytes (SPEC §3.1), on real and in-process tokenizers."""

import pytest
from conftest import ASSETS, PROBE_TEXTS, REAL_TOKENIZERS, assets_or_skip, corpus_texts

from tokenizers_zoo import (
    TokenKind,
    byte_tokenizer,
    encode_text,
    load_tokenizer,
    normalisation,
    surface_forms,
    token_kinds,
    verify_surface_forms,
)

SPECIAL_STRINGS = ["<s> </s> <unk> <|endoftext|> <|im_start|>user\n[INST] hi [/INST]<|im_end|>"]


@pytest.fixture(scope="module")
def corpus():
    return corpus_texts("valid") + PROBE_TEXTS + SPECIAL_STRINGS


@pytest.mark.parametrize("name", REAL_TOKENIZERS or ["(no assets)"])
def test_real_tokenizers_exact_on_corpus(name, corpus):
    tok = load_tokenizer(assets_or_skip() / "tokenizers" / name)
    rep = normalisation(tok)
    assert rep.lossless, f"{name} should be lossless, got {rep}"
    forms = surface_forms(tok)
    assert len(forms) == len(tok)
    for text in corpus:
        ids = encode_text(tok, text)
        joined = b"".join(forms[i] for i in ids)
        expected = text.encode("utf-8")
        if rep.prefix_space == "always" or (rep.prefix_space == "if_missing" and not text.startswith(" ")):
            expected = b" " + expected if text else expected
        if rep.unicode_form:
            import unicodedata

            expected = unicodedata.normalize(rep.unicode_form, text).encode("utf-8")
        assert joined == expected, f"{name}: mismatch on {text[:60]!r}"


def test_byte_tokenizer_exact(corpus):
    tok = byte_tokenizer()
    for text in corpus:
        ids = encode_text(tok, text)
        assert ids == list(text.encode("utf-8"))
        verify_surface_forms(tok, text)


@pytest.mark.parametrize("fixture", ["byte_bpe", "spm_bpe", "unigram", "wordpiece", "spm_bpe_no_fallback"])
def test_in_process_families(fixture, request):
    tok = request.getfixturevalue(fixture)
    rep = normalisation(tok)
    assert rep.lossless == (fixture in ("byte_bpe", "spm_bpe"))
    for text in PROBE_TEXTS:
        verify_surface_forms(tok, text)


def test_lossy_reports(unigram, wordpiece, spm_bpe_no_fallback):
    assert normalisation(unigram).unicode_form == "NFKC"
    assert normalisation(wordpiece).lowercase
    assert normalisation(spm_bpe_no_fallback).unknown_token == "<unk>"
    assert normalisation(wordpiece).family.value == "wordpiece"


def test_verify_detects_a_wrong_form(byte_bpe):
    tok = load_tokenizer(byte_bpe)
    text = "Hello world"
    ids = encode_text(tok, text)
    real = tok._zett_vocabulary
    forms = list(real.forms)
    forms[ids[0]] = forms[ids[0]] + b"!"
    tok._zett_vocabulary = type(real)(forms, real.kinds, real.family)
    try:
        with pytest.raises(ValueError, match="first difference"):
            verify_surface_forms(tok, text)
    finally:
        tok._zett_vocabulary = real


def test_byte_fallback_pieces_cover_all_bytes():
    tok = load_tokenizer(assets_or_skip() / "tokenizers" / "llama2")
    forms, kinds = surface_forms(tok), token_kinds(tok)
    fallback = {forms[i] for i, k in enumerate(kinds) if k is TokenKind.BYTE_FALLBACK}
    assert fallback == {bytes([b]) for b in range(256)}
    assert forms[tok.convert_tokens_to_ids("<0xFF>")] == b"\xff"
    assert forms[tok.convert_tokens_to_ids("<0x00>")] == b"\x00"


def test_specials_flagged():
    tok = load_tokenizer(assets_or_skip() / "tokenizers" / "llama3")
    kinds = token_kinds(tok)
    assert kinds[tok.convert_tokens_to_ids("<|begin_of_text|>")] is TokenKind.SPECIAL
    assert kinds[tok.convert_tokens_to_ids("<|reserved_special_token_3|>")] is TokenKind.UNUSED
    assert surface_forms(tok)[tok.convert_tokens_to_ids("<|begin_of_text|>")] == b"<|begin_of_text|>"


def test_prefix_space_reported():
    assert normalisation(load_tokenizer(assets_or_skip() / "tokenizers" / "llama2")).prefix_space == "if_missing"
    assert normalisation(load_tokenizer(ASSETS / "tokenizers" / "gpt2")).prefix_space == "never"
