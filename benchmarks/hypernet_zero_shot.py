"""Zero-shot transfer of SmolLM2-135M with a trained hypernetwork vs FVT, per tokenizer and language.

    python benchmarks/hypernet_zero_shot.py --hypernet ~/.cache/zett-runs/hypernet-smollm2/hypernet [--quick]
    python benchmarks/hypernet_zero_shot.py --hypernet DIR --speed-only

Targets: every tokenizer in the assets (smollm2 is the base's own: a tie by construction), the byte tokenizer
and Gemma-3's tokenizer from its GGUF (never in training: a true zero-shot test). BPB on the first
``--chars`` characters of ``--docs`` valid documents per language. Also times prediction of a whole
vocabulary (llama2 32k, qwen3 151k) with the rows the transfer copies skipped, as transfer does.
Writes results/hypernet_zero_shot.{json,md}; resumable.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import ASSETS, Results, corpus, ensure_smollm2, hardware, require_assets

import zett
from zett.paths import models_dir

LANGS = ["en", "de", "fr", "es", "ru", "zh", "code", "math"]
TARGETS = ["byte", "gpt2", "llama2", "llama3", "mistral-v3", "qwen3", "gemma3", "smollm2"]


def target_spec(name: str) -> str:
    if name == "byte":
        return "byte"
    if name == "gemma3":
        return str(models_dir() / "gemma-3-270m-q4_k_m.gguf")
    return str(ASSETS / "tokenizers" / name)


def prediction_speed(model, tok, net, res: Results, label: str) -> None:
    from hypernet import exact_matches
    from tokenizers_zoo import load_tokenizer

    for name in ("llama2", "qwen3"):
        if res.has(kind="speed", target=name, hypernet=label):
            continue
        target = load_tokenizer(target_spec(name))
        t_ids, _ = exact_matches(target, tok)
        skip = torch.zeros(len(target), dtype=torch.bool)
        skip[t_ids] = True
        t0 = time.perf_counter()
        net.predict(target, skip=skip)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        zett.transfer(model, target, base_tokenizer=tok, hypernet=net)
        res.add(
            kind="speed",
            target=name,
            hypernet=label,
            vocab=len(target),
            predicted=int((~skip).sum()),
            predict_s=seconds,
            transfer_s=time.perf_counter() - t0,
            threads=torch.get_num_threads(),
        )
        print(
            f"predict {name} ({len(target)} tokens, {int((~skip).sum())} through the network): {seconds:.1f}s",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hypernet", required=True, help="directory written by train_hypernet (run_dir/hypernet)")
    ap.add_argument("--label", default=None, help="name of this hypernetwork in the results (default: its path)")
    ap.add_argument("--quick", action="store_true", help="2 docs, en/de/zh/code, 4 targets")
    ap.add_argument("--docs", type=int, default=2)
    ap.add_argument("--chars", type=int, default=1500)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hypernet_zero_shot.json")
    args = ap.parse_args()
    require_assets()
    label = args.label or str(args.hypernet)
    res = Results(args.out, {"hardware": hardware(), "model": "SmolLM2-135M-Instruct"})
    model, tok = zett.load_model(ensure_smollm2())
    net = zett.Hypernet.from_pretrained(Path(args.hypernet).expanduser(), model, tok).eval()
    prediction_speed(model, tok, net, res, label)
    if args.speed_only:
        return
    langs = ["en", "de", "zh", "code"] if args.quick else LANGS
    targets = ["byte", "llama2", "qwen3", "gemma3"] if args.quick else args.targets.split(",")
    texts = {lang: [t[: args.chars] for t in corpus(lang, args.docs)] for lang in langs}
    for name in targets:
        # bytes: also the hypernetwork with copying (= FVT except the bytes the base lacks), to decide the default
        methods = ("fvt", "hypernet", "hypernet+copy") if name == "byte" else ("fvt", "hypernet")
        for method in methods:
            key = dict(kind="bpb", target=name, method=method, hypernet=None if method == "fvt" else label)
            if all(res.has(lang=lang, **key) for lang in langs):
                continue
            kwargs = {"method": "fvt"} if method == "fvt" else {"hypernet": net}
            if method == "hypernet+copy":
                kwargs["copy_overlap"] = True  # else transfer's default (copies for subwords, none for bytes)
            new, new_tok = zett.transfer(model, target_spec(name), base_tokenizer=tok, **kwargs)
            for lang in langs:
                if not res.has(lang=lang, **key):
                    bpb = zett.evaluate.bits_per_byte(new, new_tok, texts[lang], progress=False)
                    res.add(lang=lang, bpb=bpb, **key)
                    print(f"{name:10s} {method:8s} {lang:5s} {bpb:.4f}", flush=True)
            del new
    write_table(res, args.out.with_suffix(".md"), langs, targets, label)


def write_table(res: Results, path: Path, langs: list[str], targets: list[str], label: str) -> None:
    get = {}
    for r in res.data["rows"]:
        if r.get("kind") == "bpb" and r.get("hypernet") in (None, label):
            get[(r["target"], r["method"], r["lang"])] = r["bpb"]
    lines = [
        f"Zero-shot BPB, SmolLM2-135M, FVT vs hypernetwork `{label}`; {res.data['meta']['hardware']}",
        "",
        "| target | method | " + " | ".join(langs) + " | wins |",
        "|---|---|" + "---|" * (len(langs) + 1),
    ]
    for t in targets:
        for m in ("fvt", "hypernet", "hypernet+copy") if t == "byte" else ("fvt", "hypernet"):
            vals = [get.get((t, m, lang), float("nan")) for lang in langs]
            wins = sum(
                round(get.get((t, m, lang), 1e9), 4) < round(get.get((t, "fvt", lang), -1e9), 4) for lang in langs
            )
            lines.append(
                f"| {t} | {m} | "
                + " | ".join(f"{v:.3f}" for v in vals)
                + (f" | {wins}/{len(langs)} |" if m != "fvt" else " | |")
            )
    for r in res.data["rows"]:
        if r.get("kind") == "speed" and r.get("hypernet") == label:
            lines.append(
                f"\nprediction: {r['target']} ({r['vocab']:,} tokens, {r['predicted']:,} through the "
                f"network) {r['predict_s']:.1f}s; whole transfer {r['transfer_s']:.1f}s "
                f"({r['threads']} threads)"
            )
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
