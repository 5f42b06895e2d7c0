"""How long `zett eval` takes for one model at its default sizes: tasks, then agreement with the original.

    python benchmarks/eval_time.py [--model byte|llama2|...|original] [--threads 2] [--max-examples 50]

SmolLM2-135M-Instruct (``original``) or its FVT transfer to a target tokenizer, on the 25 tasks of
../shared/assets/tasks (first ``--max-examples`` of each, ``zett eval``'s default) and agreement with the original
on 16 prompts cut from the first corpus document of 16 languages plus the chat prompts (``zett eval``'s default),
timed separately; the load average is printed beside each so a run beside other jobs reads as such. Prints one
line per phase and the total; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from common import ASSETS, ensure_smollm2, hardware, require_assets
from evaluation import languages, texts_by_language
from hypernet_zero_shot import target_spec

import zett
from zett.evaluate import CHAT_PROMPTS, agreement, choice_accuracy, prompts_from_texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="original")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-examples", type=int, default=50)
    args = ap.parse_args()
    require_assets()
    torch.set_num_threads(args.threads)
    original, tok = zett.load_model(ensure_smollm2())
    model, model_tok = original, tok
    if args.model != "original":
        model, model_tok = zett.transfer(original, target_spec(args.model), base_tokenizer=tok, method="fvt")
    print(f"{hardware()}; {args.threads} torch threads; model {args.model}", flush=True)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = choice_accuracy(model, model_tok, ASSETS / "tasks", max_examples=args.max_examples, progress=False)
    tasks_s = time.perf_counter() - t0
    n = sum(t.n for t in res.tasks)
    print(
        f"tasks: {len(res.tasks)} tasks, {n} examples, {tasks_s:.0f} s (load {load:.1f} -> {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    texts = texts_by_language(1, 1000)
    prompts = prompts_from_texts([texts[lang][0] for lang in languages()][:16])
    chat = CHAT_PROMPTS if model_tok.chat_template and tok.chat_template else ()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    agreement(model, model_tok, original, tok, prompts, chat_prompts=chat, progress=False)
    agree_s = time.perf_counter() - t0
    print(
        f"agreement: {len(prompts)} prompts + {len(chat)} chat prompts, {agree_s:.0f} s (load {load:.1f} -> "
        f"{os.getloadavg()[0]:.1f})",
        flush=True,
    )
    print(f"total: {tasks_s + agree_s:.0f} s ({(tasks_s + agree_s) / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
