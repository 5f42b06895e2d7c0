"""ALM vs ALM+SFT vs SFT vs ULD at equal budget: SmolLM2-135M -> bytes (FVT init) -> N distillation steps.

    python benchmarks/distill_losses.py [--quick] [--steps 100] [--out benchmarks/results/distill_losses.json]

Prints BPB on held-out text before/after for each loss, the cost of one training step of ALM relative to SFT
on the same batch (teacher outputs cached; the teacher's own cost on its own line), and alignment throughput.
Resumable: finished (loss, steps) rows are skipped; each run checkpoints under ~/.cache/zett-runs.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
from common import Results, corpus, ensure_smollm2, hardware, require_assets

import zett
from tokenizers_zoo import Aligner, byte_tokenizer, encode_text
from zett.distill import DistillConfig
from zett.distill.data import StepBatches
from zett.distill.trainer import DistillObjective, prepare_trainable
from zett.losses import boundary_mask
from zett.training import Processes, make_optimizer, optimizer_step

# name -> (losses, ALM keyword arguments)
RECIPES = {
    "alm": ({"alm": 1.0}, {}),
    "sft": ({"sft": 1.0}, {}),
    "alm+sft": ({"alm": 1.0, "sft": 1.0}, {}),
    "uld": ({"uld": 1.0}, {}),
    "alm+hidden": ({"alm": 1.0}, {"hidden_weight": 1.0}),
    "alm+sft+hidden": ({"alm": 1.0, "sft": 1.0}, {"hidden_weight": 1.0}),
    "alm-tau1": ({"alm": 1.0}, {"tau": 1.0}),
    "alm-tau10": ({"alm": 1.0}, {"tau": 10.0}),
    "alm-nodebias": ({"alm": 1.0}, {"debias": False}),
    "alm+sft-balanced": ({"alm": 1.0, "sft": 1.0}, {}),
    "bld": ({"bld": 1.0}, {}),
}
BALANCED = {"alm+sft-balanced"}  # recipes trained with gradient-magnitude balancing (DistillConfig.balance)
RUNS = Path.home() / ".cache" / "zett-runs" / "distill_losses"


def base_config(args) -> dict:
    return dict(
        steps=args.steps,
        batch_size=4,
        max_length=256,
        lr=args.lr,
        warmup_steps=5,
        trainable="full",
        mixed_precision=args.precision,
        save_every=25,
        seed=0,
    )


def step_cost(model, tok, student, s_tok, texts, precision: str) -> dict:
    """Seconds per training step (same batch) for SFT and ALM with a warm teacher cache, and the teacher's cost."""
    out = {}
    procs = Processes(precision)
    for name in ("sft", "alm"):
        cfg = DistillConfig(
            steps=10,
            batch_size=4,
            max_length=256,
            lr=1e-6,
            trainable="full",
            mixed_precision=precision,
            losses=RECIPES[name][0],
        )
        stu = prepare_trainable(copy.deepcopy(student), cfg)
        opt, sched = make_optimizer(list(stu.named_parameters()), cfg)
        objective = DistillObjective(cfg, model, boundary_mask(s_tok), boundary_mask(tok), procs.device)
        ds = StepBatches(
            texts, s_tok, tok, batch_size=4, max_length=256, teacher_max_length=96, seed=0, first=0, last=1
        )
        batch = ds[0]
        t0 = time.perf_counter()
        objective.targets(batch)  # fills the cache
        out["teacher_s"] = time.perf_counter() - t0
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            optimizer_step(procs, stu, opt, sched, objective, batch, grad_clip=cfg.grad_clip)
            times.append(time.perf_counter() - t0)
        out[f"{name}_step_s"] = statistics.median(times[1:])
        del stu
    out["alm_over_sft"] = out["alm_step_s"] / out["sft_step_s"]
    return out


