"""Hub-native artifacts without the network: Hypernet from_pretrained/save_pretrained/push_to_hub (local paths and
a mocked Hub), flat config (the older nested one still read), cards with front matter for hypernetworks and
exported models, one push helper with one privacy default, clear errors for broken files, load_model keyword
arguments."""

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
import yaml
from conftest import cli, tiny_llama

import zett
from hypernet import Hypernet, HypernetConfig

SMALL = dict(hidden_size=32, num_heads=4, num_layers=2)
FIELDS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "ffn_mult",
    "max_subtokens",
    "base_model",
    "base_vocab_size",
    "embedding_dim",
    "tied",
    "num_fallback",
    "fingerprint",
    "library_version",
    "training_scripts",
)


@pytest.fixture
def saved(tmp_path, byte_bpe):
    """A trained-looking hypernetwork for a tiny base named like a Hub model, saved to tmp_path/hn."""
    model = tiny_llama(len(byte_bpe), tied=False)
    net = Hypernet.for_base(model, byte_bpe, HypernetConfig(**SMALL))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    net.config.base_model = "org/tiny-base"
    return model, net, net.save_pretrained(tmp_path / "hn")


def front(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def same_predictions(a: Hypernet, b: Hypernet, tok) -> bool:
    return torch.equal(a.predict(tok).input, b.predict(tok).input) and torch.equal(
        a.predict(tok).output, b.predict(tok).output
    )


def test_flat_config_and_card_with_front_matter(saved):
    model, net, path = saved
    raw = json.loads((path / "config.json").read_text())
    assert set(raw) == {"model_type", *FIELDS} and raw["model_type"] == "zett_hypernet"  # flat: no nesting
    assert raw["base_model"] == "org/tiny-base" and raw["hidden_size"] == 32 and raw["tied"] is False
    card = (path / "README.md").read_text()
    meta = front(card)
    assert meta["base_model"] == "org/tiny-base" and meta["library_name"] == "zett"
    assert {"zett", "hypernetwork"} <= set(meta["tags"]) and net.config.fingerprint in card
    # a base known only by a local path: no base_model in the metadata (invalid there), the card still names it
    net.config.base_model = str(path.parent / "some-local-model")
    (path.parent / "some-local-model").mkdir()
    local = (net.save_pretrained(path.parent / "hn2") / "README.md").read_text()
    assert "base_model" not in front(local) and str(path.parent / "some-local-model") in local


def test_the_older_nested_config_still_loads(saved, byte_bpe, spm_bpe, tmp_path):
    model, net, path = saved
    flat = json.loads((path / "config.json").read_text())
    old = tmp_path / "old"
    shutil.copytree(path, old)
    (old / "config.json").write_text(json.dumps({"zett_hypernet": {k: flat[k] for k in FIELDS}}))
    a, b = Hypernet.from_pretrained(path, model, byte_bpe), Hypernet.from_pretrained(old, model, byte_bpe)
    assert a.config == b.config and same_predictions(a, b, spm_bpe)
    # the shipped network is stored flat and keeps its values
    from hypernet.model import SHIPPED_DIR

    shipped = json.loads((SHIPPED_DIR / "smollm2-135m" / "config.json").read_text())
    assert shipped["model_type"] == "zett_hypernet" and shipped["fingerprint"] == "6aa3805ef3cf349a0e853e25ff7e770d"
    assert (
        front((SHIPPED_DIR / "smollm2-135m" / "README.md").read_text())["base_model"]
        == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def test_from_pretrained_a_hub_id_passes_the_hub_arguments(saved, byte_bpe, spm_bpe, tmp_path, monkeypatch):
    model, net, path = saved
    cache = tmp_path / "hub-cache" / "snapshot"
    shutil.copytree(path, cache)
    calls = []

    def fake_snapshot_download(repo_id, **kw):
        calls.append((repo_id, kw))
        return str(cache)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = zett.Hypernet.from_pretrained(
        "me/tiny-hn", model, byte_bpe, revision="v1", token="t0k", cache_dir=tmp_path / "c", local_files_only=True
    )
    repo, kw = calls[0]
    assert repo == "me/tiny-hn" and kw["revision"] == "v1" and kw["token"] == "t0k"
    assert kw["cache_dir"] == tmp_path / "c" and kw["local_files_only"] is True
    assert {"config.json", "model.safetensors"} <= set(kw["allow_patterns"])
    assert loaded.source == "me/tiny-hn@v1" and same_predictions(
        loaded, Hypernet.from_pretrained(path, model, byte_bpe), spm_bpe
    )
    new, _ = zett.transfer(model, spm_bpe, base_tokenizer=byte_bpe, hypernet="me/tiny-hn")  # by id, through transfer
    assert new.config.zett["hypernet"] == "me/tiny-hn" and len(calls) == 2

    def offline(repo_id, **kw):
        raise OSError("no connection\nsecond line")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ValueError, match="cannot load hypernetwork 'me/tiny-hn'.*no connection") as exc:
        Hypernet.from_pretrained("me/tiny-hn")
    assert "\n" not in str(exc.value)


class FakeApi:
    """HfApi without the network: records calls; upload_folder copies the folder to ``uploaded``."""

    calls: list = []
    uploaded: Path = Path()

    def __init__(self, token=None):
        self.calls.append(("init", token))

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create", repo_id, kw["private"]))

    def upload_folder(self, folder_path, repo_id, **kw):
        shutil.copytree(folder_path, self.uploaded / repo_id)
        self.calls.append(("upload", repo_id, kw.get("revision")))
        return type("Info", (), {"commit_url": f"https://hub/{repo_id}/commit/1"})()


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    FakeApi.calls, FakeApi.uploaded = [], tmp_path / "uploaded"
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return FakeApi


def test_push_to_hub_is_private_by_default_and_round_trips(saved, byte_bpe, spm_bpe, fake_hub, tiny_model_dir):
    model, net, _ = saved
    url = net.push_to_hub("me/tiny-hn", token="t0k")
    assert url == "https://hub/me/tiny-hn/commit/1"
    assert fake_hub.calls == [("init", "t0k"), ("create", "me/tiny-hn", True), ("upload", "me/tiny-hn", None)]
    pushed = fake_hub.uploaded / "me/tiny-hn"
    assert {p.name for p in pushed.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    assert front((pushed / "README.md").read_text())["base_model"] == "org/tiny-base"
    assert same_predictions(Hypernet.from_pretrained(pushed, model, byte_bpe), net, spm_bpe)
    net.push_to_hub("me/public-hn", private=False, branch="dev", card="---\nlibrary_name: zett\n---\n# mine\n")
    assert fake_hub.calls[-2:] == [("create", "me/public-hn", False), ("upload", "me/public-hn", "dev")]
    assert (fake_hub.uploaded / "me/public-hn" / "README.md").read_text().endswith("# mine\n")
    # an exported model goes through the same helper, with the same default
    import importlib

    from hypernet.hub import push_folder

    assert importlib.import_module("zett.export").push_folder is push_folder
    m, tok = zett.load_model(tiny_model_dir)
    zett.export(*zett.transfer(m, "byte"), fake_hub.uploaded.parent / "exported", push_to_hub="me/tiny-byte")
    assert fake_hub.calls[-2] == ("create", "me/tiny-byte", True)
    assert front((fake_hub.uploaded / "me/tiny-byte" / "README.md").read_text())["library_name"] == "zett"


def test_broken_files_are_one_line_errors_naming_them(saved, tmp_path, byte_bpe, tiny_model_dir, capsys):
    model, _, path = saved
    weights = path / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])  # an interrupted download
    with pytest.raises(ValueError, match="model.safetensors is truncated") as exc:
        Hypernet.from_pretrained(path)
    assert str(weights) in str(exc.value) and "\n" not in str(exc.value)
    code = cli(
        "transfer", "--model", tiny_model_dir, "--tokenizer", "byte", "--hypernet", path, "--out", tmp_path / "out"
    )
    err = capsys.readouterr().err  # transformers' progress bars, then the error
    last = err.rstrip("\n").split("\n")[-1]
    assert code == 1 and "Traceback" not in err and err.count("zett: error") == 1
    assert last.startswith("zett: error: ") and str(weights) in last
    # weights of another architecture
    other = Hypernet.for_base(model, byte_bpe, HypernetConfig(hidden_size=16, num_heads=4, num_layers=1))
    shutil.copy(other.save_pretrained(tmp_path / "other") / "model.safetensors", weights)
    with pytest.raises(ValueError, match="do not fit .*config.json.*missing encoder.layers.1"):
        Hypernet.from_pretrained(path)
    weights.unlink()
    with pytest.raises(ValueError, match="model.safetensors is missing"):
        Hypernet.from_pretrained(path)
    weights.write_bytes(good)
    config = path / "config.json"
    config.write_text('{"model_type": "zett_hypernet", "hidden_')
    with pytest.raises(ValueError, match=f"cannot read hypernetwork config {config}"):
        Hypernet.from_pretrained(path)
    config.write_text(json.dumps({"model_type": "llama", "hidden_size": 32}))
    with pytest.raises(ValueError, match="not a zett hypernetwork config \\(model_type 'llama'"):
        Hypernet.from_pretrained(path)
    config.write_text(json.dumps({"model_type": "zett_hypernet", "hidden_size": 30, "num_heads": 4}))
    with pytest.raises(ValueError, match="invalid hypernetwork config .*not a multiple of num_heads"):
        Hypernet.from_pretrained(path)


