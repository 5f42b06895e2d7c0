"""Multiple-choice tasks scored by log-likelihood, the same way for every tokenizer (bytes included).

The rule, for one example with context ``c`` and choices ``x_1 .. x_k``:

* the model reads one start token (BOS, else EOS, as :func:`zett.evaluate.bits_per_byte`), then ``c``
  tokenized as plain text;
* each choice is the text ``" " + x_i`` that follows the context, tokenized on its own as plain text (a
  tokenizer that adds a prefix space to every text gets ``x_i`` and adds the space itself), so its tokens cover
  exactly the bytes of ``" " + x_i`` whatever the tokenizer, and the context's tokenization is the same for
  every choice;
* its score is the log-likelihood of those tokens after the context divided by the UTF-8 bytes of
  ``" " + x_i``: log-likelihood per byte. The text and its byte count are the same under every tokenizer, so
  a byte-level model and a 150k-token model are compared on the same quantity; per-token normalisation would
  favour long tokens, and none would favour short choices;
* the prediction is the highest score; an exact tie between ``m`` choices that include the answer earns
  ``1/m`` (the expected accuracy of breaking the tie at random), so a model that cannot tell the choices apart
  scores chance, not the accuracy of "always the first".

Task files are JSON lines ``{"context": str, "choices": [str, ...], "answer": int}``. Per task the result gives
accuracy, chance (mean of 1/k), n and a 95% Wilson interval; :class:`ChoiceResult` adds macro means with
stratified bootstrap intervals, over all tasks and over the tasks where a reference model is above chance.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from tokenizers_zoo import encode_text, normalisation, start_token_id

from .stats import LEVEL, N_BOOT, Estimate, Paired, bootstrap, wilson


@dataclass(frozen=True)
class Example:
    context: str
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class Task:
    name: str
    examples: tuple[Example, ...]


def read_task(path: str | Path) -> Task:
    """One task from a JSON-lines file; a malformed line raises ``ValueError`` naming the file and line."""
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); task files are UTF-8 JSON lines"
        ) from exc
    except OSError as exc:
        raise FileNotFoundError(f"cannot read task file {path} ({exc.strerror or exc}); check the path") from exc
    examples = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            examples.append(_example(line, f"{path}:{n}"))
    if not examples:
        raise ValueError(
            f"{path} holds no examples; a task file has one JSON object per line with context, choices and answer"
        )
    return Task(path.name.removesuffix(".jsonl"), tuple(examples))


def _example(line: str, where: str) -> Example:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON ({exc.msg}); each line must be one JSON object") from exc
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a line must be a JSON object with context, choices and answer")
    missing = [k for k in ("context", "choices", "answer") if k not in row]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}; each line needs context, choices and answer")
    context, choices, answer = row["context"], row["choices"], row["answer"]
    if not isinstance(context, str):
        raise ValueError(f"{where}: context must be a string")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise ValueError(f"{where}: choices must be a list of at least two strings")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise ValueError(f"{where}: answer must be an index into choices (0..{len(choices) - 1}), got {answer!r}")
    return Example(context, tuple(choices), answer)


def load_tasks(spec: Any) -> list[Task]:
    """Tasks from a ``.jsonl`` file, a directory of them, :class:`Task` objects, or a list of any of these."""
    if isinstance(spec, Task):
        return [spec]
    if isinstance(spec, (str, Path)):
        path = Path(spec).expanduser()
        if path.is_dir():
            files = sorted(path.glob("*.jsonl"))
            if not files:
                raise ValueError(f"{path} holds no .jsonl task files")
            return [read_task(f) for f in files]
        return [read_task(path)]
    if isinstance(spec, Iterable):
        tasks = [t for item in spec for t in load_tasks(item)]
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(
                f"two tasks share a name ({sorted({n for n in names if names.count(n) > 1})}); "
                "task names come from file names and must be unique"
            )
        return tasks
    raise TypeError(f"cannot read tasks from a {type(spec).__name__}; pass a .jsonl path, a directory or Tasks")


@dataclass
class TaskResult:
    """Per-example credit (1 right, 0 wrong, 1/m for a tie of m choices that includes the answer), chance per
    example (1/k) and the chosen index per example."""

    task: str
    credit: np.ndarray
    chance_per: np.ndarray
    predictions: np.ndarray
    level: float = LEVEL

    @property
    def n(self) -> int:
        return len(self.credit)

    @property
    def accuracy(self) -> float:
        return float(self.credit.mean())

    @property
    def chance(self) -> float:
        return float(self.chance_per.mean())

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(float(self.credit.sum()), self.n, level=self.level)

    @property
    def above_chance(self) -> bool:
        """True when the interval lies wholly above chance."""
        return self.interval[0] > self.chance

    def paired(self) -> Paired:
        return Paired(self.credit.astype(np.float64), (self.task, self.n))

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "task": self.task,
            "accuracy": self.accuracy,
            "ci_low": low,
            "ci_high": high,
            "n": self.n,
            "chance": self.chance,
            "above_chance": self.above_chance,
        }


@dataclass
class ChoiceResult:
    """Results of several tasks, with macro means (each task weighs the same)."""

    tasks: list[TaskResult]
    reference_above_chance: list[str] | None = None
    seed: int = 0
    n_boot: int = field(default=N_BOOT, repr=False)

    def __getitem__(self, name: str) -> TaskResult:
        for t in self.tasks:
            if t.task == name:
                return t
        raise KeyError(name)

    def above_chance(self) -> list[str]:
        """Names of the tasks whose accuracy interval lies above chance."""
        return [t.task for t in self.tasks if t.above_chance]

    def _select(self, names: Sequence[str] | None) -> list[TaskResult]:
        if names is None:
            return self.tasks
        unknown = set(names) - {t.task for t in self.tasks}
        if unknown:
            raise ValueError(f"no result for task(s) {sorted(unknown)}")
        return [t for t in self.tasks if t.task in set(names)]

    def paired(self, names: Sequence[str] | None = None) -> Paired:
        chosen = self._select(names)
        credit = np.concatenate([t.credit for t in chosen]).astype(np.float64)
        strata = np.concatenate([np.full(t.n, i) for i, t in enumerate(chosen)])
        return Paired(credit, tuple((t.task, t.n) for t in chosen), strata=strata)

    def macro(self, names: Sequence[str] | None = None) -> Estimate:
        """Mean accuracy over tasks (all, or ``names``) with a bootstrap interval resampling each task's
        examples."""
        p = self.paired(names)
        if not len(p.num):
            raise ValueError("no tasks to average")
        value = float(p.statistic(np.arange(len(p.num))[None, :])[0])
        low, high = bootstrap(p.statistic, len(p.num), n_boot=self.n_boot, seed=self.seed, strata=p.strata)
        return Estimate(value, low, high, len(p.num))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tasks": [t.as_dict() for t in self.tasks], "macro": self.macro().as_dict()}
        if self.reference_above_chance:
            out["reference_above_chance"] = list(self.reference_above_chance)
            out["macro_reference_above_chance"] = self.macro(self.reference_above_chance).as_dict()
        return out


def continuation_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids covering exactly the bytes of ``text`` (which starts with a space) when it follows other text:
    for a tokenizer that puts a prefix space before every text, the leading space is left for it to add."""
    if text.startswith(" ") and normalisation(tokenizer).prefix_space == "always":
        return encode_text(tokenizer, text[1:])
    return encode_text(tokenizer, text)


