"""Hypernet.predict speed for training_speed.py's ``predict`` part: the library before vs after, each in a fresh
process, and the network's floating-point work set against the rate of one of its matrix products."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import ASSETS, ensure_smollm2

import zett
from zett.paths import REPO

WORKER = r"""
import json, sys, time, torch
import zett
from hypernet import Hypernet, exact_matches
from tokenizers_zoo import load_tokenizer
model_path, net_path, target_path, out, threads = sys.argv[1:6]
torch.set_num_threads(int(threads))
model, tok = zett.load_model(model_path)
net = Hypernet.from_pretrained(net_path, model, tok).eval()
target = load_tokenizer(target_path)
t_ids, _ = exact_matches(target, tok)
skip = torch.zeros(len(target), dtype=torch.bool)
skip[t_ids] = True
t0 = time.perf_counter()
emb = net.predict(target, skip=skip)
seconds = time.perf_counter() - t0
torch.save(emb.input, out + ".pt")
json.dump({"seconds": seconds, "vocab": len(target), "predicted": int((~skip).sum()), "file": zett.__file__},
          open(out + ".json", "w"))
"""


def load() -> float:
    return round(os.getloadavg()[0], 2)


def predict_part(args, rows: list, save) -> None:
    """Each (round, target, library) in a fresh process: the library at ``--before`` or this checkout; ``save(rows,
    args)`` after every row."""
    tmp = Path(tempfile.mkdtemp(prefix="zett-speed-"))
    before = tmp / "before"
    before.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", args.before, "hypernet", "tokenizers_zoo", "zett"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
    net = REPO / "hypernet" / "shipped" / "smollm2-135m"
    for target in args.targets.split(","):
        for n_threads in args.predict_threads:
            rows.append(network_work(target, n_threads))
            save(rows, args)
    for r in range(args.rounds):
        for target in args.targets.split(","):
            for n_threads in args.predict_threads:
                outs = {}
                for name, root in (("before", before), ("after", REPO)):
                    out = tmp / f"{target}-{name}-{r}-{n_threads}"
                    start = load()
                    # cwd first on sys.path: the library of that tree is imported
                    subprocess.run(
                        [
                            sys.executable,
                            "-c",
                            WORKER,
                            str(ensure_smollm2()),
                            str(net),
                            str(ASSETS / "tokenizers" / target),
                            str(out),
                            str(n_threads),
                        ],
                        cwd=root,
                        check=True,
                        env=dict(os.environ, PYTHONPATH=str(root)),
                    )
                    info = json.loads(Path(str(out) + ".json").read_text())
                    assert Path(info["file"]).is_relative_to(root), info["file"]
                    outs[name] = torch.load(str(out) + ".pt")
                    row = {
                        "part": "predict",
                        "setting": name,
                        "round": r,
                        "target": target,
                        "vocab": info["vocab"],
                        "predicted": info["predicted"],
                        "seconds": info["seconds"],
                        "threads": n_threads,
                        "load": [start, load()],
                    }
                    if name == "after":
                        row["max_abs_diff"] = float((outs["after"] - outs["before"]).abs().max())
                    rows.append(row)
                    save(rows, args)
                    print(
                        f"predict  {target:8s} {name:6s} {n_threads} thr round {r}: {info['seconds']:.1f} s "
                        f"({info['predicted']:,} rows through the network; load {row['load']})",
                        flush=True,
                    )


def network_work(target: str, threads: int) -> dict:
    """What bounds the prediction: the hypernetwork's floating-point work for ``target``'s predicted rows (from
    their decompositions: positions, rows, distinct base ids; multiply-adds count 2) and the rate of one of its
    matrix products on this machine now, at ``threads`` threads."""
    from hypernet import Hypernet, exact_matches
    from hypernet.model import network_rows
    from tokenizers_zoo import load_tokenizer, vocabulary

    model, tok = zett.load_model(ensure_smollm2())
    net = Hypernet.from_pretrained(REPO / "hypernet" / "shipped" / "smollm2-135m", model, tok)
    c = net.config
    target_tok = load_tokenizer(str(ASSETS / "tokenizers" / target))
    vocab = vocabulary(target_tok)
    run = network_rows(vocab)
    run[exact_matches(target_tok, tok)[0]] = False
    pieces = net.decomposer([vocab.forms[i] for i in run.nonzero()[:, 0].tolist()])
    pieces = [p[: c.max_subtokens] for p in pieces if p]
    heads = 1 if c.tied else 2
    h, d_in, n_rows = c.hidden_size, c.embedding_dim * heads, len(pieces)
    positions = sum(map(len, pieces))
    distinct = len({j for p in pieces for j in p})
    ffn = 2 * h * h * c.ffn_mult
    layer = 4 * h * h + ffn  # multiply-adds per position of a full layer (q, k, v, out; feed-forward)
    common = (
        positions * ((c.num_layers - 1) * layer + 2 * h * h)  # full layers; the last one's keys and values
        + n_rows * (2 * h * h + ffn + heads * (h * h + h * c.embedding_dim))
    )  # its query rows; the heads
    before, after = 2 * (common + positions * d_in * h), 2 * (common + distinct * d_in * h)
    torch.set_num_threads(threads)
    a, b = torch.randn(16384, h), torch.randn(h, 3 * h)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    rate = 2 * a.shape[0] * h * 3 * h / best
    return {
        "part": "network_work",
        "target": target,
        "rows": n_rows,
        "positions": positions,
        "distinct_ids": distinct,
        "gflop_before": before / 1e9,
        "gflop_after": after / 1e9,
        "gemm_gflops": rate / 1e9,
        "threads": threads,
        "floor_s": after / rate,
        "load": [load()],
    }
