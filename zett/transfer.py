"""``zett.transfer``: give a causal LM a new tokenizer (SPEC §1, §2a, §5.1).

Steps: resolve both tokenizers → predict embeddings for the target vocabulary
(a registered predictor) → copy rows that exist in the base exactly (shared
tokens when ``copy_overlap``, special tokens by text or role) → install the
matrices in a copy of the model → update config and generation ids.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

import torch

from hypernet import base_embeddings, exact_matches, get_predictor, is_tied
from tokenizers_zoo import is_byte_tokenizer, load_tokenizer, special_roles

from .models import model_source

log = logging.getLogger(__name__)


def transfer(
    model: Any,
    tokenizer: Any,
    *,
    base_tokenizer: Any = None,
    method: str | None = None,
    hypernet: Any = None,
    distill: Any = None,
    distill_data: Any = None,
    copy_overlap: bool | None = None,
    inplace: bool = False,
    eos_token: str | None = None,
    seed: int = 0,
    distill_run_dir: Any = None,
    script_fallback: bool | list[str] = True,
) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)`` where ``model`` speaks ``tokenizer``.

    ``tokenizer``: a tokenizer object or anything :func:`tokenizers_zoo.load_tokenizer`
    takes (path, shipped name, Hub id, ``"byte"``). ``base_tokenizer``: the
    model's own tokenizer; by default loaded from the model's ``name_or_path``.
    ``method``: a registered predictor (``fvt`` by default; ``hypernet=`` — a
    :class:`hypernet.Hypernet`, a directory, a shipped name or a Hub id — implies
    ``hypernet``). ``copy_overlap``: copy rows of tokens the base has too
    (default: on, except hypernetwork transfers to bytes). The input model is
    left unchanged unless ``inplace=True``; dtype and device are kept.
    ``script_fallback`` (hypernetwork transfers): tokens holding letters of a
    script the hypernetwork's training text lacked get FVT rows (logged);
    ``False`` predicts them with the network too; a list of script names
    (``["HANGUL"]``) gives FVT rows to those scripts' tokens only.

    ``distill``: a :class:`zett.DistillConfig` (or dict): continue with
    self-distillation on ``distill_data``, the original model and its tokenizer
    as the teacher (its defaults: the next-token loss alone, no teacher pass),
    checkpointed in ``distill_run_dir`` if given.
    """
    if hypernet is not None:
        if method not in (None, "hypernet"):
            raise ValueError(f"hypernet= was given with method={method!r}; drop one of them")
        method = "hypernet"
    if distill is not None and distill_data is None:
        raise ValueError("distill= needs distill_data= (texts to self-distil on: a .jsonl/.txt path or a list)")
    if distill is not None and inplace:
        raise ValueError("distill= needs the original model as teacher; use inplace=False")
    base_tok = _resolve_base_tokenizer(model, base_tokenizer)
    target = load_tokenizer(tokenizer, base=base_tok)
    if eos_token is not None:
        target.add_special_tokens({"eos_token": eos_token})
    if target.eos_token_id is None:
        raise ValueError(
            "target tokenizer has no EOS token; pass eos_token='...' (command line: --eos-token; "
            "a token it has, e.g. <|endoftext|>, or one to add) or use a tokenizer with one"
        )
    emb = base_embeddings(model)
    _check_size(len(target), emb.input, tied=emb.output is None)
    method = method or "fvt"
    byte_target = is_byte_tokenizer(target)
    if copy_overlap is None:
        # a hypernetwork predicts byte rows itself (with copying, bytes would equal FVT); see docs/transfer.md
        copy_overlap = not (method == "hypernet" and byte_target)
    t_ids, b_ids = exact_matches(target, base_tok, normal=copy_overlap, rows=emb.input.shape[0])  # copied rows
    kwargs = {}
    if method == "hypernet":
        kwargs = dict(
            hypernet=hypernet, copy_overlap=copy_overlap, matches=(t_ids, b_ids), script_fallback=script_fallback
        )
    predictor = get_predictor(method, seed=seed, **kwargs)
    log.info("predicting %d embeddings with %s", len(target), method)
    predicted = predictor.predict(model, base_tok, target)
    out = model if inplace else copy.deepcopy(model)
    _install(out, predicted, emb, t_ids, b_ids)
    _update_ids(out, target)
    out.config.zett = {
        "base_model": model_source(model),
        "target_tokenizer": str(getattr(target, "name_or_path", "")),
        "method": method,
        "copy_overlap": bool(copy_overlap),
        "copied_rows": int(len(t_ids)),
        "byte_level_target": byte_target,
    }
    if method == "hypernet":
        out.config.zett["hypernet"] = _hypernet_label(hypernet)
        out.config.zett["script_fallback_rows"] = predictor.fallback_rows
    if distill is not None:
        from .distill import distill as run_distill

        result = run_distill(out, target, model, base_tok, distill_data, distill, run_dir=distill_run_dir)
        out = result.model
        out.config.zett = dict(out.config.zett, distill_steps=result.steps)
    return out, target


