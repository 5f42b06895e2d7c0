"""Distilling on conversations the teacher writes (DistillConfig.chat_prompts): generated once through the
teacher's chat template, tokenized by each side's template with its turn markers, aligned by role, resumed
without generating again."""

import copy
import importlib
import json

import pytest
import torch
from conftest import TRAIN_TEXT, self_distillation

import zett
from tokenizers_zoo import special_roles
from zett.distill.chat import BUILTIN_FILE, conversation_ids, read_prompts, teacher_conversations
from zett.distill.data import StepBatches
from zett.evaluate import CHAT_PROMPTS
from zett.evaluate.agreement import greedy, prompt_ids

chat = importlib.import_module("zett.distill.chat")  # zett.distill is also the function
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEXTS = [t for t in TRAIN_TEXT[:6] if t][:4]
PROMPTS = ["What is 2+2?", "Name a colour.", "Say hello."]


@pytest.fixture
def setup(byte_bpe):
    teacher_tok = copy.deepcopy(byte_bpe)
    teacher_tok.chat_template = TEMPLATE
    return self_distillation(teacher_tok)


def config(prompts_file, **kw):
    base = dict(
        steps=6,
        batch_size=4,
        max_length=64,
        lr=3e-3,
        warmup_steps=0,
        losses={"alm": 1.0, "sft": 1.0},
        save_every=2,
        chat_prompts=str(prompts_file),
        chat_fraction=0.5,
        chat_max_bytes=24,
    )
    base.update(kw)
    return zett.DistillConfig(**base)


def test_builtin_prompts_are_not_the_evaluation_prompts():
    prompts = read_prompts("builtin")
    assert len(prompts) >= 100 and len(set(prompts)) == len(prompts)
    assert not set(prompts) & set(CHAT_PROMPTS)


def test_read_prompts_from_files(tmp_path):
    (tmp_path / "p.txt").write_text("first\n\n second \n")
    (tmp_path / "p.jsonl").write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n')
    assert read_prompts(tmp_path / "p.txt") == ["first", "second"]
    assert read_prompts(str(tmp_path / "p.jsonl")) == ["a", "b"]
    with pytest.raises(ValueError, match="'prompt' field"):
        read_prompts(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError, match="builtin"):
        read_prompts(tmp_path / "missing.txt")
    assert BUILTIN_FILE.is_file()


def test_conversations_are_the_teachers_greedy_answers_and_are_kept(setup, tmp_path, monkeypatch):
    teacher, teacher_tok, _, _ = setup
    pairs = teacher_conversations(teacher, teacher_tok, PROMPTS, max_new_bytes=24, run_dir=tmp_path)
    for prompt, answer, complete in pairs:
        alone = greedy(teacher, teacher_tok, prompt_ids(teacher_tok, prompt, chat=True), 24)
        assert answer == alone
        longer = greedy(teacher, teacher_tok, prompt_ids(teacher_tok, prompt, chat=True), 64)
        assert complete == (longer == alone)  # cut at the budget <=> the teacher had more to say
    assert any(a for _, a, _ in pairs)
    rows = [json.loads(line) for line in (tmp_path / "conversations.jsonl").read_text().splitlines()]
    assert [(r["prompt"], r["answer"], r["complete"]) for r in rows] == pairs

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(chat, "greedy_batch", no_generation)
    assert teacher_conversations(teacher, teacher_tok, PROMPTS, max_new_bytes=24, run_dir=tmp_path) == pairs
    with pytest.raises(ValueError, match="other prompts"):
        teacher_conversations(teacher, teacher_tok, PROMPTS[:2], max_new_bytes=24, run_dir=tmp_path)


