"""zett.train_hypernet on a tiny Llama (SPEC §4.3): it trains, only the hypernetwork changes, resume is exact."""

import copy
import json

import pytest
import torch
from conftest import cli, one_and_two_processes, tiny_llama

import zett
from hypernet import Hypernet, HypernetConfig
from tokenizers_zoo import encode_text

# not the tokenizers' training texts (spm_bpe learned those whole lines as single tokens)
TEXTS = [
    "The lazy dog jumps over the quick brown fox, and the fox naps.",
    "Der faule Hund springt; der schnelle Fuchs schläft über den Hund.",
    "def jump(fox, dog):\n    return fox + dog  # über\n",
    "Быстрая собака и ленивая лиса: jumps over 12 dogs.",
    "Le chien paresseux saute, naïvement, par-dessus le renard rapide.",
    "日本語と中文 and the quick dog 🤖 spaces  and\ttabs.",
]


def config(tmp_path, name="run", **over):
    base = dict(
        run_dir=str(tmp_path / name),
        steps=6,
        batch_size=4,
        max_length=40,
        vocab_size=[512, 700],
        startup_texts=12,
        window=3,
        real_tokenizers=[],
        p_real=0.0,
        p_byte=0.25,
        negatives=64,
        eval_tokenizers=[],
        save_every=2,
        data=TEXTS,
        eval_data=TEXTS[:2],
        num_workers=0,
        lr=3e-3,
        warmup_steps=1,
        hypernet=dict(hidden_size=32, num_heads=4, num_layers=2),
        mixed_precision="no",  # exact comparisons: fp32 on every machine (auto is bf16 where it is native)
        losses={"sft": 1.0},  # the cheapest objective; tests of the default objective drop these three
        alm={},
        balance=False,
    )
    base.update(over)
    return base


@pytest.fixture
def base(byte_bpe):
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    return tiny_llama(len(byte_bpe), seed=3), byte_bpe


