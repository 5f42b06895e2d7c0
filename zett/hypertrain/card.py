"""Export a trained hypernetwork with its card: what it was trained on, for how long, and how well it transfers.

    zett export-hypernet ~/.cache/zett-runs/hypernet-smollm2 hypernet/shipped/smollm2-135m --base-model NAME

The card is written from the run directory alone (``config.yaml``, ``metrics.jsonl``) plus, optionally, FVT
on the same held-out texts as the run's last evaluation, so the zero-shot table has its baseline beside it.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from hypernet.hub import TAGS, front_matter

from .config import HypernetTrainConfig


def run_facts(run: Path, warmup_steps: int = 0) -> dict[str, Any]:
    """Steps, student tokens seen, wall time (summed over resumed sessions), the last evaluation of a run, and
    its warm restarts: steps after which the logged learning rate rose past warm-up (the run was resumed with a
    longer ``steps``, so the cosine schedule jumped to the longer horizon)."""
    path = run / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {run} a train-hypernet run directory?")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    steps = [r for r in rows if "loss" in r]
    if not steps:
        raise ValueError(f"{path} has no training steps yet")
    # "seconds" restarts with every resumed session; a session's wall time is its last value. A resumed session
    # repeats the steps after the last checkpoint, so rows are keyed by step and the later session wins.
    wall, last_seconds, sessions = 0.0, 0.0, 1
    for r in steps:
        if r["seconds"] < last_seconds:  # a new session: the previous one ended at last_seconds
            wall, sessions = wall + last_seconds, sessions + 1
        last_seconds = r["seconds"]
    by_step = {r["step"]: r for r in steps}
    lrs = [(step, by_step[step].get("lr")) for step in sorted(by_step)]
    restarts = [
        a
        for (a, before), (b, after) in zip(lrs, lrs[1:])
        if b > warmup_steps and before is not None and after is not None and after > before * (1 + 1e-6)
    ]
    evals = [r for r in rows if "eval_bpb" in r]
    start = next((r for r in evals if r["step"] == 0), None)  # a run with init_from evaluates its start
    hardware = list(dict.fromkeys(r["hardware"] for r in steps if "hardware" in r))  # each session's first row
    return {
        "steps": max(by_step),
        "student_tokens_seen": by_step[max(by_step)].get("student_tokens_seen"),
        "wall_s": wall + last_seconds,
        "eval": evals[-1] if evals else None,
        "sessions": sessions,
        "restarts": restarts,
        "start_eval": start,
        "hardware": hardware,
    }


def parent_card(path: Path, base_model: str) -> str | None:
    """The card of the network at ``path`` that a run starts from: for the ``hypernet/`` of a train-hypernet run
    directory (how legs are chained), the card that run would export with, so the chain of legs stays on the last
    one's card (its own README.md is the generic one of ``save_pretrained``); else its README.md. None when
    neither is there."""
    run = path.parent
    if path.name == "hypernet" and (run / "config.yaml").exists() and (run / "metrics.jsonl").exists():
        # a run from before machines were recorded: say so rather than name this one
        return hypernet_card(run, name=run.name, base_model=base_model, unrecorded="not recorded in its run directory")
    return (path / "README.md").read_text() if (path / "README.md").exists() else None


LEG_COLUMNS = (
    "leg",
    "config",
    "starts from",
    "steps in all",
    "peak lr",
    "student tokens in all",
    "wall time in all",
    "machine",
)


def table_rows(card: str, first_column: str = "leg") -> list[dict[str, str]]:
    """The rows of the first markdown table in ``card``'s "## Training" section whose header starts with
    ``first_column``, as {column: cell}."""
    section = card.split("## Training", 1)[1].split("\n## ", 1)[0] if "## Training" in card else ""
    lines = [line.strip() for line in section.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |")), None)
    if start is None:
        return []
    columns = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(columns, (c.strip() for c in line.strip("|").split("|")))))
    return rows


def _number(cell: str | None) -> float | None:
    """A table cell as a number: ``1,909,988``, ``412k``, ``1.60M``, ``2.0 h``, ``**1.847**``; else None."""
    text = (cell or "").replace("*", "").replace(",", "").replace(" h", "").strip()
    scale = {"k": 1e3, "M": 1e6}.get(text[-1:], 1.0) if text else 1.0
    try:
        return float(text[:-1] if scale != 1.0 else text) * scale
    except ValueError:
        return None


def _in_all(previous: str | None, own: float, fmt: str) -> str:
    """The running total after this leg, or this leg's own amount (marked +) when the earlier total is unknown."""
    before = _number(previous)
    return format(before + own, fmt) if before is not None else "+" + format(own, fmt)


