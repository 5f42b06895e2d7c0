"""The speed levers of the training runtime (benchmarks/training_speed.py measures them): each one is used when on,
and the exact ones train the same network as with the lever off, to float tolerance."""

import pytest
import torch
from conftest import TRAIN_TEXT, tiny_llama
from test_train_hypernet import TEXTS as HYPER_TEXTS
from test_train_hypernet import config as hyper_config

import zett
from tokenizers_zoo import byte_tokenizer
from zett.training.teacher import Teacher, per_row

OFF = dict(unpadded=False, lazy_teacher=False, fused_adamw=False)
DISTILL_TEXTS = [t for t in TRAIN_TEXT[:6] if t][:4]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead


def body_lengths(model):
    """Sequence lengths the model's body is called with, and its attention masks (recorded by a hook)."""
    calls = []

    def hook(module, args, kwargs):
        x = kwargs.get("inputs_embeds") if kwargs.get("inputs_embeds") is not None else kwargs.get("input_ids")
        calls.append((x.shape[0], x.shape[1], kwargs.get("attention_mask")))

    handle = model.get_decoder().register_forward_pre_hook(hook, with_kwargs=True)
    return calls, handle


def test_per_row_skips_padding_and_gives_the_padded_values(byte_bpe):
    model = tiny_llama(len(byte_bpe), seed=2)
    ids = torch.randint(0, len(byte_bpe), (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[0, 4:] = 0
    mask[2, 7:] = 0
    body = model.get_decoder()
    seen = []

    def run(**kw):
        seen.append(tuple(kw["input_ids"].shape))
        return {"hidden": body(**kw).last_hidden_state}

    padded = body(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    for call_cost, calls in ((0, [(1, 9), (1, 7), (1, 4)]), (3, [(2, 9), (1, 4)]), (None, [(3, 9)])):
        seen.clear()
        out = per_row(run, mask, call_cost=call_cost, input_ids=ids)["hidden"]
        # call_cost 0: each row alone, no padding; 3 (positions): 2 x 9 + 4 + 2 x 3 < 3 x 9 + 3, the rows of
        # lengths 9 and 7 together (2 padded positions), 4 alone; the default: one call
        assert seen == calls, call_cost
        assert torch.allclose(out[real], padded[real], atol=1e-5)
        if call_cost == 0:
            assert out[~real].abs().max() == 0  # padding holds zeros
    seen.clear()
    per_row(run, mask, unpadded=False, input_ids=ids)
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    per_row(run, left, call_cost=0, input_ids=ids[:2, :3])  # not right padding: one call with the mask
    assert seen == [(3, 9), (2, 3)]


def test_length_groups_minimise_calls_plus_positions():
    from zett.training.teacher import length_groups

    assert length_groups([100, 104, 103, 81], call_cost=48) == [[1, 2, 0, 3]]  # 7% padding: one call
    assert length_groups([88, 72, 163, 90], call_cost=48) == [[2], [3, 0, 1]]  # the long one alone
    assert length_groups([5, 5, 5], call_cost=0) == [[0, 1, 2]]  # ties stay together


def test_hypernet_levers_train_the_same_network(tmp_path, byte_bpe, monkeypatch):
    model, tok = tiny_llama(len(byte_bpe), seed=3), byte_bpe
    monkeypatch.setattr("zett.training.teacher.CALL_COST", 0)  # every text alone (tiny texts: one call otherwise)
    teacher_calls = []
    forward = Teacher.forward
    monkeypatch.setattr(Teacher, "forward", lambda self, *a: teacher_calls.append(1) or forward(self, *a))
    calls, handle = body_lengths(model)
    runs = {}
    for name, levers in (("before", OFF), ("after", {})):
        calls.clear()
        teacher_calls.clear()
        cfg = hyper_config(tmp_path, name, steps=4, losses={"sft": 1.0, "lexical": 0.1}, cache_teacher=False, **levers)
        runs[name] = zett.train_hypernet(cfg, base_model=model, base_tokenizer=tok, progress=False)
        runs[name].calls, runs[name].teacher = list(calls), len(teacher_calls)
    handle.remove()
    before, after = runs["before"], runs["after"]
    assert before.teacher == 4 and after.teacher == 0  # sft and lexical read no teacher output
    # before: one padded batch per step (teacher and student); after: texts of one length per call, no padding
    assert all(b == 4 and m is not None for b, _, m in before.calls) and len(before.calls) == 8
    assert all(m is None for _, _, m in after.calls) and len(after.calls) > 4
    computed = sum(b * n for b, n, _ in after.calls)
    assert computed == after.metrics[-2]["student_tokens_seen"] < sum(b * n for b, n, _ in before.calls[1::2])
    for key in ("loss", "sft", "lexical"):
        values = [[m[key] for m in run.metrics if "loss" in m] for run in (before, after)]
        assert len(values[0]) == 4 and values[1] == pytest.approx(values[0], rel=1e-5), key
    for (name, a), (_, b) in zip(before.hypernet.state_dict().items(), after.hypernet.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_alm_keeps_its_teacher_and_alignment_with_lazy_teacher(tmp_path, byte_bpe):
    model, tok = tiny_llama(len(byte_bpe), seed=3), byte_bpe
    losses = {"alm": 1.0, "sft": 1.0}
    before = zett.train_hypernet(
        hyper_config(tmp_path, "b", steps=3, losses=losses, **OFF), base_model=model, base_tokenizer=tok, progress=False
    )
    after = zett.train_hypernet(
        hyper_config(tmp_path, "a", steps=3, losses=losses), base_model=model, base_tokenizer=tok, progress=False
    )
    assert all(m["alm"] > 0 for m in after.metrics if "alm" in m)
    assert [m["alm"] for m in after.metrics if "alm" in m] == pytest.approx(
        [m["alm"] for m in before.metrics if "alm" in m], rel=1e-5
    )


def test_data_skips_alignment_only_when_no_loss_reads_it(tmp_path, byte_bpe):
    from zett.hypertrain.data import HypernetBatches

    def batch(**over):
        cfg = zett.HypernetTrainConfig(**hyper_config(tmp_path, **over))
        return HypernetBatches(HYPER_TEXTS, HYPER_TEXTS, byte_bpe, cfg, real={}, first=0, last=2)[0]

    sft = batch(losses={"sft": 1.0})
    assert int(sft["num_chunks"].sum()) == 0 and (sft["student_chunk_id"] == -1).all()
    for over in ({"losses": {"sft": 1.0}, "lazy_teacher": False}, {"losses": {"alm": 1.0}}):
        aligned = batch(**over)
        assert int(aligned["num_chunks"].min()) > 0 and (aligned["student_chunk_id"] >= 0).any(), over
        assert torch.equal(aligned["student_input_ids"], sft["student_input_ids"])  # the same batch otherwise


def test_fused_adamw_is_used_and_gives_the_same_update():
    from zett.training import make_optimizer

    def train(fused):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8))
        opt, _ = make_optimizer(
            list(net.named_parameters()), zett.DistillConfig(fused_adamw=fused, warmup_steps=0, lr=1e-2)
        )
        for step in range(3):
            net(torch.randn(4, 8, generator=torch.Generator().manual_seed(step))).pow(2).sum().backward()
            opt.step()
            opt.zero_grad()
        return opt, net

    torch.manual_seed(0)
    start = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8))
    (slow, a), (fused, b) = train(False), train(True)
    assert all(g["fused"] for g in fused.param_groups) and not any(g["fused"] for g in slow.param_groups)
    for (name, x), (_, y), (_, x0) in zip(a.named_parameters(), b.named_parameters(), start.named_parameters()):
        assert not torch.equal(x, x0) and torch.allclose(x, y, atol=1e-6), name


