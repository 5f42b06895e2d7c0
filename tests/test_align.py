"""Chunk alignment (SPEC §3.4): hand-written cases and a property test on real tokenizers."""

import itertools

import numpy as np
import pytest
from conftest import REAL_TOKENIZERS, assets_or_skip, corpus_texts

from tokenizers_zoo import Aligner, byte_tokenizer, encode_text, load_tokenizer, surface_forms


def chunk_bytes(ids, chunks, forms, n):
    out = [b""] * n
    for i, c in zip(ids, chunks):
        if c >= 0:
            out[c] += forms[i]
    return out


def check_pair(aligner, t_tok, s_tok, t_ids, s_ids):
    al = aligner(t_ids, s_ids)
    t_forms, s_forms = surface_forms(t_tok), surface_forms(s_tok)
    t_chunks = chunk_bytes(t_ids, al.teacher_chunks, t_forms, al.num_chunks)
    s_chunks = chunk_bytes(s_ids, al.student_chunks, s_forms, al.num_chunks)
    # identical, except the leading spaces one side's prefix space adds to a text run's first chunk
    differ = [k for k, (a, b) in enumerate(zip(t_chunks, s_chunks)) if a != b]
    assert all(t_chunks[k].lstrip(b" ") == s_chunks[k].lstrip(b" ") for k in differ)
    assert len(differ) <= 1
    for chunks in (al.teacher_chunks, al.student_chunks):
        kept = chunks[chunks >= 0]
        assert (np.diff(kept) >= 0).all()  # ascending left to right
        assert set(kept.tolist()) == set(range(al.num_chunks))  # contiguous
    return al


def test_bytes_vs_subwords_minimal_chunks(byte_bpe):
    bt = byte_tokenizer(specials_from=byte_bpe)
    text = "the quick brown fox"
    t_ids = [byte_bpe.bos_token_id] + encode_text(byte_bpe, text)
    s_ids = [bt.bos_token_id] + encode_text(bt, text)
    al = check_pair(Aligner(byte_bpe, bt), byte_bpe, bt, t_ids, s_ids)
    # one chunk per subword token (the BOS chunk holds position 0 and is dropped)
    assert al.num_chunks == len(t_ids) - 1
    assert al.teacher_chunks[0] == -1 and al.student_chunks[0] == -1


def test_multibyte_characters_split_differently(byte_bpe, spm_bpe):
    text = "naïve 日本語 🤖"
    t_ids = [byte_bpe.bos_token_id] + encode_text(byte_bpe, text)
    s_ids = [spm_bpe.bos_token_id] + encode_text(spm_bpe, text)
    al = check_pair(Aligner(byte_bpe, spm_bpe), byte_bpe, spm_bpe, t_ids, s_ids)
    assert al.num_chunks >= 3 and al.dropped == 0


def test_prefix_space_on_one_side(byte_bpe, spm_bpe):
    # spm_bpe adds a prefix space that byte_bpe does not: the first chunk still aligns
    text = "Hello world"
    t_ids = [byte_bpe.bos_token_id] + encode_text(byte_bpe, text)
    s_ids = [spm_bpe.bos_token_id] + encode_text(spm_bpe, text)
    assert surface_forms(spm_bpe)[s_ids[1]].startswith(b" ")
    al = Aligner(byte_bpe, spm_bpe)(t_ids, s_ids)
    assert al.teacher_chunks[1] == 0 and al.student_chunks[1] == 0 and al.dropped == 0


def test_bos_on_one_side_only_masks_it(byte_bpe):
    bt = byte_tokenizer()  # <|endoftext|> only: no BOS role shared with <|im_start|>
    text = "abc def"
    t_ids = [byte_bpe.bos_token_id] + encode_text(byte_bpe, text)
    s_ids = encode_text(bt, text)
    al = Aligner(byte_bpe, bt)(t_ids, s_ids)
    assert al.teacher_chunks[0] == -1
    assert al.student_chunks[0] == -1  # the student's first text token is unscored: its chunk is dropped
    assert al.num_chunks >= 1


