"""A language whose script the hypernetwork's training text lacked: the network's rows, FVT's, and the library's
default (FVT rows for the tokens of scripts the training text lacked, the network's for all others).

    python benchmarks/unseen_script.py [--hypernet ~/.cache/zett-runs/objective-study/alm5+ntp-no-ko/hypernet]
                                       [--target gemma3] [--langs ko,el,en,zh] [--scripts HANGUL] [--docs 20]

Transfers SmolLM2-135M-Instruct to ``--target`` four ways: FVT; the hypernetwork ``--hypernet`` with
``script_fallback=False`` (every token through the network); the same network as ``zett.transfer`` uses it by
default; and with ``script_fallback=[--scripts]`` (FVT rows for the named scripts' tokens only). The default
network is the objective study's arm trained without Korean, from a start that never saw it either
(``--hypernet smollm2-135m``: the shipped one); a run's network saved before its config recorded
``training_scripts`` gets them from the run's ``config.yaml`` (its data and ``init_from``), as
``zett export-hypernet`` does. Scores bits per byte on the first ``--docs`` valid documents (first 500
characters, as the studies) of each language, with paired 95% intervals, and the share of each language's tokens
that took FVT rows.
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
from hypernet.scripts import unseen_script_tokens
from tokenizers_zoo import vocabulary
from zett.evaluate import score
from zett.evaluate.stats import Paired, compare
from zett.hypertrain import HypernetTrainConfig
from zett.hypertrain.inputs import trained_scripts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hypernet", default=str(RUNS / "alm5+ntp-no-ko" / "hypernet"))
    ap.add_argument("--target", default="gemma3")
    ap.add_argument("--langs", default="ko,el,en,zh", help="the unseen language first, then controls")
    ap.add_argument("--scripts", default="HANGUL", help="the unseen language's scripts (a fourth transfer)")
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    require_assets()
    torch.set_num_threads(args.threads)
    model, tok = zett.load_model(ensure_smollm2())
    target = target_tokenizer(args.target, tok)
    net = zett.Hypernet.from_pretrained(args.hypernet)
    if net.config.training_scripts is None:  # a run's hypernet/: its config.yaml is one level up
        run = Path(args.hypernet).expanduser().parent
        net.config.training_scripts = trained_scripts(HypernetTrainConfig.from_yaml(run / "config.yaml"))
    fvt, new_tok = zett.transfer(model, target, base_tokenizer=tok, method="fvt")
    models = {
        "fvt": fvt,
        "network everywhere": zett.transfer(model, target, base_tokenizer=tok, hypernet=net, script_fallback=False)[0],
        "default (FVT rows for unseen scripts)": zett.transfer(model, target, base_tokenizer=tok, hypernet=net)[0],
        f"FVT rows for {args.scripts} only": zett.transfer(
            model, target, base_tokenizer=tok, hypernet=net, script_fallback=args.scripts.split(",")
        )[0],
    }
    unseen = unseen_script_tokens(vocabulary(new_tok).forms, net.config.training_scripts)
    print(
        f"{hardware()}; training scripts {', '.join(net.config.training_scripts)}; "
        f"{int(unseen.sum()):,} of {len(new_tok):,} tokens take FVT rows"
    )
    texts = texts_by_language(args.docs, CHARS)
    for lang in args.langs.split(","):
        ids = [i for t in texts[lang] for i in new_tok(t, add_special_tokens=False)["input_ids"]]
        print(f"{lang}: {unseen[ids].float().mean().item():.1%} of its {len(ids):,} tokens take FVT rows")
        paired = {}
        for name, m in models.items():
            r = score(m, new_tok, texts[lang], progress=False)
            paired[name] = Paired(np.asarray(r.doc_bits), (lang, len(r.doc_bits)), den=np.asarray(r.doc_bytes, float))
            print(f"{lang} {name}: {r.bpb:.3f}", flush=True)
        names = list(paired)
        for a, b in ((names[1], names[0]), (names[2], names[0]), (names[2], names[1]), (names[3], names[0])):
            d = compare(paired[a], paired[b])
            print(f"{lang} {a} - {b}: {d.value:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]", flush=True)


if __name__ == "__main__":
    main()
