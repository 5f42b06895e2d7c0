"""zett.transfer with heuristic predictors on a tiny Llama (SPEC §2a, §5.1)."""

import pytest
import torch
from conftest import tiny_llama
from transformers import AutoModelForCausalLM, AutoTokenizer

import zett
from hypernet import Decomposer
from tokenizers_zoo import byte_tokenizer, encode_text, surface_forms, token_kinds

TEXT = "The quick brown fox jumps over the lazy dog. Der Fuchs springt."


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


@pytest.mark.parametrize("tied", [True, False])
def test_transfer_to_own_tokenizer_reproduces_logits(byte_bpe, tied):
    model = tiny_llama(len(byte_bpe), tied=tied)
    new, tok = zett.transfer(model, byte_bpe, base_tokenizer=byte_bpe)
    ids = encode_text(byte_bpe, TEXT)
    assert torch.equal(logits(new, ids), logits(model, ids))
    assert new.config.zett["copied_rows"] == len(byte_bpe)


@pytest.mark.parametrize("tied", [True, False])
def test_fvt_rows_and_exact_copies(byte_bpe, spm_bpe, tied):
    model = tiny_llama(len(byte_bpe), tied=tied)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new, tok = zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, method="fvt")
    # the input model is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    emb_in = new.get_input_embeddings().weight
    assert emb_in.shape == (len(spm_bpe), 32) and new.config.vocab_size == len(spm_bpe)
    base_in = model.get_input_embeddings().weight
    base_forms = {
        f: i for i, f in enumerate(surface_forms(byte_bpe)) if f and token_kinds(byte_bpe)[i].value == "normal"
    }
    pieces = Decomposer(byte_bpe)(surface_forms(spm_bpe))
    checked_copy = checked_mean = 0
    for i, (form, kind) in enumerate(zip(surface_forms(spm_bpe), token_kinds(spm_bpe))):
        if kind.value not in ("normal", "byte_fallback"):
            continue
        if form in base_forms:  # exact match: bit for bit
            assert torch.equal(emb_in[i], base_in[base_forms[form]])
            checked_copy += 1
        else:
            ids = [j for j in pieces[i] if j < len(byte_bpe)]
            assert torch.allclose(emb_in[i], base_in[ids].mean(0), atol=1e-6)
            checked_mean += 1
    assert checked_copy > 50 and checked_mean > 50
    if not tied:
        out_w = new.get_output_embeddings().weight
        assert out_w.data_ptr() != emb_in.data_ptr()
        j = [i for i, f in enumerate(surface_forms(spm_bpe)) if f in base_forms][5]
        assert torch.equal(out_w[j], model.get_output_embeddings().weight[base_forms[surface_forms(spm_bpe)[j]]])
    # special tokens by role: EOS row is the base EOS row
    assert torch.equal(emb_in[spm_bpe.eos_token_id], base_in[byte_bpe.eos_token_id])
    assert new.config.eos_token_id == spm_bpe.eos_token_id
    assert new.generation_config.eos_token_id == spm_bpe.eos_token_id
    assert new.config.bos_token_id == spm_bpe.bos_token_id


def test_transfer_to_bytes_keeps_dtype_and_saves_plain(tmp_path, tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    new, tok = zett.transfer(model, "byte")  # base tokenizer found through name_or_path
    assert new.dtype == torch.bfloat16
    assert len(tok) == 259 and new.config.vocab_size == 259
    assert tok.eos_token == "<|im_end|>"
    new.save_pretrained(tmp_path / "out")
    tok.save_pretrained(tmp_path / "out")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "out", dtype=torch.bfloat16)
    again_tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert "auto_map" not in again.config.to_dict()
    ids = again_tok(TEXT, add_special_tokens=False).input_ids
    assert ids == list(TEXT.encode())
    assert torch.equal(logits(again, ids), logits(new, ids))
    out = again.generate(torch.tensor([ids[:5]]), max_new_tokens=3, do_sample=False)
    assert out.shape[1] <= 8


def test_mean_and_random(byte_bpe, spm_bpe):
    model = tiny_llama(len(byte_bpe))
    new, _ = zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, method="mean", copy_overlap=False)
    w = new.get_input_embeddings().weight
    mean = model.get_input_embeddings().weight.mean(0)
    special = {spm_bpe.eos_token_id, spm_bpe.bos_token_id, spm_bpe.unk_token_id}
    rows = [i for i in range(len(spm_bpe)) if i not in special]
    assert torch.allclose(w[rows], mean.expand(len(rows), -1), atol=1e-6)
    r1, _ = zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, method="random", copy_overlap=False, seed=1)
    r2, _ = zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, method="random", copy_overlap=False, seed=1)
    w1 = r1.get_input_embeddings().weight[rows]
    assert torch.equal(w1, r2.get_input_embeddings().weight[rows])
    base = model.get_input_embeddings().weight
    assert torch.allclose(w1.std(0), base.std(0), rtol=0.35)


def test_inplace(byte_bpe, spm_bpe):
    model = tiny_llama(len(byte_bpe))
    new, _ = zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, inplace=True)
    assert new is model and model.config.vocab_size == len(spm_bpe)


