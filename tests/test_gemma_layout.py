"""Gemma-3's published tokenizer.json layout: whitespace runs registered as added tokens (issue 23).

The in-process tokenizer has that layout in small (tests/gemma_layout.py); the slow test rewrites the real
Gemma-3 GGUF tokenizer into it and compares it with the GGUF-derived one.
"""

import json

import numpy as np
import pytest
from benchmarks_paths import models_dir
from conftest import PROBE_TEXTS, corpus_texts
from gemma_layout import SPACE, TINY_TEXT, gemma_layout_from, tiny_gemma_layout
from tokenizers import Tokenizer
from transformers import AddedToken, PreTrainedTokenizerFast

from hypernet.decompose import Decomposer
from tokenizers_zoo import (
    Aligner,
    TokenKind,
    encode_text,
    load_tokenizer,
    match_specials,
    normalisation,
    surface_forms,
    token_kinds,
    verify_surface_forms,
)

RUN_TEXTS = [
    "   A packet",
    "x\n    y  z",
    "| a   |        1 |",
    "  two",
    "end   ",
    "a     b      c       d",
    " " * 20 + "deep",
    "\t  \n   \n",
]


@pytest.fixture(scope="module")
def gemma_like(tmp_path_factory):
    return tiny_gemma_layout(tmp_path_factory.mktemp("gemma_layout"))


def test_layout_is_what_a_user_gets(gemma_like):
    assert type(gemma_like).__name__ == "GemmaTokenizer"
    spec = json.loads(gemma_like.backend_tokenizer.to_str())
    runs = [t for t in spec["added_tokens"] if t["content"].strip(SPACE) == ""]
    assert len(runs) == 7 and not any(t["normalized"] or t["special"] for t in runs)
    assert all(spec["model"]["vocab"][t["content"]] == t["id"] for t in runs)


def test_whitespace_runs_are_spaces(gemma_like):
    forms = surface_forms(gemma_like)
    for n in range(2, 9):
        idx = gemma_like.convert_tokens_to_ids(SPACE * n)
        assert forms[idx] == b" " * n
    run_ids = {gemma_like.convert_tokens_to_ids(SPACE * n) for n in range(2, 9)}
    used = set()
    for text in RUN_TEXTS + PROBE_TEXTS + TINY_TEXT[:4]:
        ids = encode_text(gemma_like, text)
        used.update(run_ids.intersection(ids))
        verify_surface_forms(gemma_like, text)
    assert len(used) >= 6  # the texts do reach the added run tokens
    assert normalisation(gemma_like).lossless and normalisation(gemma_like).prefix_space == "never"


def test_added_token_kinds(gemma_like):
    kinds, forms = token_kinds(gemma_like), surface_forms(gemma_like)
    of = gemma_like.convert_tokens_to_ids
    assert kinds[of("<bos>")] is TokenKind.SPECIAL and kinds[of("<start_of_turn>")] is TokenKind.SPECIAL
    assert kinds[of("<unused0>")] is TokenKind.UNUSED  # special: false in the file, a reserved slot all the same
    assert kinds[of("[multimodal]")] is TokenKind.NORMAL and kinds[of(SPACE * 3)] is TokenKind.NORMAL
    assert forms[of("<table>")] == b"<table>" and forms[of(SPACE + "<td>")] == b" <td>"
    soft = of("<image_soft_token>")  # an added token after the model's vocabulary
    assert soft == len(gemma_like) - 1 and forms[soft] == b"<image_soft_token>" and kinds[soft] is TokenKind.SPECIAL


def test_added_tokens_the_model_lacks_keep_their_text(tmp_path):
    tok = tiny_gemma_layout(tmp_path)
    tok.add_tokens([AddedToken(f"{SPACE}zz{SPACE}", normalized=False), AddedToken(f"{SPACE}qq", normalized=True)])
    forms = surface_forms(tok)
    assert forms[tok.convert_tokens_to_ids(f"{SPACE}zz{SPACE}")] == f"{SPACE}zz{SPACE}".encode()  # matched as written
    assert forms[tok.convert_tokens_to_ids(f"{SPACE}qq")] == b" qq"  # matched in the normalised text: " qq"
    for text in (f"a{SPACE}zz{SPACE}b", "say qq   now"):
        verify_surface_forms(tok, text)


def test_tokens_added_after_first_use_are_read(tmp_path):
    tok = tiny_gemma_layout(tmp_path)
    surface_forms(tok)
    tok.add_special_tokens({"additional_special_tokens": ["<late>"]}, replace_extra_special_tokens=False)
    assert token_kinds(tok)[tok.convert_tokens_to_ids("<late>")] is TokenKind.SPECIAL


