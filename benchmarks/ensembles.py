"""Ensembles the paper's way: two base models, each transferred with its own hypernetwork to one tokenizer.

    python benchmarks/ensembles.py --target qwen3|byte [--stage zero-shot|distilled] [--gemma-hypernet gemma-3-270m]
                                   [--self-distill-steps 100] [--docs 10] [--max-examples 25]
    python benchmarks/ensembles.py --report     # results/ensembles.{json,md} from the parts

SmolLM2-135M-Instruct (``--smollm2-hypernet``, default the shipped ``smollm2-135m``) and Gemma-3-270M
(``--gemma-hypernet``) are each transferred to ``--target`` with their own hypernetwork; at ``--stage distilled``
each is then self-distilled against its own original for ``--self-distill-steps`` steps with ``DistillConfig``'s
defaults on the corpus' training texts. ``zett.best_weights`` picks the mixture weights on held-out texts (the
valid documents after the scored ones), and each member and ``zett.ensemble`` of the two are scored as
``benchmarks/evaluation.py`` scores a row: bits per byte on the first ``--docs`` valid documents of every corpus
language (first 500 characters), accuracy on the tasks SmolLM2 is above chance on (results/evaluation.json's
original row), with the ensemble paired against each member on the same documents and examples. One process per
(target, stage) writes its own part under ~/.cache/zett-runs/ensembles; ``--report`` merges them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import ASSETS, Results, corpus, ensure_gemma, ensure_smollm2, hardware, read_parts, require_assets
from evaluation import _bpb, _macro, fmt, languages, measure, pooled, shared_n, task_paired, texts_by_language
from hypernet_zero_shot import target_spec

import zett
from zett.evaluate import load_tasks
from zett.evaluate.stats import compare

HERE = Path(__file__).parent
RUNS = Path.home() / ".cache" / "zett-runs" / "ensembles"
CHARS = 500


def tuning_texts(docs: int) -> list[str]:
    """Held-out texts for the mixture weights: each language's valid documents after the ``docs`` scored ones."""
    return [t[:CHARS] for lang in languages() for t in corpus(lang, 2 * docs)[docs:]]


def member(model, tok, target, hypernet, stage: str, steps: int, run_dir: Path):
    """``model`` transferred to ``target`` (what ``zett.transfer`` takes) with ``hypernet``; at stage
    ``distilled`` self-distilled after."""
    distill = zett.DistillConfig(steps=steps, mixed_precision="auto", seed=3) if stage == "distilled" else None
    new, new_tok = zett.transfer(
        model,
        target,
        base_tokenizer=tok,
        hypernet=hypernet,
        distill=distill,
        distill_data=str(ASSETS / "corpus" / "*.train.jsonl") if distill else None,
        distill_run_dir=run_dir if distill else None,
    )
    return new.float().eval(), new_tok


def none_is_fvt(name: str) -> str | None:
    """A ``--*-hypernet`` value: ``none`` transfers with FVT (no hypernetwork)."""
    return None if name.lower() == "none" else name


def run(args) -> None:
    require_assets()
    torch.set_num_threads(args.threads)
    name, runs = f"{args.target}-{args.stage}", Path(args.runs).expanduser()
    runs.mkdir(parents=True, exist_ok=True)
    res = Results(runs / f"{name}.json", {"hardware": hardware(), "docs": args.docs, "chars": CHARS})
    refs = json.loads((HERE / "results" / "evaluation.json").read_text())["rows"]
    original = next(r for r in refs if r["method"] == "original")
    above = [t for t in load_tasks(ASSETS / "tasks") if original["tasks"][t.name]["above_chance"]]
    texts = texts_by_language(args.docs, CHARS)
    bases = {
        "SmolLM2-135M": (ensure_smollm2(), none_is_fvt(args.smollm2_hypernet)),
        "Gemma-3-270M": (ensure_gemma(), none_is_fvt(args.gemma_hypernet)),
    }
    models, tok = [], None
    for label, (path, net) in bases.items():
        model, base_tok = zett.load_model(str(path))
        # the second member gets the first one's tokenizer: one vocabulary (a byte tokenizer carries its base's
        # special tokens, so two byte transfers would differ in those)
        target = target_spec(args.target) if tok is None else tok
        new, tok = member(model, base_tok, target, net, args.stage, args.self_distill_steps, runs / f"{name}-{label}")
        models.append(new)
        if not res.has(member=label):
            t0 = time.perf_counter()
            row = measure(new, tok, None, None, texts, above, args.max_examples, with_agreement=False)
            res.add(
                member=label,
                hypernet=str(net) if net else "FVT",
                target=args.target,
                stage=args.stage,
                total_s=time.perf_counter() - t0,
                **row,
            )
            print(f"{name} {label}: BPB {_bpb(res.data['rows'][-1]).value:.3f}", flush=True)
    if not res.has(member="ensemble"):
        t0 = time.perf_counter()
        weights = zett.best_weights(models, tok, tuning_texts(args.docs))
        ens = zett.ensemble(models, weights)
        row = measure(ens, tok, None, None, texts, above, args.max_examples, with_agreement=False)
        res.add(
            member="ensemble",
            weights=weights,
            target=args.target,
            stage=args.stage,
            total_s=time.perf_counter() - t0,
            **row,
        )
        print(f"{name} ensemble {weights}: BPB {_bpb(res.data['rows'][-1]).value:.3f}", flush=True)


