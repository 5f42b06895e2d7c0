"""Agreement with the original model: self-agreement is perfect, a different model is not, chrF by hand."""

import pytest
from conftest import tiny_llama

import zett
from tokenizers_zoo import byte_tokenizer, surface_forms
from zett.evaluate.agreement import chrf, greedy, split_ids

PROMPTS = ["The quick brown fox", "def add(a, b):\n   ", "Der schnelle braune"]


def test_chrf_by_hand():
    assert chrf("abc", "abc") == 1.0
    assert chrf("a b c", "abc") == 1.0  # whitespace is ignored
    assert chrf("xyz", "abc") == 0.0
    # "ab" vs "abc", n = 1..2: unigram P 2/2, R 2/3; bigram P 1/1, R 1/2 -> P 1, R 7/12
    p, r = 1.0, (2 / 3 + 1 / 2) / 2
    assert chrf("ab", "abc", max_n=2) == pytest.approx(5 * p * r / (4 * p + r))


def test_self_agreement_is_perfect(byte_bpe):
    model = tiny_llama(len(byte_bpe))
    res = zett.evaluate.agreement(model, byte_bpe, model, byte_bpe, PROMPTS, max_new_bytes=24, progress=False)
    assert res.model_outputs == res.reference_outputs and all(res.reference_outputs)
    assert (res.similarity.values == 1.0).all()
    assert res.divergence.estimate().value == pytest.approx(0.0, abs=1e-5)
    # the reference's own greedy output is cheap for it: well under the cost of a uniform guess
    assert res.reference_bpb.bpb < 0.5 * (len(byte_bpe).bit_length())
    out = res.as_dict()
    assert out["similarity_chrf"]["value"] == 1.0 and out["n_prompts"] == 3 and out["n_chat"] == 0


def test_another_model_agrees_less(byte_bpe):
    ref, other = tiny_llama(len(byte_bpe), seed=0, tied=False), tiny_llama(len(byte_bpe), seed=5, tied=False)
    self_res = zett.evaluate.agreement(ref, byte_bpe, ref, byte_bpe, PROMPTS, max_new_bytes=24, progress=False)
    res = zett.evaluate.agreement(other, byte_bpe, ref, byte_bpe, PROMPTS, max_new_bytes=24, progress=False)
    assert res.similarity.values.mean() < 1.0
    assert res.divergence.values.mean() > max(2e-5, 5 * self_res.divergence.values.mean())
    assert res.reference_bpb.bpb > self_res.reference_bpb.bpb
    diff = zett.evaluate.compare(res.reference_bpb, self_res.reference_bpb)
    assert diff.value > 0


def test_agreement_across_tokenizers_is_tokenizer_fair(byte_bpe):
    """A model transferred to bytes is compared with its original: reference outputs are scored per byte."""
    model = tiny_llama(len(byte_bpe))
    new, tok = zett.transfer(model, "byte", base_tokenizer=byte_bpe)
    res = zett.evaluate.agreement(new, tok, model, byte_bpe, PROMPTS, max_new_bytes=16, progress=False)
    assert res.reference_bpb.bytes == sum(len(r.encode()) for r in res.reference_outputs if r)
    assert 0.0 <= res.similarity.values.min() <= 1.0


def test_chat_prompts_go_through_the_template(byte_bpe):
    tok = byte_bpe
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    try:
        model = tiny_llama(len(tok))
        res = zett.evaluate.agreement(
            model,
            tok,
            model,
            tok,
            ["Hello there"],
            chat_prompts=["What is 2+2?"],
            max_new_bytes=12,
            divergence=False,
            progress=False,
        )
        assert res.chat == [False, True] and res.chat_bpb is not None and res.divergence is None
    finally:
        tok.chat_template = None


@pytest.mark.parametrize("text", [" a continuation", "\nnext line", "word"])
def test_split_ids_cover_the_continuation(spm_bpe, byte_bpe, text):
    """Scored ids cover the continuation's bytes (when the boundary is a token boundary) for every tokenizer,
    the prefix-space (SentencePiece) one included."""
    for tok in (spm_bpe, byte_bpe, byte_tokenizer()):
        prefix = [tok.bos_token_id] + tok("Some prompt", add_special_tokens=False)["input_ids"]
        ids, context = split_ids(tok, prefix, text)
        forms = surface_forms(tok)
        assert b"".join(forms[i] for i in ids[context:]).endswith(text.encode())
        assert len(b"".join(forms[i] for i in ids[context:])) <= len(text.encode()) + 1


def test_greedy_stops_at_the_byte_budget():
    tok = byte_tokenizer()
    model = tiny_llama(len(tok))
    text = greedy(model, tok, [tok.eos_token_id] + list(b"abc"), 10)
    assert len(text.encode()) <= 10


def test_batched_greedy_is_plain_greedy(byte_bpe):
    """Left-padded batches give each prompt the continuation a cache-free token-by-token argmax gives it alone."""
    import torch

    from tokenizers_zoo import encode_text, start_token_id, vocabulary
    from zett.evaluate.agreement import greedy_batch

    torch.manual_seed(0)
    model = tiny_llama(len(byte_bpe))
    forms = vocabulary(byte_bpe).forms
    prompts = ["Hi", "The quick brown fox jumps over", "def f(x):\n    return", "a b c d e f g h i j k l m n o"]
    prefixes = [[start_token_id(byte_bpe)] + encode_text(byte_bpe, p) for p in prompts]
    batched = greedy_batch(model, byte_bpe, prefixes, 24, batch_size=3)
    for ids, got in zip(prefixes, batched, strict=True):
        ids, new = list(ids), b""
        with torch.no_grad():
            while len(new) < 24:
                nxt = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
                ids.append(nxt)
                new += forms[nxt]
        assert got == new[:24].decode("utf-8", errors="ignore")
    assert [greedy(model, byte_bpe, ids, 24) for ids in prefixes] == batched