def test_errors(byte_bpe, wordpiece, monkeypatch):
    model = tiny_llama(len(byte_bpe))
    with pytest.raises(ValueError, match="base_tokenizer="):
        zett.transfer(model, "byte")
    no_eos = byte_tokenizer(specials_from=byte_bpe)
    no_eos.eos_token = None
    with pytest.raises(ValueError, match="no EOS token"):
        zett.transfer(model, no_eos, base_tokenizer=byte_bpe)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        zett.transfer(model, "byte", base_tokenizer=byte_bpe, method="nope")
    with pytest.raises(ValueError, match="unknown tokenizer"):
        zett.transfer(model, "no-such-tokenizer-xyz", base_tokenizer=byte_bpe)
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 1000})())
    with pytest.raises(ValueError, match="smaller vocabulary"):
        zett.transfer(model, "byte", base_tokenizer=byte_bpe)


def test_model_without_embeddings(byte_bpe):
    class NoEmb(torch.nn.Module):
        config = type("C", (), {"_name_or_path": ""})()

        def get_input_embeddings(self):
            return None

    with pytest.raises(ValueError, match="no input embedding matrix"):
        zett.transfer(NoEmb(), "byte", base_tokenizer=byte_bpe)


def test_eos_token_argument(byte_bpe):
    no_eos = byte_tokenizer(specials_from=byte_bpe)
    no_eos.eos_token = None
    model = tiny_llama(len(byte_bpe))
    new, tok = zett.transfer(model, no_eos, base_tokenizer=byte_bpe, eos_token="<|im_end|>")
    assert tok.eos_token == "<|im_end|>" and new.config.eos_token_id == tok.eos_token_id


def test_copies_prefer_normal_tokens_over_byte_fallback_pieces(spm_bpe):
    """A base with byte fallback has two rows for "a" (<0x61> and the normal token); the fallback piece comes first
    by id, but the copy must take the normal token's row (Gemma-3 -> bytes went from ~34 to sane BPB with this)."""
    from hypernet import exact_matches

    kinds = token_kinds(spm_bpe)
    forms = surface_forms(spm_bpe)
    normal_a = next(i for i, (f, k) in enumerate(zip(forms, kinds)) if f == b"a" and k.value == "normal")
    fallback_a = next(i for i, (f, k) in enumerate(zip(forms, kinds)) if f == b"a" and k.value == "byte_fallback")
    assert fallback_a < normal_a  # the trap: id order alone would pick the fallback row
    target = byte_tokenizer(specials_from=spm_bpe)
    t_ids, b_ids = exact_matches(target, spm_bpe)
    mapping = dict(zip(t_ids.tolist(), b_ids.tolist()))
    assert mapping[ord("a")] == normal_a
    assert mapping[0xE6] == next(i for i, (f, k) in enumerate(zip(forms, kinds)) if f == b"\xe6")  # only fallback


@pytest.mark.parametrize("copy_overlap", [True, False])
def test_a_hypernetwork_transfer_matches_tokens_once(byte_bpe, spm_bpe, monkeypatch, copy_overlap):
    """exact_matches walks both vocabularies: the transfer computes it once and hands it to the network."""
    import hypernet.overlap
    from hypernet import Hypernet, HypernetConfig

    model = tiny_llama(len(byte_bpe), tied=False)
    net = Hypernet.for_base(model, byte_bpe, HypernetConfig(hidden_size=32, num_heads=4, num_layers=2))
    with torch.no_grad():  # a network that differs from FVT, as after training
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.1)
    alone = net.predict(spm_bpe)  # the network's own prediction, before counting
    calls = []
    real = hypernet.overlap.match_specials  # every exact_matches call runs it once, however it was imported

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(hypernet.overlap, "match_specials", counted)
    new, _ = zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, hypernet=net, copy_overlap=copy_overlap)
    assert len(calls) == 1
    monkeypatch.undo()
    t_ids, b_ids = hypernet.overlap.exact_matches(spm_bpe, byte_bpe, normal=copy_overlap)
    predicted = torch.ones(len(spm_bpe), dtype=torch.bool)
    predicted[t_ids] = False
    for got, base, mine in (
        (new.get_input_embeddings().weight, model.get_input_embeddings().weight, alone.input),
        (new.get_output_embeddings().weight, model.get_output_embeddings().weight, alone.output),
    ):
        assert torch.equal(got[t_ids], base[b_ids])  # copied rows: the base's, bit for bit
        assert torch.allclose(got[predicted], mine[predicted], atol=1e-6)  # the rest: what the network predicts


def test_base_tokenizer_longer_than_the_embedding_matrix():
    """Gemma-3's published tokenizer has one id more than the model has rows: transfer copies the rows that exist."""
    from conftest import train_byte_bpe

    base = train_byte_bpe()
    model = tiny_llama(len(base))
    base.add_special_tokens({"additional_special_tokens": ["<image_soft_token>"]})
    assert len(base) == model.get_input_embeddings().weight.shape[0] + 1
    new, tok = zett.transfer(model, "byte", base_tokenizer=base)
    assert new.get_input_embeddings().weight.shape[0] == len(tok)
    same, _ = zett.transfer(model, base, base_tokenizer=base)
    rows = model.get_input_embeddings().weight.shape[0]
    assert torch.equal(same.get_input_embeddings().weight[:rows], model.get_input_embeddings().weight)
