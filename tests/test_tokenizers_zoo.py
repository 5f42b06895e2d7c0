"""Byte tokenizer, load_tokenizer specs, byte-level conversion (SPEC §3.2, §2a)."""

import base64
import json

import pytest
from benchmarks_paths import smollm2_gguf
from conftest import ASSETS, PROBE_TEXTS, assets_or_skip
from transformers import AutoTokenizer

from tokenizers_zoo import (
    TokenKind,
    added_specials,
    byte_tokenizer,
    convert_to_byte_level,
    encode_text,
    is_byte_tokenizer,
    load_tokenizer,
    match_specials,
    normalisation,
    surface_forms,
    token_kinds,
    verify_surface_forms,
)


def test_byte_tokenizer_layout_and_roundtrip(tmp_path, byte_bpe):
    tok = byte_tokenizer(specials_from=byte_bpe)
    forms = surface_forms(tok)
    assert [forms[b] for b in range(256)] == [bytes([b]) for b in range(256)]
    assert all(k is TokenKind.SPECIAL for k in token_kinds(tok)[256:])
    assert tok.convert_ids_to_tokens(256) == "<|endoftext|>"
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    assert is_byte_tokenizer(tok) and not is_byte_tokenizer(byte_bpe)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    for text in PROBE_TEXTS:
        ids = again(text, add_special_tokens=False).input_ids
        assert ids == list(text.encode("utf-8"))
        assert again.decode(ids) == text


def test_byte_tokenizer_adds_bos_like_its_base():
    llama2 = load_tokenizer(assets_or_skip() / "tokenizers" / "llama2")
    tok = byte_tokenizer(specials_from=llama2)
    assert added_specials(llama2) == ([llama2.bos_token_id], [])
    assert tok("hi").input_ids == [tok.bos_token_id, ord("h"), ord("i")]
    assert tok.bos_token == "<s>"


def test_byte_tokenizer_without_base():
    tok = load_tokenizer("byte")
    assert len(tok) == 257
    assert tok.eos_token == tok.bos_token == tok.pad_token == "<|endoftext|>"
    assert tok("ab").input_ids == [97, 98]


def test_load_tokenizer_specs(tmp_path, byte_bpe):
    byte_bpe.save_pretrained(tmp_path / "dir")
    from_dir = load_tokenizer(tmp_path / "dir")
    from_json = load_tokenizer(tmp_path / "dir" / "tokenizer.json")
    byte_bpe.backend_tokenizer.save(str(tmp_path / "bare.json"))
    bare = load_tokenizer(tmp_path / "bare.json")
    for tok in (from_dir, from_json, bare):
        assert tok("hello world").input_ids == byte_bpe("hello world").input_ids
    assert load_tokenizer(byte_bpe) is byte_bpe
    assert load_tokenizer(byte_bpe.backend_tokenizer)("hello").input_ids == byte_bpe("hello").input_ids


@pytest.mark.parametrize("name", ["gpt2", "mistral-v3"])
def test_shipped_tokenizers_match_assets(name):
    shipped = load_tokenizer(name)
    real = load_tokenizer(assets_or_skip() / "tokenizers" / name)
    text = "Shipped tokenizers: naïve 日本語\n\tcode()"
    assert encode_text(shipped, text) == encode_text(real, text)
    assert shipped.eos_token == real.eos_token


def test_sentencepiece_model_file_matches_sentencepiece_and_tokenizer_json():
    """A .model file tokenizes as the sentencepiece library does (its dummy prefix is added to every text, even one
    that starts with a space). The published tokenizer.json is another implementation: it agrees on plain prose
    but adds the prefix only when the text lacks one, and splits some whitespace runs differently."""
    import sentencepiece

    assets = assets_or_skip()
    path = assets / "tokenizers" / "mistral-v3" / "tokenizer.model"
    from_model = load_tokenizer(path)
    from_json = load_tokenizer(assets / "tokenizers" / "mistral-v3")
    reference = sentencepiece.SentencePieceProcessor(model_file=str(path))
    for text in PROBE_TEXTS[:4] + ["A sentence with words."]:
        assert encode_text(from_model, text) == reference.encode(text), text
    prose = "A sentence with words, and another one."
    assert encode_text(from_model, prose) == encode_text(from_json, prose)
    assert normalisation(from_model).prefix_space == "always"
    assert normalisation(from_json).prefix_space == "if_missing"


