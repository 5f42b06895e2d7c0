"""One CPU hour of self-distillation after a transfer, run as a user runs it, scored against the original.

    python benchmarks/one_hour.py --target byte|qwen3 --steps N [--docs 10] [--max-examples 25] [--threads 2]
    python benchmarks/one_hour.py --target byte --steps 0     # the zero-shot transfer, the rows' starting point
    python benchmarks/one_hour.py --report                    # results/one_hour.{json,md} from the parts

Runs the documented command (docs/distillation.md): ``zett transfer --model SmolLM2-135M-Instruct --tokenizer
TARGET --hypernet smollm2-135m --distill-steps N --distill-config examples/distill_chat.yaml --distill-data
<corpus>/*.train.jsonl`` (``--steps 0``: no distillation), timing it, then scores the exported model like a row
of ``benchmarks/evaluation.py``: bits per byte on the first ``--docs`` valid documents of every corpus language
(first 500 characters), accuracy on the tasks the original is above chance on (results/evaluation.json's
original row), agreement with the original (16 prompts cut from the texts, 16 chat prompts none of which the
recipe trains on). The report pairs each distilled row with the zero-shot row of its target and shows the chat
answers beside the original's. Runs, models and part files live in ~/.cache/zett-runs/one-hour (resumable:
a killed distillation resumes from its checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import ASSETS, Results, ensure_smollm2, hardware, read_parts, require_assets
from distill_study import _cell, _cell_of, chat_chrf
from evaluation import _bpb, _est, _macro, fmt, measure, pooled, shared_n, task_paired, texts_by_language
from hypernet_zero_shot import target_spec

import zett
from zett.evaluate import load_tasks
from zett.evaluate.stats import compare

HERE = Path(__file__).parent
RUNS = Path.home() / ".cache" / "zett-runs" / "one-hour"
RECIPE = HERE.parent / "examples" / "distill_chat.yaml"
TARGETS = ("byte", "qwen3")
CHARS = 500
SAMPLES = 8  # chat answers shown per row in the markdown


def transfer_command(target: str, steps: int, out: Path, run_dir: Path) -> list[str]:
    """The user's command line: transfer with the shipped network, then ``steps`` of the chat recipe."""
    zett_cli = str(Path(sys.executable).with_name("zett"))
    cmd = [zett_cli, "transfer", "--model", str(ensure_smollm2()), "--tokenizer", target_spec(target)]
    cmd += ["--hypernet", "smollm2-135m", "--out", str(out), "--overwrite"]
    if steps:
        data = str(ASSETS / "corpus" / "*.train.jsonl")
        cmd += ["--distill-steps", str(steps), "--distill-data", data, "--distill-config", str(RECIPE)]
        cmd += ["--run-dir", str(run_dir)]
    return cmd


def shown(cmd: list[str]) -> str:
    """The command as the docs write it: ``zett``, ``~`` and the assets' ``../shared/assets``."""
    text = " ".join(cmd).replace(cmd[0], "zett", 1).replace(str(ASSETS), "../shared/assets")
    return text.replace(str(HERE.parent) + "/", "").replace(str(Path.home()), "~")


def original_row() -> dict:
    """The original's row of results/evaluation.json: which tasks it is above chance on."""
    rows = json.loads((HERE / "results" / "evaluation.json").read_text())["rows"]
    return next(r for r in rows if r["method"] == "original")


