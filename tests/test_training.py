"""The shared training runtime (zett.training): precision without accelerate's process-wide state, checkpoints
that run no code, trackers, and a library that does not point into the shared assets."""

import ast
import json
from pathlib import Path

import pytest
import torch
from conftest import REPO, TRAIN_TEXT, tiny_llama

import zett
from tokenizers_zoo import byte_tokenizer

TEXTS = [t for t in TRAIN_TEXT[:6] if t][:4]


@pytest.fixture
def setup(byte_bpe):
    torch.set_num_threads(1)
    student_tok = byte_tokenizer(specials_from=byte_bpe)
    teacher = tiny_llama(len(byte_bpe), seed=1)
    return teacher, byte_bpe, lambda: zett.transfer(teacher, student_tok, base_tokenizer=byte_bpe)[0], student_tok


def config(**kw):
    base = dict(
        steps=2, batch_size=2, max_length=32, lr=3e-3, warmup_steps=0, losses={"alm": 1.0, "sft": 1.0}, save_every=2
    )
    return zett.DistillConfig(**(base | kw))


@pytest.fixture
def fresh_accelerate_state():
    """A process without accelerate state before and after (a caller's Accelerator is made inside the test)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state()
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state()
    GradientState._reset_state()


def test_runs_at_two_precisions_in_one_process():
    from zett.training import Processes

    a = torch.randn(4, 4)
    for precision, dtype in (("no", torch.float32), ("bf16", torch.bfloat16), ("no", torch.float32)):
        procs = Processes(precision)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # an fp32 run also turns off autocast around it
            with procs.autocast():
                assert (a @ a).dtype == dtype, precision


def test_a_callers_accelerator_is_left_as_it_was(setup, fresh_accelerate_state):
    from accelerate import Accelerator

    teacher, teacher_tok, fresh_student, student_tok = setup
    alone = zett.distill(fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config(), progress=False)
    mine = Accelerator(mixed_precision="bf16", cpu=True)
    res = zett.distill(fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config(), progress=False)
    assert mine.state.mixed_precision == "bf16" and mine.mixed_precision == "bf16"
    with mine.autocast():
        assert (torch.randn(3, 3) @ torch.randn(3, 3)).dtype == torch.bfloat16
    # the run was fp32 all the same, and returns a model with its own forward (no autocast wrapper)
    assert [m["loss"] for m in res.metrics] == [m["loss"] for m in alone.metrics]
    assert "forward" not in vars(res.model)
    Accelerator(mixed_precision="bf16", cpu=True)  # accelerate's state is still the caller's: no error


def test_checkpoints_never_unpickle_objects(setup, tmp_path):
    teacher, teacher_tok, fresh_student, student_tok = setup
    run = tmp_path / "run"
    zett.distill(
        fresh_student(),
        student_tok,
        teacher,
        teacher_tok,
        TEXTS,
        config(steps=3),
        run_dir=run,
        progress=False,
        on_step=lambda step, row: step < 3,
    )  # killed after step 3, checkpoint at 2
    optimizer = run / "checkpoint" / "optimizer.pt"
    saved = torch.load(optimizer, weights_only=True)
    assert {"optimizer", "scheduler", "rng"} <= set(saved)
    marker = tmp_path / "ran"
    torch.save(dict(saved, optimizer=Marker(str(marker))), optimizer)  # as torch.save writes any object
    with pytest.raises(ValueError, match="holds more than tensors and plain values"):
        zett.distill(
            fresh_student(), student_tok, teacher, teacher_tok, TEXTS, config(steps=3), run_dir=run, progress=False
        )
    assert not marker.exists()


class Marker:
    """Unpickling this writes a file: what a checkpoint from someone else must never get to do."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "unpickled"))


class Recording:
    """A tracker class, registered under a name as accelerate allows; records what it is given."""

    calls: list = []

    def __init__(self, run_name, **kwargs):
        self.calls.append(("init", run_name))

    def start(self):
        self.calls.append(("start",))

    def store_init_configuration(self, values):
        self.calls.append(("config", values))

    def log(self, values, step=None, **kwargs):
        self.calls.append(("log", step, values))

    def finish(self):
        self.calls.append(("finish",))


