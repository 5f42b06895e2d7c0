"""The hypernetwork: embeddings for any vocabulary from its tokens' decompositions (SPEC §4.1-4.2).

A target token is split into base ids (:class:`~hypernet.decompose.Decomposer`);
their frozen base embeddings ([E_in ; E_out] for untied models), standardised
per dimension, go through a projection, learned positions and a small
Transformer encoder; the first position's state feeds one head per embedding
matrix, rescaled to the base's per-dimension std and added to the FVT
embedding of the token (mean of its base embeddings). The heads start at zero,
so an untrained hypernetwork *is* FVT.

The base embeddings are never part of the hypernetwork's weights: they are
bound at run time (:meth:`Hypernet.bind`), checked against the fingerprint
stored in ``config.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tokenizers_zoo import TokenKind, vocabulary

from .decompose import Decomposer
from .embeddings import Embeddings, base_embeddings
from .files import fresh_tmp, replace_dir
from .predictors.fvt import bag_mean

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"


@dataclass
class HypernetConfig:
    """Shape of a hypernetwork and the base model it belongs to (``base_*`` fields are filled by
    :meth:`Hypernet.for_base`)."""

    hidden_size: int = 384
    num_layers: int = 3
    num_heads: int = 6
    ffn_mult: int = 2
    max_subtokens: int = 8
    base_model: str = ""
    base_vocab_size: int = 0
    embedding_dim: int = 0
    tied: bool = True
    num_fallback: int = 0
    fingerprint: str = ""
    library_version: str = field(default="")

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")

    @classmethod
    def from_dict(cls, data: dict) -> "HypernetConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def fingerprint(emb: Embeddings) -> str:
    """Shape + hash of 64 evenly spaced rows of each base matrix, rounded to bf16 (so an fp32 and a bf16
    load of the same model agree)."""
    h = hashlib.sha256()
    for m in emb.matrices():
        rows = torch.linspace(0, m.shape[0] - 1, 64).long()
        h.update(str(tuple(m.shape)).encode())
        h.update(m[rows].detach().to("cpu", torch.bfloat16).view(torch.int16).numpy().tobytes())
    return h.hexdigest()[:32]


class Hypernet(nn.Module):
    """Predicts input (and, for untied bases, output) embeddings for arbitrary tokens."""

    def __init__(self, config: HypernetConfig):
        super().__init__()
        self.config = config
        d_in = config.embedding_dim * (1 if config.tied else 2)
        h = config.hidden_size
        self.fallback = nn.Parameter(torch.randn(config.num_fallback, d_in) * 0.02)
        self.project = nn.Linear(d_in, h)
        self.positions = nn.Parameter(torch.randn(config.max_subtokens, h) * 0.02)
        layer = nn.TransformerEncoderLayer(h, config.num_heads, h * config.ffn_mult, dropout=0.0,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(h)
        self.heads = nn.ModuleList(_head(h, config.embedding_dim) for _ in range(1 if config.tied else 2))
        self.decomposer: Decomposer | None = None
        self.base_tokenizer: Any = None
        self.source = ""  # where it was loaded from (recorded in transferred models' cards)

    # -- construction, binding -------------------------------------------------------------------------------

    @classmethod
    def for_base(cls, base_model: Any, base_tokenizer: Any, config: HypernetConfig | None = None) -> "Hypernet":
        """A fresh (FVT-equivalent) hypernetwork for ``base_model``."""
        from . import __version__

        config = config or HypernetConfig()
        emb = base_embeddings(base_model)
        decomposer = Decomposer(base_tokenizer)
        config.base_model = str(getattr(base_model, "name_or_path", "") or config.base_model)
        config.base_vocab_size, config.embedding_dim = emb.input.shape
        config.tied, config.num_fallback = emb.output is None, len(decomposer.missing_bytes)
        config.fingerprint, config.library_version = fingerprint(emb), __version__
        net = cls(config)
        net.bind(base_model, base_tokenizer, decomposer=decomposer)
        return net

    def bind(self, base_model: Any, base_tokenizer: Any, *, decomposer: Decomposer | None = None,
             strict: bool = True) -> "Hypernet":
        """Attach the frozen base embeddings, rescalers and decomposer (not saved with the hypernetwork)."""
        emb = base_embeddings(base_model)
        cfg = self.config
        if strict:
            self.check_base(base_model)
        if (emb.output is None) != cfg.tied or emb.input.shape[1] != cfg.embedding_dim:
            raise ValueError(f"hypernetwork expects a {'tied' if cfg.tied else 'untied'} base model of width "
                             f"{cfg.embedding_dim}; got {'tied' if emb.output is None else 'untied'} width "
                             f"{emb.input.shape[1]}")
        mats = [m.detach().float() for m in emb.matrices()]
        table = torch.cat(mats, dim=1)
        device = self.project.weight.device
        self.register_buffer("table", table.to(device), persistent=False)
        self.register_buffer("mu", table.mean(0).to(device), persistent=False)
        self.register_buffer("sigma", table.std(0).clamp(min=1e-6).to(device), persistent=False)
        self.decomposer = decomposer or Decomposer(base_tokenizer)
        self.base_tokenizer = base_tokenizer
        return self

    def check_base(self, base_model: Any) -> None:
        """Raise unless ``base_model``'s embeddings match the fingerprint this hypernetwork was trained for."""
        cfg = self.config
        emb = base_embeddings(base_model)
        found = fingerprint(emb)
        if found != cfg.fingerprint:
            raise ValueError(
                f"this hypernetwork was trained for base model {cfg.base_model!r} (embeddings "
                f"{cfg.base_vocab_size}x{cfg.embedding_dim}, fingerprint {cfg.fingerprint}); the given model has "
                f"{tuple(emb.input.shape)}, fingerprint {found}. Use the hypernetwork trained for this model, or "
                "train one with zett.train_hypernet")

    @property
    def is_bound(self) -> bool:
        return hasattr(self, "table")

    # -- forward ---------------------------------------------------------------------------------------------

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """[N, K] base ids (all real: a length bucket, no padding) -> [N, embedding_dim x matrices] deltas
        in the base's scale."""
        size = self.config.base_vocab_size
        known = ids < size
        rows = (self.table[ids.clamp(max=size - 1)] - self.mu) / self.sigma
        if self.config.num_fallback:
            fb = self.fallback[(ids - size).clamp(min=0, max=self.config.num_fallback - 1)]
            rows = torch.where(known[..., None], rows, fb)
        x = self.project(rows) + self.positions[:ids.shape[1]]
        *body, last = self.encoder.layers
        for layer in body:
            x = layer(x)
        x = self.norm(_first_position(last, x))
        d = self.config.embedding_dim
        sigmas = self.sigma.split(d)
        return torch.cat([head(x) * s for head, s in zip(self.heads, sigmas)], dim=1)

    def fvt(self, pieces: list[list[int]]) -> torch.Tensor:
        """FVT rows [N, embedding_dim x matrices] (mean of the base rows of all pieces; the mean row for
        tokens made only of bytes the base lacks): exactly what the ``fvt`` predictor gives."""
        d = self.config.embedding_dim
        parts = [bag_mean(m.contiguous(), pieces, m.mean(0)) for m in self.table.split(d, dim=1)]
        return torch.cat(parts, dim=1).to(self.table.device)

    def forward(self, pieces: list[list[int]], batch_size: int = 4096, *,
                fvt: torch.Tensor | None = None) -> torch.Tensor:
        """[N, embedding_dim x matrices]: FVT + the learned correction, for each token's full decomposition.

        ``fvt``: the tokens' FVT rows when the caller has them already (else computed here).
        Tokens are bucketed by (truncated) length, so no position is padding.
        """
        base = self.fvt(pieces) if fvt is None else fvt
        k = self.config.max_subtokens
        lengths = torch.tensor([min(len(p), k) for p in pieces])
        delta = torch.zeros_like(base)
        for n in lengths.unique().tolist():
            if n == 0:
                continue
            where = (lengths == n).nonzero()[:, 0]
            ids = torch.tensor([pieces[i][:n] for i in where.tolist()], dtype=torch.long, device=base.device)
            for s in range(0, len(where), batch_size):
                delta.index_copy_(0, where[s:s + batch_size].to(base.device), self.encode(ids[s:s + batch_size]))
        return base + delta

    # -- prediction for a whole tokenizer -------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, target_tokenizer: Any, *, skip: torch.Tensor | None = None,
                batch_size: int = 4096) -> Embeddings:
        """Embeddings for every id of ``target_tokenizer``. ``skip``: bool [V] of rows the caller overwrites
        (copies): they get FVT rows without running the network. Special tokens get the base's own rows
        where a matching special exists (SPEC §4.1)."""
        if not self.is_bound:
            raise RuntimeError("hypernetwork has no base model bound; call .bind(base_model, base_tokenizer)")
        from .overlap import exact_matches

        vocab = vocabulary(target_tokenizer)
        pieces = self.decomposer(vocab.forms)
        run = network_rows(vocab)
        if skip is not None:
            run &= ~skip.cpu()
        out = self.fvt(pieces)
        idx = run.nonzero()[:, 0]
        if len(idx):
            rows = idx.to(out.device)
            out[rows] = self.forward([pieces[i] for i in idx.tolist()], batch_size, fvt=out[rows])
        t_ids, b_ids = exact_matches(target_tokenizer, self.base_tokenizer, normal=False)
        if len(t_ids):
            out[t_ids.to(out.device)] = self.table[b_ids.to(out.device)]
        d = self.config.embedding_dim
        mats = out.split(d, dim=1)
        return Embeddings(mats[0].contiguous(), mats[1].contiguous() if len(mats) > 1 else None)

    # -- saving and loading ---------------------------------------------------------------------------------

    def save_pretrained(self, path: str | os.PathLike, *, dtype: torch.dtype | None = None,
                        card: str | None = None) -> Path:
        """``config.json`` + ``model.safetensors`` (own weights only; ``dtype=torch.bfloat16`` halves the file)
        + ``README.md`` when ``card`` is given, written atomically."""
        from safetensors.torch import save_file

        path = Path(path)
        tmp = fresh_tmp(path)
        (tmp / CONFIG_NAME).write_text(json.dumps({"zett_hypernet": asdict(self.config)}, indent=2))
        state = {k: v.detach().cpu().to(dtype or v.dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        if card:
            (tmp / "README.md").write_text(card)
        replace_dir(tmp, path)
        return path

    @classmethod
    def from_pretrained(cls, spec: str | os.PathLike, base_model: Any = None, base_tokenizer: Any = None, *,
                        strict: bool = True) -> "Hypernet":
        """Load from a directory, a name shipped with zett (``smollm2-135m``) or a Hub id; bind to
        ``base_model``/``base_tokenizer`` when given (a fingerprint mismatch is an error)."""
        from safetensors.torch import load_file

        path = resolve(spec)
        raw = json.loads((path / CONFIG_NAME).read_text())
        if "zett_hypernet" not in raw:
            raise ValueError(f"{path / CONFIG_NAME} is not a zett hypernetwork config (no 'zett_hypernet' key)")
        net = cls(HypernetConfig.from_dict(raw["zett_hypernet"]))
        state = load_file(str(path / WEIGHTS_NAME))
        net.load_state_dict({k: v.float() for k, v in state.items()})
        net.source = str(spec)
        if base_model is not None:
            if base_tokenizer is None:
                raise ValueError("binding a hypernetwork needs base_tokenizer= too")
            net.bind(base_model, base_tokenizer, strict=strict)
        return net

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "hypernet")
            api.upload_folder(repo_id=repo_id, folder_path=str(folder))
        return repo_id


def network_rows(vocab: Any, ids: Any = None) -> torch.Tensor:
    """Bool per id (all, or ``ids``): tokens with bytes that the network predicts (specials and empty pieces
    take the base's rows or FVT instead)."""
    ids = range(len(vocab)) if ids is None else ids
    return torch.tensor([vocab.kinds[i] in (TokenKind.NORMAL, TokenKind.BYTE_FALLBACK) and bool(vocab.forms[i])
                         for i in ids], dtype=torch.bool)


def _first_position(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)[:, 0]`` for a pre-norm encoder layer, computing only position 0's query and feed-forward:
    the heads read nothing else, so the last layer's work drops from K positions to one."""
    h = layer.norm1(x)
    y = x[:, :1] + layer.self_attn(h[:, :1], h, h, need_weights=False)[0]
    y = y + layer.linear2(layer.activation(layer.linear1(layer.norm2(y))))
    return y[:, 0]


def _head(hidden: int, out: int) -> nn.Sequential:
    head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, out))
    nn.init.zeros_(head[-1].weight)
    nn.init.zeros_(head[-1].bias)
    return head


def shipped() -> list[str]:
    """Names of the hypernetworks shipped with this package."""
    return sorted(p.name for p in SHIPPED_DIR.glob("*") if (p / CONFIG_NAME).exists()) if SHIPPED_DIR.exists() else []


def resolve(spec: str | os.PathLike) -> Path:
    """An existing path → a shipped name → a Hub id (downloaded to the Hugging Face cache)."""
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / CONFIG_NAME).exists():
            raise ValueError(f"{path} has no {CONFIG_NAME}; pass a directory written by Hypernet.save_pretrained")
        return path
    if str(spec) in shipped():
        return SHIPPED_DIR / str(spec)
    name = str(spec)
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(name, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME]))
        except Exception as exc:  # offline, unknown repo, ...
            raise ValueError(f"cannot load hypernetwork {name!r}: not a local path, not shipped "
                             f"({', '.join(shipped()) or 'none shipped'}), and the Hub said: {exc}") from exc
    raise ValueError(f"hypernetwork {name!r} not found: not a directory, not a shipped name "
                     f"({', '.join(shipped()) or 'none shipped'}), not a Hub id (owner/name)")
