"""Hypernetwork objectives at equal budget, continued from the shipped network and scored with zett.evaluate.

    python benchmarks/objective_study.py --arm ntp|alm5|alm5+ntp|... [--steps 150] [--docs 10] [--max-examples 25]
                                         [--seed 3]
    python benchmarks/objective_study.py --arm run --run-dir RUN_DIR   # score a finished train-hypernet run
    python benchmarks/objective_study.py --report      # results/objective_study.{json,md} from the arms' parts

Each arm continues ``smollm2-135m`` (``init_from``) for ``--steps`` steps with the recipe of
examples/hypernet_smollm2_anneal2.yaml (the shipped network's last leg) and one objective; every arm draws the
same data and tokenizers (same seed), so arms differ only in the loss. Runs live in
~/.cache/zett-runs/objective-study/<arm> (resumable; ``<arm>@s<seed>`` for a seed other than 3, whose arms are
compared with the next-token arm of their own seed). Each arm is then transferred to Gemma-3's tokenizer (from
its GGUF), to a sampled Unigram tokenizer (``benchmarks/suite.py``'s first, from a seed no run draws) and to bytes,
none seen in training, and scored as ``benchmarks/evaluation.py`` scores a row: bits per byte on the first
``--docs`` documents of every language, accuracy on the tasks the original is above chance on, agreement with the
original. The shipped network's and FVT's rows come from results/evaluation.json (the same documents, prompts and
first examples), or for the sampled tokenizer from ``--arm references``, so every arm is compared pairwise with
the network it started from and with FVT. One process per arm (``--arm``) writes its own part file; run arms side
by side, then ``--report``.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from common import ASSETS, Results, ensure_smollm2, hardware, read_parts, require_assets, study_main
from evaluation import _bpb, measure, texts_by_language
from hypernet_zero_shot import target_spec
from suite import sampled_targets

import zett
from zett.evaluate import load_tasks, score
from zett.paths import REPO

HERE = Path(__file__).parent
RUNS = Path.home() / ".cache" / "zett-runs" / "objective-study"
START = "smollm2-135m"  # the studies' starting network: leg 9 of its card, read from git (start_network)
START_COMMIT = "1ca2dbcbf03d6d2ca8360cdac60edff302873304"
START_ROWS = "hypernet@leg9"  # its rows in results/evaluation.json
ARMS = {
    "ntp": {"losses": {"sft": 1.0}},
    "alm1": {"losses": {"alm": 1.0}, "alm": {"tau": 1.0}},
    "alm5": {"losses": {"alm": 1.0}, "alm": {"tau": 5.0}},
    "alm10": {"losses": {"alm": 1.0}, "alm": {"tau": 10.0}},
    "alm100": {"losses": {"alm": 1.0}, "alm": {"tau": 100.0}},
    "alm5+ntp": {"losses": {"alm": 1.0, "sft": 1.0}, "alm": {"tau": 5.0}, "balance": True},
    "alm5+ntp+lex": {"losses": {"alm": 1.0, "sft": 1.0, "lexical": 1.0}, "alm": {"tau": 5.0}, "balance": True},
}
TARGETS = ("gemma3", "byte", "sampled")
CHARS = 500  # results/evaluation.json's rows were scored on the first 500 characters


SEED = 3


def run_name(arm: str, seed: int, hold_out: str | None = None) -> str:
    return (arm if seed == SEED else f"{arm}@s{seed}") + (f"-no-{hold_out}" if hold_out else "")


def training_data(hold_out: str | None) -> str:
    """The corpus' training files as a glob; without ``hold_out``'s file: a directory of links to the others."""
    if not hold_out:
        return str(ASSETS / "corpus" / "*.train.jsonl")
    files = sorted((ASSETS / "corpus").glob("*.train.jsonl"))
    if not any(f.name == f"{hold_out}.train.jsonl" for f in files):
        raise SystemExit(f"no {hold_out}.train.jsonl in {ASSETS / 'corpus'}: --hold-out takes a corpus language")
    links = RUNS / f"data-no-{hold_out}"
    links.mkdir(parents=True, exist_ok=True)
    for f in files:
        if f.name != f"{hold_out}.train.jsonl" and not (links / f.name).exists():
            (links / f.name).symlink_to(f.resolve())
    return str(links / "*.train.jsonl")


def arm_config(arm: str, steps: int, seed: int = SEED, hold_out: str | None = None) -> dict:
    cfg = yaml.safe_load((REPO / "examples" / "hypernet_smollm2_anneal2.yaml").read_text())
    tokenizers = ASSETS / "tokenizers"
    cfg.update(
        run_dir=str(RUNS / run_name(arm, seed, hold_out)),
        init_from=str(start_network()),
        data=training_data(hold_out),
        eval_data=None,
        eval_tokenizers=[],
        eval_every=0,
        real_tokenizers=[str(tokenizers / Path(t).name) for t in cfg["real_tokenizers"]],
        steps=steps,
        warmup_steps=min(20, steps // 5),
        seed=seed,
        losses={},
        alm={},
        balance=False,
    )
    cfg.update(ARMS[arm])
    return cfg


def trimmed(row: dict, docs: int) -> dict:
    """``row`` with only the first ``docs`` documents of each language (per-item lists cut, nothing else)."""
    out = dict(row, bpb={})
    for lang, v in row["bpb"].items():
        out["bpb"][lang] = dict(v, doc_bits=v["doc_bits"][:docs], doc_bytes=v["doc_bytes"][:docs])
    return out


REFERENCES = RUNS / "references" / "rows.json"  # FVT's and the shipped network's rows on targets evaluation.json lacks


def reference_rows(docs: int) -> list[dict]:
    """The original's, FVT's and the starting network's rows (arm ``shipped``) on the study's targets, from
    results/evaluation.json and, for targets it lacks (``sampled``), from ``--arm references``."""
    rows = json.loads((HERE / "results" / "evaluation.json").read_text())["rows"]
    if REFERENCES.exists():
        rows += json.loads(REFERENCES.read_text())["rows"]
    keep = [
        r
        for r in rows
        if r["method"] in ("original", "fvt", START_ROWS) and (r["method"] == "original" or r["target"] in TARGETS)
    ]
    return [trimmed(dict(r, arm="shipped" if r["method"] == START_ROWS else r["method"]), docs) for r in keep]


def start_network() -> Path:
    """``smollm2-135m`` as every study arm started from it (leg 9 of its card), written from git at
    ``START_COMMIT`` into the runs directory once: the shipped network moves on, the studies' baseline does not."""
    out = RUNS / "start-leg9"
    if (out / "model.safetensors").exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "README.md"):
        spec = f"{START_COMMIT}:hypernet/shipped/smollm2-135m/{name}"
        blob = subprocess.run(["git", "-C", str(REPO), "show", spec], capture_output=True, check=False)
        if blob.returncode:
            raise SystemExit(
                f"cannot read {spec} from git ({blob.stderr.decode().strip()}): the studies need a clone "
                "with its history (git clone without --depth)"
            )
        (tmp / name).write_bytes(blob.stdout)
    tmp.rename(out)
    return out


