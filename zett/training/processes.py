"""This process's place in a training run: device, processes, precision and DDP, on ``accelerate``'s ``PartialState``.

Only accelerate's per-process ``PartialState`` is used (the process group that ``accelerate launch`` or
``torchrun`` sets up, and the device). Mixed precision is the run's own ``torch.autocast`` around the student's
forward pass, never accelerate's process-wide ``AcceleratorState``: runs at different precisions can follow each
other in one process, a caller's own ``Accelerator`` (whatever its precision) is left as it was, and no model's
``forward`` is ever wrapped (what a run returns computes in the precision its user asks for).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import reduce
from torch.nn.parallel import DistributedDataParallel

PRECISIONS = ("no", "bf16", "auto")


def resolve_precision(choice: str) -> str:
    """``auto`` → ``bf16`` where bf16 is native (a bf16 GPU, or a CPU with AVX-512 BF16 or AMX); emulated bf16 on
    other CPUs is far slower than fp32."""
    if choice not in PRECISIONS:
        raise ValueError(f"mixed_precision={choice!r}; choose one of {', '.join(PRECISIONS)}")
    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "no"
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "no"


class Processes:
    """The processes of a run (one, or several under ``accelerate launch``/``torchrun``) and its precision."""

    def __init__(self, mixed_precision: str = "no"):
        self.precision = resolve_precision(mixed_precision)
        self.state = PartialState(cpu=not torch.cuda.is_available())
        self.device: torch.device = self.state.device

    @property
    def num_processes(self) -> int:
        return self.state.num_processes

    @property
    def process_index(self) -> int:
        return self.state.process_index

    @property
    def is_main_process(self) -> bool:
        return self.state.is_main_process

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast for a bf16 run; for an fp32 run a context that turns off any autocast around it."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def wrap(self, model: torch.nn.Module, **ddp_kwargs: Any) -> torch.nn.Module:
        """``model`` in ``DistributedDataParallel`` when there are several processes (and it has trainable
        parameters), else ``model`` itself."""
        if self.num_processes == 1 or not any(p.requires_grad for p in model.parameters()):
            return model
        ids = [self.state.local_process_index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None, **ddp_kwargs)

    @staticmethod
    def unwrap(model: torch.nn.Module) -> torch.nn.Module:
        return model.module if isinstance(model, DistributedDataParallel) else model

    @staticmethod
    def no_sync(model: torch.nn.Module, skip: bool) -> AbstractContextManager:
        """DDP's ``no_sync`` (accumulate gradients locally) when ``skip``: every micro-batch but a step's last."""
        return model.no_sync() if skip and isinstance(model, DistributedDataParallel) else nullcontext()

    def reduce(self, tensor: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
        return reduce(tensor, reduction=reduction) if self.num_processes > 1 else tensor

    def wait(self) -> None:
        self.state.wait_for_everyone()


def end_process_group() -> None:
    """Leave the process group of a multi-process launch (``accelerate launch``, ``torchrun``) at the end of a
    successful run: a process that exits with a gloo group still open can abort in its threads at interpreter
    exit ("terminate called without an active exception"), failing a run that finished. Not after an error:
    the other processes may still be in a collective, and destroying the group would hang them."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
