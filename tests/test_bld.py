"""BLD (SPEC §5.7): teacher byte distributions (path and beam), the byte head, and teacher -> student
distillation across tokenizers and widths."""

import json
from functools import lru_cache

import pytest
import torch
from conftest import TRAIN_TEXT, tiny_llama
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

import zett
from tokenizers_zoo import byte_tokenizer, encode_text, surface_forms
from zett.distill.data import byte_offsets
from zett.losses.bld import ByteTrie, beam_byte_probs, path_byte_probs

TEXTS = [t for t in TRAIN_TEXT[:6] if t][:4]


def _teacher_logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def _path(model, tok, text):
    ids = [tok.bos_token_id] + encode_text(tok, text)
    offsets = byte_offsets(tok, [ids], [text.encode()], len(ids))[0].tolist()
    return path_byte_probs(_teacher_logits(model, ids), ids, offsets, ByteTrie(tok), len(text.encode())), ids


def test_byte_teacher_byte_distribution_is_its_token_distribution(byte_bpe):
    tok = byte_tokenizer(specials_from=byte_bpe)
    model = tiny_llama(len(tok), seed=3)
    text = "héllo, wörld 🤖"
    (probs, covered), ids = _path(model, tok, text)
    assert covered.all() and probs.shape == (len(text.encode()), 256)
    token_p = _teacher_logits(model, ids).double().softmax(-1)[:-1, :256]  # position k predicts byte k
    expected = token_p / token_p.sum(-1, keepdim=True)  # specials carry no byte: renormalised over the bytes
    assert torch.allclose(probs.double(), expected, atol=1e-6)


def test_subword_teacher_byte_distributions_sum_to_one(byte_bpe, spm_bpe):
    for tok in (byte_bpe, spm_bpe):
        model = tiny_llama(len(tok), seed=4)
        for text in TEXTS[:3]:
            (probs, covered), ids = _path(model, tok, text)
            assert covered.float().mean() > 0.95, tok.name_or_path
            sums = probs[covered].double().sum(-1)
            assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)
            # the byte the text actually has next is always possible
            data = text.encode()
            at = torch.nonzero(covered)[:, 0]
            assert (probs[at, torch.tensor([data[i] for i in at])] > 0).all()


@lru_cache(maxsize=1)
def _ab_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE over a 3-letter alphabet with a few merges: every short string has several tokenizations."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=256 + 1 + 6,
        special_tokens=["<s>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(["abcab abab cabca bcab"] * 50, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>")


def _brute_force_byte_probs(model, tok, data: bytes) -> torch.Tensor:
    """p(b | data[:i]) by enumerating every token sequence whose bytes start with data[:i]·b."""
    forms = surface_forms(tok)
    normal = [i for i, f in enumerate(forms) if f and i != tok.bos_token_id]
    memo = {}

    def next_p(seq):
        if seq not in memo:
            memo[seq] = _teacher_logits(model, list(seq))[-1].double().softmax(-1)
        return memo[seq]

    def starts_with(seq, rest: bytes) -> float:  # P(the continuation of seq starts with rest)
        if not rest:
            return 1.0
        p = next_p(seq)
        total = 0.0
        for v in normal:
            f = forms[v]
            if f.startswith(rest):
                total += float(p[v])
            elif rest.startswith(f):
                total += float(p[v]) * starts_with(seq + (v,), rest[len(f) :])
        return total

    out = torch.zeros(len(data), 256, dtype=torch.float64)
    for i in range(len(data)):
        for b in COLS:  # a few bytes (every byte costs a full enumeration); compared renormalised over them
            out[i, b] = starts_with((tok.bos_token_id,), data[:i] + bytes([b]))
    return out[:, COLS] / out[:, COLS].sum(-1, keepdim=True)


COLS = sorted(set(b"abc z"))


def test_beam_is_exact_when_wide_enough_and_path_is_an_approximation():
    tok = _ab_tokenizer()
    assert len(tok) > 257
    model = tiny_llama(len(tok), seed=5)
    data = b"abcab"
    exact = _brute_force_byte_probs(model, tok, data)
    wide = beam_byte_probs(model, tok.bos_token_id, data, ByteTrie(tok), beam=64)
    wide = wide[:, COLS].double() / wide[:, COLS].double().sum(-1, keepdim=True)
    assert torch.allclose(wide, exact, atol=1e-6)
    narrow = beam_byte_probs(model, tok.bos_token_id, data, ByteTrie(tok), beam=1)
    (path, _), _ = _path(model, tok, data.decode())
    assert torch.allclose(narrow.sum(-1), torch.ones(len(data)), atol=1e-5)
    # the one-path approximations differ from the exact marginal somewhere, but stay distributions over bytes
    path_cols = path[:, COLS].double() / path[:, COLS].double().sum(-1, keepdim=True)
    assert (path_cols - exact).abs().max() > 1e-4
    assert torch.allclose(path.sum(-1), torch.ones(len(data)), atol=1e-5)


