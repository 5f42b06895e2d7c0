"""One evaluation of one model: bits per byte per text file, task accuracy, agreement with a reference; as a
JSON-ready dict and as a printable table (what ``zett eval`` shows)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .agreement import agreement, prompts_from_texts
from .bpb import score
from .tasks import choice_accuracy, load_tasks

log = logging.getLogger(__name__)


def evaluate_model(
    model: Any,
    tokenizer: Any,
    *,
    texts: Sequence[str | Path] | Mapping[str, list[str]] = (),
    tasks: Sequence[Any] = (),
    reference: Any = None,
    reference_tokenizer: Any = None,
    max_docs: int | None = None,
    max_examples: int | None = None,
    max_length: int = 2048,
    n_prompts: int = 16,
    max_new_bytes: int = 96,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Everything ``zett eval`` measures, as a dict: ``texts`` (files, or ``{name: documents}``; one entry each:
    ``file``, ``bpb``,
    ``ci_low``, ``ci_high``, ``n_docs``, ...), ``tasks`` (per task ``task``, ``accuracy``, ``ci_low``,
    ``ci_high``, ``n``, ``chance``, plus macro means), ``reference_tasks`` and ``agreement`` when a reference
    model is given (agreement prompts: the first ``n_prompts`` documents across the text files, cut to 200
    characters, plus chat prompts when both tokenizers have a chat template)."""
    from ..data import read_texts

    if not texts and not tasks:
        raise ValueError(
            "nothing to evaluate: pass texts (JSONL/text files) and/or tasks (task files or a directory of them)"
        )
    if reference is not None and reference_tokenizer is None:
        raise ValueError("pass reference_tokenizer= with reference=")
    out: dict[str, Any] = {"texts": [], "seconds": {}}
    docs_by_file = (
        dict(texts) if isinstance(texts, Mapping) else {str(f): read_texts(f, max_docs=max_docs) for f in texts}
    )
    loaded = load_tasks(list(tasks)) if tasks else []  # fail on a bad task file before the slow part
    began = time.perf_counter()
    for name, docs in docs_by_file.items():
        res = score(model, tokenizer, docs, max_length=max_length, progress=progress)
        est = res.estimate(seed=seed)
        out["texts"].append(
            {
                "file": name,
                "bpb": res.bpb,
                "ci_low": est.ci_low,
                "ci_high": est.ci_high,
                "n_docs": res.n_docs,
                "bytes": res.bytes,
                "tokens": res.tokens,
                "bits": res.bits,
            }
        )
    out["seconds"]["texts"] = time.perf_counter() - began
    ref_tasks = None
    if loaded:
        began = time.perf_counter()
        if reference is not None:
            ref_tasks = choice_accuracy(
                reference, reference_tokenizer, loaded, max_examples=max_examples, progress=progress, seed=seed
            )
            out["reference_tasks"] = ref_tasks.as_dict()
        res_tasks = choice_accuracy(
            model, tokenizer, loaded, max_examples=max_examples, progress=progress, reference=ref_tasks, seed=seed
        )
        out["tasks"] = res_tasks.as_dict()
        out["seconds"]["tasks"] = time.perf_counter() - began
    if reference is not None:
        began = time.perf_counter()
        prompts = prompts_from_texts(_spread(list(docs_by_file.values()), n_prompts))
        res = agreement(
            model, tokenizer, reference, reference_tokenizer, prompts, max_new_bytes=max_new_bytes, progress=progress
        )
        out["agreement"] = res.as_dict(seed=seed)
        out["seconds"]["agreement"] = time.perf_counter() - began
    return out


def _spread(groups: list[list[str]], n: int) -> list[str]:
    """Up to ``n`` texts taken round-robin from the groups (so every text file contributes prompts)."""
    out: list[str] = []
    for i in range(max((len(g) for g in groups), default=0)):
        for g in groups:
            if i < len(g) and len(out) < n:
                out.append(g[i])
    return out


def _pm(d: dict[str, Any], spec: str = ".4f") -> str:
    return (
        f"{format(d['value'] if 'value' in d else d['bpb'], spec)} ± {format((d['ci_high'] - d['ci_low']) / 2, spec)}"
    )


def format_report(report: dict[str, Any]) -> str:
    """The report as one plain-text table (95% intervals as ± half-widths)."""
    lines = []
    if report.get("texts"):
        lines += ["bits per byte (95% CI over documents)", f"  {'file':<40} {'BPB':>18} {'docs':>5}"]
        for t in report["texts"]:
            lines.append(f"  {Path(t['file']).name:<40} {_pm(t):>18} {t['n_docs']:>5}")
    if "tasks" in report:
        ref = {t["task"]: t for t in report.get("reference_tasks", {}).get("tasks", [])}
        head = f"  {'task':<42} {'accuracy':>14} {'chance':>7} {'n':>4}" + (f" {'reference':>14}" if ref else "")
        lines += ["", "task accuracy (95% Wilson CI; * = above chance)", head]
        for t in report["tasks"]["tasks"]:
            row = f"  {t['task']:<42} {_acc(t):>14} {t['chance']:>7.3f} {t['n']:>4}" + (
                f" {_acc(ref[t['task']]):>14}" if t["task"] in ref else ""
            )
            lines.append(row)
        lines.append(f"  {'macro mean (all tasks)':<42} {_pm(report['tasks']['macro'], '.3f'):>14}")
        if "macro_reference_above_chance" in report["tasks"]:
            n = len(report["tasks"]["reference_above_chance"])
            lines.append(
                f"  {f'macro mean ({n} tasks the reference is above chance on)':<42} "
                f"{_pm(report['tasks']['macro_reference_above_chance'], '.3f'):>14}"
            )
    if "agreement" in report:
        a = report["agreement"]
        lines += ["", f"agreement with the reference ({a['n_prompts']} prompts, {a['n_chat']} of them chat)"]
        if "reference_bpb" in a:
            lines.append(f"  reference continuations under the model, BPB  {_pm(a['reference_bpb'])}")
        if "chat_bpb" in a:
            lines.append(f"  reference chat answers under the model, BPB   {_pm(a['chat_bpb'])}")
        lines.append(f"  chrF of greedy outputs (1 = identical)         {_pm(a['similarity_chrf'], '.3f')}")
        if "divergence" in a:
            lines.append(f"  chunk-level ALM divergence (0 = identical)     {_pm(a['divergence'], '.5f')}")
    return "\n".join(lines)


def _acc(t: dict[str, Any]) -> str:
    return f"{t['accuracy']:.3f} [{t['ci_low']:.2f},{t['ci_high']:.2f}]" + ("*" if t.get("above_chance") else "")


__all__ = ["evaluate_model", "format_report"]
