"""The hypernetwork (SPEC §4.1-4.2, §2a): FVT at initialisation, buckets, saving, loading, base checks."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_llama
from safetensors.torch import load_file

import zett
from hypernet import Hypernet, HypernetConfig, get_predictor
from tokenizers_zoo import TokenKind, byte_tokenizer, token_kinds

SMALL = dict(hidden_size=32, num_heads=4, num_layers=2)


def trained_like(net: Hypernet, seed: int = 0) -> Hypernet:
    """Random non-zero heads and fallback rows, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return net


@pytest.mark.parametrize("tied", [True, False])
def test_untrained_hypernet_is_fvt(byte_bpe, spm_bpe, unigram, tied):
    model = tiny_llama(len(byte_bpe), tied=tied)
    net = Hypernet.for_base(model, byte_bpe, HypernetConfig(**SMALL))
    for target in (spm_bpe, unigram, byte_tokenizer(specials_from=byte_bpe)):
        pred = net.predict(target)
        fvt = get_predictor("fvt").predict(model, byte_bpe, target)
        normal = torch.tensor([k is not TokenKind.SPECIAL for k in token_kinds(target)])
        for a, b in zip(pred.matrices(), fvt.matrices(), strict=True):
            assert torch.equal(a[normal], b.float()[normal])
        # transfer with it equals FVT to the bit (copies and specials included)
        via_net, _ = zett.transfer(model, target, base_tokenizer=byte_bpe, hypernet=net, copy_overlap=True)
        via_fvt, _ = zett.transfer(model, target, base_tokenizer=byte_bpe, method="fvt")
        assert torch.equal(via_net.get_input_embeddings().weight, via_fvt.get_input_embeddings().weight)
        assert torch.equal(via_net.get_output_embeddings().weight, via_fvt.get_output_embeddings().weight)


def test_buckets_equal_one_token_at_a_time(byte_bpe):
    model = tiny_llama(len(byte_bpe))
    net = trained_like(Hypernet.for_base(model, byte_bpe, HypernetConfig(**SMALL)))
    pieces = [[5], [7, 9, 11], [3, 4], [300, 301, 302, 303, 304, 305, 306, 307, 308, 309], [12, 13], []]
    together = net(pieces)
    alone = torch.cat([net([p]) for p in pieces])
    assert torch.allclose(together, alone, atol=1e-5)
    # more than max_subtokens pieces: the network sees the first 8, FVT averages all
    assert not torch.allclose(net([pieces[3]]), net([pieces[3][:8]]))


@pytest.mark.parametrize("train", [True, False])
def test_last_layer_runs_position_zero_only_with_the_full_encoders_result(byte_bpe, train):
    model = tiny_llama(len(byte_bpe))
    net = trained_like(Hypernet.for_base(model, byte_bpe, HypernetConfig(**SMALL))).train(train)
    ids = torch.randint(0, len(byte_bpe), (9, 5))
    with torch.set_grad_enabled(train):  # eval without grad takes torch's fused encoder path
        got = net.encode(ids)
        x = net.project((net.table[ids] - net.mu) / net.sigma) + net.positions[:5]
        ref = net.heads[0](net.norm(net.encoder(x)[:, 0])) * net.sigma
    assert torch.allclose(got, ref, atol=1e-5)


def test_fallback_rows_for_bytes_the_base_lacks(spm_bpe_no_fallback):
    model = tiny_llama(len(spm_bpe_no_fallback))
    net = trained_like(Hypernet.for_base(model, spm_bpe_no_fallback, HypernetConfig(**SMALL)))
    assert net.config.num_fallback == len(net.decomposer.missing_bytes) > 0
    byte = next(b for b in net.decomposer.missing_bytes if b >= 0x80)  # not valid UTF-8 alone
    ids = net.decomposer([bytes([byte])])[0]
    assert ids[0] >= net.config.base_vocab_size
    out = net([ids]).sum()
    out.backward()
    assert net.fallback.grad[ids[0] - net.config.base_vocab_size].abs().sum() > 0


def test_save_load_round_trip(tmp_path, byte_bpe, spm_bpe):
    model = tiny_llama(len(byte_bpe), tied=False)
    net = trained_like(Hypernet.for_base(model, byte_bpe, HypernetConfig(**SMALL)))
    path = net.save_pretrained(tmp_path / "hn")
    assert {f.name for f in path.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    cfg = json.loads((path / "config.json").read_text())  # flat, like a Hub model's
    assert cfg["model_type"] == "zett_hypernet"
    assert cfg["fingerprint"] == net.config.fingerprint and cfg["base_vocab_size"] == len(byte_bpe)
    weights = load_file(str(path / "model.safetensors"))
    assert not any(k in ("table", "mu", "sigma") for k in weights)  # never the base embeddings
    assert sum(v.numel() for v in weights.values()) == sum(p.numel() for p in net.parameters())
    loaded = Hypernet.from_pretrained(path, model, byte_bpe)
    a, b = net.predict(spm_bpe), loaded.predict(spm_bpe)
    assert torch.equal(a.input, b.input) and torch.equal(a.output, b.output)
    assert not torch.equal(a.input, get_predictor("fvt").predict(model, byte_bpe, spm_bpe).input.float())
    # bf16 artifact (how a shipped hypernetwork is stored): half the bytes, predictions close
    small = net.save_pretrained(tmp_path / "hn16", dtype=torch.bfloat16, card="# card\n")
    assert (small / "README.md").read_text() == "# card\n"
    assert (small / "model.safetensors").stat().st_size < 0.6 * (path / "model.safetensors").stat().st_size
    c = Hypernet.from_pretrained(small, model, byte_bpe).predict(spm_bpe)
    assert torch.allclose(c.input, a.input, atol=0.05) and not torch.equal(c.input, a.input)
    # a path string works through transfer, and the trained rows arrive in the model
    new, _ = zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, hypernet=str(path), copy_overlap=False)
    assert new.config.zett["hypernet"] == str(path) and new.config.zett["method"] == "hypernet"
    assert "| hypernetwork | " + str(path) in zett.model_card(new, spm_bpe)
    assert torch.allclose(new.get_input_embeddings().weight[300], a.input[300])


