"""Why does ALM lose to SFT at 100 steps? Held-out teacher matching vs data likelihood, per recipe.

    python benchmarks/distill_diagnose.py   # after distill_losses.py (reads its run checkpoints)

For the FVT start and each finished recipe of ``distill_losses.py`` (SmolLM2-135M -> bytes), on held-out text
aligned with the teacher's tokenization, prints per language:
  * the student's data NLL per chunk (what BPB measures) and the teacher's,
  * the ALM divergence from the teacher (binary KL, tau=100: what ALM minimises),
  * the mean |L_T - L_S| per chunk, and the share of chunks where the student beats the teacher,
  * the mean ALM per-chunk gradient weight (1 - L_T/L_S): how hard ALM still pushes each chunk.
Writes results/distill_diagnose.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
from common import Results, corpus, ensure_smollm2, hardware, require_assets
from distill_losses import RECIPES, RUNS
from safetensors.torch import load_file

import zett
from tokenizers_zoo import byte_tokenizer
from zett.distill.data import StepBatches
from zett.losses import boundary_mask, chunk_sums, token_stats
from zett.losses.alm import alm_loss
from zett.losses.stats import valid_chunks


@torch.no_grad()
def measure(student, s_tok, teacher, t_tok, texts: list[str]) -> dict:
    ds = StepBatches(
        texts, s_tok, t_tok, batch_size=len(texts), max_length=1024, teacher_max_length=320, seed=0, first=0, last=1
    )
    batch = ds.collate(list(range(len(texts))))
    s_b, t_b = boundary_mask(s_tok), boundary_mask(t_tok)
    t_out = token_stats(
        teacher(input_ids=batch["teacher_input_ids"], attention_mask=batch["teacher_attention_mask"]).logits,
        batch["teacher_input_ids"],
        t_b,
        batch["teacher_attention_mask"],
    )
    s_out = token_stats(
        student(input_ids=batch["student_input_ids"], attention_mask=batch["student_attention_mask"]).logits,
        batch["student_input_ids"],
        s_b,
        batch["student_attention_mask"],
    )
    num, valid = valid_chunks(batch)
    l_t = chunk_sums(t_out["token_logprobs"], batch["teacher_chunk_id"], num)[valid]
    l_s = chunk_sums(s_out["token_logprobs"], batch["student_chunk_id"], num)[valid]
    return {
        "chunks": int(valid.sum()),
        "student_nll_per_chunk": float(-l_s.mean()),
        "teacher_nll_per_chunk": float(-l_t.mean()),
        "alm_kl_tau100": float(alm_loss(t_out, s_out, batch)),
        "alm_kl_unmerged": float(alm_loss(t_out, s_out, batch, merge=False, debias=False)),
        "abs_gap_per_chunk": float((l_t - l_s).abs().mean()),
        "student_beats_teacher": float((l_s > l_t).float().mean()),
        "alm_weight": float((1 - l_t / l_s.clamp(max=-1e-6)).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--docs", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "distill_diagnose.json")
    args = ap.parse_args()
    require_assets()
    torch.manual_seed(0)
    res = Results(args.out, {"hardware": hardware(), "model": "SmolLM2-135M-Instruct", "target": "byte"})
    teacher, t_tok = zett.load_model(ensure_smollm2())
    s_tok = byte_tokenizer(specials_from=t_tok)
    start, _ = zett.transfer(teacher, s_tok)
    langs = ["en", "de", "code"]
    texts = {lang: [t[:1200] for t in corpus(lang, args.docs)] for lang in langs}
    runs = {"fvt": None}
    runs.update({name: RUNS / f"{name}-{args.steps}-{args.lr}" / "checkpoint" for name in RECIPES})
    for name, ckpt in runs.items():
        if ckpt is not None and not (ckpt / "trainable.safetensors").exists():
            continue
        if all(res.has(recipe=name, lang=lang) for lang in langs):
            continue
        student = copy.deepcopy(start)
        if ckpt is not None:
            state = load_file(str(ckpt / "trainable.safetensors"))
            student.load_state_dict(state, strict=False)
        student.eval()
        for lang in langs:
            row = measure(student, s_tok, teacher, t_tok, texts[lang])
            res.add(recipe=name, lang=lang, **row)
            print(name, lang, {k: round(v, 4) for k, v in row.items()}, flush=True)
    write_table(res, args.out.with_suffix(".md"), langs)


def write_table(res: Results, path: Path, langs: list[str]) -> None:
    rows = res.data["rows"]
    cols = ["student_nll_per_chunk", "alm_kl_tau100", "abs_gap_per_chunk", "student_beats_teacher", "alm_weight"]
    lines = [
        f"Held-out diagnosis, SmolLM2-135M -> bytes; {res.data['meta']['hardware']}",
        "",
        "| recipe | lang | teacher NLL/chunk | " + " | ".join(cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for r in rows:
        lines.append(
            f"| {r['recipe']} | {r['lang']} | {r['teacher_nll_per_chunk']:.3f} | "
            + " | ".join(f"{r[c]:.4f}" for c in cols)
            + " |"
        )
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
