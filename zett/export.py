"""``zett.export``: a plain ``transformers`` directory with a model card, optionally pushed (SPEC §5.5).

Writes go to a temporary directory beside ``out_dir`` that is renamed at the
end (:func:`hypernet.files.atomic_dir`), so an interrupted export never leaves
a half-written model behind. Pushing goes through :func:`hypernet.hub.push_folder`,
as a hypernetwork's does: a missing repo is created private unless ``private=False``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hypernet.files import atomic_dir
from hypernet.hub import front_matter, push_folder

from . import __version__

__all__ = ["export", "model_card", "prepare_out_dir", "push_folder"]


def prepare_out_dir(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"output directory {out} is not empty; pass overwrite=True (--overwrite) or another path")
    return out


def model_card(model: Any, tokenizer: Any, *, bpb: dict | float | None = None, extra: dict | None = None) -> str:
    """README.md text: YAML front matter (``base_model`` only when it is a Hub id: a local path or a GGUF file
    name is no valid Hub metadata, and is named in the table instead), then the recipe and the measured bits per
    byte."""
    info = dict(getattr(model.config, "zett", None) or {})
    info.update(extra or {})
    base = info.get("base_model") or str(getattr(model, "name_or_path", "") or "unknown")
    licence = info.get("license", "other")
    lines = [
        front_matter(base, tags=["zett", "tokenizer-transfer"], licence=licence),
        f"# {Path(base).name or base} with a new tokenizer",
        "",
        f"Made with zett {__version__}: the embeddings for the target tokenizer were predicted, the rest "
        "of the model is unchanged. Loads with plain `transformers` (no `trust_remote_code`).",
        "",
        "| field | value |",
        "| --- | --- |",
    ]
    fields = {
        "base model": base,
        "target tokenizer": info.get("target_tokenizer") or tokenizer.name_or_path,
        "vocabulary size": len(tokenizer),
        "method": info.get("method", "unknown"),
        "hypernetwork": info.get("hypernet", "none"),
        "copied rows": info.get("copied_rows", "n/a"),
        "FVT rows for scripts the hypernetwork did not train on": info.get("script_fallback_rows", "n/a"),
        "distillation steps": info.get("distill_steps", 0),
    }
    lines += [f"| {k} | {v} |" for k, v in fields.items()]
    if bpb is not None:
        lines += ["", "## Measured bits per byte (lower is better)", ""]
        table = bpb if isinstance(bpb, dict) else {"text": bpb}
        lines += ["| text | bits/byte |", "| --- | --- |"] + [f"| {k} | {v:.4f} |" for k, v in table.items()]
    lines += [
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "model = AutoModelForCausalLM.from_pretrained(PATH)",
        "tokenizer = AutoTokenizer.from_pretrained(PATH)",
        "```",
        "",
    ]
    return "\n".join(lines)


def export(
    model: Any,
    tokenizer: Any,
    out_dir: str | os.PathLike,
    *,
    push_to_hub: str | None = None,
    bpb: dict | float | None = None,
    card: dict | None = None,
    overwrite: bool = False,
    private: bool = True,
    token: str | None = None,
) -> Path:
    """Save ``model`` + ``tokenizer`` + README.md to ``out_dir``; push to the Hub repo ``push_to_hub`` if given
    (created private unless ``private=False``)."""
    out = prepare_out_dir(out_dir, overwrite)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(model, tokenizer, bpb=bpb, extra=card), encoding="utf-8")
    if push_to_hub:
        push_folder(out, push_to_hub, private=private, token=token)
    return out
