"""The Hugging Face Hub side of zett's artifacts: card front matter and uploads (hypernetworks and exported
models), and where a hypernetwork is found (a directory, a shipped name, a Hub id).

Privacy default: :func:`push_folder` creates a missing repository **private** (``private=True``); pass
``private=False`` to publish. ``Hypernet.push_to_hub`` and ``zett.export(push_to_hub=...)`` both upload through
it, so both kinds of artifact share that default. A repository that already exists keeps its visibility.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def hub_id(name: str | None) -> str | None:
    """``name`` when it can be a Hub model id (``owner/name``), else None: a local path, a file name such as
    ``model.gguf`` or a bare directory name is no valid ``base_model`` in a card's metadata."""
    if not name or not _REPO_ID.fullmatch(name) or ".." in name or name.lower().endswith(".gguf"):
        return None
    return None if Path(name).expanduser().exists() else name


def front_matter(base_model: str | None, *, tags: list[str], licence: str = "other") -> str:
    """The YAML block a card starts with (``---`` ... ``---``): ``base_model`` when it is a Hub id (see
    :func:`hub_id`), ``library_name: zett``, ``license`` (``licence``) and ``tags``."""
    from huggingface_hub import ModelCardData

    data = ModelCardData(base_model=hub_id(base_model), library_name="zett", license=licence, tags=list(tags))
    return f"---\n{data.to_yaml()}\n---\n"


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = True,
    token: str | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
) -> str:
    """Upload the files of ``folder`` to the Hub model repo ``repo_id`` (created, private unless
    ``private=False``, when missing) in one commit on ``revision`` (default branch if None); returns the commit
    URL."""
    from huggingface_hub import HfApi

    from . import __version__

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a directory; save the artifact first, then push that directory")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        revision=revision,
        commit_message=commit_message or f"Upload with zett {__version__}",
    )
    log.info("pushed %s to %s", folder, repo_id)
    return str(getattr(info, "commit_url", info))


# -- where a hypernetwork comes from: a directory, a shipped name, a Hub id ---------------------------------------

WEIGHTS_NAME = "model.safetensors"
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
TAGS = ("zett", "hypernetwork", "tokenizer-transfer")


def shipped() -> list[str]:
    """Names of the hypernetworks shipped with this package."""
    from .config import CONFIG_NAME

    return sorted(p.name for p in SHIPPED_DIR.glob("*") if (p / CONFIG_NAME).exists()) if SHIPPED_DIR.exists() else []


def resolve(
    spec: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
) -> Path:
    """The local directory of hypernetwork ``spec``: an existing path → a shipped name → a Hub id (its
    ``config.json``, ``model.safetensors`` and ``README.md`` downloaded to the Hugging Face cache, or ``cache_dir``;
    ``revision``, ``token``, ``local_files_only`` and ``force_download`` as in ``huggingface_hub``)."""
    from .config import CONFIG_NAME

    name = str(spec)
    path = Path(name).expanduser()
    local = path.exists() or name in shipped()
    if local and (revision or token or cache_dir or force_download):
        log.warning("revision/token/cache_dir/force_download apply to Hub ids only; %s is local", name)
    if path.exists():
        if not (path / CONFIG_NAME).exists():
            raise ValueError(f"{path} has no {CONFIG_NAME}; pass a directory written by Hypernet.save_pretrained")
        return path
    if name in shipped():
        return SHIPPED_DIR / name
    available = ", ".join(shipped()) or "none shipped"
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        from huggingface_hub import snapshot_download

        from . import __version__

        try:
            return Path(
                snapshot_download(
                    name,
                    allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "README.md"],
                    revision=revision,
                    token=token,
                    cache_dir=cache_dir,
                    local_files_only=local_files_only,
                    force_download=force_download,
                    library_name="zett",
                    library_version=__version__,
                )
            )
        except Exception as exc:  # offline, unknown repo or revision, no access, ...
            said = (str(exc).splitlines() or [""])[0]
            raise ValueError(
                f"cannot load hypernetwork {name!r}: not a local path, not shipped ({available}), "
                f"and the Hub said: {type(exc).__name__}: {said}"
            ) from exc
    raise ValueError(
        f"hypernetwork {name!r} not found: not a directory, not a shipped name ({available}), not a Hub id (owner/name)"
    )


def default_card(config: Any) -> str:
    """README.md for a hypernetwork saved without its training card: front matter, what it is, how to use it."""
    base = config.base_model or "its base model"
    shape = ("hidden_size", "num_layers", "num_heads", "ffn_mult", "max_subtokens")
    predicts = "input (tied: also output)" if config.tied else "input and output"
    rows = {
        "base model": base,
        "base embeddings": f"{config.base_vocab_size} x {config.embedding_dim}, "
        + ("tied" if config.tied else "untied"),
        "fingerprint": config.fingerprint,
        "architecture": ", ".join(f"{k} {getattr(config, k)}" for k in shape),
        "zett version": config.library_version or "unknown",
    }
    lines = [
        "",
        f"# A zett hypernetwork for {base}",
        "",
        (
            f"Predicts the {predicts} embeddings of `{base}` for any tokenizer (subword or bytes), zero-shot. The "
            "files hold the hypernetwork's own weights only: the base model's embeddings are bound at run time and "
            "checked against the fingerprint in `config.json`."
        ),
        "",
        "| field | value |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in rows.items()),
        "",
        "```python",
        "import zett",
        "",
        "net = zett.Hypernet.from_pretrained(REPO_OR_PATH)",
        'model, tokenizer = zett.transfer(model, "byte", hypernet=net)  # model: the base model',
        "```",
        "",
    ]
    return front_matter(config.base_model, tags=list(TAGS)) + "\n".join(lines)


def load_weights(net: Any, file: Path, config: Path) -> None:
    """``file``'s tensors into the hypernetwork ``net``; a missing, truncated or mismatched file is a one-line
    ValueError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    fix = "download or export the hypernetwork again (config.json and model.safetensors together)"
    try:
        state = load_file(str(file))
    except (OSError, SafetensorError) as exc:
        problem = "is missing" if not file.exists() else "is truncated or not a safetensors file"
        said = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"hypernetwork weights {file} {problem} ({said}); {fix}") from exc
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        found = {
            "missing": sorted(want.keys() - got.keys()),
            "unexpected": sorted(got.keys() - want.keys()),
            "shapes": [f"{k} {got[k]} vs {want[k]}" for k in sorted(want.keys() & got.keys()) if got[k] != want[k]],
        }
        parts = [f"{kind} {', '.join(names[:3])}" for kind, names in found.items() if names]
        raise ValueError(f"hypernetwork weights {file} do not fit {config} ({'; '.join(parts)}); {fix}")
    net.load_state_dict({k: v.float() for k, v in state.items()})
