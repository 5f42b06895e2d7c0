"""``DistillConfig``: every knob of a distillation run, loadable from YAML and saved into the run directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..configs import FUSED_ADAMW_HELP, LAZY_TEACHER_HELP, TRACKERS_HELP, UNPADDED_HELP, YamlConfig, option
from ..training.processes import resolve_precision  # noqa: F401  (zett.hypertrain.card imports it from here)

TRAINABLE = ("embeddings", "embeddings+lora", "full")
HYPERNET_ONLY = ("lexical",)  # losses on predicted embedding rows, not on a student model
BLD_OPTIONS = ("method", "beam", "max_bytes", "head_size", "token_weight", "byte_weight", "kl_weight")


@dataclass
class DistillConfig(YamlConfig):
    """The defaults are the recipe behind ``--distill-steps``: the full model, the next-token loss (``sft``) on the
    texts, lr 1e-4, 4 texts x 256 student tokens, 5 warm-up steps; the teacher is not run unless a loss reads it.
    Other recipes (``alm``, ``uld``, ``bld``, balanced sums, ``chat_prompts``) are set here; docs/distillation.md
    says which was measured against which (benchmarks/distill_study.py)."""

    steps: int = field(default=100, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=4, metadata={"help": "texts per optimizer step (global, all processes)"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per step (per process)"})
    max_length: int = field(default=256, metadata={"help": "student tokens per text (start token included)"})
    teacher_max_length: int | None = field(
        default=None, metadata={"help": "teacher tokens per text; default: enough for the student's span"}
    )
    trainable: str = field(default="full", metadata={"help": "embeddings | embeddings+lora | full"})
    untie_embeddings: bool = field(
        default=False,
        metadata={
            "help": "give a student with tied embeddings its own output matrix (a copy of the input one) before "
            "training, so the two train apart; the saved model says tie_word_embeddings: false"
        },
    )
    lora_rank: int = field(default=64, metadata={"help": "LoRA rank (embeddings+lora)"})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha (embeddings+lora)"})
    lr: float = field(default=1e-4, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not on biases and norms)"})
    beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    beta2: float = field(default=0.95, metadata={"help": "AdamW beta2"})
    grad_clip: float = field(default=1.0, metadata={"help": "gradient norm clip (0 = off)"})
    warmup_steps: int = field(default=5, metadata={"help": "linear warm-up, then cosine decay to 10%"})
    losses: dict[str, float] = field(
        default_factory=lambda: {"sft": 1.0}, metadata={"help": "loss name -> weight: sft, alm, uld, bld"}
    )
    alm: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "keyword arguments of zett.losses.alm_loss (tau, divergence, debias, merge, theta, hidden_weight)"
        },
    )
    balance: bool = field(
        default=False,
        metadata={
            "help": "gradient-magnitude balancing (SPEC 5.2.8): each loss "
            "weighted by the inverse norm of its gradient at the student's "
            "final hidden states (logged as w_<loss>)"
        },
    )
    bld: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "BLD options: method (path | beam), beam, "
            "max_bytes, head_size, token_weight, byte_weight, "
            "kl_weight"
        },
    )
    chat_prompts: str | None = field(
        default=None,
        metadata={
            "help": "prompts the teacher answers through its chat template (once, kept in the run directory); "
            "those conversations join the texts: 'builtin' (zett's set), a .txt file (one per line) or a .jsonl "
            "file ('prompt' field); for chat models, so the student keeps the teacher's answers"
        },
    )
    chat_fraction: float = field(
        default=0.5, metadata={"help": "share of each step's texts that are conversations (with chat_prompts)"}
    )
    chat_max_bytes: int = field(default=512, metadata={"help": "longest teacher answer, in bytes (chat_prompts)"})
    mixed_precision: str = field(
        default="no",
        metadata={
            "help": "no | bf16 | auto (bf16 only where the hardware "
            "has it: a bf16 GPU, or a CPU with AVX-512 BF16/AMX; "
            "emulated bf16 on other CPUs is far slower)"
        },
    )
    log_with: Any = option(None, TRACKERS_HELP)
    cache_teacher: bool = field(
        default=True, metadata={"help": "run the teacher once per text and keep its token/boundary log-probs"}
    )
    fused_adamw: bool = option(True, FUSED_ADAMW_HELP)
    unpadded: bool = option(True, UNPADDED_HELP)
    lazy_teacher: bool = option(True, LAZY_TEACHER_HELP)
    eval_every: int = field(default=0, metadata={"help": "steps between BPB evaluations (0 = only at the end)"})
    eval_docs: int = field(default=8, metadata={"help": "held-out texts for BPB"})
    save_every: int = field(default=50, metadata={"help": "steps between checkpoints (the last step always saves)"})
    num_workers: int = field(default=0, metadata={"help": "data loader worker processes (tokenize + align)"})
    seed: int = field(default=0, metadata={"help": "seed for data order, initialisation and dropout"})

    def chats_per_step(self) -> int:
        """Conversations among each step's ``batch_size`` texts: at least one when ``chat_fraction`` > 0."""
        if not self.chat_prompts or self.chat_fraction == 0:
            return 0
        return min(self.batch_size, max(1, round(self.batch_size * self.chat_fraction)))

    def __post_init__(self) -> None:
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable={self.trainable!r}; choose one of {', '.join(TRAINABLE)}")
        self.validate_training_fields()
        from ..losses import available_losses

        known = [name for name in available_losses() if name not in HYPERNET_ONLY]
        unknown = set(self.losses) - set(known)
        if unknown or not self.losses:
            raise ValueError(f"losses={self.losses}: unknown {sorted(unknown)}; use {known}")
        if not 0.0 <= self.chat_fraction <= 1.0:
            raise ValueError(f"chat_fraction={self.chat_fraction}: use a share between 0 and 1")
        if self.chat_prompts and "bld" in self.losses:
            raise ValueError("chat_prompts does not work with the bld loss (it reads plain texts); drop one of them")
        bad = set(self.bld) - set(BLD_OPTIONS)
        if bad or self.bld.get("method", "path") not in ("path", "beam"):
            raise ValueError(f"bld={self.bld}: options are {', '.join(BLD_OPTIONS)}; method is 'path' or 'beam'")
