"""Helpers shared by the benchmark scripts: asset paths, corpus reading, result files."""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import time
from pathlib import Path

from hypernet.files import write_text
from zett.hypertrain.card import this_machine
from zett.paths import REPO, models_dir

ASSETS = Path(os.environ.get("ZETT_ASSETS", REPO.parent / "shared" / "assets"))  # SPEC §2a
SMOLLM2 = models_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA = models_dir() / "gemma-3-270m-q4_k_m.gguf"


def require_assets() -> None:
    if not (ASSETS / "corpus").exists():
        raise SystemExit(f"assets not found at {ASSETS}; set ZETT_ASSETS")


def ensure_smollm2() -> Path:
    if not SMOLLM2.exists():
        subprocess.run(["bash", str(ASSETS / "fetch_models.sh"), "smollm2"], check=True)
    return SMOLLM2


def ensure_gemma() -> Path:
    if not GEMMA.exists():
        subprocess.run(["bash", str(ASSETS / "fetch_models.sh"), "gemma3"], check=True)
    return GEMMA


def corpus(lang: str, n: int, split: str = "valid") -> list[str]:
    with open(ASSETS / "corpus" / f"{lang}.{split}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh][:n]


@functools.cache
def hardware() -> str:
    """The machine's line in every result file's meta and row (the same line the hypernetwork card uses)."""
    return this_machine()


class Results:
    """Rows appended to a JSON file as they are measured (a killed run keeps what it had)."""

    def __init__(self, path: Path, meta: dict):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)  # a study's first rows may start its directory
        self.data = json.loads(path.read_text()) if path.exists() else {"meta": meta, "rows": []}

    def has(self, **key) -> bool:
        return any(all(r.get(k) == v for k, v in key.items()) for r in self.data["rows"])

    def add(self, **row) -> None:
        row["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        row.setdefault("hardware", hardware())  # a resumed file may gather rows from several machines
        self.data["rows"].append(row)
        self.save()

    def drop(self, keep) -> int:
        """Remove the rows ``keep(row)`` rejects (to measure them again); returns how many."""
        before = len(self.data["rows"])
        self.data["rows"] = [r for r in self.data["rows"] if keep(r)]
        self.save()
        return before - len(self.data["rows"])

    def save(self) -> None:
        write_text(self.path, json.dumps(self.data, indent=1))


def save_figure(fig, path: Path) -> None:
    """Lay out, write as PNG and free a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def study_main(doc: str, arms: dict, steps: int, run_arm, report, **extra: dict) -> None:
    """The command line of a study: ``--arm ARM`` (with ``--steps``, ``--docs``, ``--max-examples``, ``--threads``
    and the ``extra`` options, name -> add_argument keywords) runs one arm, ``--report`` merges the parts."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--arm", choices=sorted(arms))
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--docs", type=int, default=10)
    ap.add_argument("--max-examples", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    for name, kwargs in extra.items():
        ap.add_argument(f"--{name}", **kwargs)
    args = ap.parse_args()
    if args.report:
        return report()
    if not args.arm:
        ap.error("--arm ARM or --report")
    run_arm(args)


def read_parts(runs: Path, published: Path, key) -> tuple[list[dict], dict]:
    """Every row of the part files under ``runs``, then the rows of ``published`` (the committed results file)
    whose ``key(row)`` no part holds (part files are local, so a report on another machine keeps what was
    published), and the meta of the first part (or of ``published``)."""
    parts = sorted(runs.glob("*.json"))
    rows = [r for p in parts for r in json.loads(p.read_text())["rows"]]
    meta = json.loads(parts[0].read_text())["meta"] if parts else None
    if published.exists():
        old = json.loads(published.read_text())
        keys = {key(r) for r in rows}
        rows += [r for r in old["rows"] if key(r) not in keys]
        meta = meta or old["meta"]
    if not rows:
        raise SystemExit(f"no results under {runs} or in {published}: run the measurement first")
    return rows, meta
