"""``zett.export``: a plain ``transformers`` directory with a model card, optionally pushed (SPEC §5.5).

Writes go to a temporary directory beside ``out_dir`` that is renamed at the
end, so an interrupted export never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypernet.files import replace_dir

from . import __version__

log = logging.getLogger(__name__)


def prepare_out_dir(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"output directory {out} is not empty; pass overwrite=True (--overwrite) or another path")
    return out


def atomic_dir(out: Path):
    """A fresh temporary directory beside ``out``; call ``commit(tmp, out)`` to move it in place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))


commit = replace_dir


def model_card(model: Any, tokenizer: Any, *, bpb: dict | float | None = None, extra: dict | None = None) -> str:
    """README.md text: YAML front matter, then the recipe and the measured bits per byte."""
    info = dict(getattr(model.config, "zett", None) or {})
    info.update(extra or {})
    base = info.get("base_model") or str(getattr(model, "name_or_path", "") or "unknown")
    licence = info.get("license", "other")
    lines = ["---", f"base_model: {json.dumps(base)}", "library_name: zett", f"license: {licence}",
             "tags:", "- zett", "- tokenizer-transfer", "---", "",
             f"# {Path(base).name or base} with a new tokenizer", "",
             f"Made with zett {__version__}: the embeddings for the target tokenizer were predicted, the rest "
             "of the model is unchanged. Loads with plain `transformers` (no `trust_remote_code`).", "",
             "| field | value |", "| --- | --- |"]
    fields = {"base model": base, "target tokenizer": info.get("target_tokenizer") or tokenizer.name_or_path,
              "vocabulary size": len(tokenizer), "method": info.get("method", "unknown"),
              "hypernetwork": info.get("hypernet", "none"), "copied rows": info.get("copied_rows", "n/a"),
              "distillation steps": info.get("distill_steps", 0)}
    lines += [f"| {k} | {v} |" for k, v in fields.items()]
    if bpb is not None:
        lines += ["", "## Measured bits per byte (lower is better)", ""]
        table = bpb if isinstance(bpb, dict) else {"text": bpb}
        lines += ["| text | bits/byte |", "| --- | --- |"] + [f"| {k} | {v:.4f} |" for k, v in table.items()]
    lines += ["", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
              "model = AutoModelForCausalLM.from_pretrained(PATH)", "tokenizer = AutoTokenizer.from_pretrained(PATH)",
              "```", ""]
    return "\n".join(lines)


def export(model: Any, tokenizer: Any, out_dir: str | os.PathLike, *, push_to_hub: str | None = None,
           bpb: dict | float | None = None, card: dict | None = None, overwrite: bool = False,
           private: bool = True, token: str | None = None) -> Path:
    """Save ``model`` + ``tokenizer`` + README.md to ``out_dir``; push to the Hub repo ``push_to_hub`` if given."""
    out = prepare_out_dir(out_dir, overwrite)
    tmp = atomic_dir(out)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(model, tokenizer, bpb=bpb, extra=card), encoding="utf-8")
        commit(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if push_to_hub:
        push_folder(out, push_to_hub, private=private, token=token)
    return out


def push_folder(folder: Path, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Upload ``folder`` to the Hub model repo ``repo_id`` (created if missing); returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                             commit_message=f"Upload with zett {__version__}")
    log.info("pushed %s to %s", folder, repo_id)
    return str(getattr(info, "commit_url", info))