def seconds_per_step(run_dir: Path) -> float | None:
    """Training seconds per step from the run's metrics (the last step's clock over its steps)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    steps = [r for r in rows if "seconds" in r and "step" in r]
    return steps[-1]["seconds"] / steps[-1]["step"] if steps else None


def run(args) -> None:
    require_assets()
    torch.set_num_threads(args.threads)
    name = f"{args.target}-{args.steps}"
    part = RUNS / f"{name}.json"
    res = Results(part, {"hardware": hardware(), "docs": args.docs, "chars": CHARS, "max_examples": args.max_examples})
    if res.has(target=args.target, steps=args.steps):
        return print(f"{name}: measured already ({part})")
    out, run_dir = RUNS / f"{name}-model", RUNS / name
    cmd = transfer_command(args.target, args.steps, out, run_dir)
    print(shown(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
    command_s = time.perf_counter() - t0
    model, tok = zett.load_model(out)
    original, original_tok = zett.load_model(ensure_smollm2())
    above_chance = original_row()["tasks"]
    tasks = [t for t in load_tasks(ASSETS / "tasks") if above_chance[t.name]["above_chance"]]
    t0 = time.perf_counter()
    texts = texts_by_language(args.docs, CHARS)
    row = measure(
        model.float().eval(), tok, original, original_tok, texts, tasks, args.max_examples, with_agreement=True
    )
    res.add(
        target=args.target,
        steps=args.steps,
        command=shown(cmd),
        command_s=command_s,
        step_s=seconds_per_step(run_dir) if args.steps else None,
        total_s=time.perf_counter() - t0,
        **row,
    )
    print(f"{name}: BPB {_bpb(res.data['rows'][-1]).value:.3f}", flush=True)


def report() -> None:
    rows, meta = read_parts(RUNS, HERE / "results" / "one_hour.json", lambda r: (r["target"], r["steps"]))
    out = Results(HERE / "results" / "one_hour.json", meta)
    out.data["rows"] = rows
    out.save()
    text = "\n".join(table(rows, original_row(), meta)) + "\n"
    (HERE / "results" / "one_hour.md").write_text(text, encoding="utf-8")
    print(text)


def table(rows: list[dict], original: dict, meta: dict) -> list[str]:
    """Markdown: per target, the zero-shot row and each distilled one with paired differences to it (``*``: the
    95% interval excludes 0), then the chat answers: the original's, zero-shot's and the recipe's."""
    above = [n for n, t in original["tasks"].items() if t["above_chance"]]
    n = shared_n(rows, above)
    machines = sorted({r.get("hardware", "not recorded") for r in rows})
    lines = [
        f"SmolLM2-135M-Instruct, transferred with `smollm2-135m` and self-distilled with examples/distill_chat.yaml "
        f"(the commands below); {meta['docs']} documents per language (first {meta['chars']} characters), "
        f"{len(above)} tasks where the original is above chance (first {min(n.values())} examples); agreement: "
        f"16 plain + 16 chat prompts; 95% intervals. Machines: {'; '.join(machines)}.",
        "",
        "| target | steps | BPB | Δ vs zero-shot | accuracy | Δ vs zero-shot | chrF | chat chrF | reference BPB "
        "| chat BPB | s/step | command s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    answers, commands = [], []
    for target in TARGETS:
        mine = sorted((r for r in rows if r["target"] == target), key=lambda r: r["steps"])
        zero = next((r for r in mine if r["steps"] == 0), None)
        for r in mine:
            a = r["agreement"]
            paired = zero is not None and r is not zero
            cells = [
                fmt(_bpb(r)),
                fmt(compare(pooled(r), pooled(zero)), sig=True) if paired else "",
                fmt(_macro(task_paired(r, above, n))),
                fmt(compare(task_paired(r, above, n), task_paired(zero, above, n)), sig=True) if paired else "",
                fmt(_est(a, "similarity_chrf")),
                _cell_of(chat_chrf(r)),
                fmt(_est(a, "reference_bpb")),
                _cell_of(_est(a, "chat_bpb") if "chat_bpb" in a else None),
                f"{r['step_s']:.2f}" if r.get("step_s") else "",
                f"{r['command_s']:.0f}",
            ]
            lines.append(f"| {target} | {r['steps']} | " + " | ".join(cells) + " |")
            commands.append(f"    {r['command']}")
            chats = [s for s in a.get("samples", []) if s["chat"]][:SAMPLES]
            answers += [(target, r["steps"], s) for s in chats]
    lines += ["", "`*`: the paired 95% interval of the difference excludes 0.", "", "Commands:", "", *commands]
    lines += [
        "",
        "Chat answers (greedy):",
        "",
        "| target | steps | prompt | original | model |",
        "|---|---|---|---|---|",
    ]
    for target, steps, s in answers:
        cells = [s["prompt"], s["reference"], s["model"]]
        lines.append(f"| {target} | {steps} | " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=TARGETS, default="byte")
    ap.add_argument("--steps", type=int, help="distillation steps (0: the zero-shot transfer)")
    ap.add_argument("--docs", type=int, default=10)
    ap.add_argument("--max-examples", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()
    if args.report:
        return report()
    if args.steps is None:
        ap.error("--steps N (0: zero-shot) or --report")
    run(args)


if __name__ == "__main__":
    main()
