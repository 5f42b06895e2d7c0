"""Training and prediction speed, before vs after the speed levers, measured in one run (same machine, same load).

    python benchmarks/training_speed.py                       # all three parts
    python benchmarks/training_speed.py --only predict --rounds 1

* ``hypernet``: ``zett.train_hypernet`` with examples/hypernet_smollm2.yaml (fp32, evaluation off; ``--steps``
  measured steps after one warm-up step). ``before`` turns the levers off (``unpadded``, ``lazy_teacher``,
  ``fused_adamw``: the step as it was), ``after`` is the defaults; both at ``--threads`` torch threads and, for
  ``--thread-rounds`` rounds, at each of ``--also-threads``. ``--recipes`` adds settings that change the training
  recipe (fewer negatives, a larger batch, both): their speed only, not an equivalent run.
* ``distill``: ``zett.distill`` SmolLM2 -> bytes (FVT start), ALM + SFT (1:1), same levers.
* ``predict``: ``Hypernet.predict`` of the shipped network for llama2's and qwen3's vocabularies (rows that
  transfer copies skipped, as transfer runs it), in a fresh process each, with the library as it was at
  ``--before`` (``git archive``) and as it is, at each of ``--predict-threads``; the two outputs are compared,
  and the network's floating-point work is set against the rate of one of its matrix products.

Settings alternate within each round (before, after, before, after, ...), each round with its own seed, so
both see the same batches; the load average is recorded beside every measurement. Per-step losses of the
exact levers are compared with ``before``'s. Writes results/training_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from common import ASSETS, corpus, ensure_smollm2, hardware, require_assets
from prediction_speed import load, predict_part

import zett
from hypernet.files import write_text
from tokenizers_zoo import encode_text
from zett.paths import REPO

OFF = {"unpadded": False, "lazy_teacher": False, "fused_adamw": False}
EXACT = {"before": OFF, "after": {}}
RECIPES = {
    "after, negatives 512": {"negatives": 512},
    "after, batch 8": {"batch_size": 8},  # change the recipe
    "after, negatives 512, batch 8": {"negatives": 512, "batch_size": 8},
}
LANGS = ["en", "de", "fr", "es", "ru", "zh", "code", "math"]  # distillation texts: suite.py's
BEFORE_REV = "a430b52"  # the library before the levers (their first commit is b84d789)
OUT = Path(__file__).parent / "results"
NOTES = "<!-- notes: kept when the tables above are rewritten -->"


@contextmanager
def phase_timer(cls, phases: dict[str, float]):
    """Add the time in ``cls.targets`` (teacher) and ``cls.loss`` (forward passes, losses) to ``phases``."""
    saved = cls.targets, cls.loss

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    cls.targets, cls.loss = timed("teacher_s", saved[0]), timed("forward_s", saved[1])
    try:
        yield
    finally:
        cls.targets, cls.loss = saved


def measure(run, tokens_of) -> dict:
    """``run(on_step, phases)`` trains; the steps after the first are summarised: seconds, student tokens (from
    ``tokens_of(step, row)``, called for every step), losses and the time in the objective's phases."""
    times, losses, tokens, phases = [], [], [], {"teacher_s": [], "forward_s": []}
    state = {"t": time.perf_counter()}
    current: dict[str, float] = {}

    def on_step(step, row):
        now = time.perf_counter()
        n = tokens_of(step, row)
        if step > 1:  # the first step fills caches (sampler window, allocator, teacher): left out
            times.append(now - state["t"])
            losses.append(row["loss"])
            tokens.append(n)
            for key in phases:
                phases[key].append(current.get(key, 0.0))
        state["t"] = now
        current.clear()

    before = load()
    run(on_step, current)
    seconds = sum(times)
    return {
        "steps": len(times),
        "seconds": seconds,
        "tokens": sum(tokens),
        "step_s": seconds / len(times),
        "tokens_per_s": sum(tokens) / seconds,
        "losses": losses,
        "load": [before, load()],
        **{key: sum(v) / len(v) for key, v in phases.items()},
    }


def settings(args, recipes: bool) -> list[tuple[str, dict, int, int]]:
    """(name, config fields, threads, round) in the order they run: per round before, after (at ``--threads``),
    then at each ``--also-threads`` count, then the recipe settings (their own rounds)."""
    out = []
    for r in range(args.rounds):
        out += [(name, levers, args.threads, r) for name, levers in EXACT.items()]
        if r < args.thread_rounds:
            out += [(name, levers, n, r) for n in args.also_threads for name, levers in EXACT.items()]
        if recipes and r < args.recipe_rounds:
            out += [(name, levers, args.threads, r) for name, levers in RECIPES.items()]
    return out


