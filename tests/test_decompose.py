"""Decomposition of target tokens into base ids (SPEC §4.1)."""

import torch
from conftest import assets_or_skip

from hypernet import Decomposer
from hypernet.predictors.fvt import bag_mean
from tokenizers_zoo import load_tokenizer, surface_forms


def test_smollm2_lacks_21_bytes():
    dec = Decomposer(load_tokenizer(assets_or_skip() / "tokenizers" / "smollm2"))
    assert len(dec.missing_bytes) == 21
    assert {0xC0, 0xC1, 0xFF} <= set(dec.missing_bytes)
    pieces = dec([b"\xc0a\xff"])[0]
    assert pieces[0] == dec.fallback_id(0xC0) and pieces[-1] == dec.fallback_id(0xFF)
    assert all(p >= 49152 for p in (pieces[0], pieces[-1])) and pieces[1] < 49152


def test_byte_fallback_base_spells_partial_characters():
    tok = load_tokenizer(assets_or_skip() / "tokenizers" / "llama2")
    dec = Decomposer(tok)
    assert dec.missing_bytes == []
    ids = dec([b"\xe4\xb8", b"a\xe4", b" hello", b"\xff"])
    assert ids[0] == [tok.convert_tokens_to_ids("<0xE4>"), tok.convert_tokens_to_ids("<0xB8>")]
    assert ids[1][-1] == tok.convert_tokens_to_ids("<0xE4>")
    assert tok.convert_ids_to_tokens(ids[2])[0].startswith("\u2581")
    assert ids[3] == [tok.convert_tokens_to_ids("<0xFF>")]


def test_decomposition_covers_the_bytes(byte_bpe, spm_bpe):
    dec = Decomposer(byte_bpe)
    forms = surface_forms(spm_bpe)
    base_forms = surface_forms(byte_bpe)
    for form, ids in zip(forms, dec(forms)):
        assert b"".join(base_forms[i] for i in ids) == form
    assert [len(x) for x in dec(forms, max_subtokens=2)] == [min(2, len(x)) for x in dec(forms)]


def test_bag_mean():
    m = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    fill = torch.full((3,), -1.0)
    out = bag_mean(m, [[0, 1], [3], [7], []], fill)
    assert torch.equal(out[0], (m[0] + m[1]) / 2)
    assert torch.equal(out[1], m[3])
    assert torch.equal(out[2], fill) and torch.equal(out[3], fill)