def test_trackers_get_every_row(setup, tmp_path, monkeypatch):
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, GeneralTracker

    teacher, teacher_tok, fresh_student, student_tok = setup
    tracker = type(
        "RecordingTracker",
        (Recording, GeneralTracker),
        {"name": "recording", "requires_logging_directory": False, "tracker": None, "calls": []},
    )
    monkeypatch.setitem(LOGGER_TYPE_TO_CLASS, "recording", tracker)
    res = zett.distill(
        fresh_student(),
        student_tok,
        teacher,
        teacher_tok,
        TEXTS,
        config(log_with="recording"),
        eval_data=TEXTS[:1],
        run_dir=tmp_path,
        progress=False,
    )
    calls = tracker.calls
    assert calls[0] == ("init", "zett-distill") and calls[1] == ("start",) and calls[-1] == ("finish",)
    assert calls[2][0] == "config" and calls[2][1]["lr"] == 3e-3 and calls[2][1]["log_with"] == "recording"
    logged = [c[1:] for c in calls if c[0] == "log"]
    assert [step for step, _ in logged] == [m["step"] for m in res.metrics] == [1, 2, 2]
    assert [v.get("loss") for _, v in logged[:2]] == [m["loss"] for m in res.metrics[:2]]
    assert set(logged[0][1]) == {"alm", "sft", "loss", "lr", "seconds"}
    assert logged[2][1] == {"eval_bpb": res.metrics[2]["eval_bpb"]}


def test_tracker_values_flatten_nested_numbers():
    from zett.training.logs import tracker_values

    row = {"step": 5, "loss": 1.5, "source": "real:gpt2", "hardware": "x", "eval_bpb": {"gpt2": {"en": 2.0}}}
    assert tracker_values(row) == {"loss": 1.5, "eval_bpb/gpt2/en": 2.0}


def test_tracker_errors_are_one_line(setup, tmp_path):
    from accelerate.tracking import get_available_trackers

    teacher, teacher_tok, fresh_student, student_tok = setup
    with pytest.raises(ValueError, match="unknown tracker 'nope'"):
        zett.distill(
            fresh_student(),
            student_tok,
            teacher,
            teacher_tok,
            TEXTS,
            config(log_with=["nope"]),
            run_dir=tmp_path,
            progress=False,
        )
    if "tensorboard" not in [str(getattr(t, "value", t)) for t in get_available_trackers()]:
        with pytest.raises(ValueError, match="tensorboard is not installed; pip install tensorboard"):
            zett.distill(
                fresh_student(),
                student_tok,
                teacher,
                teacher_tok,
                TEXTS,
                config(log_with="tensorboard"),
                run_dir=tmp_path,
                progress=False,
            )


def test_tensorboard_logs_go_to_the_run_directory(setup, tmp_path):
    pytest.importorskip("tensorboard")
    teacher, teacher_tok, fresh_student, student_tok = setup
    zett.distill(
        fresh_student(),
        student_tok,
        teacher,
        teacher_tok,
        TEXTS,
        config(log_with="tensorboard"),
        run_dir=tmp_path,
        progress=False,
    )
    assert list((tmp_path / "logs" / "zett-distill").glob("events.out.tfevents.*"))


def test_library_code_does_not_point_into_the_shared_assets():
    """No library module names the shared assets (only tests and benchmarks do); library defaults work for anyone."""
    users = []
    for pkg in ("zett", "hypernet", "tokenizers_zoo"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            text = path.read_text()
            tree = ast.parse(text)
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
                n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            }
            pointing = "ZETT_ASSETS" in text.replace("ZETT_ASSETS_CACHE", "") or '"shared" / "assets"' in text
            if pointing or "assets_dir" in names:
                users.append(path.relative_to(REPO).as_posix())
    assert users == []


def test_hypernet_defaults_need_no_assets(tmp_path, byte_bpe):
    from tokenizers_zoo import load_tokenizer

    cfg = zett.HypernetTrainConfig()
    for name in cfg.eval_tokenizers + cfg.real_tokenizers:  # shipped with tokenizers_zoo (or bytes): offline
        assert len(load_tokenizer(name, base=byte_bpe)) >= 256
    with pytest.raises(ValueError, match="set data"):
        zett.train_hypernet({"run_dir": str(tmp_path)}, base_model=tiny_llama(len(byte_bpe)), base_tokenizer=byte_bpe)


def test_eval_data_groups(tmp_path):
    from zett.hypertrain import eval_texts

    for lang in ("de", "en"):
        (tmp_path / f"{lang}.valid.jsonl").write_text(
            "".join(json.dumps({"text": f"{lang} text {i} " * 10}) + "\n" for i in range(3))
        )
    cfg = zett.HypernetTrainConfig(eval_data=str(tmp_path / "*.valid.jsonl"), eval_docs=2, eval_chars=12)
    assert eval_texts(cfg) == {"de": ["de text 0 de", "de text 1 de"], "en": ["en text 0 en", "en text 1 en"]}
    cfg = zett.HypernetTrainConfig(eval_data={"x": str(tmp_path / "en.valid.jsonl")}, eval_docs=1)
    assert list(eval_texts(cfg)) == ["x"] and len(eval_texts(cfg)["x"]) == 1
    assert list(eval_texts(zett.HypernetTrainConfig(eval_data=["a", "b"]))) == ["all"]
    assert eval_texts(zett.HypernetTrainConfig()) == {}
    with pytest.raises(FileNotFoundError, match="matches no file"):
        eval_texts(zett.HypernetTrainConfig(eval_data=str(tmp_path / "*.test.jsonl")))
