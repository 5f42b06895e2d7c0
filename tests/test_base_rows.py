"""Base rows vs base ids: byte fallback twins, a tokenizer longer than the embedding matrix (Gemma-3's published
tokenizer: 262,145 ids, 262,144 rows) and padded matrices (more rows than ids) with bytes the base lacks."""

import pytest
import torch
from conftest import tiny_llama
from gemma_layout import tiny_gemma_layout

from hypernet import Hypernet, exact_matches, get_predictor
from tokenizers_zoo import TokenKind, byte_tokenizer, surface_forms, token_kinds


@pytest.fixture(scope="module")
def gemma_like(tmp_path_factory):
    return tiny_gemma_layout(tmp_path_factory.mktemp("gemma_layout"))


def _ids(tok, form, kind):
    return next(i for i, (f, k) in enumerate(zip(surface_forms(tok), token_kinds(tok))) if f == form and k is kind)


def test_self_matches_are_the_identity(gemma_like):
    t_ids, b_ids = exact_matches(gemma_like, gemma_like)
    assert len(t_ids) > 256 and torch.equal(t_ids, b_ids)  # <0x61> keeps its own row, not "a"'s


def test_byte_fallback_pieces_get_the_row_of_their_use(gemma_like, spm_bpe):
    """spm_bpe never emits <0x61> (it has "a"): it gets the base's <0x61>; it emits <0x23> for "#" (no normal
    "#"), which gets the base's normal "#"."""
    mapping = dict(zip(*(t.tolist() for t in exact_matches(spm_bpe, gemma_like))))
    fb, normal = TokenKind.BYTE_FALLBACK, TokenKind.NORMAL
    assert mapping[_ids(spm_bpe, b"a", fb)] == _ids(gemma_like, b"a", fb)
    assert mapping[_ids(spm_bpe, b"a", normal)] == _ids(gemma_like, b"a", normal)
    assert mapping[_ids(spm_bpe, b"#", fb)] == _ids(gemma_like, b"#", normal)


def test_matches_leave_out_ids_without_rows(gemma_like):
    rows = len(gemma_like) - 1  # the last id (<image_soft_token>) has no row
    target = byte_tokenizer(specials_from=gemma_like)
    soft = target.convert_tokens_to_ids("<image_soft_token>")
    assert soft in exact_matches(target, gemma_like)[0].tolist()  # without rows= it is matched
    t_ids, b_ids = exact_matches(target, gemma_like, rows=rows)
    assert int(b_ids.max()) < rows and soft not in t_ids.tolist()


def test_hypernetwork_on_a_tokenizer_longer_than_the_matrix(gemma_like):
    model = tiny_llama(len(gemma_like) - 1)
    target = byte_tokenizer(specials_from=gemma_like)
    net = Hypernet.for_base(model, gemma_like)
    emb = get_predictor("hypernet", hypernet=net).predict(model, gemma_like, target)
    assert emb.input.shape == (len(target), model.config.hidden_size) and torch.isfinite(emb.input).all()
    bos = target.convert_tokens_to_ids("<bos>")
    assert torch.equal(emb.input[bos], model.get_input_embeddings().weight[gemma_like.convert_tokens_to_ids("<bos>")])


def test_padded_matrix_and_missing_bytes(spm_bpe_no_fallback):
    """Rows past the tokenizer (padding) are no base tokens: a byte the base lacks is skipped by FVT and takes
    the hypernetwork's fallback row, never a padding row."""
    base = spm_bpe_no_fallback
    model = tiny_llama(len(base) + 300)  # padding past every fallback id
    weight = model.get_input_embeddings().weight
    target = byte_tokenizer()
    fvt = get_predictor("fvt").predict(model, base, target)
    assert torch.allclose(fvt.input[0xFF], weight.detach().float().mean(0))  # b"\xff" alone: the mean row
    net = Hypernet.for_base(model, base)
    fallback = net.decomposer([b"\xff"])[0]
    assert len(fallback) == 1 and len(base) <= fallback[0] < len(weight)
    ids = torch.tensor([fallback])
    for p in net.heads[0][-1].parameters():
        torch.nn.init.normal_(p)  # a trained-looking head, so the input row shows in the output
    before = net.encode(ids)
    net.table[len(base) :] += 5.0  # padding rows: must not be read
    assert torch.equal(net.encode(ids), before)
    with torch.no_grad():
        net.fallback += 1.0
    assert not torch.equal(net.encode(ids), before)
    assert torch.allclose(net.fvt([fallback]), net.table.mean(0, keepdim=True))