def legs(
    run: Path, cfg: HypernetTrainConfig, facts: dict[str, Any], base_model: str, machine: str, means: dict[str, float]
) -> tuple[list[str], list[dict[str, str]]]:
    """The table of training legs: the legs of the network this run started from (``init_from``: read from its
    card's table), then this run. Columns: :data:`LEG_COLUMNS`, then this run's evaluation targets (mean BPB)."""
    parent: list[dict[str, str]] = []
    start = "an untrained network (FVT)"
    path = run / "init_from.json"
    if path.exists():
        record = json.loads(path.read_text())
        parent = table_rows(record.get("card") or "")
        start = f"`{record['spec']}` (sha256 {record['sha256'][:16]})"
        if parent:
            start = f"leg {parent[-1].get('leg', len(parent))}'s network (sha256 {record['sha256'][:16]})"
        else:
            parent = [{"leg": "earlier", "config": "not in a table: see that network's card", "starts from": ""}]
    last = parent[-1] if parent else {}
    own = {
        "leg": str(len(parent) + 1),
        "config": f"`{run.name}/config.yaml`, `steps: {cfg.steps}`",
        "starts from": start,
        "steps in all": _in_all(last.get("steps in all") if parent else "0", facts["steps"], ",.0f"),
        "peak lr": f"{cfg.lr:g}",
        "machine": machine,
        "student tokens in all": _in_all(
            last.get("student tokens in all") if parent else "0", facts["student_tokens_seen"] or 0, ",.0f"
        ),
        "wall time in all": _in_all(last.get("wall time in all") if parent else "0", facts["wall_s"] / 3600, ".2f")
        + " h",
    }
    own.update({name: f"{value:.3f}" for name, value in means.items()})
    columns = list(LEG_COLUMNS) + [
        c for c in dict.fromkeys(k for row in parent + [own] for k in row) if c not in LEG_COLUMNS
    ]
    return columns, parent + [own]


def this_machine() -> str:
    """The hardware line of cards and benchmark files: CPU, cores, GPU, torch, and the precision ``auto`` picks
    (bf16 where native: CPUs with AVX-512 bf16 or AMX train in bf16, others in fp32, so it changes the numbers)."""
    from ..distill.config import resolve_precision

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        cpu = f"{cpu} {model}" if model not in cpu else model
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}, "
        f"mixed precision auto = {resolve_precision('auto')}"
    )


