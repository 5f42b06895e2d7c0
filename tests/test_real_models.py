"""Real SmolLM2-135M (GGUF from ../shared/assets/fetch_models.sh): marked slow, run with `pytest -m slow`."""

import time

import pytest
import torch
from benchmarks_paths import smollm2_gguf
from conftest import ASSETS, assets_or_skip

import zett
from tokenizers_zoo import encode_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    path = smollm2_gguf()
    if path is None:
        pytest.skip("SmolLM2 GGUF not fetched")
    return zett.load_model(path)


def test_cached_gguf_loads_fast(smollm2):
    t0 = time.perf_counter()
    zett.load_model(smollm2_gguf())
    assert time.perf_counter() - t0 < 10


def test_self_transfer_is_exact(smollm2):
    model, tok = smollm2
    new, new_tok = zett.transfer(model, assets_or_skip() / "tokenizers" / "smollm2")
    ids = torch.tensor([encode_text(tok, "Invariance on the real model.")])
    with torch.no_grad():
        assert torch.equal(new(ids).logits, model(ids).logits)


def test_cards_name_a_gguf_base_by_its_file(smollm2):
    model, _ = smollm2
    new, tok = zett.transfer(model, "byte")
    card = zett.model_card(new, tok)
    assert new.config.zett["base_model"] == smollm2_gguf().name and f"| base model | {smollm2_gguf().name} |" in card
    assert str(smollm2_gguf().parent) not in card and "base_model:" not in card.split("---")[1]


def test_transfer_to_qwen3_is_usable(smollm2):
    model, _ = smollm2
    new, tok = zett.transfer(model, ASSETS / "tokenizers" / "qwen3")
    bpb = zett.evaluate.bits_per_byte(
        new, tok, ["The cat sat on the mat and looked out of the window."] * 2, progress=False
    )
    assert bpb < 3.0  # random embeddings give > 10


def test_gemma3_gguf_tokenizer_is_exact():
    from benchmarks_paths import models_dir
    from conftest import corpus_texts

    from tokenizers_zoo import load_tokenizer, normalisation, verify_surface_forms

    path = models_dir() / "gemma-3-270m-q4_k_m.gguf"
    if not path.exists():
        pytest.skip("Gemma-3 GGUF not fetched (fetch_models.sh gemma3)")
    tok = load_tokenizer(path)
    assert len(tok) == 262144 and normalisation(tok).lossless
    for text in corpus_texts("valid", per_lang=10):
        verify_surface_forms(tok, text)


def test_shipped_hypernet_beats_fvt_on_bytes_and_llama2(smollm2):
    model, tok = smollm2
    from zett.data import read_texts

    texts = [t[:600] for t in read_texts(assets_or_skip() / "corpus" / "de.valid.jsonl", max_docs=1)]
    for target in ("byte", assets_or_skip() / "tokenizers" / "llama2"):
        fvt = zett.evaluate.bits_per_byte(*zett.transfer(model, target, base_tokenizer=tok), texts, progress=False)
        hn = zett.evaluate.bits_per_byte(
            *zett.transfer(model, target, base_tokenizer=tok, hypernet="smollm2-135m"), texts, progress=False
        )
        assert hn < fvt, target


def test_shipped_gemma_hypernet_beats_fvt_on_bytes_and_llama2():
    from benchmarks_paths import models_dir

    from zett.data import read_texts

    path = models_dir() / "gemma-3-270m-q4_k_m.gguf"
    if not path.exists():
        pytest.skip("Gemma-3 GGUF not fetched (fetch_models.sh gemma3)")
    model, tok = zett.load_model(path)
    texts = [t[:600] for t in read_texts(assets_or_skip() / "corpus" / "de.valid.jsonl", max_docs=1)]
    for target in ("byte", assets_or_skip() / "tokenizers" / "llama2"):
        fvt = zett.evaluate.bits_per_byte(*zett.transfer(model, target, base_tokenizer=tok), texts, progress=False)
        hn = zett.evaluate.bits_per_byte(
            *zett.transfer(model, target, base_tokenizer=tok, hypernet="gemma-3-270m"), texts, progress=False
        )
        assert hn < fvt, target
    with pytest.raises(ValueError, match="trained for base model"):  # and not for SmolLM2
        zett.Hypernet.from_pretrained("smollm2-135m", model, tok)
