"""export (model card, atomic writes, Hub push without network) and the CLI."""

import json

import pytest
import torch
from conftest import cli
from transformers import AutoModelForCausalLM, AutoTokenizer

import zett
from zett.cli import main


@pytest.fixture
def transferred(tiny_model_dir):
    model, _ = zett.load_model(tiny_model_dir)
    return zett.transfer(model, "byte")


def test_export_round_trip_and_card(tmp_path, transferred, tiny_model_dir):
    model, tok = transferred
    out = zett.export(model, tok, tmp_path / "m", bpb={"en": 1.234})
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"} <= names
    card = (out / "README.md").read_text()
    # a base loaded from a local path: named in the table, not as base_model in the metadata (invalid on the Hub)
    assert card.startswith("---\nlibrary_name: zett\n") and "| en | 1.2340 |" in card
    assert f"| base model | {tiny_model_dir} |" in card
    assert "| method | fvt |" in card
    again = AutoModelForCausalLM.from_pretrained(out)
    ids = torch.tensor([AutoTokenizer.from_pretrained(out)("abc").input_ids])
    with torch.no_grad():
        assert torch.equal(again(ids).logits, model(ids).logits)
    assert not list(tmp_path.glob(".m.tmp-*"))  # no temporary directory left behind


def test_export_refuses_non_empty_dir(tmp_path, transferred):
    model, tok = transferred
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        zett.export(model, tok, tmp_path / "m")
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"
    zett.export(model, tok, tmp_path / "m", overwrite=True)
    assert (tmp_path / "m" / "config.json").exists() and not (tmp_path / "m" / "keep.txt").exists()


def test_export_failure_keeps_old_output(tmp_path, transferred, monkeypatch):
    model, tok = transferred
    zett.export(model, tok, tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(type(tok), "save_pretrained", boom)
    with pytest.raises(OSError, match="disk full"):
        zett.export(model, tok, tmp_path / "m", overwrite=True)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert not list(tmp_path.glob(".m.tmp-*"))


def test_push_to_hub_without_network(tmp_path, transferred, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create", repo_id, kw["private"]))

        def upload_folder(self, folder_path, repo_id, **kw):
            calls.append(("upload", repo_id, sorted(p.name for p in __import__("pathlib").Path(folder_path).iterdir())))
            return type("Info", (), {"commit_url": "https://hub/commit/1"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    model, tok = transferred
    zett.export(model, tok, tmp_path / "m", push_to_hub="me/tiny-byte", token="t0k")
    assert calls[0] == ("init", "t0k") and calls[1] == ("create", "me/tiny-byte", True)
    assert calls[2][0] == "upload" and "model.safetensors" in calls[2][2] and "README.md" in calls[2][2]


def test_cli_transfer_and_eval(tmp_path, tiny_model_dir, capsys):
    texts = tmp_path / "t.jsonl"
    texts.write_text("\n".join(json.dumps({"text": t}) for t in ["hello world", "zett makes tokenizers"]))
    assert (
        cli(
            "transfer", "--model", tiny_model_dir, "--tokenizer", "byte", "--out", tmp_path / "o", "--eval-texts", texts
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert "bits/byte" in (tmp_path / "o" / "README.md").read_text()
    assert main(["eval", "--model", str(tmp_path / "o"), "--texts", str(texts), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["bytes"] == len("hello world") + len("zett makes tokenizers") and res["bpb"] > 0


def test_cli_errors_are_one_line(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "x").write_text("x")
    code = main(["transfer", "--model", str(tiny_model_dir), "--tokenizer", "byte", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--overwrite" in err and "Traceback" not in err
    code = main(["eval", "--model", str(tiny_model_dir), "--texts", str(tmp_path / "missing.jsonl")])
    assert code == 1 and "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["transfer"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and zett.__version__ in capsys.readouterr().out


def test_read_texts(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        zett.read_texts(bad)
    assert zett.read_texts(["a", "", "b"]) == ["a", "b"]
    import datasets

    assert zett.read_texts(datasets.Dataset.from_dict({"text": ["x", "y", "z"]}), max_docs=2) == ["x", "y"]
    with pytest.raises(ValueError, match="no non-empty"):
        zett.read_texts([""])


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        zett.load_model(tmp_path / "nope.gguf")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        zett.load_model("./no/such/dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="cannot load"):
        zett.load_model(tmp_path / "empty")
