"""What a run reports: ``metrics.jsonl`` (one row per step and per evaluation), ``curves.svg``, accelerate's
experiment trackers (``log_with``: TensorBoard, W&B, ... where installed) and a progress bar.

A resumed run redoes the steps after its checkpoint; ``metrics.jsonl`` is cut back to the checkpoint's step when
it resumes, so every step is in it once. (A tracker's own files are not cut back.)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hypernet.files import write_text

from .plot import write_curves

log = logging.getLogger(__name__)
METRICS = "metrics.jsonl"


def tracker_names(log_with: str | list[str] | None) -> list[str]:
    """``log_with`` as a list of tracker names (``None`` → none)."""
    if log_with is None:
        return []
    names = [log_with] if isinstance(log_with, str) else list(log_with) if isinstance(log_with, (list, tuple)) else None
    if names is None or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"log_with={log_with!r}; give tracker names, e.g. tensorboard or [tensorboard, wandb]")
    return names


def make_trackers(log_with: str | list[str] | None, run: Path | None, project: str) -> list[Any]:
    """accelerate trackers for ``log_with``; a clear error for one that is unknown, not installed, or that needs a
    run directory where there is none. Logging directories go to ``run/logs``."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers
    from accelerate.utils import LoggerType

    trackers = []
    builtin = {t.value for t in LoggerType}
    available = {str(t.value if isinstance(t, LoggerType) else t) for t in get_available_trackers()}
    for name in tracker_names(log_with):
        if name not in LOGGER_TYPE_TO_CLASS:
            known = ", ".join(sorted(LOGGER_TYPE_TO_CLASS))
            raise ValueError(f"log_with: unknown tracker {name!r}; choose from {known}")
        if name in builtin and name not in available:
            raise ValueError(f"log_with: {name} is not installed; pip install {name}, or leave it out of log_with")
        cls = LOGGER_TYPE_TO_CLASS[name]
        if cls.requires_logging_directory:
            if run is None:
                raise ValueError(f"log_with: {name} writes files; pass run_dir= for them to go to")
            trackers.append(cls(project, str(run / "logs")))
        else:
            trackers.append(cls(project))
    return trackers


def tracker_values(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a metrics row, nested dicts flattened to ``a/b/c`` (``eval_bpb/<tokenizer>/<language>``)."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(tracker_values(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
            out[prefix + key] = value
    return out


class RunLog:
    """A run's reporting on the main process (``active``); elsewhere every method does nothing."""

    def __init__(
        self,
        run: Path | None,
        *,
        active: bool,
        first: int,
        log_with: Any = None,
        project: str = "zett",
        config: dict | None = None,
        curves: bool = True,
    ):
        self.run, self.active, self.curves = run, active and run is not None, curves
        trackers = make_trackers(log_with, run, project)  # every process: the same errors everywhere
        self.trackers = trackers if active else []
        if self.active:
            keep_steps_up_to(run / METRICS, first)
        for tracker in self.trackers:
            tracker.start()
            if config is not None:
                tracker.store_init_configuration(
                    {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in config.items()}
                )

    def write(self, row: dict[str, Any]) -> None:
        if self.active:
            with (self.run / METRICS).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
        values = tracker_values(row)
        for tracker in self.trackers:
            tracker.log(values, step=row["step"])

    def plot(self) -> None:
        if self.active and self.curves:
            write_curves(self.run / METRICS, self.run / "curves.svg")

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.finish()
        self.trackers = []


def keep_steps_up_to(path: Path, step: int) -> None:
    """Cut ``metrics.jsonl`` back to the rows of steps up to ``step`` (none for a fresh start), atomically."""
    if not path.exists():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in rows if step and json.loads(line).get("step", 0) <= step]
    if len(kept) < len(rows):
        log.info("%s: dropping %d rows after step %d (they are redone)", path, len(rows) - len(kept), step)
        write_text(path, "".join(line + "\n" for line in kept))


def progress_bar(first: int, total: int, enabled: bool, desc: str) -> Any:
    return tqdm(total=total, initial=first, desc=desc, disable=not enabled)
