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
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelHubMixin
from torch import nn

from tokenizers_zoo import TokenKind, vocabulary

from .config import CONFIG_NAME, HypernetConfig, read_config
from .decompose import Decomposer
from .embeddings import Embeddings, base_embeddings
from .files import atomic_dir
from .hub import SHIPPED_DIR, TAGS, WEIGHTS_NAME, default_card, load_weights, push_folder, resolve, shipped
from .predictors.fvt import bag_mean
from .scripts import fallback_tokens

__all__ = [
    "CONFIG_NAME",
    "SHIPPED_DIR",
    "WEIGHTS_NAME",
    "Hypernet",
    "HypernetConfig",
    "fingerprint",
    "network_rows",
    "resolve",
    "shipped",
]


log = logging.getLogger(__name__)


def fingerprint(emb: Embeddings) -> str:
    """Shape + hash of 64 evenly spaced rows of each base matrix, rounded to bf16 (so an fp32 and a bf16
    load of the same model agree)."""
    h = hashlib.sha256()
    for m in emb.matrices():
        rows = torch.linspace(0, m.shape[0] - 1, 64).long()
        h.update(str(tuple(m.shape)).encode())
        h.update(m[rows].detach().to("cpu", torch.bfloat16).view(torch.int16).numpy().tobytes())
    return h.hexdigest()[:32]


