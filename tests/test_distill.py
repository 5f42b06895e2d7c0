"""zett.distill: it actually trains, per trainable set; exact resume; config handling (SPEC §5.3)."""

import json

import pytest
import torch
from conftest import TRAIN_TEXT, cli, one_and_two_processes, self_distillation

import zett

TEXTS = [t for t in TRAIN_TEXT[:6] if t][:4]


@pytest.fixture
def setup(byte_bpe):
    return self_distillation(byte_bpe)


def config(trainable, **kw):
    base = dict(
        steps=6,
        batch_size=4,
        max_length=48,
        lr=3e-3,
        warmup_steps=0,
        trainable=trainable,
        losses={"alm": 1.0, "sft": 1.0},
        lora_rank=4,
        lora_alpha=8,
        save_every=2,
    )
    base.update(kw)
    return zett.DistillConfig(**base)


@pytest.mark.parametrize("trainable", ["embeddings", "embeddings+lora", "full"])
def test_it_actually_trains_and_resumes(tmp_path, setup, trainable):
    teacher, teacher_tok, fresh_student, student_tok = setup
    student = fresh_student()
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    result = zett.distill(
        student, student_tok, teacher, teacher_tok, TEXTS, config(trainable), run_dir=tmp_path / "a", progress=False
    )
    losses = [m["loss"] for m in result.metrics if "loss" in m]
    assert len(losses) == 6 and losses[-1] < losses[0]
    after = dict(result.model.named_parameters())
    emb = "model.embed_tokens.weight"
    assert not torch.equal(after[emb], before[emb])
    changed = [n for n in before if not torch.equal(after[n], before[n])]
    if trainable == "embeddings":
        assert changed == [emb]  # tied: the one matrix; the body is frozen
    elif trainable == "embeddings+lora":
        # LoRA is merged on return: every adapted projection moved, norms did not
        assert emb in changed and any("q_proj" in n for n in changed) and any("down_proj" in n for n in changed)
        assert not any("norm" in n for n in changed)
        assert set(after) == set(before)  # a plain model again
    else:
        assert set(changed) == set(before)
    assert (tmp_path / "a" / "config.yaml").exists() and (tmp_path / "a" / "checkpoint" / "state.json").exists()
    assert len((tmp_path / "a" / "metrics.jsonl").read_text().splitlines()) == 6

    # killed after step 3 (checkpoint at 2), resumed: same weights as the uninterrupted run
    killed = zett.distill(
        fresh_student(),
        student_tok,
        teacher,
        teacher_tok,
        TEXTS,
        config(trainable),
        run_dir=tmp_path / "b",
        progress=False,
        on_step=lambda step, row: step < 3,
    )
    assert killed.steps == 3 and set(dict(killed.model.named_parameters())) == set(before)  # merged when stopped too
    assert json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["step"] == 2
    resumed = zett.distill(
        fresh_student(),
        student_tok,
        teacher,
        teacher_tok,
        TEXTS,
        config(trainable),
        run_dir=tmp_path / "b",
        progress=False,
    )
    assert [m["step"] for m in resumed.metrics] == [3, 4, 5, 6]
    assert resumed.metrics[-1]["loss"] == pytest.approx(losses[-1], rel=1e-5)
    for name, p in resumed.model.named_parameters():
        assert torch.allclose(p, after[name], atol=1e-6), name
    # the steps redone after the checkpoint are in metrics.jsonl once, and so in the curves
    rows = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in rows] == pytest.approx(losses, rel=1e-5)
    # a finished run called again trains nothing and logs nothing more
    again = zett.distill(
        fresh_student(),
        student_tok,
        teacher,
        teacher_tok,
        TEXTS,
        config(trainable),
        run_dir=tmp_path / "b",
        progress=False,
    )
    assert again.steps == 6 and again.metrics == []
    assert len((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()) == 6


def test_gradient_accumulation_matches_one_batch(setup):
    teacher, teacher_tok, fresh_student, student_tok = setup
    one = zett.distill(
        fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config("full", steps=3, grad_accum=1), progress=False
    )
    acc = zett.distill(
        fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config("full", steps=3, grad_accum=2), progress=False
    )
    assert [m["loss"] for m in acc.metrics] == pytest.approx([m["loss"] for m in one.metrics], rel=1e-4)
    for (n, a), (_, b) in zip(one.model.named_parameters(), acc.model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-5), n


def test_teacher_cache_gives_same_losses(setup):
    teacher, teacher_tok, fresh_student, student_tok = setup
    cached = zett.distill(
        fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config("full", steps=3), progress=False
    )
    fresh = zett.distill(
        fresh_student(),
        student_tok,
        teacher,
        teacher_tok,
        TEXTS,
        config("full", steps=3, cache_teacher=False),
        progress=False,
    )
    assert [m["loss"] for m in cached.metrics] == pytest.approx([m["loss"] for m in fresh.metrics], rel=1e-5)


def test_the_default_recipe_is_next_token_and_runs_no_teacher(setup, monkeypatch):
    from zett.training.teacher import Teacher

    teacher, teacher_tok, fresh_student, student_tok = setup
    calls = []
    forward = Teacher.forward
    monkeypatch.setattr(Teacher, "forward", lambda self, *a: calls.append(1) or forward(self, *a))
    defaults = zett.DistillConfig()
    assert defaults.losses == {"sft": 1.0} and defaults.trainable == "full"
    cfg = zett.DistillConfig(steps=4, batch_size=4, max_length=48, lr=3e-3, warmup_steps=0)
    result = zett.distill(fresh_student(), student_tok, teacher, teacher_tok, TEXTS, cfg, progress=False)
    rows = [m for m in result.metrics if "loss" in m]
    assert calls == [] and all("alm" not in m and m["loss"] == m["sft"] for m in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    # the other tests' recipe (ALM + SFT) reads the teacher: the counter sees it
    zett.distill(fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config("full", steps=1), progress=False)
    assert calls


def test_uld_and_eval(setup, tmp_path):
    teacher, teacher_tok, fresh_student, student_tok = setup
    res = zett.distill(
        fresh_student(),
        student_tok,
        teacher,
        teacher_tok,
        TEXTS,
        config("full", steps=2, losses={"uld": 1.0}, eval_every=1),
        eval_data=TEXTS[:2],
        progress=False,
        run_dir=tmp_path,
    )
    assert "eval_bpb" in res.metrics[0] and res.metrics[-1]["eval_bpb"] > 0
    assert "student BPB" in (tmp_path / "curves.svg").read_text()  # the shared runtime draws distillation's too


def test_config_yaml_and_validation(tmp_path):
    cfg = config("embeddings", alm={"tau": 10.0})
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert zett.DistillConfig.from_yaml(path) == cfg
    with pytest.raises(ValueError, match="trainable"):
        zett.DistillConfig(trainable="lora-only")
    with pytest.raises(ValueError, match="unknown"):
        zett.DistillConfig(losses={"kd": 1.0})
    with pytest.raises(ValueError, match="unknown \\['lexical'\\]"):  # registered, but for hypernetworks only
        zett.DistillConfig(losses={"lexical": 1.0})
    with pytest.raises(TypeError, match="log_with"):
        zett.DistillConfig(log_with=3)
    with pytest.raises(ValueError, match="multiple of grad_accum"):
        zett.DistillConfig(batch_size=3, grad_accum=2)
    with pytest.raises(ValueError, match="unknown DistillConfig fields"):
        zett.DistillConfig.from_dict({"stepz": 3})


def test_two_processes_match_one(tmp_path):
    """Two CPU processes give the same loss trajectory as one process with the same global batch."""
    one, two = one_and_two_processes("distill_worker.py", tmp_path)
    assert (one["processes"], two["processes"]) == (1, 2)
    assert len(one["losses"]) == len(two["losses"]) == 4
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-3)


def test_transfer_with_self_distillation(setup, tmp_path):
    teacher, teacher_tok, _, _ = setup
    cfg = config("full", steps=3)
    new, tok = zett.transfer(
        teacher, "byte", base_tokenizer=teacher_tok, distill=cfg, distill_data=TEXTS, distill_run_dir=tmp_path / "run"
    )
    assert new.config.zett["distill_steps"] == 3 and len(tok) == new.config.vocab_size
    plain, _ = zett.transfer(teacher, "byte", base_tokenizer=teacher_tok)
    assert not torch.equal(new.get_input_embeddings().weight, plain.get_input_embeddings().weight)
    with pytest.raises(ValueError, match="distill_data"):
        zett.transfer(teacher, "byte", base_tokenizer=teacher_tok, distill=cfg)


def test_cli_distill_and_transfer_distill(tmp_path, tiny_model_dir):
    import yaml

    from zett.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"text": t}) for t in TEXTS))
    assert (
        cli(
            "transfer",
            "--model",
            tiny_model_dir,
            "--tokenizer",
            "byte",
            "--out",
            tmp_path / "t",
            "--distill-steps",
            2,
            "--distill-data",
            data,
        )
        == 0
    )
    assert "| distillation steps | 2 |" in (tmp_path / "t" / "README.md").read_text()
    spec = {
        "student": str(tmp_path / "t"),
        "teacher": str(tiny_model_dir),
        "data": str(data),
        "eval_data": str(data),
        "out": str(tmp_path / "s"),
        "run_dir": str(tmp_path / "r"),
        "config": {"steps": 2, "batch_size": 2, "max_length": 32, "trainable": "embeddings"},
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    assert main(["distill", str(tmp_path / "job.yaml")]) == 0
    assert (tmp_path / "s" / "model.safetensors").exists() and (tmp_path / "r" / "checkpoint").exists()
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"student": "x"}))
    assert main(["distill", str(tmp_path / "bad.yaml")]) == 1
    assert (
        cli("transfer", "--model", tiny_model_dir, "--tokenizer", "byte", "--out", tmp_path / "u", "--distill-steps", 2)
        == 1
    )


