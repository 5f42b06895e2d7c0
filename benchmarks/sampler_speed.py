"""TokenizerSampler cost and the effect of the counting stride (SPEC §3.3).

    python benchmarks/sampler_speed.py [--quick]

Times (one thread) the start-up window (2,000 texts in 16 groups), one per-batch count, and one draw at
V = 32k, for stride 1 and 4; and for a noise-free draw of each, the bytes per token it reaches on held-out
text of every language (how much the stride costs in tokenizer quality). Writes results/sampler_speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from common import ASSETS, Results, corpus, hardware, require_assets

from tokenizers_zoo import TokenizerSampler, encode_text, load_tokenizer

LANGS = ["en", "de", "fr", "es", "ru", "zh", "code", "math"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="500 start-up texts, 3 draws")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sampler_speed.json")
    args = ap.parse_args()
    require_assets()
    torch.set_num_threads(1)
    n_start, draws = (500, 3) if args.quick else (2000, 5)
    res = Results(args.out, {"hardware": hardware()})
    base = load_tokenizer(ASSETS / "tokenizers" / "smollm2")
    per_lang = n_start // len(LANGS)
    startup = [t[:2000] for lang in LANGS for t in corpus(lang, per_lang, split="train")]
    batch = [t[:2000] for t in corpus("en", 8, split="train")]
    held = {lang: corpus(lang, 4) for lang in LANGS}
    for stride in (1, 4):
        t0 = time.perf_counter()
        sampler = TokenizerSampler(base, startup, stride=stride, vocab_size=(32768, 32768))
        startup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        sampler.observe(batch)
        observe_s = time.perf_counter() - t0
        times = []
        for seed in range(draws):
            t0 = time.perf_counter()
            sampler.sample(seed)
            times.append(time.perf_counter() - t0)
        clean = sampler.build(sampler.totals, 32768, 0.0, np.random.default_rng(0))
        bpt = {
            lang: sum(len(t.encode()) for t in texts) / sum(len(encode_text(clean, t)) for t in texts)
            for lang, texts in held.items()
        }
        res.add(
            stride=stride,
            startup_texts=len(startup),
            startup_s=startup_s,
            observe_8_texts_s=observe_s,
            draw_32k_s=statistics.median(times),
            window_substrings=len(sampler.totals),
            noise_free_bytes_per_token=bpt,
        )
        print(
            f"stride {stride}: start-up {startup_s:.1f}s, count a batch {observe_s:.3f}s, draw at 32k "
            f"{statistics.median(times):.2f}s (median of {draws}), {len(sampler.totals):,} substrings; "
            f"bytes/token {', '.join(f'{k} {v:.2f}' for k, v in bpt.items())}",
            flush=True,
        )


if __name__ == "__main__":
    main()
