"""A dependency-free SVG of a run's curves: training loss (and its moving average) and evaluation BPB (per
tokenizer, the mean over languages, for a hypernetwork; the student's, for distillation)."""

from __future__ import annotations

import json
from pathlib import Path

from hypernet.files import write_text

W, H, PAD = 640, 240, 40
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _panel(series: dict[str, list[tuple[float, float]]], top: int, title: str) -> list[str]:
    points = [p for s in series.values() for p in s]
    if not points:
        return []
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-9)

    def xy(x: float, y: float) -> str:
        px, py = PAD + (x - x0) / (x1 - x0) * (W - 2 * PAD), top + H - PAD - (y - y0) / (y1 - y0) * (H - 2 * PAD)
        return f"{px:.1f},{py:.1f}"

    out = [
        f'<text x="{PAD}" y="{top + 20}" font-size="13">{title}</text>',
        f'<text x="4" y="{top + PAD}" font-size="10">{y1:.3g}</text>',
        f'<text x="4" y="{top + H - PAD}" font-size="10">{y0:.3g}</text>',
        f'<text x="{W - PAD}" y="{top + H - 10}" font-size="10" text-anchor="end">step {x1:.0f}</text>',
    ]
    for n, (name, pts) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" '
            f'points="{" ".join(xy(x, y) for x, y in pts)}"/>'
        )
        out.append(
            f'<text x="{W - PAD}" y="{top + 34 + 12 * n}" font-size="10" fill="{colour}" '
            f'text-anchor="end">{name}</text>'
        )
    return out


def write_curves(metrics: Path, out: Path) -> None:
    """Read ``metrics.jsonl`` and write ``out`` (SVG) atomically."""
    if not metrics.exists():
        return
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    loss = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    k = 25
    smooth = [
        (loss[i][0], sum(v for _, v in loss[max(0, i - k + 1) : i + 1]) / len(loss[max(0, i - k + 1) : i + 1]))
        for i in range(len(loss))
    ]
    bpb: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        value = r.get("eval_bpb")
        if isinstance(value, (int, float)):  # distillation: the student's BPB
            bpb.setdefault("student", []).append((r["step"], value))
            continue
        for tok, langs in (value or {}).items():
            if isinstance(langs, dict) and langs:
                bpb.setdefault(tok, []).append((r["step"], sum(langs.values()) / len(langs)))
    parts = _panel({"loss": loss, f"mean of {k}": smooth}, 0, "training loss")
    title = "student BPB" if list(bpb) == ["student"] else "zero-shot BPB (mean over languages)"
    parts += _panel(bpb, H, title)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{2 * H}" font-family="sans-serif">'
        + "".join(parts)
        + "</svg>\n"
    )
    write_text(out, svg)
