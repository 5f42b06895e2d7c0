"""bits_per_byte: tokenizer-fair, every text token scored once (SPEC §5.4)."""

import math

import pytest
import torch
from conftest import PROBE_TEXTS, tiny_llama

import zett
from tokenizers_zoo import byte_tokenizer, encode_text

TEXTS = [t for t in PROBE_TEXTS if t] + ["A much longer document. " * 40]


def uniform_model(vocab_size):
    """Untied tiny Llama whose output layer is zero: every next token has probability 1/V."""
    model = tiny_llama(vocab_size, tied=False)
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()
    return model


@pytest.mark.parametrize("max_length", [2048, 16])
def test_uniform_model_costs_log2_v_per_token(byte_bpe, max_length):
    model = uniform_model(len(byte_bpe))
    res = zett.evaluate.score(model, byte_bpe, TEXTS, max_length=max_length, progress=False)
    n_tokens = sum(len(encode_text(byte_bpe, t)) for t in TEXTS)
    n_bytes = sum(len(t.encode()) for t in TEXTS)
    assert res.tokens == n_tokens  # every text token scored once, windows or not
    assert res.bytes == n_bytes
    assert res.bpb == pytest.approx(n_tokens * math.log2(len(byte_bpe)) / n_bytes, rel=1e-5)


def test_byte_tokenizer_uniform_is_log2_v():
    tok = byte_tokenizer()
    model = uniform_model(len(tok))
    assert zett.evaluate.bits_per_byte(model, tok, TEXTS, progress=False) == pytest.approx(math.log2(257), rel=1e-5)


def test_windows_give_context(byte_bpe):
    """A long text scored in short sliding windows: every token once, each with up to max_length - stride tokens
    of context; a model whose output ignores context scores it exactly as with one long window, and batching
    doesn't matter."""
    from zett.evaluate.bpb import _windows

    ids = encode_text(byte_bpe, TEXTS[-1])
    windows = _windows(ids, 0, max_length=24, stride=16)
    assert len(windows) > 3 and len(_windows(ids, 0, max_length=2048, stride=1536)) == 1
    assert sum(len(w) - context for w, context in windows) == len(ids)  # every token scored once
    assert all(len(w) <= 24 for w, _ in windows) and all(context >= 8 for _, context in windows[1:])
    model = uniform_model(len(byte_bpe))  # p(token) = 1/V whatever the context
    long = zett.evaluate.score(model, byte_bpe, TEXTS, max_length=2048, progress=False)
    short = zett.evaluate.score(model, byte_bpe, TEXTS, max_length=24, stride=16, progress=False)
    assert short.tokens == long.tokens and short.bpb == pytest.approx(long.bpb, rel=1e-6)
    real = tiny_llama(len(byte_bpe))  # a model that reads its context: windows change its numbers a little
    a = zett.evaluate.bits_per_byte(real, byte_bpe, TEXTS, max_length=512, progress=False)
    b = zett.evaluate.bits_per_byte(real, byte_bpe, TEXTS, max_length=24, stride=16, progress=False)
    batched = zett.evaluate.bits_per_byte(
        real, byte_bpe, TEXTS, max_length=24, stride=16, batch_tokens=64, progress=False
    )
    assert a != b and b == pytest.approx(a, rel=0.05) and batched == pytest.approx(b, rel=1e-5)


def test_special_text_is_scored_as_text(byte_bpe):
    model = uniform_model(len(byte_bpe))
    text = "<|im_end|> is not a special token here"
    res = zett.evaluate.score(model, byte_bpe, [text], progress=False)
    assert res.tokens == len(encode_text(byte_bpe, text)) > 3


def test_errors(byte_bpe):
    model = tiny_llama(len(byte_bpe))
    with pytest.raises(ValueError, match="no text"):
        zett.evaluate.bits_per_byte(model, byte_bpe, [])
    with pytest.raises(ValueError, match="no text"):
        zett.evaluate.bits_per_byte(model, byte_bpe, ["", ""])
    tok = byte_tokenizer()
    tok.bos_token = tok.eos_token = None
    with pytest.raises(ValueError, match="neither BOS nor EOS"):
        zett.evaluate.bits_per_byte(tiny_llama(len(tok)), tok, ["x"])


def test_large_vocabularies_score_in_smaller_batches(byte_bpe, monkeypatch):
    """Logits held at once stay within LOGITS_BUDGET (tokens x vocabulary): a large-vocabulary model is fed
    fewer tokens per forward, and the numbers do not change."""
    from zett.evaluate import bpb

    model = tiny_llama(len(byte_bpe))
    free = zett.evaluate.score(model, byte_bpe, TEXTS, progress=False)
    seen = []
    model.register_forward_hook(lambda m, args, kwargs, out: seen.append(kwargs["input_ids"].numel()), with_kwargs=True)
    monkeypatch.setattr(bpb, "LOGITS_BUDGET", 64 * model.config.vocab_size)
    capped = zett.evaluate.score(model, byte_bpe, TEXTS, progress=False)
    longest = max(len(encode_text(byte_bpe, t)) + 1 for t in TEXTS)
    assert len(seen) > 2 and all(n <= max(64, longest) for n in seen)
    assert capped.doc_bits == pytest.approx(free.doc_bits, rel=1e-5)