def test_byte_level_added_token_in_the_vocabulary(byte_bpe):
    """Every family: a byte-level piece registered as a (non-special, unnormalised) added token is its bytes."""
    spec = json.loads(byte_bpe.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    piece = next(p for p in ("\u0120the", "\u0120quick", "\u0120brown") if p in vocab)
    spec["added_tokens"].append(
        {
            "id": vocab[piece],
            "content": piece,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": False,
        }
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)))
    assert surface_forms(tok)[vocab[piece]] == b" " + piece[1:].encode()
    text = "jumps over" + piece.replace("\u0120", " ") + " lazy"
    assert vocab[piece] in encode_text(tok, text)
    verify_surface_forms(tok, text)


def test_match_specials(gemma_like, spm_bpe):
    of = gemma_like.convert_tokens_to_ids
    assert match_specials(gemma_like, spm_bpe) == {
        of("<bos>"): spm_bpe.convert_tokens_to_ids("<s>"),
        of("<eos>"): spm_bpe.convert_tokens_to_ids("</s>"),
        of("<unk>"): spm_bpe.convert_tokens_to_ids("<unk>"),
    }
    own = match_specials(gemma_like, gemma_like)
    assert all(k == v for k, v in own.items())
    assert of("<unused2>") in own and of("<end_of_turn>") in own
    assert not {of(SPACE * n) for n in range(2, 9)} & set(own)


def _spans(tok, text, chunks):
    enc = tok(text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
    assert enc["input_ids"] == encode_text(tok, text)
    offsets = np.array(enc["offset_mapping"])
    return {
        int(c): (int(offsets[chunks == c, 0].min()), int(offsets[chunks == c, 1].max()))
        for c in np.unique(chunks[chunks >= 0])
    }


@pytest.mark.parametrize("student", ["byte_bpe", "spm_bpe"])
def test_aligner_chunks_cover_the_same_text(gemma_like, student, request):
    other = request.getfixturevalue(student)
    aligner = Aligner(gemma_like, other)
    for text in RUN_TEXTS[:-1] + TINY_TEXT[:3]:
        t_ids, s_ids = encode_text(gemma_like, text), encode_text(other, text)
        al = aligner(t_ids, s_ids)
        assert al.num_chunks >= 1 and al.dropped == 0
        t_spans, s_spans = _spans(gemma_like, text, al.teacher_chunks), _spans(other, text, al.student_chunks)
        # same text span per chunk; a Metaspace prefix space adds no character, so compare the ends
        assert [e for _, e in t_spans.values()] == [e for _, e in s_spans.values()], text


def test_decomposer_on_a_gemma_like_base(gemma_like, byte_bpe):
    dec = Decomposer(gemma_like)
    of = gemma_like.convert_tokens_to_ids
    assert dec([b"   ", b" " * 8, b"  x"])[:2] == [[of(SPACE * 3)], [of(SPACE * 8)]]
    assert dec.missing_bytes == []
    base_forms = surface_forms(gemma_like)
    targets = surface_forms(byte_bpe) + [b"   ", b"\n        return", b"  | a   |"]
    for form, ids in zip(targets, dec(targets)):
        assert b"".join(base_forms[i] for i in ids) == form


@pytest.mark.slow
def test_real_gemma3_tokenizer_json_matches_the_gguf(tmp_path):
    path = models_dir() / "gemma-3-270m-q4_k_m.gguf"
    if not path.exists():
        pytest.skip("Gemma-3 GGUF not fetched (fetch_models.sh gemma3)")
    gguf = load_tokenizer(path)
    published = gemma_layout_from(gguf, tmp_path)
    assert type(published).__name__ == "GemmaTokenizer" and len(published) == len(gguf) + 1
    texts = corpus_texts("valid", per_lang=10) + [t for t in corpus_texts("valid") if "   " in t][:60] + RUN_TEXTS
    for text in texts:
        assert encode_text(published, text) == encode_text(gguf, text)
        verify_surface_forms(published, text)
    forms, kinds = surface_forms(published), token_kinds(published)
    assert forms[: len(gguf)] == surface_forms(gguf)
    differ = {forms[i] for i, k in enumerate(token_kinds(gguf)) if k is not kinds[i]}
    assert differ == {b"<start_of_image>", b"<end_of_image>"}  # user-defined in the GGUF, special in the file
    assert match_specials(published, gguf) == {i: i for i in match_specials(published, gguf)}