def test_read_texts_from_a_glob_pattern(tmp_path):
    from zett.data import read_texts

    for lang in ("de", "en"):
        (tmp_path / f"{lang}.train.jsonl").write_text(json.dumps({"text": f"text in {lang}"}) + "\n")
    (tmp_path / "en.valid.jsonl").write_text(json.dumps({"text": "held out"}) + "\n")
    assert read_texts(str(tmp_path / "*.train.jsonl")) == ["text in de", "text in en"]
    with pytest.raises(FileNotFoundError, match="matches nothing"):
        read_texts(str(tmp_path / "*.test.jsonl"))


def test_balanced_weights_equalise_gradient_norms():
    from zett.losses import balanced_weights

    shared = torch.randn(3, 4, requires_grad=True)
    values = {"big": (shared * 10).sum(), "small": (shared * 0.1).pow(2).sum()}
    w = balanced_weights(values, shared, {"big": 1.0, "small": 2.0})
    norms = {k: torch.autograd.grad(v, shared, retain_graph=True)[0].norm() for k, v in values.items()}
    # weighted gradient norms are equal up to the configured weights (1 : 2)
    assert float(w["small"] * norms["small"]) == pytest.approx(2 * float(w["big"] * norms["big"]), rel=1e-5)


def test_balanced_loss_gives_the_weighted_sums_value_and_gradient():
    """balanced_loss starts its backward pass at ``shared`` from the gradients it computed: the parameters behind
    ``shared`` get exactly the gradient of the balanced weighted sum, and the loss has its value."""
    from zett.losses import balanced_loss, balanced_weights

    torch.manual_seed(0)
    theta = torch.randn(5, 4, requires_grad=True)
    body = torch.randn(4, 6)

    def losses():
        shared = torch.tanh(theta @ torch.randn(4, 4, generator=torch.Generator().manual_seed(1)))
        out = torch.tanh(shared @ body)
        return shared, {"a": out.pow(2).sum() * 30, "b": out.sin().mean(), "unused": theta.sum() * 0}

    shared, values = losses()
    total, w = balanced_loss(values, shared, {"a": 1.0, "b": 2.0, "unused": 1.0})
    total.backward()
    got = theta.grad.clone()
    theta.grad = None
    shared, values = losses()
    want_w = balanced_weights(values, shared, {"a": 1.0, "b": 2.0, "unused": 1.0})
    want = sum(want_w[k] * v for k, v in values.items())
    want.backward()
    assert w == pytest.approx(want_w) and w["b"] > 10 * w["a"]  # the small gradient is lifted
    assert float(total) == pytest.approx(float(want), rel=1e-6)
    assert torch.allclose(got, theta.grad, rtol=1e-5, atol=1e-7)