def test_tiktoken_file(tmp_path):
    ranks = [bytes([b]) for b in range(256)] + [b"th", b"the", b" t", b" the", b"he"]
    path = tmp_path / "toy.tiktoken"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(ranks)))
    tok = load_tokenizer(path)
    assert len(tok) >= 261
    for text in PROBE_TEXTS:
        verify_surface_forms(tok, text)
    assert surface_forms(tok)[tok.convert_tokens_to_ids("Ġthe")] == b" the"


def test_gguf_tokenizer():
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("SmolLM2 GGUF not fetched (../shared/assets/fetch_models.sh)")
    tok = load_tokenizer(gguf)
    ref = load_tokenizer(assets_or_skip() / "tokenizers" / "smollm2")
    assert len(tok) == len(ref) == 49152
    text = "GGUF tokenizer check: naïve 🤖"
    assert encode_text(tok, text) == encode_text(ref, text)


def test_bad_specs(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer("./no/such/tokenizer.json")
    bad = tmp_path / "x.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="SentencePiece"):
        load_tokenizer(bad)
    odd = tmp_path / "x.bin"
    odd.write_bytes(b"\x00\x01")
    with pytest.raises(ValueError, match="don't know how"):
        load_tokenizer(odd)
    with pytest.raises(TypeError, match="cannot use"):
        load_tokenizer(42)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no tokenizer"):
        load_tokenizer(tmp_path / "empty")


@pytest.mark.parametrize("fixture", ["spm_bpe", "unigram", "wordpiece", "spm_bpe_no_fallback"])
def test_convert_to_byte_level(fixture, request):
    tok = request.getfixturevalue(fixture)
    conv = convert_to_byte_level(tok)
    original, converted = surface_forms(tok), surface_forms(conv)
    kinds = token_kinds(tok)
    for i, (a, b) in enumerate(zip(original, converted)):
        if kinds[i] in (TokenKind.NORMAL, TokenKind.BYTE_FALLBACK):
            assert a == b, i
    covered = {f for f, k in zip(converted, token_kinds(conv)) if len(f) == 1 and k is not TokenKind.SPECIAL}
    assert covered == {bytes([b]) for b in range(256)}  # every byte reachable
    original_lossless = normalisation(tok).lossless
    assert normalisation(conv).unknown_token is None
    for text in PROBE_TEXTS:
        verify_surface_forms(conv, text)
        if original_lossless:
            assert conv.decode(encode_text(conv, text)) == tok.decode(encode_text(tok, text))
        elif normalisation(conv).lossless:
            # byte fallback made explicit: no <unk> left; Strip drops one leading space, as the original's does
            assert conv.decode(encode_text(conv, text)) == (text[1:] if text.startswith(" ") else text)


def test_match_specials(byte_bpe):
    bt = byte_tokenizer(specials_from=byte_bpe)
    pairs = match_specials(bt, byte_bpe)
    assert pairs[bt.eos_token_id] == byte_bpe.eos_token_id
    assert pairs[bt.bos_token_id] == byte_bpe.bos_token_id
    qwen = load_tokenizer(assets_or_skip() / "tokenizers" / "qwen3")
    llama3 = load_tokenizer(ASSETS / "tokenizers" / "llama3")
    roles = match_specials(llama3, qwen)
    assert roles[llama3.eos_token_id] == qwen.eos_token_id  # by role: <|end_of_text|> -> <|im_end|>
    json.dumps({str(k): v for k, v in roles.items()})
