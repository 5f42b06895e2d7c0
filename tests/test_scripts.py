"""FVT rows for tokens of scripts the hypernetwork's training text lacked (hypernet.scripts, Hypernet.predict)."""

import json
import logging
import sys

import pytest
import torch
from conftest import cli, tiny_llama
from test_hypernet import SMALL, trained_like

import zett
from hypernet import Hypernet, HypernetConfig, get_predictor
from hypernet.scripts import text_scripts, unseen_script_tokens
from tokenizers_zoo import vocabulary


def test_scripts_are_named_by_letters_only():
    text = "Hello мир! 123 — ½ → ★ 안"
    assert text_scripts([text], min_letters=1) == ["CYRILLIC", "HANGUL", "LATIN"]
    # Hello: 5 Latin letters, мир: 3 Cyrillic, 안: 1 Hangul
    assert text_scripts([text], min_letters=3, min_share=1.0) == ["CYRILLIC", "LATIN"]
    # a share of all letters, when fewer than min_letters: 3 of 9 letters is a third
    assert text_scripts([text], min_letters=100, min_share=0.3) == ["CYRILLIC", "LATIN"]
    # ASCII and non-ASCII Latin letters add up: 15 + ü
    assert text_scripts([text * 3, "ü"], min_letters=16, min_share=1.0) == ["LATIN"]
    assert text_scripts([text * 3], min_letters=16, min_share=1.0) == []
    assert text_scripts(["123 !?", ""]) == []


def test_tokens_with_a_letter_of_an_unseen_script():
    forms = [b"hello", " мир".encode(), "안녕".encode(), b"\xec\x95", "1,2 → ★".encode(), "é".encode()]
    forms += ["a안".encode(), "日本".encode(), "の".encode()]
    got = unseen_script_tokens(forms, ["LATIN", "CYRILLIC", "CJK"]).tolist()
    assert got == [False, False, True, False, False, False, True, False, True]


@pytest.fixture
def net_and_base(byte_bpe):
    model = tiny_llama(len(byte_bpe))
    return trained_like(Hypernet.for_base(model, byte_bpe, HypernetConfig(**SMALL))), model, byte_bpe


def test_predict_gives_fvt_rows_to_unseen_scripts_only(net_and_base, spm_bpe, caplog):
    net, model, tok = net_and_base
    forms = vocabulary(spm_bpe).forms
    unseen = torch.tensor([any(0x3040 <= ord(c) <= 0x30FF for c in f.decode("utf-8", "ignore")) for f in forms])
    unseen |= torch.tensor([any(0x4E00 <= ord(c) <= 0x9FFF for c in f.decode("utf-8", "ignore")) for f in forms])
    unseen |= torch.tensor([any(0x0400 <= ord(c) <= 0x04FF for c in f.decode("utf-8", "ignore")) for f in forms])
    ascii_only = torch.tensor([f.isascii() and len(f) > 1 for f in forms])
    assert unseen.sum() >= 5 and ascii_only.sum() >= 20
    fvt = get_predictor("fvt").predict(model, tok, spm_bpe).input
    net.config.training_scripts = None  # not recorded: the network's rows everywhere
    everywhere = net.predict(spm_bpe).input
    net.config.training_scripts = ["LATIN"]
    fallback = net.predict(spm_bpe).input
    assert torch.equal(fallback[unseen], fvt[unseen]) and not torch.allclose(everywhere[unseen], fvt[unseen])
    assert torch.allclose(fallback[~unseen], everywhere[~unseen], atol=1e-6)  # other batches: float rounding
    assert not torch.allclose(fallback[ascii_only], fvt[ascii_only])
    assert torch.equal(net.predict(spm_bpe, script_fallback=False).input, everywhere)  # the off switch
    cyrillic = torch.tensor([any(0x0400 <= ord(c) <= 0x04FF for c in f.decode("utf-8", "ignore")) for f in forms])
    named = net.predict(spm_bpe, script_fallback=["CYRILLIC"]).input  # those scripts' tokens only
    assert cyrillic.any() and torch.equal(named[cyrillic], fvt[cyrillic])
    assert torch.allclose(named[~cyrillic], everywhere[~cyrillic], atol=1e-6)
    with pytest.raises(TypeError, match="list of script names"):
        net.predict(spm_bpe, script_fallback="CYRILLIC")
    with caplog.at_level(logging.WARNING, logger="hypernet.scripts"):
        net.predict(spm_bpe, script_fallback=["cyrilic"])  # a typo: it names no token's script
    assert "no token holds a letter of CYRILIC" in caplog.text
    # through transfer and its off switch
    on, _ = zett.transfer(model, spm_bpe, base_tokenizer=tok, hypernet=net)
    off, _ = zett.transfer(model, spm_bpe, base_tokenizer=tok, hypernet=net, script_fallback=False)
    w_on, w_off = on.get_input_embeddings().weight, off.get_input_embeddings().weight
    differs = ~torch.isclose(w_on, w_off, atol=1e-6).all(1)
    assert differs.any() and not differs[~unseen].any()
    # the model's config (and so its card) records how many rows were left to FVT
    assert on.config.zett["script_fallback_rows"] == int(differs.sum()) and off.config.zett["script_fallback_rows"] == 0


def test_the_scripts_are_saved_and_loaded_with_the_network(tmp_path, net_and_base):
    net, model, tok = net_and_base
    net.config.training_scripts = ["GREEK", "LATIN"]
    net.save_pretrained(tmp_path / "n")
    assert json.loads((tmp_path / "n" / "config.json").read_text())["training_scripts"] == ["GREEK", "LATIN"]
    assert Hypernet.from_pretrained(tmp_path / "n").config.training_scripts == ["GREEK", "LATIN"]


def test_cli_transfer_has_the_off_switch(tmp_path, tiny_model_dir, byte_bpe, monkeypatch):
    seen = {}

    def fake_transfer(model, tokenizer, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(sys.modules["zett.transfer"], "transfer", fake_transfer)
    cases = [
        (["--script-fallback", "off"], False),
        ([], True),
        (["--script-fallback", "hangul, Arabic"], ["HANGUL", "ARABIC"]),
    ]
    for flag, expected in cases:
        with pytest.raises(SystemExit):
            cli("transfer", "--model", tiny_model_dir, "--tokenizer", "byte", "--out", tmp_path / "o", *flag)
        assert seen["script_fallback"] == expected
