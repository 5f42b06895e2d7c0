"""``HypernetTrainConfig``: every knob of a hypernetwork training run, YAML in and out (SPEC §4.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..configs import FUSED_ADAMW_HELP, LAZY_TEACHER_HELP, TRACKERS_HELP, UNPADDED_HELP, YamlConfig, option

LOSSES = ("alm", "sft", "lexical")  # of zett.losses: those defined on a frozen base with predicted rows


@dataclass
class HypernetTrainConfig(YamlConfig):
    """Defaults size a run for a CPU; ``data`` (and ``eval_data`` for evaluations) must be given. Tokenizers are
    anything ``tokenizers_zoo.load_tokenizer`` takes: a path, a name shipped with it (gpt2, mistral-v3), ``byte``
    or a Hub id."""

    base_model: str = field(default="", metadata={"help": "base model: directory, .gguf or Hub id"})
    run_dir: str = field(
        default="",
        metadata={
            "help": "config, metrics.jsonl, plot, checkpoint/ and the final hypernet/ go here; a second call resumes"
        },
    )
    data: Any = field(
        default=None,
        metadata={"help": "training texts (required): a .jsonl/.txt file, a glob of them, or a list of texts"},
    )
    eval_data: Any = field(
        default=None,
        metadata={
            "help": "held-out texts for the zero-shot BPB: a file or list "
            "(one group, 'all'), a glob (a group per file, named by its "
            "first dot-separated part, e.g. en.valid.jsonl -> en) or "
            "{group: file}; eval_docs per group. None: no evaluation"
        },
    )
    eval_tokenizers: list[str] = field(
        default_factory=lambda: ["gpt2", "mistral-v3", "byte"],
        metadata={"help": "fixed tokenizers for the periodic zero-shot BPB"},
    )
    eval_docs: int = field(default=2, metadata={"help": "held-out documents per language"})
    eval_chars: int = field(default=1000, metadata={"help": "characters per held-out document"})
    eval_every: int = field(default=0, metadata={"help": "steps between evaluations (0 = only at the end)"})
    steps: int = field(default=1000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "texts per step (global)"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per step (per process)"})
    max_length: int = field(
        default=128, metadata={"help": "base-tokenizer tokens per text; the sampled tokenizer sees the same text span"}
    )
    lr: float = field(default=3e-4, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not biases/norms)"})
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = field(default=0.1, metadata={"help": "gradient norm clip (ZeTT: 0.1)"})
    warmup_steps: int = field(default=50, metadata={"help": "linear warm-up, then cosine decay to 10%"})
    init_from: str = field(
        default="",
        metadata={
            "help": "start from this hypernetwork's weights (path, shipped name or Hub id; same architecture and base) "
            "with a fresh optimizer and schedule: continue or anneal a trained network. Its card's training "
            "section goes into this run's card"
        },
    )
    hypernet: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "HypernetConfig fields: hidden_size, num_layers, num_heads, ffn_mult, max_subtokens"},
    )
    vocab_size: list[int] = field(
        default_factory=lambda: [8192, 32768], metadata={"help": "range of sampled vocabulary sizes (log-uniform)"}
    )
    window: int = field(default=16, metadata={"help": "substring-count tables in the sampler's window"})
    stride: int = field(default=1, metadata={"help": "count substrings starting at every k-th byte"})
    startup_texts: int = field(default=2000, metadata={"help": "texts that fill the sampler's first window"})
    real_tokenizers: list[str] = field(
        default_factory=lambda: ["gpt2", "mistral-v3"], metadata={"help": "real tokenizers in the mix"}
    )
    p_real: float = field(default=0.2, metadata={"help": "probability of a real tokenizer"})
    p_byte: float = field(default=0.1, metadata={"help": "probability of the byte tokenizer"})
    p_base: float = field(
        default=0.0,
        metadata={
            "help": "probability of the base tokenizer (with copying, all its rows are copies: a step without gradient)"
        },
    )
    negatives: int = field(
        default=2048,
        metadata={
            "help": "vocabulary rows predicted per step besides the "
            "batch's own (uniform, with the sampled-softmax "
            "correction); 0 = the full vocabulary"
        },
    )
    losses: dict[str, float] = field(
        default_factory=lambda: {"alm": 1.0, "sft": 1.0},
        metadata={
            "help": "alm (against the frozen base), sft (next-token), lexical -> weight; the default, ALM at tau 5 "
            "plus next-token balanced by gradient magnitude, is benchmarks/objective_study.py's choice"
        },
    )
    alm: dict[str, Any] = field(
        default_factory=lambda: {"tau": 5.0},
        metadata={"help": "zett.losses.alm_loss keyword arguments (tau, divergence, ...)"},
    )
    balance: bool = field(
        default=True,
        metadata={
            "help": "gradient-magnitude balancing (SPEC 5.2.8): each loss weighted by the inverse norm of its "
            "gradient at the step's embedding rows (logged as w_<loss>)"
        },
    )
    copy_overlap: bool = field(
        default=True,
        metadata={
            "help": "hold rows that exist in the base at the base's values (subword tokenizers), as transfer does"
        },
    )
    copy_bytes: bool = field(
        default=False,
        metadata={"help": "the same for the byte tokenizer (off: the hypernetwork predicts every byte row)"},
    )
    mixed_precision: str = field(default="auto", metadata={"help": "no | bf16 | auto (bf16 where native)"})
    log_with: Any = option(None, TRACKERS_HELP)
    cache_teacher: bool = True
    fused_adamw: bool = option(True, FUSED_ADAMW_HELP)
    unpadded: bool = option(True, UNPADDED_HELP)
    lazy_teacher: bool = option(True, LAZY_TEACHER_HELP)
    save_every: int = field(default=50, metadata={"help": "steps between checkpoints"})
    num_workers: int = field(default=1, metadata={"help": "data loader workers (sampling, tokenising, aligning)"})
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate_training_fields()
        unknown = set(self.losses) - set(LOSSES)
        if unknown or not self.losses:
            raise ValueError(f"losses={self.losses}: unknown {sorted(unknown)}; use {', '.join(LOSSES)}")