def test_wrong_base_and_bad_names_are_clear_errors(tmp_path, byte_bpe, spm_bpe):
    model = tiny_llama(len(byte_bpe), seed=0)
    path = Hypernet.for_base(model, byte_bpe, HypernetConfig(**SMALL)).save_pretrained(tmp_path / "hn")
    other = tiny_llama(len(byte_bpe), seed=1)
    with pytest.raises(ValueError, match="trained for base model"):
        Hypernet.from_pretrained(path, other, byte_bpe)
    with pytest.raises(ValueError, match="trained for base model"):
        zett.transfer(other, spm_bpe, base_tokenizer=byte_bpe, hypernet=str(path))
    with pytest.raises(ValueError, match="not found"):
        Hypernet.from_pretrained(tmp_path / "missing")
    with pytest.raises(ValueError, match="needs hypernet="):
        zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, method="hypernet")
    with pytest.raises(ValueError, match="drop one"):
        zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, method="fvt", hypernet=str(path))


def test_fingerprint_ignores_dtype(byte_bpe):
    model = tiny_llama(len(byte_bpe))
    net = Hypernet.for_base(model, byte_bpe, HypernetConfig(**SMALL))
    net.check_base(model.to(torch.bfloat16))  # same weights, other dtype: accepted


@pytest.mark.parametrize(
    ("name", "vocab", "width", "base"),
    [
        ("smollm2-135m", 49152, 576, "HuggingFaceTB/SmolLM2-135M-Instruct"),
        ("gemma-3-270m", 262144, 640, "google/gemma-3-270m"),
    ],
)
def test_every_shipped_network_loads_by_name_small_with_its_card_and_refuses_another_base(
    name, vocab, width, base, byte_bpe
):
    from hypernet.model import SHIPPED_DIR, shipped

    assert name in shipped()
    files = {f.name: f for f in (SHIPPED_DIR / name).iterdir()}
    assert set(files) == {"config.json", "model.safetensors", "README.md"}
    assert sum(f.stat().st_size for f in files.values()) < 50e6  # SPEC 2a: the network's own weights, small
    net = Hypernet.from_pretrained(name)
    assert (net.config.base_vocab_size, net.config.embedding_dim, net.config.base_model) == (vocab, width, base)
    card = files["README.md"].read_text()
    assert card.startswith("---\n") and f"base_model: {base}" in card.split("---")[1]
    assert f"# {name}: a zett hypernetwork" in card and f'hypernet="{name}"' in card  # its own name, not a run's
    assert "~/.cache" not in card.split("## Training", 1)[1].split("## Reproduce", 1)[0] and "zett-runs" not in card
    with pytest.raises(ValueError, match="trained for base model"):
        Hypernet.from_pretrained(name, tiny_llama(len(byte_bpe), seed=0), byte_bpe)


@pytest.mark.parametrize(
    ("name", "configs"),
    [
        ("smollm2-135m", [f"hypernet_smollm2{s}.yaml" for s in ("", "_anneal", "_anneal2", "_alm")]),
        ("gemma-3-270m", [f"hypernet_gemma3_270m{s}.yaml" for s in ("", "_leg2", "_leg3", "_leg4", "_leg5")]),
    ],
)
def test_the_example_configs_are_the_shipped_networks_legs(name, configs):
    """Each leg's config starts from the previous one's run; the card's table of legs names each config with its
    steps and peak lr, and its last row is the last config."""
    from hypernet.model import SHIPPED_DIR

    examples, card = Path(__file__).parent.parent / "examples", (SHIPPED_DIR / name / "README.md").read_text()
    legs = [yaml.safe_load((examples / config).read_text()) for config in configs]
    for earlier, leg in zip(legs, legs[1:]):
        assert leg["init_from"] == earlier["run_dir"] + "/hypernet" and leg["lr"] < legs[0]["lr"]
    training = card.split("## Training", 1)[1].split("\n## ", 1)[0]
    lines = training.splitlines()
    header = next(line for line in lines if line.startswith("| leg |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows = [
        dict(zip(columns, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines
        if line.startswith("| ") and line[2].isdigit()
    ]
    for config, leg in zip(configs, legs):
        row = next(r for r in rows if r["config"] == f"`examples/{config}`, `steps: {leg['steps']}`")
        assert float(row["peak lr"]) == leg["lr"]
    assert rows[-1]["config"].startswith(f"`examples/{configs[-1]}`") and rows[-1]["leg"] == str(len(rows))
