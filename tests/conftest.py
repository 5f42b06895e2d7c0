"""Fixtures: tokenizers of every family trained in-process, a 2-layer 32-wide Llama, the shared assets."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network (read at import time)
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from benchmarks_paths import assets_dir  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

import zett  # noqa: E402
from tokenizers_zoo import byte_tokenizer  # noqa: E402
from zett.paths import REPO  # noqa: E402

ASSETS = assets_dir()
REAL_TOKENIZERS = sorted(p.name for p in (ASSETS / "tokenizers").glob("*")) if ASSETS.exists() else []


def cli(*args: object) -> int:
    """``zett ARGS`` through the CLI's entry point, every argument as a string (paths and numbers too)."""
    from zett.cli import main

    return main([str(a) for a in args])


TRAIN_TEXT = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Le renard brun rapide saute par-dessus le chien paresseux, naïvement.",
    "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n",
    "日本語のテキストと中文文本，还有 emoji 🤖 and tabs\tand  spaces.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
] * 20

PROBE_TEXTS = [
    "Hello world, this is a test.",
    "  leading spaces and trailing  ",
    "naïve café — “quotes” and 日本語 🤖👨‍👩‍👧",
    "tabs\tand\nnewlines\r\n\n  indented code:\n\tx = 1",
    "control \x00\x01\x1b\x7f bytes",
    "",
]


def assets_or_skip() -> Path:
    if not (ASSETS / "tokenizers").exists():
        pytest.skip(f"shared assets not found at {ASSETS} (set ZETT_ASSETS)")
    return ASSETS


def corpus_texts(split: str = "valid", per_lang: int | None = None) -> list[str]:
    texts = []
    for path in sorted((assets_or_skip() / "corpus").glob(f"*.{split}.jsonl")):
        with path.open(encoding="utf-8") as fh:
            lines = fh.readlines()[:per_lang] if per_lang else fh.readlines()
        texts += [json.loads(line)["text"] for line in lines]
    return texts


def _wrap(backend: Tokenizer, **specials) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=backend, **specials)


def train_byte_bpe(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(TRAIN_TEXT, trainer)
    return _wrap(backend, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>")


def train_spm_bpe(vocab_size: int = 400, byte_fallback: bool = True) -> PreTrainedTokenizerFast:
    backend = Tokenizer(
        models.BPE(byte_fallback=byte_fallback, unk_token=None if byte_fallback else "<unk>", fuse_unk=True)
    )
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    backend.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    specials = ["<unk>", "<s>", "</s>"] + ([f"<0x{b:02X}>" for b in range(256)] if byte_fallback else [])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size + (256 if byte_fallback else 0), special_tokens=specials, show_progress=False
    )
    backend.train_from_iterator(TRAIN_TEXT, trainer)
    return _wrap(backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def train_unigram(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.Unigram())
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>", show_progress=False
    )
    backend.train_from_iterator(TRAIN_TEXT, trainer)
    return _wrap(backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def train_wordpiece(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"], show_progress=False
    )
    backend.train_from_iterator(TRAIN_TEXT, trainer)
    return _wrap(backend, unk_token="[UNK]", eos_token="[SEP]", bos_token="[CLS]", pad_token="[PAD]")


@pytest.fixture(scope="session")
def byte_bpe():
    return train_byte_bpe()


@pytest.fixture(scope="session")
def byte_bpe_small():
    return train_byte_bpe(320)


@pytest.fixture(scope="session")
def spm_bpe():
    return train_spm_bpe()


@pytest.fixture(scope="session")
def spm_bpe_no_fallback():
    return train_spm_bpe(byte_fallback=False)


@pytest.fixture(scope="session")
def unigram():
    return train_unigram()


@pytest.fixture(scope="session")
def wordpiece():
    return train_wordpiece()


def tiny_llama(
    vocab_size: int, *, tied: bool = True, seed: int = 0, dtype=torch.float32, hidden_size: int = 32
) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=tied,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    model = LlamaForCausalLM(config).to(dtype)
    model.eval()
    return model


def self_distillation(teacher_tok):
    """A tiny teacher on ``teacher_tok``, the byte tokenizer with its specials (and chat template), and a function
    that returns a fresh student: the teacher transferred to bytes."""
    student_tok = byte_tokenizer(specials_from=teacher_tok)
    teacher = tiny_llama(len(teacher_tok), seed=1)

    def fresh_student():
        return zett.transfer(teacher, student_tok, base_tokenizer=teacher_tok)[0]

    return teacher, teacher_tok, fresh_student, student_tok


@pytest.fixture
def tiny_model_dir(tmp_path, byte_bpe):
    """A saved tiny Llama with its tokenizer, so name_or_path finds the base tokenizer."""
    model = tiny_llama(len(byte_bpe))
    path = tmp_path / "tiny"
    model.save_pretrained(path)
    byte_bpe.save_pretrained(path)
    return path


def one_and_two_processes(script: str, tmp_path: Path) -> tuple[dict, dict]:
    """Run ``tests/<script> OUT.json`` once plainly and once as two CPU processes; return both JSON results.

    accelerate 1.x's `launch --cpu --num_processes 2` only multi-processes with an MPI hostfile (else it runs
    one process); `launch --multi_gpu --num_processes 2` on a machine without GPUs starts two gloo CPU
    processes (torchrun), which an Accelerator(cpu=True) joins."""
    path = REPO / "tests" / script
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    single, double = tmp_path / "one.json", tmp_path / "two.json"
    subprocess.run([sys.executable, str(path), str(single)], check=True, env=env, timeout=300)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            "2",
            "--multi_gpu",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            str(path),
            str(double),
        ],
        check=True,
        env=env,
        timeout=300,
    )
    return json.loads(single.read_text()), json.loads(double.read_text())
