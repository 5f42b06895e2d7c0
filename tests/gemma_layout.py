"""Tokenizers in the layout of Gemma-3's published ``tokenizer.json`` (written to a directory, loaded by AutoTokenizer).

That layout: a BPE model with byte fallback, normaliser ``Replace(" " → "▁")``, pre-tokenizer ``Split(" ",
merged with previous)``, decoder ``Replace("▁" → " ")`` + ``ByteFallback`` + ``Fuse``, and an ``added_tokens``
list, all ``normalized: false``, where only a handful are ``special: true``: the control and user-defined
pieces of the SentencePiece model, among them the whitespace runs ``▁▁`` … (ids 138–167 in Gemma-3), which the
model's own merges also produce from runs of spaces. ``AutoTokenizer`` builds transformers' ``GemmaTokenizer``
from it, as it does for a user with the published file.

:func:`tiny_gemma_layout` builds a small one in-process; :func:`gemma_layout_from` rewrites the GGUF-derived
Gemma-3 tokenizer (whose added tokens are flagged the way the GGUF's token types say) into that layout.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

SPACE = "\u2581"
# The ten ``special: true`` entries of the published file; every other added token is ``special: false``.
SPECIAL = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<mask>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
)
_RUN = re.compile(f"{SPACE}{{2,}}")


def _added(idx: int, content: str) -> dict:
    return {
        "id": idx,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": content in SPECIAL,
    }


def _pipeline(spec: dict) -> dict:
    spec["normalizer"] = {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}
    spec["pre_tokenizer"] = {
        "type": "Split",
        "pattern": {"String": " "},
        "behavior": "MergedWithPrevious",
        "invert": False,
    }
    spec["decoder"] = {
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
        ],
    }
    spec["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [
            {"SpecialToken": {"id": "<bos>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "<bos>", "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {"<bos>": {"id": "<bos>", "ids": [spec["model"]["vocab"]["<bos>"]], "tokens": ["<bos>"]}},
    }
    return spec


def write_layout(spec: dict, out_dir: Path):
    """Write ``tokenizer.json`` + ``tokenizer_config.json`` to ``out_dir`` and load them with ``AutoTokenizer``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    decoder = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in spec["added_tokens"]}
    config = {
        "tokenizer_class": "GemmaTokenizer",
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
        "added_tokens_decoder": decoder,
        "clean_up_tokenization_spaces": False,
        "spaces_between_special_tokens": False,
        "model_max_length": 32768,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return AutoTokenizer.from_pretrained(str(out_dir))


def gemma_layout_from(gguf_tokenizer, out_dir: Path):
    """The GGUF-derived Gemma-3 tokenizer rewritten in the published layout: the same model (vocabulary and
    merges), its added tokens plus the whitespace runs as ``normalized: false`` added tokens, ``special`` only for
    :data:`SPECIAL`, and ``<image_soft_token>`` after the model's vocabulary (id 262144 for Gemma-3)."""
    spec = json.loads(gguf_tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    ids = {t["id"]: t["content"] for t in spec["added_tokens"]}
    ids.update({i: piece for piece, i in vocab.items() if _RUN.fullmatch(piece)})
    ids[len(vocab)] = "<image_soft_token>"
    spec["added_tokens"] = [_added(i, ids[i]) for i in sorted(ids)]
    return write_layout(_pipeline(spec), out_dir)


TINY_TEXT = [
    "A packet is sent.  Two spaces here,   three there.\n\n",
    "def add(a, b):\n    return a + b\n        # eight spaces\n",
    "| col |    value |\n|-----|----------|\n| a   |        1 |\n",
    "The quick brown fox jumps over the lazy dog; naïve café, 日本語.",
] * 30


def tiny_gemma_layout(out_dir: Path):
    """A small tokenizer in the published layout: Gemma's control ids first (``<pad>`` … ``<unused3>``,
    turn markers), newline runs, the whitespace runs ``▁▁`` … ``▁▁▁▁▁▁▁▁`` (in the vocabulary with merges, and
    added tokens), HTML tags, an added token that holds ``▁`` among other characters (``▁<td>``, in the
    vocabulary, which no merge builds), the 256 ``<0xNN>`` pieces, then pieces a BPE trainer learns."""
    head = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "[multimodal]"] + [f"<unused{k}>" for k in range(4)]
    head += ["<start_of_turn>", "<end_of_turn>"] + ["\n" * n for n in range(1, 5)]
    runs = [SPACE * n for n in range(2, 9)]
    head += runs + ["<table>", "<td>", f"{SPACE}<td>", "<start_of_image>", "<end_of_image>"]
    added = [t for t in head if t != "\n"]
    fallback = [f"<0x{b:02X}>" for b in range(256)]
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="never")
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=head + fallback, show_progress=False)
    trainer_tok.train_from_iterator(TINY_TEXT, trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    vocab = trained["vocab"]
    merges = [list(m) if isinstance(m, list) else m.split(" ") for m in trained["merges"]]
    run_merges = [[SPACE * a, SPACE * (n - a)] for n in range(2, 9) for a in range(1, n)]
    if SPACE not in vocab:
        vocab[SPACE] = len(vocab)
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added(vocab[t], t) for t in added] + [_added(len(vocab), "<image_soft_token>")],
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": run_merges + merges,
        },
    }
    return write_layout(_pipeline(spec), out_dir)