def test_atomic_dir_keeps_the_old_directory_on_failure(tmp_path):
    from hypernet.files import atomic_dir

    out = tmp_path / "d"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("killed")
    assert (out / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["d"]
    with atomic_dir(out) as tmp:
        (tmp / "b.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["b.txt"] and [p.name for p in tmp_path.iterdir()] == ["d"]


def test_load_model_passes_from_pretrained_arguments(tiny_model_dir, byte_bpe, monkeypatch):
    from zett import models

    seen = []
    original = models.AutoModelForCausalLM.from_pretrained

    def spy(name, **kw):
        seen.append((name, kw))
        return original(name, **kw)

    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", spy)
    model, tok = zett.load_model(
        tiny_model_dir, dtype=torch.bfloat16, revision="main", trust_remote_code=False, device_map="cpu"
    )
    assert next(model.parameters()).dtype == torch.bfloat16 and len(tok) == len(byte_bpe)
    assert seen[-1] == (
        str(tiny_model_dir),
        {"dtype": torch.bfloat16, "revision": "main", "trust_remote_code": False, "device_map": "cpu"},
    )
    with pytest.raises(ValueError, match="not both"):
        zett.load_model(tiny_model_dir, device="cpu", device_map="cpu")
    # a Hub id: the model and the tokenizer come from the same revision, with the same token
    tok_calls = []
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", lambda name, **kw: original(tiny_model_dir))
    monkeypatch.setattr(
        models.AutoTokenizer, "from_pretrained", lambda name, **kw: tok_calls.append((name, kw)) or byte_bpe
    )
    zett.load_model("org/model", revision="abc123", token="t0k", device_map="cpu")
    assert tok_calls == [("org/model", {"revision": "abc123", "token": "t0k"})]


def test_a_gguf_base_is_named_by_its_file_in_cards(tmp_path, tiny_model_dir):
    from zett.models import SOURCE_FILE

    # what load_model leaves for a GGUF file: its dequantised copy, recording the file it came from
    converted = tmp_path / "converted"
    shutil.copytree(tiny_model_dir, converted)
    (converted / SOURCE_FILE).write_text(json.dumps({"source": "/home/me/models/Tiny-1B.Q4_1.gguf"}))
    model, _ = zett.load_model(converted)
    new, tok = zett.transfer(model, "byte")
    assert new.config.zett["base_model"] == "Tiny-1B.Q4_1.gguf"
    card = zett.model_card(new, tok)
    assert "| base model | Tiny-1B.Q4_1.gguf |" in card and "/home/me" not in card
    assert "base_model" not in front(card) and front(card)["library_name"] == "zett"
    new.config.zett["base_model"] = "org/Tiny-1B"  # a Hub id is valid metadata
    assert front(zett.model_card(new, tok))["base_model"] == "org/Tiny-1B"


def test_a_trained_hypernetworks_card_has_front_matter(tmp_path):
    from zett.hypertrain.card import hypernet_card

    run = tmp_path / "run"  # what train-hypernet leaves: its config and metrics
    run.mkdir()
    (run / "config.yaml").write_text(
        yaml.safe_dump({"base_model": "/models/tiny.gguf", "run_dir": str(run), "steps": 1})
    )
    (run / "metrics.jsonl").write_text(
        json.dumps({"step": 1, "loss": 2.0, "seconds": 3.0, "lr": 1e-4, "student_tokens_seen": 100}) + "\n"
    )
    card = hypernet_card(run, name="tiny-hn", base_model="org/tiny", hardware="machine Z")
    assert front(card) == {
        "base_model": "org/tiny",
        "library_name": "zett",
        "license": "other",
        "tags": ["zett", "hypernetwork", "tokenizer-transfer"],
    }
    assert "\n# tiny-hn: a zett hypernetwork for org/tiny\n" in card
    assert "- steps: 1 of 1 in the last leg, in one session" in card
    resumed = {"step": 1, "loss": 2.0, "seconds": 2.0, "lr": 1e-4, "student_tokens_seen": 100}  # the clock restarted
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(resumed) + "\n")
    card = hypernet_card(run, name="tiny-hn", base_model="org/tiny")
    assert "in the last leg, over 2 sessions (resumed from checkpoints)" in card
    assert "base_model" not in front(hypernet_card(run, name="tiny-hn", base_model="/models/tiny.gguf"))
