"""Self-distillation after a transfer, recipe against recipe at equal budget, scored with zett.evaluate.

    python benchmarks/distill_study.py --arm sft --target byte [--steps 100 --docs 10 --max-examples 25]
    python benchmarks/distill_study.py --report      # results/distill_study.{json,md} from the arms' parts

Each arm transfers SmolLM2-135M-Instruct with the shipped ``smollm2-135m`` network to ``--target`` (bytes, or a
subword tokenizer never seen in training: Gemma-3's from its GGUF), then self-distils it against the original for
``--steps`` steps on the corpus' training texts with one recipe (``DistillConfig`` fields over the defaults;
every arm the same seed, so the same texts in the same order), and is scored like a row of
``benchmarks/evaluation.py``: bits per byte on the first ``--docs`` documents of every language, accuracy on the
tasks the original is above chance on, agreement with the original (plain continuations and chat answers). The
zero-shot row (the shipped network, no distillation) comes from results/evaluation.json on the same items, so
every arm is compared pairwise with its starting point. Runs live in ~/.cache/zett-runs/distill-study/<target>-<arm>
(resumable); one process per arm writes its own part file.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from common import ASSETS, Results, ensure_smollm2, hardware, read_parts, require_assets, study_main
from evaluation import _bpb, _est, _macro, fmt, measure, pooled, shared_n, task_paired, texts_by_language
from hypernet_zero_shot import target_spec
from objective_study import CHARS, START, reference_rows, start_network

import zett
from zett.evaluate import load_tasks
from zett.evaluate.stats import compare, mean_estimate

HERE = Path(__file__).parent
RUNS = Path.home() / ".cache" / "zett-runs" / "distill-study"
ALM_SFT = {"losses": {"alm": 1.0, "sft": 1.0}}  # DistillConfig's default until the study: ALM at tau 100 + SFT, 1:1
CHAT = {"chat_prompts": "builtin", "chat_fraction": 0.5}
ARMS = {
    "sft": {"losses": {"sft": 1.0}},  # DistillConfig's default
    "sft+chat": {"losses": {"sft": 1.0}, **CHAT},
    "alm100+sft": ALM_SFT,
    "alm100+sft+chat": {**ALM_SFT, **CHAT},
    "alm5": {"losses": {"alm": 1.0}, "alm": {"tau": 5.0}},
    "alm100": {"losses": {"alm": 1.0}, "alm": {"tau": 100.0}},
    "alm5+sft": {"losses": {"alm": 1.0, "sft": 1.0}, "alm": {"tau": 5.0}, "balance": True},
    "alm5+sft+hidden": {"losses": {"alm": 1.0, "sft": 1.0}, "alm": {"tau": 5.0, "hidden_weight": 1.0}, "balance": True},
    "alm100+sft+untied": {**ALM_SFT, "untie_embeddings": True},
}
BASE = "sft"  # the arm every other is compared with: DistillConfig's default
TARGETS = ("byte", "gemma3")
STEPS = 100  # the arms' budget; a run with other --steps is its own row ("sft, 700 steps")
SAMPLES = 4  # chat answers shown per arm in the markdown


def run_arm(args) -> None:
    require_assets()
    torch.set_num_threads(args.threads)
    name = f"{args.target}-{args.arm}" + (f"-{args.steps}" if args.steps != STEPS else "")
    part = RUNS / f"{name}.json"
    res = Results(part, {"hardware": hardware(), "docs": args.docs, "chars": CHARS, "max_examples": args.max_examples})
    if res.has(arm=args.arm, target=args.target, steps=args.steps):
        return print(f"{name}: measured already ({part})")
    model, tok = zett.load_model(ensure_smollm2())
    original = next(r for r in reference_rows(args.docs) if r["method"] == "original")
    cfg = zett.DistillConfig(**dict(ARMS[args.arm], steps=args.steps, mixed_precision="auto", seed=3))
    t0 = time.perf_counter()
    new, new_tok = zett.transfer(
        model,
        target_spec(args.target),
        base_tokenizer=tok,
        hypernet=start_network(),
        distill=cfg,
        distill_data=str(ASSETS / "corpus" / "*.train.jsonl"),
        distill_run_dir=RUNS / name,
    )
    train_s = time.perf_counter() - t0
    new.float()  # scored in fp32 like every other row
    texts = texts_by_language(args.docs, CHARS)
    above = [t for t in load_tasks(ASSETS / "tasks") if original["tasks"][t.name]["above_chance"]]
    t0 = time.perf_counter()
    row = measure(new, new_tok, model, tok, texts, above, args.max_examples, with_agreement=True)
    res.add(
        arm=args.arm,
        method="distill",
        target=args.target,
        steps=args.steps,
        train_s=train_s,
        config=dict(ARMS[args.arm]),
        total_s=time.perf_counter() - t0,
        **row,
    )
    print(f"{name}: BPB {_bpb(res.data['rows'][-1]).value:.3f}", flush=True)


def row_key(row: dict) -> tuple:
    """What one row is a measurement of: arm, target and steps."""
    return row["arm"], row["target"], row.get("steps", STEPS)


def chat_chrf(row: dict):
    """chrF of the chat answers alone (the agreement's chat items), with its interval."""
    a = row.get("agreement", {})
    values = [v for v, s in zip(a.get("chrf_items", []), a.get("samples", [])) if s["chat"]]
    return mean_estimate(np.asarray(values)) if values else None


def report() -> None:
    rows, meta = read_parts(RUNS, HERE / "results" / "distill_study.json", row_key)
    out = Results(HERE / "results" / "distill_study.json", dict(meta, start=START))
    out.data["rows"] = rows
    out.save()
    text = "\n".join(table(reference_rows(meta["docs"]), rows, meta)) + "\n"
    (HERE / "results" / "distill_study.md").write_text(text, encoding="utf-8")
    print(text)


def table(refs: list[dict], rows: list[dict], meta: dict) -> list[str]:
    """Markdown: per target, the zero-shot row and every arm with paired differences to it and to ``BASE``, the
    default recipe (``*``: the 95% interval excludes 0), then the chat answers beside the original's."""
    original = next(r for r in refs if r["method"] == "original")
    above = [n for n, t in original["tasks"].items() if t["above_chance"]]
    n = shared_n(refs + rows, above)
    lines = [
        f"Self-distillation after transfer with `{START}`, {STEPS} steps per arm unless its name says (same texts "
        "in the same order, seed 3); "
        f"{meta['docs']} documents per language (first {meta['chars']} characters), {len(original['bpb'])} "
        f"languages; {len(above)} tasks where the original is above chance (first {min(n.values())} examples); "
        "agreement: 16 plain + 16 chat prompts; 95% intervals. Machines: "
        + "; ".join(f"{hw} ({', '.join(arms)})" for hw, arms in machines(rows).items())
        + ".",
        "",
        f"| target | arm | BPB | Δ vs zero-shot | Δ vs {BASE} | accuracy | Δ vs zero-shot | chrF | chat chrF "
        "| reference BPB | chat BPB | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    samples = []
    for target in TARGETS:
        arms = [r for r in rows if r["target"] == target]
        if not arms:
            continue
        zero = dict(next(r for r in refs if r["arm"] == "shipped" and r["target"] == target), arm="zero-shot")
        base = next((r for r in arms if r["arm"] == BASE and r["steps"] == STEPS), None)
        for r in [zero] + sorted(arms, key=lambda r: (r["arm"], r["steps"])):
            a = r.get("agreement", {})
            vs_base = base is not None and r in arms and r is not base
            cells = [
                fmt(_bpb(r)),
                fmt(compare(pooled(r), pooled(zero)), sig=True) if r is not zero else "",
                fmt(compare(pooled(r), pooled(base)), sig=True) if vs_base else "",
                fmt(_macro(task_paired(r, above, n))),
                fmt(compare(task_paired(r, above, n), task_paired(zero, above, n)), sig=True) if r is not zero else "",
                _cell_of(_est(a, "similarity_chrf") if "similarity_chrf" in a else None),
                _cell_of(chat_chrf(r)),  # rows scored without chat prompts (no chat template) have none
                _cell_of(_est(a, "reference_bpb") if "reference_bpb" in a else None),
                _cell_of(_est(a, "chat_bpb") if "chat_bpb" in a else None),
                f"{r['train_s']:.0f}" if "train_s" in r else "",
            ]
            lines.append(f"| {target} | {label(r)} | " + " | ".join(cells) + " |")
            chats = [s for s in a.get("samples", []) if s["chat"]][:SAMPLES]
            samples += [(target, label(r), s) for s in chats]
    lines += ["", "`*`: the paired 95% interval of the difference excludes 0.", "", "Chat answers (greedy):", ""]
    lines += ["| target | arm | prompt | original | model |", "|---|---|---|---|---|"]
    for target, arm, s in samples:
        cells = [s["prompt"], s["reference"], s["model"]]
        lines.append(f"| {target} | {arm} | " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def label(row: dict) -> str:
    """An arm's name in the tables: its name, and its steps where they are not the arms' budget."""
    return row["arm"] + (f", {row['steps']} steps" if row.get("steps", STEPS) != STEPS else "")


def machines(rows: list[dict]) -> dict[str, list[str]]:
    """Each machine that measured rows, with the rows' target/arm labels."""
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r.get("hardware", "not recorded"), []).append(f"{r['target']}/{label(r)}")
    return out


def _cell_of(est) -> str:
    """An estimate's table cell, empty where the row has none."""
    return fmt(est) if est is not None else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ⏎ ")


def main() -> None:
    study_main(__doc__, ARMS, STEPS, run_arm, report, target={"choices": TARGETS, "default": "byte"})


if __name__ == "__main__":
    main()