def _hypernet_label(hypernet: Any) -> str:
    """What the model card records: the path/name given, or where the object was loaded from."""
    if isinstance(hypernet, (str, os.PathLike)):
        return str(hypernet)
    return getattr(hypernet, "source", "") or f"in-memory hypernetwork for {hypernet.config.base_model}"


def _resolve_base_tokenizer(model: Any, base_tokenizer: Any) -> Any:
    if base_tokenizer is not None:
        return load_tokenizer(base_tokenizer)
    name = str(getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", ""))
    why = ""
    if name:
        try:
            return load_tokenizer(name)
        except (OSError, ValueError, TypeError) as exc:
            log.debug("no tokenizer at %s: %s", name, exc)
            why = f" ({str(exc).splitlines()[0]})" if os.path.exists(name) and str(exc) else ""
    raise ValueError(
        f"cannot find the model's own tokenizer (name_or_path={name!r}){why}; pass base_tokenizer= "
        "(command line: --base-tokenizer; the tokenizer the model was trained with)"
    )


def _check_size(size: int, matrix: torch.Tensor, tied: bool) -> None:
    import psutil

    need = size * matrix.shape[1] * matrix.element_size() * (1 if tied else 2) * 3  # rows + copies
    free = psutil.virtual_memory().available
    if need > free:
        raise ValueError(
            f"a {size:,}-token vocabulary needs about {need / 2**30:.1f} GiB for its embeddings but only "
            f"{free / 2**30:.1f} GiB is free; use a smaller vocabulary or load the model in bf16"
        )


def _install(model: Any, predicted: Any, original: Any, t_ids: torch.Tensor, b_ids: torch.Tensor) -> None:
    """Resize the model's embeddings to the target vocabulary and fill them."""
    in_w = original.input
    dtype, device = in_w.dtype, in_w.device
    new_rows = [m.to(dtype) for m in predicted.matrices()]
    base_rows = [m.clone() for m in original.matrices()]  # before resizing frees them
    size = new_rows[0].shape[0]
    tied = is_tied(model)
    model.resize_token_embeddings(size, mean_resizing=False)
    targets = [model.get_input_embeddings().weight]
    if not tied:
        targets.append(model.get_output_embeddings().weight)
    with torch.no_grad():
        for weight, rows, base in zip(targets, new_rows, base_rows, strict=True):
            weight.copy_(rows.to(device))
            if len(t_ids):
                weight[t_ids.to(device)] = base[b_ids.to(base.device)].to(device)
    if tied:
        model.tie_weights()
    model.config.vocab_size = size
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    if text_config is not None and text_config is not model.config:
        text_config.vocab_size = size


def _update_ids(model: Any, tokenizer: Any) -> None:
    roles = special_roles(tokenizer)
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is None:
            continue
        cfg.bos_token_id = roles.get("bos")
        cfg.pad_token_id = roles.get("pad", roles.get("eos"))
        eos = roles["eos"]
        if cfg is not model.config and roles.get("turn_end") not in (None, eos):
            cfg.eos_token_id = [eos, roles["turn_end"]]
        else:
            cfg.eos_token_id = eos
