"""How much of the original model does a transfer keep? BPB, task accuracy and agreement, with intervals.

    python benchmarks/evaluation.py [--targets byte,llama2,qwen3,gemma3] [--methods fvt,hypernet]
                                    [--docs 20] [--chars 1000] [--max-examples N] [--out results/evaluation.json]
    python benchmarks/evaluation.py --base gemma3 [--hypernet gemma-3-270m]   # results/evaluation_gemma3.json

SmolLM2-135M-Instruct (or Gemma-3-270M, ``--base gemma3``: its default targets are every asset tokenizer and
bytes, its hypernetwork ``gemma-3-270m``) and each (method, target) transfer of it, scored with ``zett.evaluate``:
bits per byte on the first ``--chars`` characters of ``--docs`` valid documents of every corpus language
(95% bootstrap interval over documents), accuracy on the multiple-choice tasks of ``../shared/assets/tasks``
(the original on all 25; transfers on the tasks where the original is above chance), and agreement with the
original (its greedy continuations of 16 prompts and answers to 16 chat prompts scored under the transfer, chrF
of greedy outputs, ALM divergence). Per-item numbers (bits per document, credit per example, chrF per prompt)
are stored, so any two rows can be compared pairwise afterwards (``report()``: differences with intervals).
Rows are appended as they are measured and skipped on a re-run (resumable).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import ASSETS, Results, corpus, ensure_gemma, ensure_smollm2, hardware, require_assets, save_figure
from hypernet_zero_shot import target_spec

import zett
from zett.evaluate import agreement, choice_accuracy, prompts_from_texts, score
from zett.evaluate.stats import Paired, compare, ratio_estimate

HERE = Path(__file__).parent
BASES = {  # --base: the model, its default targets, hypernetwork and results file
    "smollm2": ("SmolLM2-135M-Instruct", ensure_smollm2, "byte,llama2,qwen3,gemma3", "smollm2-135m", "evaluation.json"),
    "gemma3": (
        "Gemma-3-270M",
        ensure_gemma,
        "byte,gpt2,llama2,llama3,mistral-v3,qwen3,smollm2",
        "gemma-3-270m",
        "evaluation_gemma3.json",
    ),
}


def languages() -> list[str]:
    return sorted(p.name.removesuffix(".valid.jsonl") for p in (ASSETS / "corpus").glob("*.valid.jsonl"))


def texts_by_language(docs: int, chars: int) -> dict[str, list[str]]:
    return {lang: [t[:chars] for t in corpus(lang, docs)] for lang in languages()}


def measure(
    model,
    tok,
    original,
    original_tok,
    texts,
    tasks,
    max_examples,
    *,
    with_agreement: bool,
    n_prompts: int = 16,
    n_chat: int = 16,
) -> dict:
    """One row's numbers (per-item data kept): BPB per language, task accuracy, agreement with the original on
    ``n_prompts`` prompts cut from the first document of each language and ``n_chat`` chat prompts."""
    row: dict = {"bpb": {}, "seconds": {}}
    t0 = time.perf_counter()
    for lang, docs in texts.items():
        res = score(model, tok, docs, progress=False)
        est = res.estimate()
        row["bpb"][lang] = {
            "bpb": res.bpb,
            "ci_low": est.ci_low,
            "ci_high": est.ci_high,
            "doc_bits": list(res.doc_bits),
            "doc_bytes": list(res.doc_bytes),
        }
    row["seconds"]["bpb"] = time.perf_counter() - t0
    if tasks:
        t0 = time.perf_counter()
        acc = choice_accuracy(model, tok, tasks, max_examples=max_examples, progress=False)
        row["tasks"] = {
            t.task: dict(t.as_dict(), credit=t.credit.tolist(), predictions=t.predictions.tolist()) for t in acc.tasks
        }
        row["macro"] = acc.macro().as_dict()
        row["seconds"]["tasks"] = time.perf_counter() - t0
    if with_agreement:
        t0 = time.perf_counter()
        prompts = prompts_from_texts([docs[0] for docs in texts.values()][:n_prompts])
        chat = zett.evaluate.CHAT_PROMPTS[:n_chat] if tok.chat_template and original_tok.chat_template else ()
        res = agreement(model, tok, original, original_tok, prompts, chat_prompts=chat, progress=False)
        row["agreement"] = res.as_dict()
        row["agreement"]["chrf_items"] = res.similarity.values.tolist()
        if res.reference_bpb is not None:
            row["agreement"]["reference_doc_bits"] = list(res.reference_bpb.doc_bits)
            row["agreement"]["reference_doc_bytes"] = list(res.reference_bpb.doc_bytes)
        if res.chat_bpb is not None:
            row["agreement"]["chat_doc_bits"] = list(res.chat_bpb.doc_bits)
            row["agreement"]["chat_doc_bytes"] = list(res.chat_bpb.doc_bytes)
        row["seconds"]["agreement"] = time.perf_counter() - t0
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", choices=sorted(BASES), default="smollm2", help="the model to transfer")
    ap.add_argument("--targets", default=None, help="default: the base's (see the module docstring)")
    ap.add_argument("--methods", default="fvt,hypernet")
    ap.add_argument("--hypernet", default=None, help="default: the base's shipped hypernetwork")
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--chars", type=int, default=1000)
    ap.add_argument("--max-examples", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="default: results/evaluation.json (gemma3: evaluation_gemma3.json)")
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="PART",
        help="only merge the rows of other runs' result files into --out (rows it lacks) and write its tables",
    )
    args = ap.parse_args()
    name, ensure_base, targets, hypernet, out = BASES[args.base]
    args.targets, args.hypernet = args.targets or targets, args.hypernet or hypernet
    args.out = args.out or str(HERE / "results" / out)
    if args.merge:
        return merge(Path(args.out), [Path(p) for p in args.merge])
    require_assets()
    if args.threads:
        torch.set_num_threads(args.threads)
    res = Results(
        Path(args.out),
        {
            "hardware": hardware(),
            "docs": args.docs,
            "chars": args.chars,
            "max_examples": args.max_examples,
            "base": name,
        },
    )
    model, tok = zett.load_model(ensure_base())
    texts = texts_by_language(args.docs, args.chars)
    all_tasks = zett.evaluate.load_tasks(ASSETS / "tasks")
    if not res.has(method="original"):
        t0 = time.perf_counter()
        row = measure(model, tok, model, tok, texts, all_tasks, args.max_examples, with_agreement=False)
        res.add(method="original", target="-", total_s=time.perf_counter() - t0, **row)
        print(f"original: {summary(res.data['rows'][-1])}", flush=True)
    original = next(r for r in res.data["rows"] if r["method"] == "original")
    above = [t for t in all_tasks if original["tasks"][t.name]["above_chance"]]
    net = zett.Hypernet.from_pretrained(args.hypernet) if "hypernet" in args.methods else None
    for target in args.targets.split(","):
        for method in args.methods.split(","):
            if res.has(method=method, target=target):
                continue
            t0 = time.perf_counter()
            kwargs = {"hypernet": net} if method == "hypernet" else {"method": method}
            new, new_tok = zett.transfer(model, target_spec(target), base_tokenizer=tok, **kwargs)
            transfer_s = time.perf_counter() - t0
            row = measure(new, new_tok, model, tok, texts, above, args.max_examples, with_agreement=True)
            res.add(
                method=method,
                target=target,
                vocab=len(new_tok),
                transfer_s=transfer_s,
                total_s=time.perf_counter() - t0,
                **row,
            )
            print(f"{target} {method}: {summary(res.data['rows'][-1])}", flush=True)
            del new
    write_markdown(res, HERE / "results" / (Path(args.out).stem + ".md"))
    plot(res.data["rows"], HERE / "results" / (Path(args.out).stem + ".png"))


def merge(out: Path, parts: list[Path]) -> None:
    """Rows of ``parts`` (runs of this script in parallel, e.g. one per target) that ``out`` lacks, added to it;
    then its markdown and plot."""
    res = Results(out, json.loads(parts[0].read_text())["meta"])
    for part in parts:
        for row in json.loads(part.read_text())["rows"]:
            if not res.has(method=row["method"], target=row["target"]):
                res.data["rows"].append(row)
    res.save()
    write_markdown(res, HERE / "results" / (out.stem + ".md"))
    plot(res.data["rows"], HERE / "results" / (out.stem + ".png"))
    for row in res.data["rows"]:
        print(f"{row['target']} {row['method']}: {summary(row)}")


def summary(row: dict) -> str:
    bits = sum(sum(v["doc_bits"]) for v in row["bpb"].values())
    n_bytes = sum(sum(v["doc_bytes"]) for v in row["bpb"].values())
    out = f"BPB {bits / n_bytes:.3f}"
    if "macro" in row:
        out += f", tasks {row['macro']['value']:.3f}"
    if "agreement" in row:
        out += f", chrF {row['agreement']['similarity_chrf']['value']:.3f}"
    return out + f" ({row['total_s']:.0f} s)"


def pooled(row: dict) -> Paired:
    """All languages' documents pooled: total bits over total bytes."""
    items = row.get("bpb_items") or row["bpb"]
    bits = np.concatenate([items[k]["doc_bits"] for k in sorted(items)])
    n_bytes = np.concatenate([items[k]["doc_bytes"] for k in sorted(items)])
    return Paired(bits, tuple(sorted(items)) + (len(bits),), den=n_bytes.astype(float))