def test_shared_roles_form_chunks(byte_bpe):
    bt = byte_tokenizer(specials_from=byte_bpe)
    text_a, text_b = "first turn", "second turn"
    t_ids = (
        [byte_bpe.bos_token_id]
        + encode_text(byte_bpe, text_a)
        + [byte_bpe.eos_token_id]
        + encode_text(byte_bpe, text_b)
        + [byte_bpe.eos_token_id]
    )
    s_ids = (
        [bt.bos_token_id] + encode_text(bt, text_a) + [bt.eos_token_id] + encode_text(bt, text_b) + [bt.eos_token_id]
    )
    al = check_pair(Aligner(byte_bpe, bt), byte_bpe, bt, t_ids, s_ids)
    eos_t = [i for i, x in enumerate(t_ids) if x == byte_bpe.eos_token_id]
    eos_s = [i for i, x in enumerate(s_ids) if x == bt.eos_token_id]
    assert [al.teacher_chunks[i] for i in eos_t] == [al.student_chunks[i] for i in eos_s]
    assert all(al.teacher_chunks[i] >= 0 for i in eos_t)


def test_whitespace_runs_and_byte_fallback():
    llama2 = load_tokenizer(assets_or_skip() / "tokenizers" / "llama2")
    gpt2 = load_tokenizer("gpt2")
    text = "a    b\n\n\tc 🤖 \x01 end"
    check_pair(Aligner(gpt2, llama2), gpt2, llama2, encode_text(gpt2, text), [1] + encode_text(llama2, text))


def test_truncation_drops_incomplete_chunks(byte_bpe):
    bt = byte_tokenizer(specials_from=byte_bpe)
    text = "the quick brown fox jumps"
    t_ids = [byte_bpe.bos_token_id] + encode_text(byte_bpe, text)
    s_ids = [bt.bos_token_id] + encode_text(bt, text)
    al = Aligner(byte_bpe, bt)(t_ids, s_ids, max_student=7)
    assert (al.student_chunks[7:] == -1).all()
    kept_bytes = sum(len(surface_forms(bt)[s_ids[i]]) for i in range(7) if al.student_chunks[i] >= 0)
    assert kept_bytes <= 6 and al.num_chunks >= 1
    full = chunk_bytes(s_ids, al.student_chunks, surface_forms(bt), al.num_chunks)
    assert full == chunk_bytes(t_ids, al.teacher_chunks, surface_forms(byte_bpe), al.num_chunks)


def test_batch_tensors(byte_bpe, spm_bpe):
    aligner = Aligner(byte_bpe, spm_bpe)
    texts = ["one text", "another, longer text here"]
    pairs = [
        ([byte_bpe.bos_token_id] + encode_text(byte_bpe, t), [spm_bpe.bos_token_id] + encode_text(spm_bpe, t))
        for t in texts
    ]
    out = aligner.batch(pairs, max_teacher=12, max_student=12)
    assert out["teacher_chunk_id"].shape == (2, 12) and out["student_chunk_id"].shape == (2, 12)
    for row in range(2):
        for key in ("teacher_chunk_id", "student_chunk_id"):
            ids = out[key][row]
            assert int(ids.max()) + 1 == int(out["num_chunks"][row])


@pytest.mark.parametrize("pair", list(itertools.combinations(REAL_TOKENIZERS, 2))[:8] or [("x", "y")])
def test_property_real_tokenizers(pair):
    root = assets_or_skip() / "tokenizers"
    t_tok, s_tok = load_tokenizer(root / pair[0]), load_tokenizer(root / pair[1])
    aligner = Aligner(t_tok, s_tok)
    for text in corpus_texts("valid", per_lang=3):
        t_ids, s_ids = encode_text(t_tok, text), encode_text(s_tok, text)
        al = check_pair(aligner, t_tok, s_tok, t_ids, s_ids)
        assert al.dropped == 0
        # the chunks tile the text: together they cover every byte but the unscored first chunk's
        covered = sum(len(b) for b in chunk_bytes(t_ids, al.teacher_chunks, surface_forms(t_tok), al.num_chunks))
        first = b"".join(surface_forms(t_tok)[i] for i, c in zip(t_ids, al.teacher_chunks) if c < 0)
        assert covered + len(first) == len(b"".join(surface_forms(t_tok)[i] for i in t_ids))


def test_lossy_side_mismatches_are_dropped_and_counted(byte_bpe, wordpiece):
    # WordPiece lowercases: chunks whose bytes differ are dropped and counted, never silently kept
    text = "Hello World, hello world"
    aligner = Aligner(byte_bpe, wordpiece)
    assert aligner.check
    al = aligner(
        [byte_bpe.bos_token_id] + encode_text(byte_bpe, text), [wordpiece.bos_token_id] + encode_text(wordpiece, text)
    )
    assert al.dropped >= 1
    assert not Aligner(byte_bpe, byte_tokenizer()).check  # two exact tokenizers: no byte comparison needed
