"""A language whose script the hypernetwork's training text lacked: its rows, FVT's, and the two mixed.

    python benchmarks/unseen_script.py [--run-dir ~/.cache/zett-runs/objective-study/alm5+ntp-no-ko]
                                       [--target gemma3] [--lang ko] [--controls el,en] [--docs 10]

Transfers SmolLM2-135M-Instruct to ``--target`` three ways: FVT; the hypernetwork of ``--run-dir`` (by default
the objective study's arm trained without Korean, from a start that never saw it either); and that hypernetwork
with FVT's rows for the tokens holding a character of ``--lang``'s script (Hangul for ko, kana for ja, ...).
Scores bits per byte on the first ``--docs`` valid documents (first 500 characters, as the studies) of
``--lang`` and of the ``--controls`` languages, with paired 95% intervals.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import ensure_smollm2, hardware, require_assets
from evaluation import texts_by_language
from objective_study import CHARS, RUNS, target_tokenizer

import zett
from tokenizers_zoo import vocabulary
from zett.evaluate import score
from zett.evaluate.stats import Paired, compare

SCRIPTS = {  # code-point ranges of a language's own script
    "ko": [(0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7A3)],
    "ja": [(0x3040, 0x30FF)],
    "el": [(0x0370, 0x03FF)],
}


def script_tokens(tokenizer, lang: str) -> torch.Tensor:
    """Ids of the tokens whose surface form holds a character of ``lang``'s script."""
    ranges = SCRIPTS[lang]

    def hit(form: bytes) -> bool:
        return any(lo <= ord(c) <= hi for c in form.decode("utf-8", errors="ignore") for lo, hi in ranges)

    return torch.tensor([i for i, form in enumerate(vocabulary(tokenizer).forms) if hit(form)], dtype=torch.long)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default=str(RUNS / "alm5+ntp-no-ko"))
    ap.add_argument("--target", default="gemma3")
    ap.add_argument("--lang", default="ko", choices=sorted(SCRIPTS))
    ap.add_argument("--controls", default="el,en")
    ap.add_argument("--docs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    require_assets()
    torch.set_num_threads(args.threads)
    model, tok = zett.load_model(ensure_smollm2())
    target = target_tokenizer(args.target, tok)
    net = zett.Hypernet.from_pretrained(Path(args.run_dir).expanduser() / "hypernet")
    fvt, new_tok = zett.transfer(model, target, base_tokenizer=tok, method="fvt")
    hyper, _ = zett.transfer(model, target, base_tokenizer=tok, hypernet=net)
    mixed, _ = zett.transfer(model, target, base_tokenizer=tok, hypernet=net)
    ids = script_tokens(new_tok, args.lang)
    with torch.no_grad():
        for get in ("get_input_embeddings", "get_output_embeddings"):
            getattr(mixed, get)().weight[ids] = getattr(fvt, get)().weight[ids]
    print(f"{hardware()}; {len(ids):,} of {len(new_tok):,} tokens hold {args.lang}'s script")
    texts = texts_by_language(args.docs, CHARS)
    models = {"fvt": fvt, "hypernet": hyper, f"hypernet, FVT rows for {args.lang}'s script": mixed}
    for lang in [args.lang, *args.controls.split(",")]:
        paired = {}
        for name, m in models.items():
            r = score(m, new_tok, texts[lang], progress=False)
            paired[name] = Paired(np.asarray(r.doc_bits), (lang, len(r.doc_bits)), den=np.asarray(r.doc_bytes, float))
            print(f"{lang} {name}: {r.bpb:.3f}", flush=True)
        names = list(paired)
        for a, b in ((names[1], names[0]), (names[2], names[0]), (names[2], names[1])):
            d = compare(paired[a], paired[b])
            print(f"{lang} {a} - {b}: {d.value:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]", flush=True)


if __name__ == "__main__":
    main()