def task_paired(row: dict, names: list[str], n: dict[str, int] | None = None) -> Paired:
    """Credit per example over the tasks ``names``, stratified by task; ``n``: the first ``n[task]`` examples
    only (rows measured with different ``--max-examples`` are compared on the examples they share)."""
    credit = [np.asarray(row["tasks"][t]["credit"])[: (n or {}).get(t)] for t in names]
    strata = np.concatenate([np.full(len(c), i) for i, c in enumerate(credit)])
    return Paired(np.concatenate(credit), tuple(names), strata=strata)


def shared_n(rows: list[dict], names: list[str]) -> dict[str, int]:
    """Per task, the number of examples every row with tasks has."""
    return {t: min(len(r["tasks"][t]["credit"]) for r in rows if "tasks" in r and t in r["tasks"]) for t in names}


def fmt(est, spec=".3f", sig=False) -> str:
    half = (est.ci_high - est.ci_low) / 2
    return f"{format(est.value, spec)} ± {format(half, spec)}" + (" *" if sig and est.excludes(0) else "")


def quality_table(rows: list[dict]) -> list[str]:
    """Markdown rows: per (target, method) pooled BPB and task macro accuracy on the tasks where the original is
    above chance, each with its paired difference to the original and to FVT on the same target (``*`` where the
    difference's 95% interval excludes 0), and agreement with the original."""
    original = next(r for r in rows if r["method"] == "original")
    above = [n for n, t in original["tasks"].items() if t["above_chance"]]
    n = shared_n(rows, above)
    lines = [
        "| target | method | BPB (all languages) | Δ vs original | Δ vs FVT | accuracy (macro) | Δ vs original | "
        "Δ vs FVT | reference BPB | chrF | ALM divergence |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fvt = next((x for x in rows if x["target"] == r["target"] and x["method"] == "fvt"), None)
        others = [x if x is not None and x is not r and r is not original else None for x in (original, fvt)]
        has_tasks = "tasks" in r and above
        cells = [fmt(_bpb(r))]
        cells += [fmt(compare(pooled(r), pooled(x)), sig=True) if x else "" for x in others]
        cells.append(fmt(_macro(task_paired(r, above, n))) if has_tasks else "")
        cells += [
            fmt(compare(task_paired(r, above, n), task_paired(x, above, n)), sig=True) if x and has_tasks else ""
            for x in others
        ]
        a = r.get("agreement", {})
        cells += [
            fmt(_est(a, "reference_bpb")) if "reference_bpb" in a else "",
            fmt(_est(a, "similarity_chrf")) if a else ("1" if r is original else ""),
            fmt(_est(a, "divergence"), ".4f") if "divergence" in a else "",
        ]
        lines.append(f"| {r['target']} | {r['method']} | " + " | ".join(cells) + " |")
    return lines + ["", "`*`: the paired 95% interval of the difference excludes 0 (the evaluation separates the two)."]


def language_table(rows: list[dict]) -> list[str]:
    """Markdown: BPB per language (20 documents each) for the original and every (target, method); a transfer's
    cell is marked ``+`` / ``-`` where it is better / worse than FVT on the same target with a paired 95% interval
    that excludes 0."""
    original = next(r for r in rows if r["method"] == "original")
    others = [r for r in rows if r is not original]
    lines = [
        "| language | original | " + " | ".join(f"{r['target']} {r['method']}" for r in others) + " |",
        "|---" * (len(others) + 2) + "|",
    ]
    for lang in sorted(original["bpb"]):
        cells = [f"{original['bpb'][lang]['bpb']:.3f}"]
        for r in others:
            cell = f"{r['bpb'][lang]['bpb']:.3f}"
            fvt = next((x for x in rows if x["target"] == r["target"] and x["method"] == "fvt"), None)
            if fvt is not None and fvt is not r:
                d = compare(_lang(r, lang), _lang(fvt, lang))
                cell += " +" if d.ci_high < 0 else " -" if d.ci_low > 0 else ""
            cells.append(cell)
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    return lines


def _lang(row: dict, lang: str) -> Paired:
    v = row["bpb"][lang]
    return Paired(np.asarray(v["doc_bits"]), (lang, len(v["doc_bits"])), den=np.asarray(v["doc_bytes"], float))


def task_table(original: dict) -> list[str]:
    lines = ["| task | accuracy | chance | n |", "|---|---|---|---|"]
    for name, t in original["tasks"].items():
        lines.append(
            f"| {name} | {t['accuracy']:.3f} [{t['ci_low']:.3f}, {t['ci_high']:.3f}]"
            f"{' *' if t['above_chance'] else ''} | {t['chance']:.3f} | {t['n']} |"
        )
    return lines


def write_markdown(res: Results, path: Path) -> None:
    rows = res.data["rows"]
    original = next(r for r in rows if r["method"] == "original")
    above = [n for n, t in original["tasks"].items() if t["above_chance"]]
    meta = res.data["meta"]
    lines = [
        f"{meta.get('base', 'SmolLM2-135M-Instruct')} transferred zero-shot; {meta['docs']} documents per language "
        f"(first {meta['chars']} characters), {len(original['bpb'])} languages; {len(above)} tasks where the original "
        f"is above chance (accuracy on the first {min(shared_n(rows, above).values())} examples of each, the "
        f"examples every row has); 95% intervals; measured on {meta['hardware']}.",
        "",
        *quality_table(rows),
        "",
        "Bits per byte per language (`+`/`-`: better/worse than FVT on that target, paired 95% interval):",
        "",
        *language_table(rows),
        "",
        "Original model, per task (95% Wilson interval; `*` above chance):",
        "",
        *task_table(original),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _bpb(row: dict):
    p = pooled(row)
    return ratio_estimate(p.num, p.den)


def plot(rows: list[dict], path: Path) -> None:
    """Pooled BPB and task macro accuracy per target and method, 95% intervals as error bars; the original as
    a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    original = next(r for r in rows if r["method"] == "original")
    above = [n for n, t in original["tasks"].items() if t["above_chance"]]
    n = shared_n(rows, above)
    targets = list(dict.fromkeys(r["target"] for r in rows if r["method"] != "original"))
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != "original"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, label, get in (
        (axes[0], "bits per byte (lower is better)", _bpb),
        (axes[1], f"accuracy, {len(above)} tasks (macro)", lambda r: _macro(task_paired(r, above, n))),
    ):
        width = 0.8 / max(len(methods), 1)
        for m, method in enumerate(methods):
            xs, ys, errs = [], [], [[], []]
            for t, target in enumerate(targets):
                row = next((r for r in rows if r["target"] == target and r["method"] == method), None)
                if row is None:
                    continue
                est = get(row)
                xs.append(t + (m - (len(methods) - 1) / 2) * width)
                ys.append(est.value)
                errs[0].append(est.value - est.ci_low)
                errs[1].append(est.ci_high - est.value)
            ax.bar(xs, ys, width, yerr=errs, capsize=3, label=method)
        ref = get(original)
        ax.axhline(ref.value, color="k", lw=1, ls="--", label="original")
        ax.set_xticks(range(len(targets)), targets)
        ax.set_title(label, fontsize=10)
    chance = float(np.mean([original["tasks"][t]["chance"] for t in above]))
    axes[1].axhline(chance, color="gray", lw=1, ls=":", label="chance")
    axes[0].legend(fontsize=8)
    save_figure(fig, path)


def _est(agreement_row: dict, key: str):
    from zett.evaluate.stats import Estimate

    d = agreement_row[key]
    return Estimate(d["value"], d["ci_low"], d["ci_high"], d["n"])


def _macro(p: Paired):
    from zett.evaluate.stats import Estimate, bootstrap

    full = np.arange(len(p.num))[None, :]
    low, high = bootstrap(p.statistic, len(p.num), strata=p.strata)
    return Estimate(float(p.statistic(full)[0]), low, high, len(p.num))


if __name__ == "__main__":
    main()
