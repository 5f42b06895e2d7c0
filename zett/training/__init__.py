"""The training runtime that ``zett.distill`` and ``zett.train_hypernet`` share (see :mod:`.runtime`).

A trainer supplies its model, its batches and an :class:`~.step.Objective` (micro-batches, targets, loss); the
runtime does the rest: processes and precision (:mod:`.processes`), the optimizer step (:mod:`.step`), the loop,
checkpoints and resume (:mod:`.checkpoint`), metrics, curves, trackers and progress (:mod:`.logs`).
"""

from .checkpoint import checkpoint_step, load_checkpoint, save_checkpoint
from .logs import RunLog, tracker_names
from .processes import Processes, end_process_group, resolve_precision
from .runtime import Runtime, StepCallback
from .step import Objective, StepInfo, global_counts, make_optimizer, optimizer_step

__all__ = [
    "Objective",
    "Processes",
    "RunLog",
    "Runtime",
    "StepCallback",
    "StepInfo",
    "checkpoint_step",
    "end_process_group",
    "global_counts",
    "load_checkpoint",
    "make_optimizer",
    "optimizer_step",
    "resolve_precision",
    "save_checkpoint",
    "tracker_names",
]