def test_balanced_training_logs_weights_and_trains(setup):
    teacher, teacher_tok, fresh_student, student_tok = setup
    res = zett.distill(
        fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config("full", balance=True), progress=False
    )
    rows = [m for m in res.metrics if "loss" in m]
    assert rows[-1]["alm"] < rows[0]["alm"] and rows[-1]["sft"] < rows[0]["sft"]
    # ALM's gradient is orders of magnitude below SFT's at tau = 100: balancing lifts its weight above SFT's
    assert all(r["w_alm"] > r["w_sft"] for r in rows)


def test_untied_embeddings_train_apart_resume_and_export(setup, tmp_path):
    """untie_embeddings: the tied byte student gets its own output matrix; both matrices train, apart; a killed
    run resumes to the same weights; the saved model loads untied in stock transformers with the same logits."""
    from transformers import AutoModelForCausalLM

    teacher, teacher_tok, fresh_student, student_tok = setup
    cfg = config("embeddings", untie_embeddings=True)
    student = fresh_student()
    assert student.lm_head.weight.data_ptr() == student.model.embed_tokens.weight.data_ptr()  # tied to start
    start = student.model.embed_tokens.weight.detach().clone()
    res = zett.distill(student, student_tok, teacher, teacher_tok, TEXTS, cfg, run_dir=tmp_path / "a", progress=False)
    model = res.model
    e_in, e_out = model.model.embed_tokens.weight, model.lm_head.weight
    assert not torch.equal(e_in, start) and not torch.equal(e_out, start) and not torch.equal(e_in, e_out)
    assert model.config.tie_word_embeddings is False
    killed = zett.distill(
        fresh_student(),
        student_tok,
        teacher,
        teacher_tok,
        TEXTS,
        cfg,
        run_dir=tmp_path / "b",
        progress=False,
        on_step=lambda step, row: step < 3,
    )
    assert killed.steps == 3
    resumed = zett.distill(
        fresh_student(), student_tok, teacher, teacher_tok, TEXTS, cfg, run_dir=tmp_path / "b", progress=False
    )
    assert torch.allclose(resumed.model.lm_head.weight, e_out, atol=1e-6)
    assert torch.allclose(resumed.model.model.embed_tokens.weight, e_in, atol=1e-6)
    model.save_pretrained(tmp_path / "out")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert loaded.lm_head.weight.data_ptr() != loaded.model.embed_tokens.weight.data_ptr()
    ids = torch.tensor([[1, 5, 9, 14]])
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)