def choice_accuracy(
    model: Any,
    tokenizer: Any,
    tasks: Any,
    *,
    max_examples: int | None = None,
    progress: bool = True,
    reference: ChoiceResult | None = None,
    seed: int = 0,
    batch_rows: int = 1,
) -> ChoiceResult:
    """Accuracy of ``model`` on multiple-choice ``tasks`` (see the module docstring for the scoring rule).

    ``tasks``: a ``.jsonl`` file, a directory of them, or a list; ``max_examples``: the first N examples of each
    task; ``reference``: another model's :class:`ChoiceResult` on the same tasks, whose above-chance tasks get a
    macro mean of their own (``macro_reference_above_chance`` in :meth:`ChoiceResult.as_dict`); ``batch_rows``:
    examples run together, right-padded, up to that many choices in all (default 1: one example at a time, no
    padding; larger batches suit an accelerator; scores agree to float tolerance)."""
    loaded = load_tasks(tasks)
    start = start_token_id(tokenizer)
    limit = getattr(model.config, "max_position_embeddings", None) or 1 << 30
    total = sum(min(len(t.examples), max_examples or len(t.examples)) for t in loaded)
    bar = tqdm(total=total, desc="tasks", disable=not progress, leave=False)
    results = []
    for task in loaded:
        examples = task.examples[:max_examples] if max_examples else task.examples
        credit, chance, preds = [], [], []
        for batch in _batches(examples, batch_rows):
            for ex, scores in zip(batch, _batch_scores(model, tokenizer, start, batch, limit), strict=True):
                best = np.flatnonzero(scores == scores.max())
                credit.append(1.0 / len(best) if ex.answer in best else 0.0)
                chance.append(1.0 / len(ex.choices))
                preds.append(int(best[0]))
            bar.update(len(batch))
        results.append(TaskResult(task.name, np.array(credit), np.array(chance), np.array(preds)))
    bar.close()
    ref = reference.above_chance() if reference is not None else None
    return ChoiceResult(
        results, [n for n in ref if n in {r.task for r in results}] if ref is not None else None, seed=seed
    )


