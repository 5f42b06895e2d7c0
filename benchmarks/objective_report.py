"""The objective study's tables and plot (``python benchmarks/objective_study.py --report`` writes them)."""

from __future__ import annotations

from pathlib import Path

from common import save_figure
from evaluation import _bpb, _est, _macro, fmt, pooled, shared_n, task_paired
from objective_study import SEED, START, TARGETS

from zett.evaluate.stats import compare


def plot(refs: list[dict], rows: list[dict], path: Path) -> None:
    """Per target, each arm's (and FVT's) BPB difference from the shipped network, paired 95% intervals as error
    bars: left of 0 is better than the network every arm started from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = scored_targets(refs)
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 3.5), sharey=True, squeeze=False)
    arms = sorted({label(r, rows) for r in rows})
    for ax, target in zip(axes[0], targets):
        shipped = next(r for r in refs if r["arm"] == "shipped" and r["target"] == target)
        found = {label(r, rows): r for r in rows if r["target"] == target}
        diffs = [compare(pooled(found[a]), pooled(shipped)) if a in found else None for a in arms]
        ys = [i for i, d in enumerate(diffs) if d is not None]
        vals = [diffs[i].value for i in ys]
        errs = [[diffs[i].value - diffs[i].ci_low for i in ys], [diffs[i].ci_high - diffs[i].value for i in ys]]
        ax.errorbar(vals, ys, xerr=errs, fmt="o", capsize=3)
        ax.axvline(0, color="k", lw=1)
        ax.set_yticks(range(len(arms)), arms)
        ax.set_title(f"{target}: BPB minus the shipped network's", fontsize=10)
    save_figure(fig, path)


def same_run(a: dict, b: dict) -> bool:
    """Same seed and same training languages: arms that differ only in the loss."""
    return a.get("seed", SEED) == b.get("seed", SEED) and a.get("held_out") == b.get("held_out")


def scored_targets(refs: list[dict]) -> list[str]:
    """The study's targets that have the shipped network's row to pair with."""
    return [t for t in TARGETS if any(r["arm"] == "shipped" and r["target"] == t for r in refs)]


def label(row: dict, rows: list[dict]) -> str:
    """An arm's name, with its seed where the rows hold more than one seed, and the language it was trained
    without."""
    seeds = {r.get("seed", SEED) for r in rows}
    name = f"{row['arm']} (seed {row.get('seed', SEED)})" if len(seeds) > 1 else row["arm"]
    return name + (f", without {row['held_out']}" if row.get("held_out") else "")


def table(refs: list[dict], rows: list[dict], meta: dict) -> list[str]:
    """Markdown: per target, FVT, the shipped network and every arm, each with its paired differences to the
    shipped network, to FVT and to the next-token arm (``*``: the 95% interval excludes 0)."""
    original = next(r for r in refs if r["method"] == "original")
    above = [n for n, t in original["tasks"].items() if t["above_chance"]]
    everything = refs + rows
    n = shared_n(everything, above)
    steps = ", ".join(str(s) for s in sorted({r["steps"] for r in rows}))
    tokens = ", ".join(f"{t:,}" for t in sorted({r["student_tokens"] for r in rows}))
    lines = [
        f"Hypernetwork objectives, each continuing `{START}` for {steps} steps ({tokens} student tokens) with the "
        f"same data and tokenizers; {meta['docs']} documents per language (first {meta['chars']} characters), "
        f"{len(original['bpb'])} languages; {len(above)} tasks where the original is above chance (first "
        f"{min(n.values())} examples each); 95% intervals, Δ paired with the shipped network; {meta['hardware']}.",
        "",
        "| target | arm | BPB | Δ vs shipped | Δ vs FVT | Δ vs ntp arm | accuracy | Δ vs shipped | Δ vs ntp arm | chrF "
        "| reference BPB | ALM divergence | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for target in scored_targets(refs):
        shipped = next(r for r in refs if r["arm"] == "shipped" and r["target"] == target)
        fvt = next(r for r in refs if r["arm"] == "fvt" and r["target"] == target)
        arms = [r for r in rows if r["target"] == target]
        for r in [fvt, shipped] + arms:
            a = r.get("agreement", {})
            ntp = next((x for x in arms if x["arm"] == "ntp" and same_run(x, r)), None)
            vs_ntp = ntp is not None and r in arms and r is not ntp
            cells = [
                fmt(_bpb(r)),
                fmt(compare(pooled(r), pooled(shipped)), sig=True) if r is not shipped else "",
                fmt(compare(pooled(r), pooled(fvt)), sig=True) if r is not fvt else "",
                fmt(compare(pooled(r), pooled(ntp)), sig=True) if vs_ntp else "",
                fmt(_macro(task_paired(r, above, n))),
                fmt(compare(task_paired(r, above, n), task_paired(shipped, above, n)), sig=True)
                if r is not shipped
                else "",
                fmt(compare(task_paired(r, above, n), task_paired(ntp, above, n)), sig=True) if vs_ntp else "",
                fmt(_est(a, "similarity_chrf")),
                fmt(_est(a, "reference_bpb")),
                fmt(_est(a, "divergence"), ".4f"),
                f"{r['train_s']:.0f}" if r.get("train_s") else "",
            ]
            lines.append(f"| {target} | {label(r, rows) if r in arms else r['arm']} | " + " | ".join(cells) + " |")
    lines += ["", "`*`: the paired 95% interval of the difference excludes 0 (the evaluation separates them)."]
    return lines + held_out_table(refs, rows)


def held_out_table(refs: list[dict], rows: list[dict]) -> list[str]:
    """Markdown: arms trained without a language, on that language's documents only, against FVT, the shipped
    network and the same arm trained on every language (same seed)."""
    held = [r for r in rows if r.get("held_out")]
    if not held:
        return []
    lines = [
        "",
        "Languages left out of an arm's training text, scored on that language's documents alone:",
        "",
        "| target | arm | language | BPB | Δ vs FVT | Δ vs shipped | Δ vs the arm trained on it |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in held:
        lang, target = r["held_out"], r["target"]
        if target not in scored_targets(refs):
            continue

        def one(row: dict) -> object:
            return pooled({"bpb": {lang: row["bpb"][lang]}})

        fvt = next(x for x in refs if x["arm"] == "fvt" and x["target"] == target)
        shipped = next(x for x in refs if x["arm"] == "shipped" and x["target"] == target)
        full = next(
            (
                x
                for x in rows
                if x["target"] == target
                and x["arm"] == r["arm"]
                and not x.get("held_out")
                and x.get("seed", SEED) == r.get("seed", SEED)
            ),
            None,
        )
        value = _bpb({"bpb": {lang: r["bpb"][lang]}})
        cells = [
            fmt(value),
            fmt(compare(one(r), one(fvt)), sig=True),
            fmt(compare(one(r), one(shipped)), sig=True),
            fmt(compare(one(r), one(full)), sig=True) if full else "",
        ]
        lines.append(f"| {target} | {label(r, rows)} | {lang} | " + " | ".join(cells) + " |")
    return lines