def target_tokenizer(target: str, tok) -> object:
    """What ``zett.transfer`` is given for a study target; ``sampled``: the benchmark suite's first sampled
    Unigram tokenizer (drawn as in training, from a seed no run uses)."""
    return next(iter(sampled_targets(tok, 1).values())) if target == "sampled" else target_spec(target)


def run_references(args, model, tok, texts, above) -> None:
    """FVT's and the shipped network's rows on the targets results/evaluation.json lacks."""
    res = Results(REFERENCES, {"hardware": hardware(), "docs": args.docs, "chars": CHARS})
    for target in TARGETS:
        for method, net in (("fvt", None), (START_ROWS, start_network())):
            if res.has(method=method, target=target) or any(
                r["target"] == target and r["method"] == method for r in reference_rows(args.docs)
            ):
                continue
            t0 = time.perf_counter()
            new, new_tok = zett.transfer(model, target_tokenizer(target, tok), base_tokenizer=tok, hypernet=net)
            row = measure(new, new_tok, model, tok, texts, above, args.max_examples, with_agreement=True)
            res.add(method=method, target=target, total_s=time.perf_counter() - t0, **row)
            print(f"references {method} {target}: BPB {_bpb(res.data['rows'][-1]).value:.3f}", flush=True)


def check_same_numbers(net, model, tok, shipped: dict, docs: int) -> None:
    """The shipped network's Gemma-3 transfer, scored here on English, must reproduce results/evaluation.json's
    per-document bits (the pairing assumes this machine computes the same numbers)."""
    new, new_tok = zett.transfer(model, target_spec("gemma3"), base_tokenizer=tok, hypernet=net)
    texts = texts_by_language(docs, CHARS)["en"]
    got = np.asarray(score(new, new_tok, texts, progress=False).doc_bits)
    want = np.asarray(shipped["bpb"]["en"]["doc_bits"][:docs])
    if not np.allclose(got, want, rtol=1e-3):
        raise SystemExit(f"the shipped network's numbers differ from results/evaluation.json: {got} vs {want}")


