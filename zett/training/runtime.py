"""``Runtime``: the machinery every zett trainer shares, around a trainer's model, batches and objective.

    rt = Runtime(config, run_dir, name="distill")         # processes, precision, run directory, seed
    model = build_the_model()                             # after the seed: initialisation is reproducible
    first = rt.attach(model, heads)                       # optimizer, schedule, resume, logs, DDP
    metrics, step, stopped = rt.fit(batches, objective)   # the loop: step, log, checkpoint, on_step
    rt.close()

``config`` needs the fields of the training configs: ``mixed_precision``, ``seed``, ``steps``, ``save_every``,
``lr``, ``warmup_steps``, ``weight_decay``, ``beta1``, ``beta2``, ``grad_clip``, ``log_with`` and ``to_yaml()``
(``fused_adamw`` where present).
A second run in the same directory resumes from its checkpoint, exactly: the batches of step k are a function of
(seed, k) and the checkpoint holds the weights, optimizer, schedule and RNG.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from hypernet.files import write_text

from .checkpoint import load_checkpoint, save_checkpoint
from .logs import RunLog, progress_bar
from .processes import Processes
from .step import Objective, make_optimizer, optimizer_step

log = logging.getLogger(__name__)

StepCallback = Callable[[int, dict], "bool | None"]
"""``on_step(step, row)``: return ``False`` to stop after this step (as a kill would: no extra checkpoint)."""


class Runtime:
    """One training run: processes and precision, run directory, optimizer and schedule, checkpoint and resume,
    the loop, metrics, trackers and progress. Trainers supply the model, the batches and an :class:`Objective`."""

    def __init__(self, config: Any, run_dir: str | Path | None, *, name: str, ddp_kwargs: dict | None = None):
        self.config, self.name, self.ddp_kwargs = config, name, ddp_kwargs or {}
        self.procs = Processes(config.mixed_precision)
        self.run = Path(run_dir).expanduser() if run_dir else None
        if self.run is not None and self.procs.is_main_process:
            self.run.mkdir(parents=True, exist_ok=True)
            write_text(self.run / "config.yaml", config.to_yaml())
        torch.manual_seed(config.seed)
        self.model: nn.Module | None = None
        self.heads: nn.Module | None = None
        self.first = self.last = 0

    @property
    def device(self) -> torch.device:
        return self.procs.device

    @property
    def is_main_process(self) -> bool:
        return self.procs.is_main_process

    @property
    def unwrapped(self) -> nn.Module:
        """The trained model without its DDP wrapper."""
        return self.procs.unwrap(self.model)

    def attach(self, model: nn.Module, heads: nn.Module | None = None) -> int:
        """Move ``model`` (its trainable parameters are what trains) and ``heads`` (trainable loss parts outside
        it) to the device, build the optimizer and schedule, resume from the run's checkpoint, start the logs and
        wrap ``model`` for several processes. Returns the step to continue from (0: a fresh run)."""
        model.to(self.device)
        self.heads = heads.to(self.device) if heads is not None else None
        named = list(model.named_parameters()) + (list(heads.named_parameters()) if heads is not None else [])
        self.optimizer, self.scheduler = make_optimizer(named, self.config)
        self.first = self.last = load_checkpoint(self.run, model, self.optimizer, self.scheduler, self.heads)
        if self.first:
            log.info("resuming %s at step %d", self.run, self.first)
        self.log = RunLog(
            self.run,
            active=self.is_main_process,
            first=self.first,
            log_with=self.config.log_with,
            project=f"zett-{self.name}",
            config=yaml.safe_load(self.config.to_yaml()),
        )
        self.model = self.procs.wrap(model, **self.ddp_kwargs)
        return self.first

    def step(self, batch: dict[str, Any], objective: Objective) -> dict[str, float]:
        """One optimizer step (:func:`~zett.training.step.optimizer_step`)."""
        return optimizer_step(
            self.procs,
            self.model,
            self.optimizer,
            self.scheduler,
            objective,
            batch,
            heads=self.heads,
            grad_clip=self.config.grad_clip,
        )

    def fit(
        self,
        batches: Iterable[dict[str, Any]],
        objective: Objective,
        *,
        on_step: StepCallback | None = None,
        progress: bool = True,
        annotate: Callable[[int, dict, dict], None] | None = None,
        postfix: Callable[[dict], dict] | None = None,
    ) -> tuple[list[dict], int, bool]:
        """Train on ``batches`` (those of steps ``first + 1`` .. ``config.steps``): step, ``annotate(step, batch,
        row)`` (extra fields, evaluations), log, ``on_step``, checkpoint every ``save_every`` steps and at the last.
        Returns the rows, the step reached and whether ``on_step`` stopped the run."""
        metrics: list[dict] = []
        step, start, stopped = self.first, time.perf_counter(), False
        bar = progress_bar(self.first, self.config.steps, progress and self.is_main_process, self.name)
        try:
            for batch in batches:
                row = self.step(batch, objective)
                step = self.last = step + 1
                row.update(step=step, seconds=time.perf_counter() - start)
                if annotate is not None:
                    annotate(step, batch, row)
                metrics.append(row)
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}", **(postfix(row) if postfix is not None else {}))
                self.log.write(row)
                if on_step is not None and on_step(step, row) is False:
                    stopped = True
                    break
                if step % self.config.save_every == 0 or step == self.config.steps:
                    self.save(step)
                self.procs.wait()
        finally:
            bar.close()
        return metrics, step, stopped

    def save(self, step: int) -> None:
        """Checkpoint (main process; the others wait at the end of the step) and redraw the curves."""
        if self.run is not None and self.is_main_process:
            save_checkpoint(
                self.run, self.unwrapped, self.optimizer, self.scheduler, step, self.config.to_yaml(), self.heads
            )
            self.log.plot()

    def write_final(self, row: dict[str, Any]) -> None:
        """Log an end-of-run row (a final evaluation) unless this session trained no step: a finished run called
        again evaluates again, but its metrics keep one row per step."""
        if self.last > self.first:
            self.log.write(row)
            self.log.plot()

    def close(self) -> None:
        """End the trackers' runs."""
        if hasattr(self, "log"):
            self.log.close()
