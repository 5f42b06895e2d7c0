"""Wall time of zett.transfer (FVT) per target vocabulary, after the model is loaded.

    python benchmarks/transfer_speed.py [--repeats 3]

Prints the median of ``--repeats`` runs per target (target: < 10 s for a 150k vocabulary on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import ASSETS, ensure_smollm2, hardware, require_assets

import zett
from tokenizers_zoo import load_tokenizer

TARGETS = ["mistral-v3", "llama2", "gpt2", "llama3", "qwen3", "byte"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    require_assets()
    model, _ = zett.load_model(ensure_smollm2())
    print(f"hardware: {hardware()}, threads {torch.get_num_threads()}")
    for target in TARGETS:
        spec = target if target == "byte" else str(ASSETS / "tokenizers" / target)
        tok = load_tokenizer(spec)  # loading the tokenizer file is not part of the transfer
        times = []
        for _ in range(args.repeats):
            fresh = load_tokenizer(spec)  # no cached surface forms: count them in
            t0 = time.perf_counter()
            new, _ = zett.transfer(model, fresh)
            times.append(time.perf_counter() - t0)
            del new
        print(
            f"{target:11s} vocab {len(tok):>7,}  transfer median {statistics.median(times):5.2f}s "
            f"(min {min(times):.2f}, max {max(times):.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