def run_arm(args) -> None:
    require_assets()
    torch.set_num_threads(args.threads)
    model, tok = zett.load_model(ensure_smollm2())
    refs = reference_rows(args.docs)
    original = next(r for r in refs if r["method"] == "original")
    texts = texts_by_language(args.docs, CHARS)
    above = [t for t in load_tasks(ASSETS / "tasks") if original["tasks"][t.name]["above_chance"]]
    if args.arm == "references":
        return run_references(args, model, tok, texts, above)
    if args.arm == "run":
        if not args.run_dir:
            raise SystemExit("--arm run scores a finished train-hypernet run: give its directory with --run-dir")
        run_dir = Path(args.run_dir).expanduser()
        name, arm_cfg = run_dir.name, yaml.safe_load((run_dir / "config.yaml").read_text())
        seed, steps, train_s = arm_cfg["seed"], arm_cfg["steps"], None
        arm_cfg = {k: arm_cfg.get(k) for k in ("losses", "alm", "balance", "init_from", "lr")}
    else:
        name, run_dir = (
            run_name(args.arm, args.seed, args.hold_out),
            RUNS / run_name(args.arm, args.seed, args.hold_out),
        )
        seed, steps, arm_cfg = args.seed, args.steps, dict(ARMS[args.arm])
    part = RUNS / f"{name}.json"
    res = Results(part, {"hardware": hardware(), "docs": args.docs, "chars": CHARS, "max_examples": args.max_examples})
    arm = name if args.arm == "run" else args.arm
    if not res.has(arm=arm, target="gemma3"):
        shipped = next(r for r in refs if r["arm"] == "shipped" and r["target"] == "gemma3")
        check_same_numbers(zett.Hypernet.from_pretrained(start_network()), model, tok, shipped, 2)
    if args.arm != "run":
        t0 = time.perf_counter()
        cfg = arm_config(args.arm, args.steps, args.seed, args.hold_out)
        result = zett.train_hypernet(cfg, base_model=model, base_tokenizer=tok)
        # wall time only for a run trained start to end in this call (a resumed run's is split over sessions)
        train_s = time.perf_counter() - t0 if len(result.metrics) >= args.steps else None
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    tokens = max((m.get("student_tokens_seen", 0) for m in logged), default=0)
    net = zett.Hypernet.from_pretrained(run_dir / "hypernet")
    for target in TARGETS:
        if res.has(arm=arm, target=target):
            continue
        t0 = time.perf_counter()
        new, new_tok = zett.transfer(model, target_tokenizer(target, tok), base_tokenizer=tok, hypernet=net)
        row = measure(new, new_tok, model, tok, texts, above, args.max_examples, with_agreement=True)
        res.add(
            arm=arm,
            method="hypernet",
            target=target,
            seed=seed,
            held_out=args.hold_out,
            steps=steps,
            student_tokens=tokens,
            train_s=train_s,
            config=arm_cfg,
            total_s=time.perf_counter() - t0,
            **row,
        )
        print(f"{name} {target}: BPB {_bpb(res.data['rows'][-1]).value:.3f}", flush=True)


def row_key(row: dict) -> tuple:
    """What one row is a measurement of: arm, seed, language left out and target."""
    return row["arm"], row.get("seed", SEED), row.get("held_out"), row["target"]


def report() -> None:
    from objective_report import plot, table

    rows, meta = read_parts(RUNS, HERE / "results" / "objective_study.json", row_key)
    refs = reference_rows(meta["docs"])
    out = Results(HERE / "results" / "objective_study.json", dict(meta, start=START, targets=list(TARGETS)))
    out.data["rows"] = rows
    out.save()
    (HERE / "results" / "objective_study.md").write_text("\n".join(table(refs, rows, meta)) + "\n", encoding="utf-8")
    plot(refs, rows, HERE / "results" / "objective_study.png")
    print((HERE / "results" / "objective_study.md").read_text())


def main() -> None:
    # --arm references: FVT's and the shipped network's rows on the targets results/evaluation.json lacks;
    # --arm run --run-dir DIR: a network trained elsewhere (e.g. a leg of the shipped network), scored as an arm
    study_main(
        __doc__,
        {**ARMS, "references": {}, "run": {}},
        150,
        run_arm,
        report,
        seed={"type": int, "default": SEED},
        **{"run-dir": {"help": "with --arm run: a finished train-hypernet run directory to score (no training)"}},
        **{"hold-out": {"metavar": "LANG", "help": "train without this corpus language (scored as every other)"}},
    )


if __name__ == "__main__":
    main()