def _cross_setup(spm_bpe, byte_bpe):
    teacher = tiny_llama(len(byte_bpe), seed=1)  # 32 wide, byte-level BPE

    def fresh_student():
        return tiny_llama(len(spm_bpe), seed=2, hidden_size=48)  # 48 wide, SentencePiece BPE (prefix space)

    return teacher, fresh_student


def _config(**kw):
    base = dict(
        steps=6,
        batch_size=4,
        max_length=40,
        lr=3e-3,
        warmup_steps=0,
        trainable="full",
        save_every=2,
        losses={"alm": 1.0, "sft": 1.0, "bld": 1.0},
        alm={"hidden_weight": 1.0},
        bld={"max_bytes": 8, "head_size": 32},
    )
    base.update(kw)
    return zett.DistillConfig(**base)


def test_teacher_to_student_across_tokenizers_and_widths_trains_and_resumes(tmp_path, spm_bpe, byte_bpe):
    teacher, fresh_student = _cross_setup(spm_bpe, byte_bpe)
    student = fresh_student()
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    result = zett.distill(student, spm_bpe, teacher, byte_bpe, TEXTS, _config(), run_dir=tmp_path / "a", progress=False)
    rows = [m for m in result.metrics if "loss" in m]
    assert len(rows) == 6 and rows[-1]["loss"] < rows[0]["loss"] and rows[-1]["bld"] < rows[0]["bld"]
    after = dict(result.model.named_parameters())
    assert set(after) == set(before)  # the byte head and the width projection are not part of the model
    assert all(not torch.equal(after[n], before[n]) for n in before)
    from safetensors.torch import load_file

    heads = load_file(str(tmp_path / "a" / "checkpoint" / "heads.safetensors"))
    assert any(k.startswith("bld.") for k in heads) and heads["hidden_proj.weight"].shape == (32, 48)
    result.model.save_pretrained(tmp_path / "export")
    exported = load_file(str(tmp_path / "export" / "model.safetensors"))
    assert not any("bld" in k or "gru" in k or "hidden_proj" in k for k in exported)

    zett.distill(
        fresh_student(),
        spm_bpe,
        teacher,
        byte_bpe,
        TEXTS,
        _config(),
        run_dir=tmp_path / "b",
        progress=False,
        on_step=lambda step, row: step < 3,
    )
    assert json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["step"] == 2
    resumed = zett.distill(
        fresh_student(), spm_bpe, teacher, byte_bpe, TEXTS, _config(), run_dir=tmp_path / "b", progress=False
    )
    assert [m["step"] for m in resumed.metrics] == [3, 4, 5, 6]
    assert resumed.metrics[-1]["loss"] == pytest.approx(rows[-1]["loss"], rel=1e-5)
    for name, p in resumed.model.named_parameters():
        assert torch.allclose(p, after[name], atol=1e-6), name


def test_bld_beam_method_and_options(spm_bpe, byte_bpe):
    teacher, fresh_student = _cross_setup(spm_bpe, byte_bpe)
    res = zett.distill(
        fresh_student(),
        spm_bpe,
        teacher,
        byte_bpe,
        TEXTS[:2],
        _config(
            steps=1,
            batch_size=2,
            max_length=12,
            losses={"bld": 1.0},
            bld={"method": "beam", "beam": 2, "max_bytes": 8, "head_size": 32},
        ),
        progress=False,
    )
    assert res.metrics[0]["bld"] > 0
    with pytest.raises(ValueError, match="method"):
        zett.DistillConfig(losses={"bld": 1.0}, bld={"method": "exact"})
    with pytest.raises(ValueError, match="options"):
        zett.DistillConfig(losses={"bld": 1.0}, bld={"beam_width": 3})


def test_teacher_divergence_across_tokenizers(spm_bpe, byte_bpe):
    from zett.evaluate import teacher_divergence

    teacher, fresh_student = _cross_setup(spm_bpe, byte_bpe)
    same = teacher_divergence(teacher, byte_bpe, teacher, byte_bpe, TEXTS[:3])
    assert 0 <= same < 1e-6
    other = teacher_divergence(fresh_student(), spm_bpe, teacher, byte_bpe, TEXTS[:3])
    assert other > 1e-4
    distilled = zett.distill(
        fresh_student(),
        spm_bpe,
        teacher,
        byte_bpe,
        TEXTS,
        _config(steps=8, losses={"alm": 1.0}, alm={}),
        progress=False,
    ).model
    assert teacher_divergence(distilled, spm_bpe, teacher, byte_bpe, TEXTS[:3]) < other