def report(runs: Path = RUNS) -> None:
    rows, meta = read_parts(runs, HERE / "results" / "ensembles.json", lambda r: (r["target"], r["stage"], r["member"]))
    out = Results(HERE / "results" / "ensembles.json", meta)
    out.data["rows"] = rows
    out.save()
    text = "\n".join(table(rows, meta)) + "\n"
    (HERE / "results" / "ensembles.md").write_text(text, encoding="utf-8")
    print(text)


def table(rows: list[dict], meta: dict) -> list[str]:
    """Markdown: per (target, stage), each member and the ensemble, the ensemble's paired differences to each
    member (``*``: the 95% interval excludes 0)."""
    names = sorted({t for r in rows for t in r.get("tasks", {})})
    n = shared_n(rows, names)
    lines = [
        f"SmolLM2-135M and Gemma-3-270M, each transferred with its own hypernetwork to one tokenizer, and their "
        f"ensemble (weights by `zett.best_weights` on held-out documents); {meta['docs']} documents per language "
        f"(first {meta['chars']} characters); {len(names)} tasks where SmolLM2 is above chance (first "
        f"{min(n.values()) if n else 0} examples each); 95% intervals; {meta['hardware']}.",
        "",
        "| target | stage | model | hypernetwork | weights | BPB | ensemble Δ BPB | accuracy | ensemble Δ accuracy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted({(r["target"], r["stage"]) for r in rows}):
        group = [r for r in rows if (r["target"], r["stage"]) == key]
        ens = next((r for r in group if r["member"] == "ensemble"), None)
        for r in sorted(group, key=lambda r: (r["member"] == "ensemble", r["member"])):
            vs = ens is not None and r is not ens
            cells = [
                r.get("hypernet", ""),
                ", ".join(f"{w:.1f}" for w in r["weights"]) if "weights" in r else "",
                fmt(_bpb(r)),
                fmt(compare(pooled(ens), pooled(r)), sig=True) if vs else "",
                fmt(_macro(task_paired(r, names, n))),
                fmt(compare(task_paired(ens, names, n), task_paired(r, names, n)), sig=True) if vs else "",
            ]
            lines.append(f"| {key[0]} | {key[1]} | {r['member']} | " + " | ".join(cells) + " |")
    lines += ["", "Ensemble Δ: the ensemble minus that member, paired on the same documents and examples."]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=("qwen3", "byte"))
    ap.add_argument("--stage", choices=("zero-shot", "distilled"), default="zero-shot")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--smollm2-hypernet", default="smollm2-135m", help="a hypernetwork; 'none': FVT")
    ap.add_argument("--gemma-hypernet", default="gemma-3-270m", help="a hypernetwork; 'none': FVT")
    ap.add_argument("--self-distill-steps", type=int, default=100)
    ap.add_argument("--docs", type=int, default=10)
    ap.add_argument("--max-examples", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", default=str(RUNS), help="where the parts and self-distillation runs go")
    args = ap.parse_args()
    if args.report:
        return report(Path(args.runs).expanduser())
    if not args.target:
        ap.error("--target TARGET or --report")
    run(args)


if __name__ == "__main__":
    main()