@contextmanager
def threads(n: int):
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def hypernet_part(model, tok, args, rows: list) -> None:
    import zett.hypertrain as ht

    reading = ht.training_texts
    texts = {}
    # the texts are read and cut once (the same for every run), not once per run
    ht.training_texts = lambda cfg, base: texts.setdefault(cfg.seed, reading(cfg, base))
    base = zett.HypernetTrainConfig.from_yaml(REPO / "examples" / "hypernet_smollm2.yaml").to_dict()
    base.update(
        eval_every=0,
        eval_data=None,
        eval_tokenizers=[],
        mixed_precision="no",
        save_every=10_000,
        data=str(ASSETS / "corpus" / "*.train.jsonl"),
        real_tokenizers=[str(ASSETS / "tokenizers" / n) for n in ("gpt2", "llama2", "llama3", "mistral-v3", "qwen3")],
    )
    try:
        for name, levers, n_threads, r in settings(args, args.recipes):
            seen = {0: 0}

            def tokens_of(step, row, seen=seen):
                seen[step] = row["student_tokens_seen"]
                return seen[step] - seen[step - 1]

            with tempfile.TemporaryDirectory() as run_dir:
                cfg = dict(base, run_dir=run_dir, steps=args.steps + 1, seed=r, **levers)

                def run(on_step, phases, cfg=cfg):
                    with phase_timer(ht.HypernetObjective, phases):
                        zett.train_hypernet(cfg, base_model=model, base_tokenizer=tok, progress=False, on_step=on_step)

                with threads(n_threads):
                    finish(rows, measure(run, tokens_of), "hypernet", name, r, args)
    finally:
        ht.training_texts = reading


def distill_part(model, tok, args, rows: list) -> None:
    from zett.distill.data import step_indices
    from zett.distill.trainer import DistillObjective

    texts = [t for lang in LANGS for t in corpus(lang, 50, split="train")]
    for name, levers, n_threads, r in settings(args, False):
        student, s_tok = zett.transfer(model, "byte", base_tokenizer=tok, method="fvt")
        cfg = zett.DistillConfig(
            steps=args.distill_steps + 1, losses={"alm": 1.0, "sft": 1.0}, save_every=10_000, seed=r, **levers
        )

        def tokens_of(step, row, cfg=cfg, s_tok=s_tok):
            idx = step_indices(len(texts), cfg.batch_size, step - 1, cfg.seed)  # step k's batch is item k-1
            return sum(min(1 + len(encode_text(s_tok, texts[i])), cfg.max_length) for i in idx)

        def run(on_step, phases, student=student, s_tok=s_tok, cfg=cfg):
            with phase_timer(DistillObjective, phases):
                zett.distill(student, s_tok, model, tok, texts, cfg, progress=False, on_step=on_step)

        with threads(n_threads):
            finish(rows, measure(run, tokens_of), "distill", name, r, args)
        del student


def finish(rows: list, row: dict, part: str, setting: str, r: int, args) -> None:
    row.update(part=part, setting=setting, round=r, threads=torch.get_num_threads())
    prev = next(
        (
            x
            for x in rows
            if x["part"] == part and x["setting"] == "before" and x["round"] == r and x["threads"] == row["threads"]
        ),
        None,
    )
    if prev is not None and setting in EXACT and setting != "before":
        row["max_loss_rel_diff"] = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(row["losses"], prev["losses"]))
    rows.append(row)
    save(rows, args)
    print(
        f"{part:8s} {setting:22s} {row['threads']} thr round {r}: {row['step_s']:.2f} s/step, "
        f"{row['tokens_per_s']:.1f} tokens/s (teacher {row['teacher_s']:.2f} s, forward {row['forward_s']:.2f} s; "
        f"load {row['load']})",
        flush=True,
    )