def test_batches_mix_conversations_with_turn_markers_aligned_by_role(setup):
    teacher, teacher_tok, _, student_tok = setup
    chats = [("What is 2+2?", "It is 4.", True), ("Say hello.", "Hello!", True)]
    data = StepBatches(
        TEXTS, student_tok, teacher_tok, batch_size=4, max_length=64, teacher_max_length=64, seed=0,
        first=0, last=4, chats=chats, chats_per_step=2,
    )  # fmt: skip
    s_start = special_roles(student_tok)["turn_start"]
    t_start = special_roles(teacher_tok)["turn_start"]
    for k in range(len(data)):
        batch = data[k]
        index = batch["text_index"].tolist()
        assert sum(i >= len(TEXTS) for i in index) == 2  # two conversations in every step
        for row, i in enumerate(index):
            s_ids = batch["student_input_ids"][row][batch["student_attention_mask"][row].bool()]
            t_ids = batch["teacher_input_ids"][row][batch["teacher_attention_mask"][row].bool()]
            if i < len(TEXTS):  # (this tokenizer's start token is <|im_start|>: no other marker in plain text)
                assert s_start not in s_ids[1:].tolist()
                continue
            expected = conversation_ids(student_tok, *chats[i - len(TEXTS)])
            assert s_ids.tolist() == expected
            # the turn markers after the (unscored) first position are special ids on both sides and share
            # chunks, paired by role
            s_pos = (s_ids[1:] == s_start).nonzero().flatten() + 1
            t_pos = (t_ids[1:] == t_start).nonzero().flatten() + 1
            assert len(s_pos) == len(t_pos) == 1
            s_chunks = batch["student_chunk_id"][row, s_pos]
            t_chunks = batch["teacher_chunk_id"][row, t_pos]
            assert torch.equal(s_chunks, t_chunks) and bool((s_chunks >= 0).all())


def test_a_cut_answer_has_no_end_of_turn(setup):
    _, teacher_tok, _, student_tok = setup
    for tok in (teacher_tok, student_tok):
        end = special_roles(tok)["turn_end"]
        whole = conversation_ids(tok, "Say hello.", "Hello there", True)
        cut = conversation_ids(tok, "Say hello.", "Hello there", False)
        assert whole.count(end) == 2 and cut.count(end) == 1  # the user's turn ends in both
        text = tok.decode(cut, skip_special_tokens=False)
        assert text.endswith("assistant\nHello there") and tok.decode(whole).rstrip().endswith("<|im_end|>")


def test_it_trains_on_conversations_and_resumes_without_generating(setup, tmp_path, monkeypatch):
    teacher, teacher_tok, fresh_student, student_tok = setup
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS))
    full = zett.distill(
        fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config(prompts), run_dir=tmp_path / "a",
        progress=False,
    )  # fmt: skip
    losses = [m["loss"] for m in full.metrics]
    assert losses[-1] < losses[0]
    assert (tmp_path / "a" / "conversations.jsonl").exists()
    zett.distill(
        fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config(prompts), run_dir=tmp_path / "b",
        progress=False, on_step=lambda step, row: step < 3,
    )  # fmt: skip
    monkeypatch.setattr(chat, "greedy_batch", lambda *a, **k: pytest.fail("generated again on resume"))
    resumed = zett.distill(
        fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config(prompts), run_dir=tmp_path / "b",
        progress=False,
    )  # fmt: skip
    assert [m["step"] for m in resumed.metrics] == [3, 4, 5, 6]
    for name, p in resumed.model.named_parameters():
        assert torch.allclose(p, dict(full.model.named_parameters())[name], atol=1e-6), name


def test_chat_options_refuse_what_cannot_work(setup, tmp_path):
    teacher, teacher_tok, fresh_student, student_tok = setup
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS))
    with pytest.raises(ValueError, match="between 0 and 1"):
        config(prompts, chat_fraction=1.5)
    with pytest.raises(ValueError, match="bld"):
        config(prompts, losses={"bld": 1.0})
    plain = copy.deepcopy(teacher_tok)
    plain.chat_template = None
    with pytest.raises(ValueError, match="chat template on the teacher"):
        zett.distill(fresh_student(), student_tok, teacher, plain, TEXTS, config(prompts), progress=False)
    assert zett.DistillConfig(chat_prompts="builtin", batch_size=4, chat_fraction=0.1).chats_per_step() == 1
    assert zett.DistillConfig(batch_size=4).chats_per_step() == 0
