"""zett.ensemble: mixture of next-token probabilities over a shared tokenizer (SPEC §5.6)."""

import math

import pytest
import torch
from conftest import tiny_llama

import zett
from tokenizers_zoo import encode_text
from zett.ensemble import best_weights

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Der schnelle braune Fuchs springt."]


def test_mixture_probabilities(byte_bpe):
    a, b = tiny_llama(len(byte_bpe), seed=1), tiny_llama(len(byte_bpe), seed=2)
    ens = zett.ensemble([a, b], weights=[3, 1])
    ids = torch.tensor([encode_text(byte_bpe, TEXTS[0])])
    with torch.no_grad():
        expected = 0.75 * a(ids).logits.softmax(-1) + 0.25 * b(ids).logits.softmax(-1)
        got = ens(ids).logits.exp()
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got.sum(-1), torch.ones(1, ids.shape[1]), atol=1e-5)


def test_ensemble_bpb_between_and_single_member_identity(byte_bpe):
    a, b = tiny_llama(len(byte_bpe), seed=1), tiny_llama(len(byte_bpe), seed=2)
    bpb_a = zett.evaluate.bits_per_byte(a, byte_bpe, TEXTS, progress=False)
    bpb_b = zett.evaluate.bits_per_byte(b, byte_bpe, TEXTS, progress=False)
    assert zett.evaluate.bits_per_byte(zett.ensemble([a]), byte_bpe, TEXTS, progress=False) == pytest.approx(
        bpb_a, rel=1e-5
    )
    mix = zett.evaluate.bits_per_byte(zett.ensemble([a, b]), byte_bpe, TEXTS, progress=False)
    # Jensen: log(p_a/2 + p_b/2) >= (log p_a + log p_b)/2 per token, so the mixture costs at most the average
    assert mix <= (bpb_a + bpb_b) / 2 + 1e-6
    w = best_weights([a, b], byte_bpe, TEXTS, grid=4)
    assert len(w) == 2 and math.isclose(sum(w), 1.0)
    best = zett.evaluate.bits_per_byte(zett.ensemble([a, b], w), byte_bpe, TEXTS, progress=False)
    assert best <= min(mix, bpb_a, bpb_b) + 1e-6
    # the weights come from mixing the members' token log-probs; scoring every candidate ensemble agrees
    every = [
        zett.evaluate.bits_per_byte(zett.ensemble([a, b], [k / 4, 1 - k / 4]), byte_bpe, TEXTS, progress=False)
        for k in range(5)
    ]
    assert best == pytest.approx(min(every), abs=1e-6)


def test_generate(byte_bpe):
    a, b = tiny_llama(len(byte_bpe), seed=1), tiny_llama(len(byte_bpe), seed=2)
    ens = zett.ensemble([a, b])
    ids = torch.tensor([encode_text(byte_bpe, "hello")])
    greedy = ens.generate(ids, max_new_tokens=4)
    assert greedy.shape == (1, ids.shape[1] + 4) and torch.equal(greedy[:, : ids.shape[1]], ids)
    with torch.no_grad():
        first = ens(ids).logits[0, -1].argmax()
    assert greedy[0, ids.shape[1]] == first
    g = torch.Generator().manual_seed(0)
    sampled = ens.generate(ids, max_new_tokens=4, do_sample=True, generator=g)
    assert sampled.shape == greedy.shape


def test_generate_with_caches_matches_the_mixture_rerun_on_the_whole_prefix(byte_bpe):
    ens = zett.ensemble([tiny_llama(len(byte_bpe), seed=1), tiny_llama(len(byte_bpe), seed=2)], weights=[1, 2])
    rows = [encode_text(byte_bpe, "hello there"), encode_text(byte_bpe, "world peace")]
    ids = torch.tensor([r[: min(map(len, rows))] for r in rows])
    expected = ids
    with torch.no_grad():
        for _ in range(6):
            expected = torch.cat([expected, ens(expected).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    lengths = []
    ens.members[0].register_forward_pre_hook(
        lambda m, a, kw: lengths.append(kw["input_ids"].shape[1]), with_kwargs=True
    )
    assert torch.equal(ens.generate(ids, max_new_tokens=6), expected)
    assert lengths == [ids.shape[1]] + [1] * 5  # the prompt once, then one token per step through the caches
    # a token that ends every row stops generation there
    eos = int(expected[0, ids.shape[1]])
    stopped = ens.generate(ids[:1], max_new_tokens=6, eos_token_id=eos)
    assert torch.equal(stopped, expected[:1, : ids.shape[1] + 1])


def test_errors(byte_bpe, spm_bpe):
    with pytest.raises(ValueError, match="shared tokenizer"):
        zett.ensemble([tiny_llama(len(byte_bpe)), tiny_llama(len(spm_bpe))])
    with pytest.raises(ValueError, match="non-negative"):
        zett.ensemble([tiny_llama(len(byte_bpe))] * 2, weights=[1, -1])


def test_choices_of_an_ensemble_score_with_its_members_caches(byte_bpe):
    """Multiple-choice scoring runs the context once and reuses each member's cache for the choices; every choice
    scores as a plain forward of the mixture over context + choice."""
    from zett.evaluate.tasks import Example, _batch_scores, continuation_ids, start_token_id

    ens = zett.ensemble([tiny_llama(len(byte_bpe), seed=1), tiny_llama(len(byte_bpe), seed=2)], weights=[2, 1])
    examples = [Example("def add(a, b):\n    return", ("a + b", "a - b - 1"), 0), Example("Hi", ("there", "x"), 1)]
    start = start_token_id(byte_bpe)
    for ex, got in zip(examples, _batch_scores(ens, byte_bpe, start, examples, 256), strict=True):
        ctx = [start] + encode_text(byte_bpe, ex.context)
        for choice, score in zip(ex.choices, got, strict=True):
            cont = continuation_ids(byte_bpe, " " + choice)
            with torch.no_grad():
                lp = ens(torch.tensor([ctx + cont])).logits[0]
            total = sum(float(lp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
            assert score == pytest.approx(total / len((" " + choice).encode()), abs=1e-5)
