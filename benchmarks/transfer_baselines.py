"""BPB of SmolLM2-135M, original vs heuristic transfers, per target tokenizer and language.

    python benchmarks/transfer_baselines.py [--quick] [--out benchmarks/results/transfer_baselines.json]

Writes JSON (resumable: rows already measured are skipped) and a markdown table.
Also times ``zett.transfer`` per target after the model is loaded.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import ASSETS, Results, corpus, ensure_smollm2, hardware, require_assets

import zett

TARGETS = ["byte", "llama2", "qwen3", "mistral-v3", "gpt2"]
METHODS = ["fvt", "mean", "random"]
LANGS = ["en", "de", "zh", "code"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2 docs, 2 languages, 2 targets (a few minutes)")
    ap.add_argument("--docs", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "transfer_baselines.json")
    args = ap.parse_args()
    require_assets()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    targets, langs, docs = (TARGETS[:2], LANGS[:2], 2) if args.quick else (TARGETS, LANGS, args.docs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    res = Results(args.out, {"hardware": hardware(), "docs_per_lang": docs, "model": "SmolLM2-135M-Instruct"})
    model, tok = zett.load_model(ensure_smollm2())
    texts = {lang: corpus(lang, docs) for lang in langs}
    for lang in langs:
        if not res.has(target="original", method="original", lang=lang):
            res.add(
                target="original",
                method="original",
                lang=lang,
                bpb=zett.evaluate.bits_per_byte(model, tok, texts[lang], progress=False),
            )
    for method in METHODS:  # method-major: the FVT row of every target lands first
        for target in targets:
            spec = target if target == "byte" else str(ASSETS / "tokenizers" / target)
            if all(res.has(target=target, method=method, lang=lang) for lang in langs):
                continue
            t0 = time.perf_counter()
            new, new_tok = zett.transfer(model, spec, method=method)
            seconds = time.perf_counter() - t0
            for lang in langs:
                if not res.has(target=target, method=method, lang=lang):
                    bpb = zett.evaluate.bits_per_byte(new, new_tok, texts[lang], progress=False)
                    res.add(target=target, method=method, lang=lang, bpb=bpb, vocab=len(new_tok), transfer_s=seconds)
                    print(f"{target:11s} {method:7s} {lang:5s} {bpb:.4f}  (transfer {seconds:.1f}s)", flush=True)
            del new
    write_table(res, args.out.with_suffix(".md"), langs, targets)


def write_table(res: Results, path: Path, langs: list[str], targets: list[str]) -> None:
    rows = res.data["rows"]
    get = {(r["target"], r["method"], r["lang"]): r["bpb"] for r in rows}
    lines = [
        f"BPB (bits per UTF-8 byte, lower is better), SmolLM2-135M, {res.data['meta']['docs_per_lang']} "
        f"valid docs per language; hardware: {res.data['meta']['hardware']}",
        "",
        "| target | method | " + " | ".join(langs) + " |",
        "|---|---|" + "---|" * len(langs),
    ]
    lines.append(
        "| (original) | - | "
        + " | ".join(f"{get.get(('original', 'original', lang), float('nan')):.3f}" for lang in langs)
        + " |"
    )
    for t in targets:
        for m in METHODS:
            lines.append(
                f"| {t} | {m} | " + " | ".join(f"{get.get((t, m, lang), float('nan')):.3f}" for lang in langs) + " |"
            )
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