def hypernet_card(
    run: str | os.PathLike,
    *,
    name: str,
    base_model: str,
    fvt: dict | None = None,
    hardware: str | None = None,
    size_mb: float | None = None,
    unrecorded: str | None = None,
) -> str:
    """Markdown card for the hypernetwork trained in ``run``; ``fvt``: {tokenizer: {lang: bpb}} on the same texts.
    ``hardware``: the card's hardware line; by default the machines the run recorded (each session's first
    metrics row), else ``unrecorded``, else this machine."""
    run = Path(run).expanduser()
    cfg = HypernetTrainConfig.from_yaml(run / "config.yaml")
    facts = run_facts(run, cfg.warmup_steps)
    names = {"sft": "next-token", "alm": "ALM", "lexical": "lexical"}
    objective = " + ".join(f"{w:g} x {names.get(k, k)}" for k, w in cfg.losses.items())
    ev = facts["eval"]
    means = {}
    if ev and ev["eval_bpb"]:
        for target, table in ev["eval_bpb"].items():
            label = "bytes" if Path(target).name == "byte" else Path(target).name
            means[label] = sum(table.values()) / len(table)
    machine = hardware or "; then ".join(facts["hardware"]) or unrecorded or this_machine()
    columns, rows = legs(run, cfg, facts, base_model, machine, means)
    restarts = facts["restarts"]
    lines = [
        front_matter(base_model, tags=list(TAGS)),
        f"# {name}: a zett hypernetwork for {base_model}",
        "",
        f"Predicts input/output embeddings of `{base_model}` for any tokenizer (subword or bytes), zero-shot:",
        "",
        "```python",
        "import zett",
        f'model, tok = zett.transfer(model, "byte", hypernet="{name}")',
        "```",
        "",
        "## Training",
        "",
        f"- base model (frozen): `{base_model}`, loaded from `{cfg.base_model}`",
        "- architecture: "
        + ", ".join(f"{k} {v}" for k, v in cfg.hypernet.items())
        + (f"; {size_mb:.1f} MB on disk" if size_mb else ""),
        f"- data: {cfg.data}",
        f"- tokenizers: Unigram tokenizers sampled at {cfg.vocab_size[0]:,}-{cfg.vocab_size[1]:,} tokens, "
        f"real ones ({', '.join(cfg.real_tokenizers)}) with p={cfg.p_real}, bytes with p={cfg.p_byte}",
        f"- objective (last leg): {objective}; lr {cfg.lr:g}, warm-up {cfg.warmup_steps}, cosine to 10%, "
        f"batch {cfg.batch_size} texts x {cfg.max_length} base tokens, {cfg.negatives} negatives",
        f"- steps: {facts['steps']:,} of {cfg.steps:,} in the last leg, "
        + (
            "in one session"
            if facts["sessions"] == 1
            else f"over {facts['sessions']} sessions (resumed from checkpoints)"
        )
        + (
            f"; resumed with a longer `steps` after step {', '.join(f'{s:,}' for s in restarts)}"
            " (the cosine schedule restarted there at the longer horizon)"
            if restarts
            else ""
        ),
        "",
        "Legs (a leg started from another network with `init_from` takes a fresh optimizer and schedule; "
        "the last columns are each leg's own evaluation, mean bits per byte):",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(row.get(c, "") for c in columns) + " |" for row in rows),
        "",
    ]
    if ev and ev["eval_bpb"]:  # a run with no eval_tokenizers has nothing to tabulate
        langs = sorted(next(iter(ev["eval_bpb"].values())))
        lines += [
            f"## Zero-shot bits per byte (step {ev['step']}; {cfg.eval_docs} held-out documents per language, "
            f"first {cfg.eval_chars:,} characters; lower is better)",
            "",
            "| target | method | " + " | ".join(langs) + " | mean |",
            "|---|---|" + "---|" * (len(langs) + 1),
        ]
        for target, table in ev["eval_bpb"].items():
            start = (facts["start_eval"] or {}).get("eval_bpb", {}).get(target)
            rows = (
                [("hypernetwork", table)]
                + ([("init_from (step 0)", start)] if start else [])
                + ([("FVT", fvt[target])] if fvt and target in fvt else [])
            )
            for method, values in rows:
                mean = sum(values[lang] for lang in langs) / len(langs)
                lines.append(
                    f"| {Path(target).name} | {method} | "
                    + " | ".join(f"{values[lang]:.3f}" for lang in langs)
                    + f" | {mean:.3f} |"
                )
        lines.append("")
    lines += [
        "## Reproduce",
        "",
        "Made with `zett train-hypernet CONFIG.yaml` (resumable) and `zett export-hypernet "
        "RUN_DIR OUT`, from this config (as of the run's last session):",
        "",
        "```yaml",
        (run / "config.yaml").read_text().strip(),
        "```",
    ]
    return "\n".join(lines) + "\n"


def export_hypernet(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    name: str | None = None,
    base_model: str | None = None,
    compare_fvt: bool = True,
    dtype: torch.dtype = torch.bfloat16,
    hardware: str | None = None,
) -> Path:
    """Write ``run``'s final hypernetwork to ``out`` in ``dtype`` with a card (FVT measured beside it)."""
    from hypernet import Hypernet

    from ..models import load_model
    from . import eval_texts, evaluate_hypernet
    from .inputs import trained_scripts

    run = Path(run).expanduser()
    if not (run / "hypernet").exists():
        raise FileNotFoundError(
            f"{run / 'hypernet'} not found: the run has not finished (re-run train-hypernet to resume it to the end)"
        )
    cfg = HypernetTrainConfig.from_yaml(run / "config.yaml")
    done = run_facts(run)["steps"]
    if done < cfg.steps:  # hypernet/ is written at the end: an older one may be there from a shorter run
        raise ValueError(f"{run} is at step {done} of {cfg.steps}: re-run train-hypernet to finish it first")
    net = Hypernet.from_pretrained(run / "hypernet")
    fvt = None
    if net.config.training_scripts is None:  # a run of a version that did not record them
        net.config.training_scripts = trained_scripts(cfg)
    if compare_fvt:
        spec = Path(cfg.base_model).expanduser()
        model, tok = load_model(spec if spec.exists() else cfg.base_model)
        fvt = evaluate_hypernet(None, model, tok, cfg, eval_texts(cfg))
    base_name = base_model or net.config.base_model
    net.config.base_model = base_name  # the card and config name the model, not a local cache path
    size = sum(v.numel() for v in net.state_dict().values()) * dtype.itemsize / 1e6  # the weights file, less its header
    card = hypernet_card(
        run, name=name or Path(out).name, base_model=base_name, fvt=fvt, hardware=hardware, size_mb=size
    )
    return net.save_pretrained(out, dtype=dtype, card=card)  # weights, config and card in one atomic replace
