"""Run by test_distill.py, once plainly and once under `accelerate launch --num_processes 2 --cpu`."""

import json
import sys

import torch
from conftest import TRAIN_TEXT, tiny_llama, train_byte_bpe

import zett
from tokenizers_zoo import byte_tokenizer

torch.set_num_threads(1)
teacher_tok = train_byte_bpe()
student_tok = byte_tokenizer(specials_from=teacher_tok)
teacher = tiny_llama(len(teacher_tok), seed=1)
student = zett.transfer(teacher, student_tok, base_tokenizer=teacher_tok)[0]
cfg = zett.DistillConfig(
    steps=4, batch_size=4, max_length=48, lr=3e-3, warmup_steps=0, trainable="full", losses={"alm": 1.0, "sft": 1.0}
)
res = zett.distill(student, student_tok, teacher, teacher_tok, TRAIN_TEXT[:8], cfg, progress=False)
from accelerate import PartialState  # noqa: E402

from zett.training import end_process_group  # noqa: E402

state = PartialState()
if state.is_main_process:
    with open(sys.argv[1], "w") as fh:
        json.dump({"processes": state.num_processes, "losses": [m["loss"] for m in res.metrics if "loss" in m]}, fh)
end_process_group()  # as the CLI does: exiting with the gloo group open can abort the process