def save(rows: list, args) -> None:
    meta = {
        "hardware": hardware(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "command": " ".join(sys.argv),
        "before": args.before,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_text(args.out / "training_speed.json", json.dumps({"meta": meta, "rows": rows}, indent=1))
    md = args.out / "training_speed.md"
    notes = md.read_text().partition(NOTES)[2] if md.exists() else ""  # the hand-written part is kept
    write_text(md, report(meta, rows) + (f"\n{NOTES}{notes}" if notes else ""))


def report(meta: dict, rows: list) -> str:
    lines = [
        f"Measured on {meta['hardware']}; `{meta['command']}` (finished {meta['time']}); torch threads as in each row.",
        "",
    ]
    for part, unit in (("hypernet", "train_hypernet"), ("distill", "distill")):
        sub = [r for r in rows if r["part"] == part]
        if not sub:
            continue
        lines += [
            f"{unit}: student tokens per second over the measured steps of all rounds (settings interleaved)",
            "",
            "| setting | threads | steps | s/step | tokens/s | vs before (same threads) | teacher s/step | "
            "forward s/step | max loss rel. diff vs before | load (1 min) |",
            "|---" * 10 + "|",
        ]
        rates = {}
        for setting, n_threads in dict.fromkeys((r["setting"], r["threads"]) for r in sub):
            rs = [r for r in sub if r["setting"] == setting and r["threads"] == n_threads]
            steps, secs, toks = sum(r["steps"] for r in rs), sum(r["seconds"] for r in rs), sum(r["tokens"] for r in rs)
            rates[setting, n_threads] = rate = toks / secs
            base = rates.get(("before", n_threads))
            diff = max((r.get("max_loss_rel_diff", 0.0) for r in rs), default=0.0)
            loads = [x for r in rs for x in r["load"]]
            lines.append(
                f"| {setting} | {n_threads} | {steps} | {secs / steps:.2f} | {rate:.1f} | "
                f"{f'{rate / base:.2f}x' if base else ''} | "
                f"{sum(r['teacher_s'] * r['steps'] for r in rs) / steps:.2f} | "
                f"{sum(r['forward_s'] * r['steps'] for r in rs) / steps:.2f} | "
                f"{f'{diff:.1e}' if setting in EXACT and setting != 'before' else ''} | "
                f"{min(loads):.1f}-{max(loads):.1f} |"
            )
        lines.append("")
    sub = [r for r in rows if r["part"] == "predict"]
    if sub:
        lines += [
            "Hypernet.predict of a whole vocabulary (copied rows skipped), one process per measurement",
            "",
            "| target | vocabulary | rows through the network | threads | library | seconds (each round) | "
            "mean | max abs. diff vs before | load (1 min) |",
            "|---" * 9 + "|",
        ]
        for target, n_threads in dict.fromkeys((r["target"], r["threads"]) for r in sub):
            for setting in ("before", "after"):
                rs = [r for r in sub if r["target"] == target and r["setting"] == setting and r["threads"] == n_threads]
                if not rs:
                    continue
                diff = max((r.get("max_abs_diff", 0.0) for r in rs), default=0.0)
                loads = [x for r in rs for x in r["load"]]
                each = ", ".join(f"{r['seconds']:.1f}" for r in rs)
                lines.append(
                    f"| {target} | {rs[0]['vocab']:,} | {rs[0]['predicted']:,} | {n_threads} | {setting} | "
                    f"{each} | "
                    f"{sum(r['seconds'] for r in rs) / len(rs):.1f} | "
                    f"{'' if setting == 'before' else f'{diff:.1e}'} | {min(loads):.1f}-{max(loads):.1f} |"
                )
        lines.append("")
    for w in (r for r in rows if r["part"] == "network_work"):
        lines.append(
            f"- {w['target']}: {w['rows']:,} rows, {w['positions']:,} positions, {w['distinct_ids']:,} "
            f"distinct base ids; the network's work {w['gflop_before']:.0f} GFLOP before, "
            f"{w['gflop_after']:.0f} after (each base id projected once); one of its matrix products ran "
            f"at {w['gemm_gflops']:.0f} GFLOP/s on {w['threads']} thread(s) (load {w['load'][0]}), so the "
            f"network alone needs >= {w['floor_s']:.1f} s here"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="hypernet,distill,predict", help="parts to run, comma-separated")
    ap.add_argument("--rounds", type=int, default=2, help="before/after pairs per part")
    ap.add_argument("--steps", type=int, default=4, help="measured hypernetwork steps per run (after a warm-up)")
    ap.add_argument("--distill-steps", type=int, default=3, help="measured distillation steps per run")
    ap.add_argument("--recipes", action="store_true", help="also time settings that change the recipe")
    ap.add_argument("--recipe-rounds", type=int, default=1)
    ap.add_argument("--targets", default="llama2,qwen3", help="tokenizers for the prediction part")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the training comparisons")
    ap.add_argument(
        "--also-threads",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[2],
        help="training: before and after also at these thread counts (--thread-rounds rounds)",
    )
    ap.add_argument("--thread-rounds", type=int, default=1)
    ap.add_argument("--predict-threads", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2])
    ap.add_argument("--before", default=BEFORE_REV, help="git revision of the library 'before' (prediction)")
    ap.add_argument("--append", action="store_true", help="add to the rows of --out's training_speed.json")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    require_assets()
    parts = args.only.split(",")
    done = args.out / "training_speed.json"
    rows: list = json.loads(done.read_text())["rows"] if args.append and done.exists() else []
    if "hypernet" in parts or "distill" in parts:
        model, tok = zett.load_model(ensure_smollm2())
        if "hypernet" in parts:
            hypernet_part(model, tok, args, rows)
        if "distill" in parts:
            distill_part(model, tok, args, rows)
    if "predict" in parts:
        predict_part(args, rows, save)
    print(report(json.loads((args.out / "training_speed.json").read_text())["meta"], rows))


if __name__ == "__main__":
    main()