class Hypernet(nn.Module, ModelHubMixin, library_name="zett", tags=list(TAGS)):
    """Predicts input (and, for untied bases, output) embeddings for arbitrary tokens.

    A Hub model in the ``huggingface_hub.ModelHubMixin`` sense: :meth:`from_pretrained` (a directory, a shipped
    name or a Hub id, with ``revision``/``token``/``cache_dir``/``local_files_only``), :meth:`save_pretrained`
    and :meth:`push_to_hub`; the directory holds a flat ``config.json``, ``model.safetensors`` and a README.md card.
    """

    def __init__(self, config: HypernetConfig):
        super().__init__()
        self.config = config
        d_in = config.embedding_dim * (1 if config.tied else 2)
        h = config.hidden_size
        self.fallback = nn.Parameter(torch.randn(config.num_fallback, d_in) * 0.02)
        self.project = nn.Linear(d_in, h)
        self.positions = nn.Parameter(torch.randn(config.max_subtokens, h) * 0.02)
        layer = nn.TransformerEncoderLayer(
            h, config.num_heads, h * config.ffn_mult, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
        )
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(h)
        self.heads = nn.ModuleList(_head(h, config.embedding_dim) for _ in range(1 if config.tied else 2))
        self.decomposer: Decomposer | None = None
        self.base_tokenizer: Any = None
        self.source = ""  # where it was loaded from (recorded in transferred models' cards)
        self.fallback_rows = 0  # tokens the last predict() left to FVT (scripts it did not train on)

    # -- construction, binding -------------------------------------------------------------------------------

    @classmethod
    def for_base(cls, base_model: Any, base_tokenizer: Any, config: HypernetConfig | None = None) -> Hypernet:
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

    def bind(
        self, base_model: Any, base_tokenizer: Any, *, decomposer: Decomposer | None = None, strict: bool = True
    ) -> Hypernet:
        """Attach the frozen base embeddings, rescalers and decomposer (not saved with the hypernetwork)."""
        emb = base_embeddings(base_model)
        cfg = self.config
        if strict:
            self.check_base(base_model)
        if (emb.output is None) != cfg.tied or emb.input.shape[1] != cfg.embedding_dim:
            raise ValueError(
                f"hypernetwork expects a {'tied' if cfg.tied else 'untied'} base model of width "
                f"{cfg.embedding_dim}; got {'tied' if emb.output is None else 'untied'} width "
                f"{emb.input.shape[1]}"
            )
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
                "train one with zett.train_hypernet"
            )

    @property
    def is_bound(self) -> bool:
        return hasattr(self, "table")

    # -- forward ---------------------------------------------------------------------------------------------

    def inputs(self, ids: torch.Tensor) -> torch.Tensor:
        """Base ids [...] -> [..., hidden_size]: their standardised base rows (learned fallback rows for bytes the
        base lacks) through the input projection."""
        size, start = self.config.base_vocab_size, self._fallback_start()
        known = ids < min(size, start)
        rows = (self.table[ids.clamp(max=size - 1)] - self.mu) / self.sigma
        if self.config.num_fallback:
            fb = self.fallback[(ids - start).clamp(min=0, max=self.config.num_fallback - 1)]
            rows = torch.where(known[..., None], rows, fb)
        return self.project(rows)

    def encode(self, ids: torch.Tensor, projected: torch.Tensor | None = None) -> torch.Tensor:
        """[N, K] base ids (all real: a length bucket, no padding) -> [N, embedding_dim x matrices] deltas
        in the base's scale. ``projected``: ``inputs(ids)`` when the caller has it."""
        x = (self.inputs(ids) if projected is None else projected) + self.positions[: ids.shape[1]]
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
        start = self._fallback_start()
        parts = [bag_mean(m.contiguous(), pieces, m.mean(0), known=start) for m in self.table.split(d, dim=1)]
        return torch.cat(parts, dim=1).to(self.table.device)

    def _fallback_start(self) -> int:
        """The first fallback id: the decomposer's (``len(base_tokenizer)``), which need not be the number of
        embedding rows (padded matrices have more rows; Gemma-3's published tokenizer has one id more)."""
        return self.decomposer.size if self.decomposer is not None else self.config.base_vocab_size

    def forward(
        self, pieces: list[list[int]], batch_size: int = 4096, *, fvt: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[N, embedding_dim x matrices]: FVT + the learned correction, for each token's full decomposition.

        ``fvt``: the tokens' FVT rows when the caller has them already (else computed here).
        Tokens are bucketed by (truncated) length, so no position is padding; each distinct base id goes through
        the input projection once (a vocabulary's decompositions repeat base ids many times over).
        """
        base = self.fvt(pieces) if fvt is None else fvt
        k = self.config.max_subtokens
        lengths = torch.tensor([min(len(p), k) for p in pieces])
        delta = torch.zeros_like(base)
        distinct = torch.tensor(sorted({j for p in pieces for j in p[:k]}), dtype=torch.long, device=base.device)
        projected = self.inputs(distinct) if len(distinct) else None
        for n in lengths.unique().tolist():
            if n == 0:
                continue
            where = (lengths == n).nonzero()[:, 0]
            ids = torch.tensor([pieces[i][:n] for i in where.tolist()], dtype=torch.long, device=base.device)
            for s in range(0, len(where), batch_size):
                chunk = ids[s : s + batch_size]
                rows = self.encode(chunk, projected[torch.searchsorted(distinct, chunk)])
                delta.index_copy_(0, where[s : s + batch_size].to(base.device), rows)
        return base + delta

    # -- prediction for a whole tokenizer -------------------------------------------------------------------

    @torch.no_grad()
    def predict(
        self,
        target_tokenizer: Any,
        *,
        skip: torch.Tensor | None = None,
        batch_size: int = 4096,
        matches: tuple[torch.Tensor, torch.Tensor] | None = None,
        script_fallback: bool | Sequence[str] = True,
    ) -> Embeddings:
        """Embeddings for every id of ``target_tokenizer``. ``skip``: bool [V] of rows the caller overwrites
        (copies): they get FVT rows without running the network. Special tokens get the base's own rows
        where a matching special exists (SPEC §4.1). ``matches``: the caller's ``exact_matches(target, base)``
        (specials included), whose rows get the base's rows, so it is not computed again here.
        ``script_fallback``: which tokens get FVT rows instead (:func:`hypernet.scripts.fallback_tokens`)."""
        if not self.is_bound:
            raise RuntimeError("hypernetwork has no base model bound; call .bind(base_model, base_tokenizer)")
        from .overlap import exact_matches

        vocab = vocabulary(target_tokenizer)
        pieces = self.decomposer(vocab.forms)
        run = network_rows(vocab)
        if skip is not None:
            run &= ~skip.cpu()
        fallback = fallback_tokens(vocab.forms, self.config.training_scripts, script_fallback) & run
        self.fallback_rows = int(fallback.sum())
        if fallback.any():
            log.info("%d tokens hold letters of scripts the network did not train on: FVT rows", self.fallback_rows)
        run &= ~fallback
        out = self.fvt(pieces)
        idx = run.nonzero()[:, 0]
        if len(idx):
            rows = idx.to(out.device)
            out[rows] = self.forward([pieces[i] for i in idx.tolist()], batch_size, fvt=out[rows])
        if matches is None:
            matches = exact_matches(target_tokenizer, self.base_tokenizer, normal=False)
        t_ids, b_ids = matches
        has_row = b_ids < self.table.shape[0]  # a base id past the embedding rows has nothing to copy
        t_ids, b_ids = t_ids[has_row], b_ids[has_row]
        if len(t_ids):
            out[t_ids.to(out.device)] = self.table[b_ids.to(out.device)]
        d = self.config.embedding_dim
        mats = out.split(d, dim=1)
        return Embeddings(mats[0].contiguous(), mats[1].contiguous() if len(mats) > 1 else None)

    # -- saving, loading, the Hub --------------------------------------------------------------------------

    def save_pretrained(
        self, save_directory: str | os.PathLike, *, dtype: torch.dtype | None = None, card: str | None = None
    ) -> Path:
        """``config.json`` (flat) + ``model.safetensors`` (own weights only; ``dtype=torch.bfloat16`` halves the
        file) + ``README.md`` (``card``, by default :meth:`generate_model_card`'s), written atomically."""
        path = Path(save_directory).expanduser()
        with atomic_dir(path) as tmp:
            self._save_pretrained(tmp, dtype=dtype)
            (tmp / "README.md").write_text(
                card if card is not None else str(self.generate_model_card()), encoding="utf-8"
            )
        return path

    def _save_pretrained(self, save_directory: Path, dtype: torch.dtype | None = None) -> None:
        from safetensors.torch import save_file

        (save_directory / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        state = {k: v.detach().cpu().to(dtype or v.dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(save_directory / WEIGHTS_NAME), metadata={"format": "pt"})

    def generate_model_card(self, *args: Any, **kwargs: Any) -> Any:
        """The card :meth:`save_pretrained` writes when given none (a ``huggingface_hub.ModelCard``): YAML front
        matter (``base_model`` when it is a Hub id, ``library_name: zett``, tags), the base model, the
        architecture and how to use it."""
        from huggingface_hub import ModelCard

        return ModelCard(default_card(self.config))

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        base_model: Any = None,
        base_tokenizer: Any = None,
        *,
        strict: bool = True,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        force_download: bool = False,
    ) -> Hypernet:
        """Load from a directory, a name shipped with zett (``smollm2-135m``) or a Hub id (``revision``, ``token``,
        ``cache_dir``, ``local_files_only``, ``force_download`` as in ``huggingface_hub``); bind to
        ``base_model``/``base_tokenizer`` when given (a fingerprint mismatch is an error). A truncated or foreign
        file is a one-line ValueError naming it."""
        if base_model is not None and base_tokenizer is None:
            raise ValueError("binding a hypernetwork needs base_tokenizer= too")
        net = cls._from_pretrained(
            model_id=str(pretrained_model_name_or_path),
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
        )
        if base_model is not None:
            net.bind(base_model, base_tokenizer, strict=strict)
        return net

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | os.PathLike | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
    ) -> Hypernet:
        path = resolve(
            model_id,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
        )
        net = cls(read_config(path / CONFIG_NAME))
        load_weights(net, path / WEIGHTS_NAME, path / CONFIG_NAME)
        net.source = model_id + (f"@{revision}" if revision else "")
        return net

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = True,
        token: str | None = None,
        commit_message: str | None = None,
        branch: str | None = None,
        card: str | None = None,
        dtype: torch.dtype | None = None,
    ) -> str:
        """Upload this network (as :meth:`save_pretrained` writes it, ``card`` and ``dtype`` included) to the Hub
        model repo ``repo_id`` through :func:`hypernet.hub.push_folder`: a missing repo is created **private**
        unless ``private=False``. Returns the commit URL."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "hypernet", dtype=dtype, card=card)
            return push_folder(
                folder, repo_id, private=private, token=token, commit_message=commit_message, revision=branch
            )


def network_rows(vocab: Any, ids: Any = None) -> torch.Tensor:
    """Bool per id (all, or ``ids``): tokens with bytes that the network predicts (specials and empty pieces
    take the base's rows or FVT instead)."""
    ids = range(len(vocab)) if ids is None else ids
    return torch.tensor(
        [vocab.kinds[i] in (TokenKind.NORMAL, TokenKind.BYTE_FALLBACK) and bool(vocab.forms[i]) for i in ids],
        dtype=torch.bool,
    )


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
