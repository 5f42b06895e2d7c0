"""The benchmark suite behind the README's headline tables: quality, then speed and memory, in one command.

    python benchmarks/suite.py [--quick] [--hypernet smollm2-135m|PATH] [--distill-steps 20]

Quality: SmolLM2-135M transferred by each method (random, mean, FVT, the hypernetwork, and the hypernetwork
followed by N steps of ALM + SFT self-distillation) to each target tokenizer (the real ones in
../shared/assets/tokenizers, bytes, Gemma-3's 262k vocabulary, two sampled Unigram tokenizers), with the original
model for reference, scored by ``zett.evaluate`` (``evaluation.measure``): bits per byte on ``--docs`` held-out
documents of every corpus language (95% bootstrap intervals), accuracy on the tasks of ../shared/assets/tasks
where the original is above chance (first ``--max-examples`` of each), and agreement with the original (its
greedy outputs under the transfer, chrF of greedy outputs, ALM divergence). Differences to FVT are paired
(same documents, same examples) and marked where their 95% interval excludes 0.
Speed and memory: transfer time for a 32k and a 150k vocabulary (FVT and hypernetwork), hypernetwork training
step time and student tokens per second, ALM vs SFT step time on one batch, alignment throughput, one
tokenizer draw at 32k, and the peak RSS (of the largest run, when rows come from several).

Writes results/suite.{json,md,png} (``--quick``: results/suite_quick.*, sized for under 10 minutes on 2 cores). Rows are
appended as they are measured and skipped on a re-run; ``--redo hypernet,hypernet+alm,speed`` measures those
methods' rows and every speed row again (after retraining the network, or on another machine). Each row records
the machine it was measured on.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import ASSETS, Results, corpus, ensure_smollm2, hardware, require_assets, save_figure
from distill_losses import align_throughput, step_cost
from evaluation import languages, measure, quality_table
from hypernet_zero_shot import target_spec

import zett
from tokenizers_zoo import TokenizerSampler, load_tokenizer

LANGS = ["en", "de", "fr", "es", "ru", "zh", "code", "math"]  # the sampler's texts
REAL = ["gpt2", "llama2", "llama3", "mistral-v3", "qwen3", "smollm2"]
METHODS = ["random", "mean", "fvt", "hypernet", "hypernet+alm"]
QUICK_METHODS = ["fvt", "hypernet", "hypernet+alm"]  # --quick: FVT, the baseline every row is compared with
SPEED = ["transfer_speed", "hypernet_step", "alm_vs_sft", "alignment", "sampler", "peak_rss"]
QUICK_TASKS = ["arithmetic__1_digit_addition", "multiemo__products_sentence_en", "sports_understanding"]


def sampled_targets(base, n: int) -> dict[str, object]:
    """``n`` Unigram tokenizers drawn as in hypernetwork training (fixed seeds, never seen by the network)."""
    texts = [t[:2000] for lang in LANGS for t in corpus(lang, 40, split="train")]
    sampler = TokenizerSampler(base, texts, vocab_size=(8192, 32768))
    out = {}
    for seed in range(1000, 1000 + n):
        draw = sampler.sample(seed)
        out[f"sampled-{draw.vocab_size // 1000}k"] = draw.tokenizer
    return out


def quality(args, res: Results, model, tok, net, texts: dict[str, list[str]]) -> None:
    targets: dict[str, object] = {
        name: target_spec(name) for name in (["llama2", "byte"] if args.quick else REAL + ["byte", "gemma3"])
    }
    targets.update(sampled_targets(tok, 1 if args.quick else 2))
    all_tasks = zett.evaluate.load_tasks(ASSETS / "tasks")
    if args.quick:
        all_tasks = [t for t in all_tasks if t.name in QUICK_TASKS]
    sizes = {"n_prompts": args.prompts, "n_chat": args.prompts}
    if not res.has(kind="bpb", target="-", method="original"):
        row = measure(model, tok, model, tok, texts, all_tasks, args.max_examples, with_agreement=False, **sizes)
        res.add(kind="bpb", target="-", method="original", **_flat(row))
    original = next(r for r in res.data["rows"] if r["kind"] == "bpb" and r["method"] == "original")
    above = [t for t in all_tasks if original["tasks"][t.name]["above_chance"]]
    train = [t for lang in LANGS for t in corpus(lang, 50, split="train")]
    for name, spec in targets.items():
        for method in QUICK_METHODS if args.quick else METHODS:
            if method.startswith("hypernet") and net is None:
                continue
            if method == "hypernet+alm" and name not in ("byte", "llama2"):
                continue  # self-distillation is the slow row: bytes and one subword target
            if res.has(kind="bpb", target=name, method=method):
                continue
            t0 = time.perf_counter()
            kwargs = {"hypernet": net} if method.startswith("hypernet") else {"method": method}
            if method == "hypernet+alm":
                run = Path(tempfile.mkdtemp(prefix="zett-suite-"))
                kwargs.update(
                    distill=zett.DistillConfig(
                        steps=args.distill_steps, losses={"alm": 1.0, "sft": 1.0}, save_every=args.distill_steps
                    ),
                    distill_data=train,
                    distill_run_dir=run,
                )
            new, new_tok = zett.transfer(model, spec, base_tokenizer=tok, **kwargs)
            seconds = time.perf_counter() - t0
            row = measure(new, new_tok, model, tok, texts, above, args.max_examples, with_agreement=True, **sizes)
            res.add(kind="bpb", target=name, method=method, vocab=len(new_tok), transfer_s=seconds, **_flat(row))
            print(f"{name:12s} {method:13s} {pooled_bpb(res.data['rows'][-1]):.3f} ({seconds:.1f}s)", flush=True)
            del new


def _flat(row: dict) -> dict:
    """``measure``'s row with ``bpb`` as {language: value} (what the tables and plot read) and the intervals and
    per-document numbers under ``bpb_items``."""
    return dict(row, bpb={lang: v["bpb"] for lang, v in row["bpb"].items()}, bpb_items=row["bpb"])


def pooled_bpb(row: dict) -> float:
    items = row.get("bpb_items")
    if not items:  # a row from before per-document numbers were kept: the mean over languages
        return float(np.mean(list(row["bpb"].values())))
    return sum(sum(v["doc_bits"]) for v in items.values()) / sum(sum(v["doc_bytes"]) for v in items.values())


def external(args, res: Results, texts: dict[str, list[str]]) -> None:
    """An external baseline's output model (e.g. mergekit-tokensurgeon's SmolLM2 with Gemma-3's tokenizer):
    bits per byte only."""
    if args.tokensurgeon is None or res.has(kind="bpb", target="gemma3", method=args.tokensurgeon_label):
        return
    model, tok = zett.load_model(args.tokensurgeon)
    row = measure(model, tok, None, None, texts, [], None, with_agreement=False)
    res.add(
        kind="bpb",
        target="gemma3",
        method=args.tokensurgeon_label,
        vocab=len(tok),
        transfer_s=args.tokensurgeon_seconds,
        **_flat(row),
    )


def speed(args, res: Results, model, tok, net) -> None:
    for name in ("llama2", "qwen3"):
        target = load_tokenizer(target_spec(name))
        for method in ("fvt", "hypernet") if net is not None else ("fvt",):
            if not res.has(kind="transfer_speed", target=name, method=method):
                t0 = time.perf_counter()
                zett.transfer(
                    model,
                    target,
                    base_tokenizer=tok,
                    **({"hypernet": net} if method == "hypernet" else {"method": "fvt"}),
                )
                res.add(
                    kind="transfer_speed",
                    target=name,
                    vocab=len(target),
                    method=method,
                    seconds=time.perf_counter() - t0,
                )
    if not res.has(kind="hypernet_step"):
        steps = 3 if args.quick else 8
        with tempfile.TemporaryDirectory() as run:
            cfg = dict(
                zett.HypernetTrainConfig.from_yaml(
                    Path(__file__).parents[1] / "examples" / "hypernet_smollm2.yaml"
                ).to_dict(),
                run_dir=run,
                steps=steps,
                eval_every=0,
                eval_tokenizers=[],
                startup_texts=400,
                data=str(ASSETS / "corpus" / "*.train.jsonl"),
                eval_data=None,
                real_tokenizers=[
                    str(ASSETS / "tokenizers" / n) for n in ("gpt2", "llama2", "llama3", "mistral-v3", "qwen3")
                ],
            )
            result = zett.train_hypernet(cfg, base_model=model, base_tokenizer=tok, progress=False)
        rows = [m for m in result.metrics if "loss" in m][1:]  # the first step also fills caches
        seconds = (rows[-1]["seconds"] - rows[0]["seconds"]) / max(1, len(rows) - 1)
        tokens = (rows[-1]["student_tokens_seen"] - rows[0]["student_tokens_seen"]) / max(1, len(rows) - 1)
        res.add(kind="hypernet_step", seconds=seconds, student_tokens_per_s=tokens / seconds)
    if not res.has(kind="alm_vs_sft"):
        texts = [t[:2000] for t in corpus("en", 8, split="train")]
        student, s_tok = zett.transfer(model, "byte", base_tokenizer=tok)
        res.add(kind="alm_vs_sft", **step_cost(model, tok, student, s_tok, texts, "no"))
        threads = torch.get_num_threads()
        res.add(
            kind="alignment", tokens_per_s=align_throughput(tok, s_tok, [t for lang in LANGS for t in corpus(lang, 4)])
        )
        torch.set_num_threads(threads)  # align_throughput measures on one thread
    if not res.has(kind="sampler"):
        sampler = TokenizerSampler(
            tok, [t[:2000] for lang in LANGS for t in corpus(lang, 60, split="train")], vocab_size=(32768, 32768)
        )
        times = []
        for seed in range(3):
            t0 = time.perf_counter()
            sampler.sample(seed)
            times.append(time.perf_counter() - t0)
        res.add(kind="sampler", draw_32k_s=statistics.median(times))


def write_outputs(res: Results, out: Path, langs: list[str]) -> None:
    rows = res.data["rows"]
    bpb = [r for r in rows if r["kind"] == "bpb"]

    def machines(subset: list[dict]) -> list[str]:  # a row from before rows recorded theirs: the file's machine
        return sorted({r.get("hardware", res.data["meta"]["hardware"]) for r in subset})

    lines = [
        f"SmolLM2-135M-Instruct, zero-shot tokenizer transfer; BPB on held-out text (lower is better); "
        f"measured on {' and '.join(machines(rows))}",
        "",
        "| target | method | " + " | ".join(langs) + " | mean | vs FVT | seconds |",
        "|---|---|" + "---|" * (len(langs) + 3),
    ]
    fvt = {r["target"]: np.mean(list(r["bpb"].values())) for r in bpb if r["method"] == "fvt"}
    for r in bpb:
        mean = float(np.mean(list(r["bpb"].values())))
        delta = f"{mean - fvt[r['target']]:+.3f}" if r["target"] in fvt and r["method"] != "fvt" else ""
        lines.append(
            f"| {r['target']} | {r['method']} | "
            + " | ".join(f"{r['bpb'][lang]:.3f}" for lang in langs)
            + f" | {mean:.3f} | {delta} | {secs(r.get('transfer_s'))} |"
        )
    timed_on = machines([r for r in rows if r["kind"] in SPEED])
    with_items = [r for r in bpb if r.get("bpb_items")]
    if any(r["method"] == "original" for r in with_items):
        lines += [
            "",
            "With 95% intervals (pooled over languages; tasks where the original is above chance):",
            "",
            *quality_table(with_items),
        ]
    lines += [
        "",
        *summary(bpb, langs),
        "",
        "Speed and memory" + (f" ({'; '.join(timed_on)})" if timed_on else "") + ":",
        "",
    ]
    for r in rows:
        if r["kind"] == "transfer_speed":
            lines.append(f"- transfer {r['method']} to {r['target']} ({r['vocab']:,} tokens): {r['seconds']:.1f} s")
        elif r["kind"] == "hypernet_step":
            lines.append(
                f"- hypernetwork training step: {r['seconds']:.2f} s, {r['student_tokens_per_s']:.0f} student tokens/s"
            )
        elif r["kind"] == "alm_vs_sft":
            lines.append(
                f"- ALM step {r['alm_step_s']:.2f} s vs SFT {r['sft_step_s']:.2f} s on one batch "
                f"({r['alm_over_sft']:.2f}x); teacher forward {r['teacher_s']:.2f} s"
            )
        elif r["kind"] == "alignment":
            lines.append(f"- alignment: {r['tokens_per_s'] / 1e6:.2f}M tokens/s (one thread, SmolLM2 <-> bytes)")
        elif r["kind"] == "sampler":
            lines.append(f"- tokenizer draw at 32k: {r['draw_32k_s']:.2f} s")
        elif r["kind"] == "peak_rss":
            lines.append(f"- peak RSS (the largest of the runs that filled this file): {r['gb']:.2f} GiB")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(bpb, out.with_suffix(".png"))


def summary(bpb: list[dict], langs: list[str]) -> list[str]:
    """Mean BPB per target (rows) and method (columns), and on how many languages the hypernetwork beats FVT."""
    methods = list(dict.fromkeys(r["method"] for r in bpb if r["method"] != "original"))
    targets = list(dict.fromkeys(r["target"] for r in bpb if r["target"] != "-"))
    get = {(r["target"], r["method"]): r["bpb"] for r in bpb}
    lines = [
        "Mean over the languages:",
        "",
        "| target | " + " | ".join(methods) + " | hypernet wins vs FVT |",
        "|---|" + "---|" * (len(methods) + 1),
    ]
    for target in targets:
        cells = [f"{np.mean(list(get[target, m].values())):.3f}" if (target, m) in get else "" for m in methods]
        fvt, net = get.get((target, "fvt")), get.get((target, "hypernet"))
        wins = f"{sum(net[lang] < fvt[lang] for lang in langs)}/{len(langs)}" if fvt and net else ""
        # copies score as FVT's rows do; rows measured on two machines differ in float rounding (~4e-6 seen)
        if fvt and net and all(abs(net[lang] - fvt[lang]) < 1e-4 for lang in langs):
            wins = "tie (all rows are copies)"
        lines.append(f"| {target} | " + " | ".join(cells) + f" | {wins} |")
    return lines


def secs(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def plot(bpb: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted({r["target"] for r in bpb if r["target"] != "-"})
    methods = list(
        dict.fromkeys(
            m for m in METHODS + [r["method"] for r in bpb] if m != "original" and any(r["method"] == m for r in bpb)
        )
    )
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(targets)), 4))
    width = 0.8 / max(1, len(methods))
    for k, method in enumerate(methods):
        xs, ys = [], []
        for i, target in enumerate(targets):
            hit = [r for r in bpb if r["target"] == target and r["method"] == method]
            if hit:
                xs.append(i + k * width)
                ys.append(float(np.mean(list(hit[0]["bpb"].values()))))
        ax.bar(xs, ys, width, label=method)
    original = [r for r in bpb if r["method"] == "original"]
    if original:
        ax.axhline(float(np.mean(list(original[0]["bpb"].values()))), color="black", linestyle="--", label="original")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(targets))], targets, rotation=30)
    ax.set_ylabel("mean bits per byte (lower is better)")
    ax.set_title("SmolLM2-135M: zero-shot transfer by method")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--quick",
        action="store_true",
        help="2 languages x 6 documents, 3 tasks x 12 examples, 3 targets, FVT and the hypernetwork only, short runs",
    )
    ap.add_argument("--hypernet", default="smollm2-135m", help="shipped name or directory ('none': heuristics)")
    ap.add_argument("--distill-steps", type=int, default=20)
    ap.add_argument("--docs", type=int, default=20, help="documents per language (intervals need 20 or more)")
    ap.add_argument("--chars", type=int, default=1000, help="first N characters of each document")
    ap.add_argument("--max-examples", type=int, default=50, help="first N examples of each task")
    ap.add_argument("--prompts", type=int, default=8, help="agreement: plain prompts, and as many chat prompts")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--tokensurgeon",
        type=Path,
        help="mergekit-tokensurgeon output: SmolLM2-135M with Gemma-3's "
        "tokenizer (Gemma-3-270M as donor), scored on the gemma3 target",
    )
    ap.add_argument(
        "--tokensurgeon-label", default="tokensurgeon (OMP)", help="method name in the table, e.g. with its k"
    )
    ap.add_argument("--tokensurgeon-seconds", type=float, help="its measured wall time, for the table")
    ap.add_argument(
        "--redo",
        default="",
        help="comma-separated methods (quality rows) and/or speed row kinds to "
        "measure again; 'speed' = every speed and memory row",
    )
    args = ap.parse_args()
    require_assets()
    if args.quick:
        args.docs, args.chars, args.distill_steps, args.max_examples, args.prompts = 6, 400, 3, 12, 1
    out = args.out or Path(__file__).parent / "results" / ("suite_quick.json" if args.quick else "suite.json")
    res = Results(out, {"hardware": hardware(), "model": "SmolLM2-135M-Instruct", "hypernet": args.hypernet})
    sizes = {"docs": args.docs, "chars": args.chars, "max_examples": args.max_examples, "prompts": args.prompts}
    before = {k: res.data["meta"].get(k) for k in sizes}
    if res.has(kind="bpb") and before != sizes:
        raise SystemExit(
            f"{out} holds rows measured with {before}, not {sizes}: pass --out NEW.json, or the same sizes to resume"
        )
    res.data["meta"].update(sizes)
    if args.hypernet != "none":  # heuristic rows may come from an earlier run without the network
        res.data["meta"]["hypernet"] = args.hypernet
    redo = {name for item in args.redo.split(",") if item for name in (SPEED if item == "speed" else [item])}
    unknown = redo - set(METHODS) - set(SPEED) - {r.get("method") for r in res.data["rows"]}
    if unknown:
        raise SystemExit(
            f"--redo {args.redo}: unknown {sorted(unknown)}; use methods ({', '.join(METHODS)}), "
            f"speed or speed row kinds ({', '.join(SPEED)})"
        )
    if redo:
        dropped = res.drop(lambda r: r["kind"] not in redo and r.get("method") not in redo)
        print(f"--redo: {dropped} rows to measure again", flush=True)
    model, tok = zett.load_model(ensure_smollm2())
    net = None if args.hypernet == "none" else zett.Hypernet.from_pretrained(args.hypernet, model, tok).eval()
    langs = ["en", "zh"] if args.quick else languages()
    texts = {lang: [t[: args.chars] for t in corpus(lang, args.docs)] for lang in langs}
    quality(args, res, model, tok, net, texts)
    external(args, res, texts)
    speed(args, res, model, tok, net)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux: GiB (the key says gb)
    earlier = [r["gb"] for r in res.data["rows"] if r["kind"] == "peak_rss"]
    res.data["rows"] = [r for r in res.data["rows"] if r["kind"] != "peak_rss"]  # one row: the largest run's
    res.add(kind="peak_rss", gb=max([peak, *earlier]))
    write_outputs(res, out, langs)


if __name__ == "__main__":
    main()
