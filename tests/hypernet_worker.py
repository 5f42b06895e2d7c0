"""Run by test_train_hypernet.py, once plainly and once under `accelerate launch` with two CPU processes."""

import json
import sys
import tempfile

import torch
from conftest import tiny_llama, train_byte_bpe
from test_train_hypernet import TEXTS, config

import zett

torch.set_num_threads(1)
base = train_byte_bpe()
model = tiny_llama(len(base), seed=3)
with tempfile.TemporaryDirectory() as tmp:
    from pathlib import Path

    cfg = config(Path(tmp), steps=4, negatives=0, batch_size=4, data=TEXTS[:4])
    res = zett.train_hypernet(cfg, base_model=model, base_tokenizer=base, progress=False)
from accelerate import PartialState  # noqa: E402

from zett.training import end_process_group  # noqa: E402

state = PartialState()
if state.is_main_process:
    with open(sys.argv[1], "w") as fh:
        json.dump({"processes": state.num_processes, "losses": [m["loss"] for m in res.metrics if "loss" in m]}, fh)
end_process_group()  # as the CLI does: exiting with the gloo group open can abort the process