def with_cache(model: Any, cache: Any) -> dict[str, Any]:
    """The keyword that hands a key/value cache to ``model``'s forward (``cache`` in newer transformers 5
    releases, ``past_key_values`` before)."""
    params = inspect.signature(model.forward).parameters
    return {"cache" if "cache" in params else "past_key_values": cache}


def cache_of(output: Any) -> Any:
    """The key/value cache a forward returned, under either name."""
    cache = output.get("cache")
    return cache if cache is not None else output.get("past_key_values")


@torch.inference_mode()
def _choice_scores(model: Any, tokenizer: Any, start: int, ex: Example, limit: int) -> np.ndarray:
    """Log-likelihood per byte of each choice of one example (:func:`_batch_scores` with a batch of one)."""
    return _batch_scores(model, tokenizer, start, [ex], limit)[0]


@torch.inference_mode()
def _batch_scores(model: Any, tokenizer: Any, start: int, examples: Sequence[Example], limit: int) -> list[np.ndarray]:
    """Log-likelihood per byte of each choice of each example. The contexts run once, right-padded into one
    batch; each context's cache rows are repeated for its choices, which then run as one batch after it
    (padding masked, positions continuing each context's own length)."""
    device = next(model.parameters()).device
    conts = [[continuation_ids(tokenizer, " " + c) for c in ex.choices] for ex in examples]
    longest = max(len(c) for cs in conts for c in cs)
    ctxs = []
    for ex in examples:
        ctx = [start] + encode_text(tokenizer, ex.context)
        if len(ctx) + longest > limit:  # keep the start token and the end of the context
            ctx = [start] + ctx[len(ctx) - (limit - longest - 1) :]
        ctxs.append(ctx)
    lengths = torch.tensor([len(c) for c in ctxs])
    width = int(lengths.max())
    ids = torch.full((len(ctxs), width), start, dtype=torch.long)
    ctx_mask = torch.zeros((len(ctxs), width), dtype=torch.long)
    for row, ctx in enumerate(ctxs):
        ids[row, : len(ctx)] = torch.tensor(ctx, dtype=torch.long)
        ctx_mask[row, : len(ctx)] = 1
    last = sorted(set((lengths - 1).tolist()))
    out = model(
        input_ids=ids.to(device),
        attention_mask=ctx_mask.to(device),
        use_cache=True,
        logits_to_keep=torch.tensor(last, device=device),
    )
    at = torch.tensor([last.index(int(n) - 1) for n in lengths])
    first = torch.log_softmax(out.logits[torch.arange(len(ctxs)), at.to(device)].float(), -1).cpu()
    totals = [np.array([float(first[e, c[0]]) if c else 0.0 for c in cs]) for e, cs in enumerate(conts)]
    if longest > 1:
        owner = torch.tensor([e for e, cs in enumerate(conts) for _ in cs])
        flat = [c for cs in conts for c in cs]
        cont_ids = torch.full((len(flat), longest), start, dtype=torch.long)
        cont_mask = torch.zeros((len(flat), longest), dtype=torch.long)
        for row, c in enumerate(flat):
            cont_ids[row, : len(c)] = torch.tensor(c, dtype=torch.long)
            cont_mask[row, : len(c)] = 1
        cache = cache_of(out)
        cache.reorder_cache(owner.to(device))
        attention = torch.cat([ctx_mask[owner], cont_mask], dim=1)
        positions = lengths[owner, None] + torch.arange(longest)
        logits = model(
            input_ids=cont_ids.to(device),
            attention_mask=attention.to(device),
            position_ids=positions.to(device),
            **with_cache(model, cache),
        ).logits.float()
        lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, cont_ids[:, 1:, None].to(device))[..., 0]
        rest = (lp.cpu() * cont_mask[:, 1:]).sum(-1).double().numpy()
        ends = np.cumsum([len(cs) for cs in conts])
        for e, end in enumerate(ends):
            totals[e] += rest[end - len(conts[e]) : end]
    n_bytes = [np.array([len((" " + c).encode("utf-8")) for c in ex.choices], dtype=np.float64) for ex in examples]
    return [t / n for t, n in zip(totals, n_bytes, strict=True)]


def _batches(examples: Sequence[Example], max_rows: int) -> Iterable[list[Example]]:
    """Consecutive examples, at most ``max_rows`` choices in all per batch (an example never split)."""
    batch: list[Example] = []
    rows = 0
    for ex in examples:
        if batch and rows + len(ex.choices) > max_rows:
            yield batch
            batch, rows = [], 0
        batch.append(ex)
        rows += len(ex.choices)
    if batch:
        yield batch


__all__ = [
    "ChoiceResult",
    "Example",
    "Task",
    "TaskResult",
    "choice_accuracy",
    "continuation_ids",
    "load_tasks",
    "read_task",
]
