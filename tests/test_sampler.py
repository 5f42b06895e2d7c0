"""TokenizerSampler (SPEC §3.3): real, exact tokenizers of the requested size, drawn from a window of counts."""

from collections import Counter

import pytest
from conftest import PROBE_TEXTS, REAL_TOKENIZERS, TRAIN_TEXT, assets_or_skip, corpus_texts
from transformers import AutoTokenizer

from tokenizers_zoo import TokenizerSampler, byte_tokenizer, encode_text, verify_surface_forms, vocabulary
from tokenizers_zoo.sampler import MAX_PIECE_BYTES, whitespace_pieces

TEXTS = TRAIN_TEXT[:6]


def test_draws_are_real_exact_tokenizers(tmp_path, byte_bpe):
    sampler = TokenizerSampler(byte_bpe, TEXTS * 4, vocab_size=(600, 900), window=4)
    sizes = set()
    for seed in range(4):
        draw = sampler.sample(seed)
        tok = draw.tokenizer
        n_special = len(tok) - tok.backend_tokenizer.get_vocab_size(with_added_tokens=False)
        assert draw.source == "unigram" and 600 <= len(tok) - n_special <= 900
        sizes.add(len(tok))
        for text in PROBE_TEXTS + TEXTS:
            verify_surface_forms(tok, text)
        assert (tok.bos_token, tok.eos_token) == (byte_bpe.bos_token, byte_bpe.eos_token)
        adds_bos = byte_bpe("hi").input_ids[0] == byte_bpe.bos_token_id
        assert (tok("hi").input_ids[0] == tok.bos_token_id) == adds_bos
        tok.save_pretrained(tmp_path / f"t{seed}")
        again = AutoTokenizer.from_pretrained(tmp_path / f"t{seed}")
        assert again(TEXTS[4]).input_ids == tok(TEXTS[4]).input_ids
    assert len(sizes) > 1
    forms = set(vocabulary(tok).forms)
    assert all(bytes([b]) in forms for b in range(256))
    assert {b"\n" + b" " * 4, b"\t\t"} <= forms  # whitespace runs
    assert len(whitespace_pieces()) == 135


def test_draws_are_deterministic_and_noise_varies(byte_bpe):
    sampler = TokenizerSampler(byte_bpe, TEXTS, vocab_size=(700, 700), window=2)
    a, b = sampler.sample(3), sampler.sample(3)
    assert vocabulary(a.tokenizer).forms == vocabulary(b.tokenizer).forms
    stds = {sampler.sample(s).noise_std for s in range(5)}
    assert len(stds) == 5


def test_a_draw_depends_on_the_window_not_its_history(byte_bpe):
    """A resumed run rebuilds the window from the last steps' texts: the same tables, inserted in another order
    (the uninterrupted sampler saw older texts first). Its draws must be the same tokenizers."""
    lived = TokenizerSampler(byte_bpe, TEXTS[:4], vocab_size=(700, 700), window=2)
    for t in TEXTS[4:6]:
        lived.observe([t])
    fresh = TokenizerSampler(byte_bpe, vocab_size=(700, 700), window=2)
    for t in TEXTS[4:6]:
        fresh.observe([t])
    assert lived.totals == fresh.totals and list(lived.totals) != list(fresh.totals)  # same counts, other order
    for seed in range(3):
        assert vocabulary(lived.sample(seed).tokenizer).forms == vocabulary(fresh.sample(seed).tokenizer).forms


def test_counts_and_window(byte_bpe):
    sampler = TokenizerSampler(byte_bpe, window=2)
    table = sampler.count(["ab ab"])  # pretokens "ab", "Ġab"
    assert table["ab"] == 2 * 2 and table["Ġa"] == 2 and "a" not in table  # length-weighted, no single bytes
    assert all(2 <= len(k) <= MAX_PIECE_BYTES for k in sampler.count(TEXTS))
    tables = [sampler.count([t]) for t in TEXTS[:3]]
    for t in TEXTS[:3]:
        sampler.observe([t])
    assert sampler.totals == tables[1] + tables[2]  # the oldest table left the window
    before = Counter(sampler.totals)
    sampler.sample(0, extra_texts=["a validation batch"])
    assert sampler.totals == before


def test_mix_of_base_real_and_byte(byte_bpe, spm_bpe):
    real = {"spm": spm_bpe}
    assert TokenizerSampler(byte_bpe, TEXTS, p_byte=1.0).sample(0).source == "byte"
    draw = TokenizerSampler(byte_bpe, TEXTS, real=real, p_real=1.0).sample(0)
    assert draw.source == "real:spm" and draw.tokenizer is spm_bpe
    assert TokenizerSampler(byte_bpe, TEXTS, p_base=1.0).sample(0).tokenizer is byte_bpe
    sources = Counter(
        TokenizerSampler(byte_bpe, TEXTS, real=real, p_real=0.3, p_byte=0.3, vocab_size=(600, 600)).sample(s).source
        for s in range(30)
    )
    assert set(sources) == {"unigram", "real:spm", "byte"}
    with pytest.raises(ValueError, match="real="):
        TokenizerSampler(byte_bpe, p_real=0.5)


@pytest.mark.skipif(not REAL_TOKENIZERS, reason="shared assets not found")
def test_sampled_from_real_text_exact_on_every_language():
    assets = assets_or_skip()
    from tokenizers_zoo import load_tokenizer

    base = load_tokenizer(assets / "tokenizers" / "smollm2")
    texts = corpus_texts("valid", per_lang=2)
    sampler = TokenizerSampler(
        base, [t[:1500] for t in corpus_texts("train", per_lang=20)], stride=4, vocab_size=(4096, 8192)
    )
    tok = sampler.sample(1).tokenizer
    for text in texts:
        verify_surface_forms(tok, text)
    byte = byte_tokenizer(specials_from=base)
    n_sampled = sum(len(encode_text(tok, t)) for t in texts)
    assert n_sampled < 0.6 * sum(len(encode_text(byte, t)) for t in texts)  # it learned real pieces
