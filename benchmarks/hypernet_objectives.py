"""Objective ablation for hypernetwork training (SPEC §4.3): ALM, ALM + next-token, next-token, equal budget.

    python benchmarks/hypernet_objectives.py [--steps 250] [--objectives alm,alm+ntp,ntp] [--quick]

Each objective trains a hypernetwork for SmolLM2-135M from examples/hypernet_smollm2.yaml with the same
data, sampler draws (same seed: the same tokenizer every step), schedule and step count, in
~/.cache/zett-runs/hypernet-ablation/<objective> (resumable: re-running continues killed runs). Then the
zero-shot BPB of each, and of FVT, on held-out text of every language for llama2, qwen3, bytes and Gemma-3's
tokenizer (never seen in training). Writes results/hypernet_objectives.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml
from common import ASSETS, Results, ensure_smollm2, hardware, require_assets

import zett
from zett.hypertrain import eval_texts, evaluate_hypernet
from zett.paths import REPO, models_dir

# ALM at tau=100 has per-chunk gradients ~(1/tau)(1 - L_T/L_S), next-token ~1 per token: sft 0.01 keeps both
# terms of the same order (a measured balance is future work)
OBJECTIVES = {"alm": {"alm": 1.0}, "alm+ntp": {"alm": 1.0, "sft": 0.01}, "ntp": {"sft": 1.0}}
RUNS = Path.home() / ".cache" / "zett-runs" / "hypernet-ablation"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--quick", action="store_true", help="20 steps each, 1 document per language")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hypernet_objectives.json")
    args = ap.parse_args()
    require_assets()
    steps = 20 if args.quick else args.steps
    base_cfg = yaml.safe_load((REPO / "examples" / "hypernet_smollm2.yaml").read_text())
    gemma = str(models_dir() / "gemma-3-270m-q4_k_m.gguf")
    tokenizers, corpus = ASSETS / "tokenizers", ASSETS / "corpus"
    base_cfg.update(
        steps=steps,
        batch_size=4,
        eval_every=0,
        eval_docs=1 if args.quick else 2,
        eval_tokenizers=[str(tokenizers / "llama2"), str(tokenizers / "qwen3"), "byte", gemma],
        data=str(corpus / "*.train.jsonl"),
        eval_data=str(corpus / "*.valid.jsonl"),
        real_tokenizers=[str(tokenizers / Path(t).name) for t in base_cfg["real_tokenizers"]],
    )
    res = Results(args.out, {"hardware": hardware(), "model": "SmolLM2-135M-Instruct", "config": base_cfg})
    model, tok = zett.load_model(ensure_smollm2())
    cfg0 = zett.HypernetTrainConfig.from_dict(dict(base_cfg, run_dir=str(RUNS / "fvt")))
    evals = eval_texts(cfg0)
    if not res.has(objective="fvt"):  # the baseline: FVT with its default copying (bytes included)
        res.add(objective="fvt", steps=0, bpb=evaluate_hypernet(None, model, tok, cfg0, evals))
    for name in [o for o in args.objectives.split(",") if o]:
        if res.has(objective=name, steps=steps):
            continue
        cfg = dict(base_cfg, losses=OBJECTIVES[name], run_dir=str(RUNS / f"{name}-{steps}"))
        t0 = time.perf_counter()
        result = zett.train_hypernet(cfg, base_model=model, base_tokenizer=tok)
        tokens = max(m.get("student_tokens_seen", 0) for m in result.metrics)
        res.add(
            objective=name,
            steps=steps,
            seconds=time.perf_counter() - t0,
            student_tokens=tokens,
            bpb=result.metrics[-1]["eval_bpb"],
        )
        print(name, result.metrics[-1]["eval_bpb"], flush=True)
    write_table(res, args.out.with_suffix(".md"))


def write_table(res: Results, path: Path) -> None:
    rows = res.data["rows"]
    if not rows:
        return
    order = {"fvt": 0, "untrained": 1}
    rows = sorted(rows, key=lambda r: order.get(r["objective"], 2))
    toks = list(rows[0]["bpb"])
    langs = list(rows[0]["bpb"][toks[0]])
    lines = [
        f"Hypernetwork objective ablation, SmolLM2-135M; zero-shot BPB (mean over {', '.join(langs)}); "
        f"{res.data['meta']['hardware']}",
        "",
        "| objective | steps | student tokens | " + " | ".join(Path(t).stem for t in toks) + " |",
        "|---|---|---|" + "---|" * len(toks),
    ]
    for r in rows:
        means = [sum(r["bpb"][t].values()) / len(r["bpb"][t]) for t in toks]
        lines.append(
            f"| {r['objective']} | {r['steps']} | {r.get('student_tokens', 0):,} | "
            + " | ".join(f"{m:.3f}" for m in means)
            + " |"
        )
    lines += [
        "",
        "`untrained`: the hypernetwork before training, i.e. FVT for subword targets (to the bit) and FVT "
        "without copying for bytes (the hypernetwork predicts byte rows itself).",
        "",
        "Per language:",
        "",
    ]
    for r in rows:
        for t in toks:
            lines.append(
                f"- {r['objective']} / {Path(t).stem}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["bpb"][t].items())
            )
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