def align_throughput(tok, s_tok, texts) -> float:
    torch.set_num_threads(1)
    aligner = Aligner(tok, s_tok)
    pairs = [(encode_text(tok, t), encode_text(s_tok, t)) for t in texts]
    n = sum(len(a) + len(b) for a, b in pairs)
    t0 = time.perf_counter()
    for a, b in pairs:
        aligner(a, b)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 steps, 2 eval docs per language")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--precision", default="auto", help="no | bf16 | auto (bf16 only where native)")
    ap.add_argument("--cost-only", action="store_true", help="only the step-cost and alignment rows")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "distill_losses.json")
    args = ap.parse_args()
    require_assets()
    if args.quick:
        args.steps = 10
    langs, docs = ["en", "de", "code"], (2 if args.quick else 4)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    res = Results(args.out, {"hardware": hardware(), "model": "SmolLM2-135M-Instruct", "target": "byte"})
    model, tok = zett.load_model(ensure_smollm2())
    s_tok = byte_tokenizer(specials_from=tok)
    evals = {lang: [t[:1500] for t in corpus(lang, docs)] for lang in langs}
    train = corpus("en", 2000, split="train")
    if not res.has(kind="cost"):
        res.add(kind="cost", **step_cost(model, tok, zett.transfer(model, s_tok)[0], s_tok, train[:8], args.precision))
        res.add(kind="align", tokens_per_s=align_throughput(tok, s_tok, corpus("en", 50)))
    print({k: v for r in res.data["rows"] if r.get("kind") in ("cost", "align") for k, v in r.items()}, flush=True)
    if args.cost_only:
        return
    for lang in langs:
        if not res.has(kind="bpb", recipe="original", lang=lang):
            res.add(
                kind="bpb",
                recipe="original",
                lang=lang,
                bpb=zett.evaluate.bits_per_byte(model, tok, evals[lang], progress=False),
            )
    student0, _ = zett.transfer(model, s_tok)
    for lang in langs:
        if not res.has(kind="bpb", recipe="fvt", lang=lang):
            res.add(
                kind="bpb",
                recipe="fvt",
                lang=lang,
                bpb=zett.evaluate.bits_per_byte(student0, s_tok, evals[lang], progress=False),
            )
    for name in args.recipes.split(","):
        if all(res.has(kind="bpb", recipe=name, steps=args.steps, lang=lang) for lang in langs):
            continue
        losses, alm = RECIPES[name]
        cfg = DistillConfig(losses=losses, alm=alm, balance=name in BALANCED, **base_config(args))
        t0 = time.perf_counter()
        result = zett.distill(
            copy.deepcopy(student0),
            s_tok,
            model,
            tok,
            train,
            cfg,
            run_dir=RUNS / f"{name}-{args.steps}-{args.lr}",
            progress=True,
        )
        seconds = time.perf_counter() - t0
        for lang in langs:
            bpb = zett.evaluate.bits_per_byte(result.model, s_tok, evals[lang], progress=False)
            res.add(kind="bpb", recipe=name, steps=args.steps, lr=args.lr, lang=lang, bpb=bpb, train_s=seconds)
            print(f"{name:8s} {lang:5s} {bpb:.4f}  ({seconds:.0f}s)", flush=True)
    write_table(res, args.out.with_suffix(".md"), langs, args.steps)


def write_table(res: Results, path: Path, langs: list[str], steps: int) -> None:
    rows = [r for r in res.data["rows"] if r.get("kind") == "bpb"]
    get = {(r["recipe"], r["lang"]): r["bpb"] for r in rows if r.get("steps") in (None, steps)}
    recipes = ["original", "fvt"] + [r for r in RECIPES if any(k[0] == r for k in get)]
    lines = [
        f"SmolLM2-135M -> bytes, {steps} steps x 4 x 256 bytes (full model); BPB on held-out text; "
        f"{res.data['meta']['hardware']}",
        "",
        "| recipe | " + " | ".join(langs) + " |",
        "|---|" + "---|" * len(langs),
    ]
    for r in recipes:
        lines.append(f"| {r} | " + " | ".join(f"{get.get((r, lang), float('nan')):.3f}" for lang in langs) + " |")
    for r in res.data["rows"]:
        if r.get("kind") == "cost":
            lines += [
                "",
                f"step cost (same batch, teacher cached): SFT {r['sft_step_s']:.2f}s, ALM {r['alm_step_s']:.2f}s "
                f"(ratio {r['alm_over_sft']:.2f}); teacher forward {r['teacher_s']:.2f}s",
            ]
        if r.get("kind") == "align":
            lines.append(f"alignment throughput (1 thread): {r['tokens_per_s'] / 1e6:.2f}M tokens/s")
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
