"""Cross-model distillation and ensembles on real models: Gemma-3-270M and SmolLM2-135M (issue 8, SPEC §5.6-5.7).

    python benchmarks/cross_model.py [--quick] [--steps 40] [--recipes alm,alm+sft,bld,uld,sft]
                                     [--trainable embeddings+lora] [--part distill,ensemble,beam]

1. Teacher -> student across tokenizers: Gemma-3-270M (262k SentencePiece vocabulary) distilled into
   SmolLM2-135M (49k byte-level BPE) on math.train, each loss at the same budget (steps, batch, data, lr). Per
   loss: student BPB on math.valid and the other languages after distillation, the chunk-level ALM divergence
   from the teacher on held-out math (SPEC §5.6), seconds per step and peak RSS (each loss runs in its own
   process, so the peak is its own).
2. Ensembles of transferred models: SmolLM2 and Gemma-3 on one tokenizer (SmolLM2's, and bytes), mixture weights
   chosen on held-out text disjoint from the scored text; BPB of each member and of the ensemble, before and after
   a short ALM self-distillation of the transferred Gemma member.
3. BLD's teacher byte distributions along the teacher's own tokenization vs the beam over tokenizations (time,
   KL between them, and the bits per byte each assigns to the text).

Writes results/cross_model.{json,md,png}; finished rows are skipped on a re-run and distillation runs resume
from their checkpoints in ~/.cache/zett-runs/cross_model.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import ASSETS, Results, corpus, ensure_gemma, ensure_smollm2, hardware, require_assets, save_figure
from distill_losses import BALANCED, RECIPES

DEFAULT_RECIPES = "alm,alm+sft,bld,uld,sft"  # more in distill_losses.RECIPES (alm+sft-balanced, alm-tau10, ...)
LANGS = ["math", "en", "de", "code", "zh"]
RUNS = Path.home() / ".cache" / "zett-runs" / "cross_model"


def eval_texts(docs: int) -> dict[str, list[str]]:
    return {lang: corpus(lang, docs) for lang in LANGS}


def tuning_texts(docs: int) -> list[str]:
    """Held-out texts for choosing ensemble weights: the valid documents after the scored ones."""
    return [t for lang in LANGS for t in corpus(lang, 2 * docs)[docs:]]


def bpb_table(model, tok, texts: dict[str, list[str]], chars: int) -> dict[str, float]:
    from zett.evaluate import bits_per_byte

    return {lang: bits_per_byte(model, tok, [t[:chars] for t in docs], progress=False) for lang, docs in texts.items()}


def distill_config(args, recipe: str):
    from zett.distill import DistillConfig

    losses, alm = RECIPES[recipe]
    return DistillConfig(
        steps=args.steps,
        batch_size=4,
        max_length=args.max_length,
        trainable=args.trainable,
        lr=args.lr,
        warmup_steps=min(5, args.steps // 4),
        losses=losses,
        alm=alm,
        balance=recipe in BALANCED,
        save_every=max(1, args.steps // 4),
        seed=0,
    )


def run_recipe(args) -> None:
    """Worker (its own process): distil one recipe, evaluate, and write the row to ``--row``."""
    import zett
    from zett.evaluate import teacher_divergence

    teacher, t_tok = zett.load_model(str(ensure_gemma()))
    student, s_tok = zett.load_model(str(ensure_smollm2()))
    texts = eval_texts(args.docs)
    run = RUNS / f"{args.worker}-{args.trainable}-{args.steps}"
    t0 = time.perf_counter()
    result = zett.distill(
        student,
        s_tok,
        teacher,
        t_tok,
        str(ASSETS / "corpus" / "math.train.jsonl"),
        distill_config(args, args.worker),
        run_dir=run,
        progress=not args.quiet,
    )
    wall = time.perf_counter() - t0
    steps = [m for m in result.metrics if "loss" in m]
    row = {
        "recipe": args.worker,
        "steps": args.steps,
        "trainable": args.trainable,
        "seconds_per_step": (steps[-1]["seconds"] / len(steps)) if steps else None,
        "wall_s": wall,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "bpb": bpb_table(result.model, s_tok, texts, args.chars),
        "alm_divergence_math": teacher_divergence(
            result.model, s_tok, teacher, t_tok, [t[: args.chars] for t in texts["math"]]
        ),
    }
    Path(args.row).write_text(json.dumps(row))


def distill_part(args, res: Results) -> None:
    import zett
    from zett.evaluate import teacher_divergence

    texts = eval_texts(args.docs)
    if not res.has(part="distill", recipe="teacher"):
        teacher, t_tok = zett.load_model(str(ensure_gemma()))
        res.add(part="distill", recipe="teacher", bpb=bpb_table(teacher, t_tok, texts, args.chars))
        student, s_tok = zett.load_model(str(ensure_smollm2()))
        res.add(
            part="distill",
            recipe="student (before)",
            steps=0,
            bpb=bpb_table(student, s_tok, texts, args.chars),
            alm_divergence_math=teacher_divergence(
                student, s_tok, teacher, t_tok, [t[: args.chars] for t in texts["math"]]
            ),
        )
        del teacher, student
    for recipe in [r for r in args.recipes.split(",") if r]:
        if res.has(part="distill", recipe=recipe, steps=args.steps, trainable=args.trainable):
            continue
        row_file = RUNS / f"{recipe}-{args.trainable}-{args.steps}.row.json"
        RUNS.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "--worker", recipe, "--row", str(row_file)] + forward_args(args)
        subprocess.run(cmd, check=True)
        res.add(part="distill", **json.loads(row_file.read_text()))
        print(recipe, res.data["rows"][-1]["bpb"], flush=True)


def forward_args(args) -> list[str]:
    return [
        "--steps",
        str(args.steps),
        "--trainable",
        args.trainable,
        "--lr",
        str(args.lr),
        "--docs",
        str(args.docs),
        "--chars",
        str(args.chars),
        "--max-length",
        str(args.max_length),
    ] + (["--quiet"] if args.quiet else [])


def ensemble_part(args, res: Results) -> None:
    import zett
    from hypernet.model import shipped
    from zett.distill import DistillConfig

    texts, tuning = eval_texts(args.docs), [t[: args.chars] for t in tuning_texts(args.docs)]
    smol, smol_tok = zett.load_model(str(ensure_smollm2()))
    gemma, gemma_tok = zett.load_model(str(ensure_gemma()))
    mix = str(ASSETS / "corpus" / "*.train.jsonl")
    for target in ("smollm2", "byte"):
        if res.has(part="ensemble", target=target, self_distill_steps=args.self_distill_steps):
            continue
        if target == "smollm2":
            tok, member_a, label_a = smol_tok, smol, "SmolLM2-135M (original)"
        else:
            net = "smollm2-135m" if "smollm2-135m" in shipped() else None  # the shipped hypernetwork, else FVT
            member_a, tok = zett.transfer(smol, "byte", base_tokenizer=smol_tok, hypernet=net)
            label_a = f"SmolLM2-135M -> bytes ({'hypernetwork' if net else 'FVT'})"
        rows = {"members": {}}
        gemma_fvt, _ = zett.transfer(gemma, tok, base_tokenizer=gemma_tok)
        gemma_sd, _ = zett.transfer(
            gemma,
            tok,
            base_tokenizer=gemma_tok,
            distill=DistillConfig(
                steps=args.self_distill_steps,
                losses={"alm": 1.0, "sft": 1.0},
                save_every=max(1, args.self_distill_steps // 2),
            ),
            distill_data=mix,
            distill_run_dir=RUNS / f"gemma-{target}-selfdistill-{args.self_distill_steps}",
        )
        for stage, member_b in (("before", gemma_fvt), ("after", gemma_sd)):
            label_b = f"Gemma-3-270M -> {target} (FVT{'' if stage == 'before' else ' + ALM self-distillation'})"
            weights = zett.best_weights([member_a, member_b], tok, tuning)
            ens = zett.ensemble([member_a, member_b], weights)
            rows[stage] = {
                "weights": weights,
                label_a: bpb_table(member_a, tok, texts, args.chars),
                label_b: bpb_table(member_b, tok, texts, args.chars),
                "ensemble": bpb_table(ens, tok, texts, args.chars),
            }
            print(target, stage, json.dumps(rows[stage]), flush=True)
        res.add(
            part="ensemble",
            target=target,
            self_distill_steps=args.self_distill_steps,
            before=rows["before"],
            after=rows["after"],
        )


def beam_part(args, res: Results) -> None:
    """BLD's teacher byte distributions along Gemma's own tokenization vs the beam over tokenizations."""
    import torch

    import zett
    from tokenizers_zoo import encode_text
    from zett.distill.data import byte_offsets
    from zett.losses.bld import ByteTrie, beam_byte_probs, path_byte_probs

    if res.has(part="bld_beam", beam=args.beam):
        return
    teacher, t_tok = zett.load_model(str(ensure_gemma()))
    trie = ByteTrie(t_tok)
    text = corpus("math", 1)[0][: args.beam_chars]
    data = text.encode()
    ids = [t_tok.bos_token_id] + encode_text(t_tok, text)
    offsets = byte_offsets(t_tok, [ids], [data], len(ids))[0].tolist()
    t0 = time.perf_counter()
    with torch.no_grad():
        logits = teacher(input_ids=torch.tensor([ids])).logits[0]
    path, covered = path_byte_probs(logits, ids, offsets, trie, len(data))
    t_path = time.perf_counter() - t0
    t0 = time.perf_counter()
    beam = beam_byte_probs(teacher, t_tok.bos_token_id, data, trie, beam=args.beam)
    t_beam = time.perf_counter() - t0
    p, q = beam[covered].double().clamp(min=1e-12), path[covered].double().clamp(min=1e-12)
    kl = float((p * (p.log() - q.log())).sum(-1).mean())
    truth = torch.tensor(list(data))[covered]
    nll = {
        name: float(-dist[covered][torch.arange(len(truth)), truth].clamp(min=1e-12).log().mean() / 0.6931)
        for name, dist in (("path", path), ("beam", beam))
    }
    res.add(
        part="bld_beam",
        beam=args.beam,
        bytes=len(data),
        path_seconds=t_path,
        beam_seconds=t_beam,
        kl_beam_to_path=kl,
        bits_per_byte=nll,
    )


def write_outputs(res: Results, out: Path) -> None:
    rows = res.data["rows"]
    lines = [f"Cross-model distillation and ensembles; {res.data['meta']['hardware']}", ""]
    dist = [r for r in rows if r["part"] == "distill"]
    if dist:
        lines += [
            "Teacher Gemma-3-270M -> student SmolLM2-135M on math.train (BPB per language; ALM div: chunk-level "
            "binary KL to the teacher on held-out math, lower = closer)",
            "",
            "| recipe | steps | trainable | " + " | ".join(LANGS) + " | ALM div (math) | s/step | peak RSS GiB |",
            "|---|---|---|" + "---|" * len(LANGS) + "---|---|---|",
        ]
        for r in dist:
            cells = [f"{r['bpb'][lang]:.3f}" for lang in LANGS]
            div = r.get("alm_divergence_math")
            lines.append(
                f"| {r['recipe']} | {r.get('steps', '')} | {r.get('trainable', '')} | "
                + " | ".join(cells)
                + f" | {'' if div is None else f'{div:.4f}'} | "
                + (f"{r['seconds_per_step']:.2f}" if r.get("seconds_per_step") else "")
                + " | "
                + (f"{r['peak_rss_gb']:.2f}" if r.get("peak_rss_gb") else "")
                + " |"
            )
        lines.append("")
    for r in [r for r in rows if r["part"] == "ensemble"]:
        lines += [
            f"Ensemble on the {r['target']} tokenizer (self-distillation: {r['self_distill_steps']} steps)",
            "",
            "| stage | model | weight | " + " | ".join(LANGS) + " |",
            "|---|---|---|" + "---|" * len(LANGS),
        ]
        for stage in ("before", "after"):
            block = r[stage]
            names = [k for k in block if k != "weights"]
            for i, name in enumerate(names):
                w = f"{block['weights'][i]:.2f}" if i < len(block["weights"]) else ""
                lines.append(
                    f"| {stage} | {name} | {w} | " + " | ".join(f"{block[name][lang]:.3f}" for lang in LANGS) + " |"
                )
        lines.append("")
    for r in [r for r in rows if r["part"] == "bld_beam"]:
        lines += [
            f"BLD teacher byte distributions, Gemma-3-270M on {r['bytes']} bytes of math.valid: along its own "
            f"tokenization {r['path_seconds']:.1f} s (one pass), beam {r['beam']} over tokenizations "
            f"{r['beam_seconds']:.1f} s; KL(beam || path) {r['kl_beam_to_path']:.4f} nats per byte; bits per "
            f"byte of the text under each: path {r['bits_per_byte']['path']:.3f}, beam "
            f"{r['bits_per_byte']['beam']:.3f}.",
            "",
        ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(rows, out.with_suffix(".png"))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dist = [r for r in rows if r["part"] == "distill"]
    ens = [r for r in rows if r["part"] == "ensemble"]
    fig, axes = plt.subplots(1, 1 + len(ens), figsize=(5 + 4 * len(ens), 4))
    axes = list(axes) if hasattr(axes, "__len__") else [axes]
    if dist:
        names = [r["recipe"] for r in dist]
        axes[0].bar(names, [r["bpb"]["math"] for r in dist], color="tab:blue")
        axes[0].set_title("math.valid BPB, Gemma-3 -> SmolLM2")
        axes[0].set_ylabel("bits per byte (lower is better)")
        axes[0].tick_params(axis="x", rotation=45)
    for ax, r in zip(axes[1:], ens):
        labels, values = [], []
        for stage in ("before", "after"):
            for name in [k for k in r[stage] if k != "weights"]:
                labels.append(f"{stage}: {name.split(' ')[0] if name != 'ensemble' else 'ensemble'}")
                values.append(sum(r[stage][name].values()) / len(r[stage][name]))
        ax.bar(labels, values, color=["tab:gray", "tab:orange", "tab:green"] * 2)
        ax.set_title(f"mean BPB, ensemble on {r['target']}")
        ax.tick_params(axis="x", rotation=45)
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 steps each, 1 document per language, 600 characters")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--self-distill-steps", type=int, default=30)
    ap.add_argument("--recipes", default=DEFAULT_RECIPES)
    ap.add_argument("--trainable", default="embeddings+lora")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--docs", type=int, default=3)
    ap.add_argument("--chars", type=int, default=1500)
    ap.add_argument("--part", default="distill,ensemble,beam")
    ap.add_argument("--beam", type=int, default=4, help="beam width for the BLD path-vs-beam comparison")
    ap.add_argument("--beam-chars", type=int, default=120)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--row", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cross_model.json")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.self_distill_steps, args.docs, args.chars, args.max_length = 3, 2, 1, 600, 128
        args.beam_chars = 60
        if args.out.name == "cross_model.json":
            args.out = args.out.with_name("cross_model_quick.json")
    require_assets()
    if args.worker:
        run_recipe(args)
        return
    res = Results(
        args.out,
        {
            "hardware": hardware(),
            "teacher": "Gemma-3-270M",
            "student": "SmolLM2-135M",
            "args": {k: str(v) for k, v in vars(args).items()},
        },
    )
    parts = args.part.split(",")
    if "distill" in parts:
        distill_part(args, res)
    if "ensemble" in parts:
        ensemble_part(args, res)
    if "beam" in parts:
        beam_part(args, res)
    write_outputs(res, args.out)


if __name__ == "__main__":
    main()