@pytest.fixture
def distill_setup(byte_bpe):
    student_tok = byte_tokenizer(specials_from=byte_bpe)
    teacher = tiny_llama(len(byte_bpe), seed=1)
    return teacher, byte_bpe, lambda: zett.transfer(teacher, student_tok, base_tokenizer=byte_bpe)[0], student_tok


@pytest.mark.parametrize("losses", [{"alm": 1.0, "sft": 1.0}, {"sft": 1.0}])
def test_distill_levers_train_the_same_student(distill_setup, losses, monkeypatch):
    teacher, teacher_tok, fresh_student, student_tok = distill_setup
    monkeypatch.setattr("zett.training.teacher.CALL_COST", 0)
    teacher_calls = []
    forward = Teacher.forward
    monkeypatch.setattr(Teacher, "forward", lambda self, *a: teacher_calls.append(1) or forward(self, *a))
    runs = {}
    for name, levers in (("before", OFF), ("after", {})):
        teacher_calls.clear()
        student = fresh_student()
        calls, handle = body_lengths(student)
        cfg = zett.DistillConfig(
            steps=3, batch_size=4, max_length=160, lr=3e-3, warmup_steps=0, losses=losses, save_every=10, **levers
        )
        runs[name] = zett.distill(student, student_tok, teacher, teacher_tok, DISTILL_TEXTS, cfg, progress=False)
        runs[name].calls, runs[name].teacher = list(calls), len(teacher_calls)
        handle.remove()
    before, after = runs["before"], runs["after"]
    assert before.teacher == 1 and after.teacher == (1 if "alm" in losses else 0)  # cached per text after step 1
    assert all(b == 4 for b, _, _ in before.calls) and all(b == 1 for b, _, _ in after.calls)
    assert [m["loss"] for m in after.metrics] == pytest.approx([m["loss"] for m in before.metrics], rel=1e-5)
    for (name, a), (_, b) in zip(before.model.named_parameters(), after.model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_prediction_projects_each_base_id_once_with_the_same_rows(byte_bpe, spm_bpe):
    from hypernet import Hypernet, HypernetConfig
    from tokenizers_zoo import vocabulary

    model = tiny_llama(len(byte_bpe), seed=4)
    net = Hypernet.for_base(model, byte_bpe, HypernetConfig(hidden_size=32, num_heads=4, num_layers=2))
    for p in net.heads[0][-1].parameters():
        torch.nn.init.normal_(p)  # a trained-looking head, so the network's part shows in the rows
    pieces = net.decomposer(vocabulary(spm_bpe).forms)
    projected = []
    net.project.register_forward_hook(lambda module, args, out: projected.append(args[0].shape[0]))
    with torch.no_grad():
        rows = net(pieces, batch_size=7)
        k = net.config.max_subtokens
        distinct = {j for p in pieces for j in p[:k]}
        assert projected == [len(distinct)] and len(distinct) < sum(min(len(p), k) for p in pieces)
        # the reference: every position through the projection, one token at a time
        fvt = net.fvt(pieces)
        for i, p in enumerate(pieces):
            expected = fvt[i] + (net.encode(torch.tensor([p[:k]]))[0] if p else 0.0)
            assert torch.allclose(rows[i], expected, atol=1e-5), i


def test_decomposer_shortcut_gives_the_byte_by_byte_pieces(byte_bpe, spm_bpe):
    from hypernet import Decomposer
    from tokenizers_zoo import vocabulary

    decomposer = Decomposer(byte_bpe)
    for byte in b"\xffa":  # as a base without tokens for these bytes (SmolLM2 lacks 21): forms with them walk
        del decomposer.byte_ids[byte]
    decomposer.missing_bytes = [b for b in range(256) if b not in decomposer.byte_ids]
    decomposer._missing_index = {b: k for k, b in enumerate(decomposer.missing_bytes)}
    decomposer._missing = bytes(decomposer.missing_bytes)
    forms = vocabulary(spm_bpe).forms + [bytes([b]) * 2 for b in range(256)] + [b"ab\xffcd", "über".encode()]
    whole = sum(decomposer._whole(f) is not None for f in forms)
    assert 0 < whole < len(forms)
    slow = []
    for form in forms:  # the reference: every form through the segment walk
        ids = []
        for kind, part in decomposer._segments(form):
            ids += part if kind == "ids" else decomposer.model.encode(part, add_special_tokens=False).ids
        slow.append(ids)
    assert decomposer(forms) == slow


def test_from_byte_level_shortcut_matches_a_character_walk():
    import random

    from tokenizers_zoo.byte_map import BYTE_TO_CHAR, from_byte_level

    def walk(piece):  # the map's characters are their bytes; any other character stays as its UTF-8
        return b"".join(bytes([BYTE_TO_CHAR.index(c)]) if c in BYTE_TO_CHAR else c.encode() for c in piece)

    chars = BYTE_TO_CHAR + [chr(c) for c in range(0x250)] + ["日", "🤖"]
    rng = random.Random(0)
    pieces = ["".join(rng.choice(chars) for _ in range(rng.randint(0, 5))) for _ in range(5000)]
    assert [from_byte_level(p) for p in pieces] == [walk(p) for p in pieces]
    assert from_byte_level("Ġé\xa0") == b" \xe9\xc2\xa0"  # é: the map's character for byte 0xE9; \xa0: not one


def test_base_surface_tables_are_built_once_per_base(byte_bpe, spm_bpe, unigram):
    from hypernet import exact_matches, overlap

    overlap._BASE_FORMS.clear()
    first = exact_matches(spm_bpe, byte_bpe)
    exact_matches(unigram, byte_bpe)
    assert len(overlap._BASE_FORMS) == 1  # one base: one table for both targets
    overlap._BASE_FORMS.clear()
    assert all(torch.equal(a, b) for a, b in zip(exact_matches(spm_bpe, byte_bpe), first))
