"""Conversations to distil on: the teacher answers prompts through its chat template.

A chat model keeps its answers only if the student sees chat-formatted text: ``DistillConfig(chat_prompts=...)``
has the teacher answer each prompt once (greedy, through its own chat template), and those one-turn
conversations join the plain texts. Each side tokenizes a conversation with its own chat template, special tokens
parsed, so the turn markers are the ids the model sees when it is used as a chat model; chunk alignment pairs them
by role. The answers are kept in the run directory (``conversations.jsonl``), so a resumed run trains on the same
conversations without generating them again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypernet.files import write_text
from tokenizers_zoo import encode_text

from ..evaluate.agreement import greedy_batch, prompt_ids, with_start

BUILTIN = "builtin"
BUILTIN_FILE = Path(__file__).with_name("chat_prompts.txt")
CACHE = "conversations.jsonl"


def read_prompts(source: str | Path | Sequence[str]) -> list[str]:
    """Prompts from ``"builtin"`` (zett's own set of everyday questions and instructions), a text file (one
    prompt per line), a JSONL file (a ``prompt`` field per line) or a list of strings."""
    if isinstance(source, (list, tuple)):
        prompts = [str(p) for p in source]
    else:
        path = BUILTIN_FILE if str(source) == BUILTIN else Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"chat_prompts file {path} does not exist; pass a prompt file or 'builtin'")
        lines = path.read_text(encoding="utf-8").splitlines()
        if path.suffix == ".jsonl":
            try:
                prompts = [json.loads(line)["prompt"] for line in lines if line.strip()]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{path}: every line must be a JSON object with a 'prompt' field ({err})") from None
        else:
            prompts = lines
    prompts = [p.strip() for p in prompts if p.strip()]
    if not prompts:
        raise ValueError(f"no prompts in {source!r}; pass a non-empty prompt file or 'builtin'")
    return prompts


def require_template(tokenizer: Any, side: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"chat_prompts needs a chat template on the {side} tokenizer and it has none; "
            "leave chat_prompts unset for a base model, or set tokenizer.chat_template"
        )


def teacher_conversations(
    teacher: Any,
    teacher_tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_bytes: int,
    run_dir: Path | None = None,
    write: bool = True,
) -> list[tuple[str, str, bool]]:
    """(prompt, answer, complete) triples: the teacher's greedy answer to each prompt through its chat template,
    at most ``max_new_bytes`` bytes (``complete``: the teacher ended it before that). With ``run_dir``, read from
    ``run_dir/conversations.jsonl`` when it holds these prompts, else generated and written there atomically
    (``write``: this process writes)."""
    require_template(teacher_tokenizer, "teacher")
    cache = run_dir / CACHE if run_dir is not None else None
    if cache is not None and cache.exists():
        rows = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines() if line.strip()]
        if [r["prompt"] for r in rows] != list(prompts):
            raise ValueError(f"{cache} holds answers to other prompts; use a new run directory or delete that file")
        return [(r["prompt"], r["answer"], r["complete"]) for r in rows]
    was_training = teacher.training
    teacher.eval()
    prefixes = [prompt_ids(teacher_tokenizer, p, chat=True) for p in prompts]
    answers = greedy_batch(teacher, teacher_tokenizer, prefixes, max_new_bytes)
    teacher.train(was_training)
    # greedy_batch cuts at the byte budget (whole characters): an answer that reaches it within one character was cut
    triples = [(p, a, len(a.encode("utf-8")) <= max_new_bytes - 4) for p, a in zip(prompts, answers, strict=True)]
    if cache is not None and write:
        keys = ("prompt", "answer", "complete")
        lines = (json.dumps(dict(zip(keys, t)), ensure_ascii=False) for t in triples)
        write_text(cache, "".join(line + "\n" for line in lines))
    return triples


def conversation_ids(tokenizer: Any, prompt: str, answer: str, complete: bool = True) -> list[int]:
    """Ids of the one-turn conversation through ``tokenizer``'s chat template (special tokens parsed), starting
    with the start token as every training row does. An answer that was cut (``complete=False``) gets no
    end-of-turn marker: the chat up to the assistant's turn, then the answer's text."""
    if complete:
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        return with_start(tokenizer, tokenizer(text, add_special_tokens=False)["input_ids"])
    return prompt_ids(tokenizer, prompt, chat=True) + encode_text(tokenizer, answer)