def test_it_trains_and_only_the_hypernet_changes(tmp_path, base, spm_bpe):
    model, tok = base
    spm_dir = tmp_path / "spm"
    spm_bpe.save_pretrained(spm_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = config(
        tmp_path,
        steps=25,
        data=TEXTS[:4],
        real_tokenizers=[str(spm_dir)],
        p_real=1.0,
        p_byte=0.0,
        eval_tokenizers=[str(spm_dir)],
        lr=1e-2,
        losses={"alm": 1.0, "lexical": 0.1},
    )
    torch.manual_seed(zett.HypernetTrainConfig(**cfg).seed)  # as train_hypernet seeds before it builds its network
    fresh = Hypernet.for_base(model, tok, HypernetConfig(**cfg["hypernet"]))
    result = zett.train_hypernet(cfg, base_model=model, base_tokenizer=tok, progress=False)
    losses = [m["alm"] for m in result.metrics if "alm" in m]
    assert len(losses) == 25 and all(m["source"] == f"real:{spm_dir}" for m in result.metrics if "source" in m)
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5  # the same batch each step: ALM must fall
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # base frozen
    start = dict(fresh.named_parameters())
    trained = dict(result.hypernet.named_parameters())
    assert {n: p.shape for n, p in trained.items()} == {n: p.shape for n, p in start.items()}  # the same network
    unchanged = {n for n, p in trained.items() if torch.equal(p, start[n])}
    # every parameter trained but the rows for bytes the base lacks (no such byte in these texts)
    assert unchanged <= {"fallback"}, unchanged
    run = tmp_path / "run"
    assert (run / "hypernet" / "model.safetensors").exists() and (run / "curves.svg").exists()
    assert "zero-shot BPB" in (run / "curves.svg").read_text()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    final = rows[-1]["eval_bpb"][str(spm_dir)]["all"]
    # the periodic evaluation is the zero-shot transfer with the trained hypernetwork
    new, spm = zett.transfer(model, spm_dir, base_tokenizer=tok, hypernet=run / "hypernet")
    assert final == pytest.approx(zett.evaluate.bits_per_byte(new, spm, TEXTS[:2], progress=False), rel=1e-6)


def test_killed_run_resumes_exactly(tmp_path, base):
    model, tok = base
    whole = zett.train_hypernet(config(tmp_path, "whole"), base_model=model, base_tokenizer=tok, progress=False)
    first = zett.train_hypernet(
        config(tmp_path, "killed"),
        base_model=model,
        base_tokenizer=tok,
        progress=False,
        on_step=lambda step, row: step < 3,
    )  # dies after step 3; checkpoint at step 2
    assert first.steps == 3
    resumed = zett.train_hypernet(config(tmp_path, "killed"), base_model=model, base_tokenizer=tok, progress=False)
    assert resumed.steps == 6 and resumed.metrics[0]["step"] == 3
    rows = [json.loads(line) for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [r["step"] for r in whole.metrics]  # each step once: 1..6, then the eval
    assert [r["loss"] for r in rows if "loss" in r] == pytest.approx([m["loss"] for m in whole.metrics if "loss" in m])
    assert resumed.metrics[-2]["student_tokens_seen"] == whole.metrics[-2]["student_tokens_seen"]  # counts carry on
    assert [m["source"] for m in resumed.metrics if "source" in m] == [
        m["source"] for m in whole.metrics if "source" in m
    ][2:]
    for (name, a), (_, b) in zip(whole.hypernet.state_dict().items(), resumed.hypernet.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_init_from_continues_a_trained_network_and_its_card_cites_it(tmp_path, base):
    from zett.hypertrain.card import export_hypernet, this_machine

    model, tok = base
    model.name_or_path = "/cache/converted-base"  # as a GGUF-loaded base names itself: a local path
    zett.train_hypernet(
        config(tmp_path, "first", steps=12, lr=1e-2), base_model=model, base_tokenizer=tok, progress=False
    )
    first = tmp_path / "first" / "hypernet" / "config.json"
    scripts = json.loads(first.read_text())["training_scripts"]  # the training text's letters' scripts
    assert {"LATIN", "CYRILLIC"} <= set(scripts) and "HANGUL" not in scripts and "GREEK" not in scripts
    raw = json.loads(first.read_text())
    del raw["training_scripts"]  # as a version that did not record them wrote it: the export fills them in
    first.write_text(json.dumps(raw))
    parent = export_hypernet(tmp_path / "first", tmp_path / "parent", compare_fvt=False, dtype=torch.float32)
    raw = json.loads((parent / "config.json").read_text())
    assert raw["training_scripts"] == scripts
    raw["training_scripts"] += ["HANGUL"]  # as if the parent's own data had held Korean
    (parent / "config.json").write_text(json.dumps(raw))
    cfg = config(
        tmp_path,
        "second",
        steps=2,
        eval_every=5,
        eval_tokenizers=["byte"],
        init_from=str(parent),
        lr=1e-4,
        mixed_precision="bf16",
    )  # its autocast wrapper must not leak into the evaluations
    result = zett.train_hypernet(cfg, base_model=model, base_tokenizer=tok, progress=False)
    assert result.hypernet.config.training_scripts == sorted([*scripts, "HANGUL"])  # its own and init_from's
    rows = [json.loads(line) for line in (tmp_path / "second" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval_bpb" in r] == [0, 2]
    start = Hypernet.from_pretrained(parent)
    # the logged starting point is the parent's own zero-shot transfer, in full precision as a user gets it
    new, byte = zett.transfer(model, "byte", base_tokenizer=tok, hypernet=start)
    assert rows[0]["eval_bpb"]["byte"]["all"] == pytest.approx(
        zett.evaluate.bits_per_byte(new, byte, TEXTS[:2], progress=False), rel=1e-6
    )
    # two small steps from the parent: near it, nowhere near a fresh network
    fresh = Hypernet.for_base(model, tok, HypernetConfig(**cfg["hypernet"]))
    name = "heads.0.2.weight"
    gap = (result.hypernet.state_dict()[name] - start.state_dict()[name]).norm()
    assert 0 < gap < 0.5 * (fresh.state_dict()[name] - start.state_dict()[name]).norm()
    card = (export_hypernet(tmp_path / "second", tmp_path / "child", compare_fvt=False) / "README.md").read_text()
    from zett.hypertrain.card import table_rows

    legs = table_rows(card)  # the parent's leg from its card's table, then this run's
    assert [r["leg"] for r in legs] == ["1", "2"] and legs[1]["starts from"].startswith("leg 1's network (sha256")
    assert [r["steps in all"] for r in legs] == ["12", "14"] and legs[1]["peak lr"] == f"{cfg['lr']:g}"
    assert "| byte | init_from (step 0) |" in card
    # a leg chained from a run's hypernet/ (no card there): the card renders that run's, so all legs are listed,
    # base model named as this export names it, each on the machine its run recorded
    assert rows[1]["hardware"] == this_machine() and "hardware" not in rows[2]  # a session's first step only
    zett.train_hypernet(
        config(tmp_path, "third", steps=1, init_from=str(tmp_path / "second" / "hypernet")),
        base_model=model,
        base_tokenizer=tok,
        progress=False,
    )
    card = (
        export_hypernet(
            tmp_path / "third", tmp_path / "grandchild", compare_fvt=False, base_model="org/base", hardware="machine Z"
        )
        / "README.md"
    ).read_text()
    legs = table_rows(card)
    assert [r["leg"] for r in legs] == ["1", "2", "3"] and [r["steps in all"] for r in legs] == ["12", "14", "15"]
    assert [r["machine"] for r in legs] == [this_machine(), this_machine(), "machine Z"]  # each as its run recorded
    assert "- base model (frozen): `org/base`" in card and "converted-base" not in card.split("## Reproduce")[0]
    training = card.split("## Training", 1)[1].split("\n## ", 1)[0]
    assert not any(line.startswith("  ") for line in training.splitlines())  # one table, no nested lists
    bad = config(tmp_path, "fifth", init_from=str(parent), hypernet=dict(hidden_size=16, num_heads=4, num_layers=2))
    with pytest.raises(ValueError, match="hidden_size 32 \\(init_from\\) vs 16"):
        zett.train_hypernet(bad, base_model=model, base_tokenizer=tok, progress=False)
    with pytest.raises(ValueError, match="trained for base model"):
        zett.train_hypernet(
            config(tmp_path, "fourth", init_from=str(parent)),
            base_model=tiny_llama(len(tok), seed=4),
            base_tokenizer=tok,
            progress=False,
        )


def test_config_errors(tmp_path, base):
    model, tok = base
    with pytest.raises(ValueError, match="unknown HypernetTrainConfig fields"):
        zett.train_hypernet({"run_dir": str(tmp_path), "stepz": 3}, base_model=model, base_tokenizer=tok)
    with pytest.raises(ValueError, match="run_dir"):
        zett.train_hypernet({}, base_model=model, base_tokenizer=tok)
    with pytest.raises(ValueError, match="losses"):
        zett.HypernetTrainConfig(losses={"uld": 1.0})


def test_cli_train_hypernet_then_transfer(tmp_path, tiny_model_dir, capsys):
    import yaml

    from zett.cli import main

    cfg = config(
        tmp_path, steps=2, base_model=str(tiny_model_dir), losses={"alm": 1.0, "sft": 0.5}, eval_tokenizers=["byte"]
    )
    (tmp_path / "hn.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train-hypernet", str(tmp_path / "hn.yaml")]) == 0
    hn = tmp_path / "run" / "hypernet"
    assert (
        cli("transfer", "--model", tiny_model_dir, "--tokenizer", "byte", "--hypernet", hn, "--out", tmp_path / "out")
        == 0
    )
    card = (tmp_path / "out" / "README.md").read_text()
    assert "hypernet" in card

    # export: bf16 weights (half the file), the base model named as asked, a card with FVT beside the network
    shipped = tmp_path / "shipped" / "tiny-hn"
    assert main(["export-hypernet", str(tmp_path / "run"), str(shipped), "--base-model", "org/tiny"]) == 0
    assert (shipped / "model.safetensors").stat().st_size < 0.6 * (hn / "model.safetensors").stat().st_size
    card = (shipped / "README.md").read_text()
    assert "# tiny-hn: a zett hypernetwork for org/tiny" in card and "steps: 2 of 2" in card
    assert "schedule restarted" not in card and f"run_dir: {tmp_path / 'run'}" in card  # its config, inline
    model, tok = zett.load_model(tiny_model_dir)
    texts = [t[:1000] for t in TEXTS[:2]]
    fvt_model, byte_tok = zett.transfer(model, "byte", base_tokenizer=tok, method="fvt")
    fvt = zett.evaluate.bits_per_byte(fvt_model, byte_tok, texts, progress=False)
    assert f"| byte | FVT | {fvt:.3f} |" in card
    net = Hypernet.from_pretrained(shipped, model, tok)  # bf16 on disk, bound to the same base
    assert net.config.base_model == "org/tiny"
    full = Hypernet.from_pretrained(hn, model, tok)
    a = zett.transfer(model, "byte", base_tokenizer=tok, hypernet=net)[0].get_input_embeddings().weight
    b = zett.transfer(model, "byte", base_tokenizer=tok, hypernet=full)[0].get_input_embeddings().weight
    assert torch.allclose(a, b, atol=0.05, rtol=0.05) and not torch.equal(a, b)
    # a run extended past its last hypernet/ (more steps in its config) is not exported stale
    cfg_path = tmp_path / "run" / "config.yaml"
    cfg_path.write_text(cfg_path.read_text().replace("steps: 2", "steps: 4"))
    assert main(["export-hypernet", str(tmp_path / "run"), str(tmp_path / "stale"), "--no-fvt"]) == 1
    assert "at step 2 of 4" in capsys.readouterr().err and not (tmp_path / "stale").exists()


def test_run_facts_sum_wall_time_over_resumed_sessions(tmp_path):
    from zett.hypertrain.card import run_facts

    rows = [
        {"loss": 1.0, "step": s, "seconds": t, "student_tokens_seen": 10 * s}
        for s, t in [(1, 5.0), (2, 9.0), (3, 14.0), (3, 4.0), (4, 8.0)]
    ]  # killed after step 3, resumed from step 2
    rows.insert(3, {"step": 3, "eval_bpb": {"byte": {"en": 2.0}}})
    rows[0]["hardware"], rows[4]["hardware"] = "A", "B"  # each session's first step; resumed on another machine
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    facts = run_facts(tmp_path)
    assert facts["steps"] == 4 and facts["student_tokens_seen"] == 40
    assert facts["wall_s"] == pytest.approx(14.0 + 8.0) and facts["sessions"] == 2
    assert facts["eval"]["eval_bpb"]["byte"]["en"] == 2.0 and facts["hardware"] == ["A", "B"]
    with pytest.raises(FileNotFoundError, match="train-hypernet run directory"):
        run_facts(tmp_path / "nope")


def test_run_facts_find_warm_restarts_past_warm_up(tmp_path):
    from zett.hypertrain.card import run_facts

    # warm-up rises to step 2, decays to step 4 (a 4-step horizon), then a resume with a longer horizon
    lrs = {1: 0.5, 2: 1.0, 3: 0.6, 4: 0.1, 5: 0.7, 6: 0.5}
    rows = [{"loss": 1.0, "step": s, "seconds": float(s), "lr": lr} for s, lr in lrs.items()]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert run_facts(tmp_path, warmup_steps=2)["restarts"] == [4]
    assert run_facts(tmp_path)["restarts"] == [1, 4]  # without the warm-up length, its rise counts too


def test_two_processes_match_one(tmp_path):
    """Two CPU processes (see conftest.one_and_two_processes): the same loss trajectory as one process with the
    same global batch (full-vocabulary softmax here, so both see the same rows)."""
    one, two = one_and_two_processes("hypernet_worker.py", tmp_path)
    assert (one["processes"], two["processes"]) == (1, 2)
    assert len(one["losses"]) == len(two["losses"]) == 4
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-3)


def test_negatives_estimate_the_full_partition(byte_bpe, spm_bpe):
    """Batch tokens + uniform negatives with the log(|rest|/m) offset: the subset's softmax normaliser is an
    unbiased estimate of the full vocabulary's (without the offset it is far too small)."""
    from zett.hypertrain.data import HypernetBatches

    cfg = zett.HypernetTrainConfig(negatives=64, seed=0)
    ds = HypernetBatches(TEXTS, TEXTS, byte_bpe, cfg, real={}, first=0, last=1)
    rows = [[5, 9, 17, 300], [9, 40]]
    z = torch.randn(len(spm_bpe), generator=torch.Generator().manual_seed(0))
    full = torch.logsumexp(z, 0).exp()
    estimates, plain = [], []
    for step in range(400):
        local, offset = ds.local_vocabulary(spm_bpe, rows, step)
        assert {5, 9, 17, 300, 40} <= set(local.tolist()) and len(local) == len(set(local.tolist()))
        estimates.append(torch.logsumexp(z[local] + torch.from_numpy(offset), 0).exp())
        plain.append(torch.logsumexp(z[local], 0).exp())
    assert torch.stack(estimates).mean() == pytest.approx(float(full), rel=0.05)
    assert torch.stack(plain).mean() < 0.5 * full


def tiny_gemma3(vocab_size: int, dtype=torch.float32):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=128,
        sliding_window=16,
        pad_token_id=None,
        bos_token_id=None,
        eos_token_id=None,
    )
    return Gemma3ForCausalLM(config).to(dtype).eval()


def test_student_body_scales_predicted_rows_as_gemma_does(base):
    """Gemma multiplies its input rows by sqrt(width) in the weights' dtype: predicted rows fed as inputs_embeds get
    the same scale, so the base's own rows give the base's own input, to the bit, in bf16 too."""
    from zett.hypertrain.objective import input_embeds

    _, tok = base
    model = tiny_gemma3(len(tok), dtype=torch.bfloat16)
    ids = torch.tensor([encode_text(tok, "The quick brown fox jumps over the lazy dog.")])
    rows = model.get_input_embeddings().weight.float()  # predicted rows are fp32
    ours = input_embeds(model, rows, ids).to(torch.bfloat16)
    with torch.no_grad():
        theirs = model.get_input_embeddings()(ids)
    assert torch.equal(ours, theirs) and not torch.equal(rows[ids].to(torch.bfloat16), theirs)


def test_base_tokenizer_with_more_ids_than_rows_trains(tmp_path, base):
    """Gemma-3's published tokenizer has one id more than the model has rows: training copies the rows that exist."""
    model, tok = base
    longer = copy.deepcopy(tok)
    longer.add_special_tokens({"additional_special_tokens": ["<image_soft_token>"]})
    assert len(longer) == model.get_input_embeddings().weight.shape[0] + 1
    result = zett.train_hypernet(
        config(tmp_path, steps=2, p_real=0.0, p_byte=1.0), base_model=model, base_tokenizer=longer, progress=False
    )
    assert result.steps == 2


def test_balanced_alm_and_next_token_training(tmp_path, base, spm_bpe):
    """The default objective, ALM at tau 5 plus next-token weighted by their gradient norms at the step's rows:
    both fall, weights are logged, and ALM's (whose gradient is the smaller one) is lifted above next-token's."""
    model, tok = base
    with torch.no_grad():  # a sharper base: the random tiny one is so near uniform that ALM at tau 5 is ~1e-10
        model.get_input_embeddings().weight.mul_(10)
    defaults = zett.HypernetTrainConfig()
    assert (defaults.losses, defaults.alm, defaults.balance) == ({"alm": 1.0, "sft": 1.0}, {"tau": 5.0}, True)
    spm_bpe.save_pretrained(tmp_path / "spm")  # one tokenizer and the same 4 texts each step: both must fall
    one = dict(real_tokenizers=[str(tmp_path / "spm")], p_real=1.0, p_byte=0.0)
    cfg = config(tmp_path, steps=12, data=TEXTS[:4], lr=1e-2, **one)
    for name in ("losses", "alm", "balance"):
        del cfg[name]
    result = zett.train_hypernet(cfg, base_model=model, base_tokenizer=tok, progress=False)
    rows = [m for m in result.metrics if "alm" in m]
    assert len(rows) == 12 and all({"w_alm", "w_sft"} <= set(m) for m in rows)
    assert all(m["w_alm"] > m["w_sft"] for m in rows)
    first, last = rows[:3], rows[-3:]
    for name in ("alm", "sft"):
        assert sum(m[name] for m in last) < 0.95 * sum(m[name] for m in first)
    plain = zett.train_hypernet(
        dict(cfg, run_dir=str(tmp_path / "plain"), steps=2, balance=False),
        base_model=model,
        base_tokenizer=tok,
        progress=False,
    )
    assert not any("w_alm" in m for m in plain.metrics)
