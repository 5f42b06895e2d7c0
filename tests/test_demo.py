"""The demo: its packaged evaluation sample (no shared assets needed) and ``zett demo --model`` on a tiny model."""

import gzip
import json
import re
import tomllib

import pytest

import zett.demo
from zett.cli import main
from zett.demo import SAMPLE, demo_texts
from zett.paths import REPO


def sample_rows() -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_the_sample_is_packaged_small_and_each_language_names_its_licence():
    rows = sample_rows()
    langs = list(dict.fromkeys(r["lang"] for r in rows))
    assert {"en", "de", "zh"} <= set(langs) and len(langs) >= 10
    readme = (SAMPLE.parent / "README.md").read_text(encoding="utf-8")
    table = {m.group(1): m.group(0) for m in re.finditer(r"^\| (\S+) \| \d+ \|.*$", readme, re.M)}
    for lang in langs:
        mine = [r for r in rows if r["lang"] == lang]
        assert 2 <= len(mine) <= 4 and all(0 < len(r["text"]) <= 1500 for r in mine)
        assert sum(len(r["text"].encode()) for r in mine) < 16_000  # a few KB per language
        assert lang in table and re.search(r"public domain|PSF|MIT|CC-BY-SA|GPL", table[lang]), lang
    # shipped by `pip install .`: the package data globs of pyproject.toml cover the sample and its README
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["zett"]
    shipped = {p for pattern in data for p in (REPO / "zett").glob(pattern)}
    assert {SAMPLE, SAMPLE.parent / "README.md"} <= shipped


def test_demo_texts_come_from_the_package_not_the_shared_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("ZETT_ASSETS", str(tmp_path / "absent"))  # a bare clone: no ../shared/assets
    rows = sample_rows()
    texts = demo_texts(["zh", "en"], docs=2)
    assert list(texts) == ["zh", "en"]
    assert texts["en"] == [r["text"] for r in rows if r["lang"] == "en"][:2]
    assert len(demo_texts(["en"], docs=99)["en"]) == sum(r["lang"] == "en" for r in rows)  # all there are
    with pytest.raises(ValueError, match="no texts in xx; pick --langs from en,"):
        demo_texts(["en", "xx"], docs=2)
    with pytest.raises(ValueError, match="at least 1"):
        demo_texts(["en"], docs=0)


def test_cli_demo_runs_a_users_model(tiny_model_dir, tmp_path, monkeypatch, capsys):
    def no_download():
        raise AssertionError("--model must not fetch SmolLM2")

    monkeypatch.setattr(zett.demo, "smollm2_path", no_download)
    monkeypatch.setattr(zett.demo, "TARGETS", ["byte"])  # the plumbing, not the 50k-token tokenizers
    monkeypatch.setenv("ZETT_ASSETS", str(tmp_path / "absent"))
    assert main(["demo", "--model", str(tiny_model_dir), "--hypernet", "none", "--docs", "1", "--langs", "en,de"]) == 0
    out = capsys.readouterr().out
    assert f"bits per byte (lower is better), {tiny_model_dir}" in out
    assert "the first 1 document per language of the sample packaged with zett" in out
    rows = {
        m.group(1): (float(m.group(2)), float(m.group(3)))
        for m in re.finditer(r"^(\S+)\s+(\d+\.\d+)\s+(\d+\.\d+)$", out, re.M)
    }
    assert set(rows) == {"original", "fvt→byte"} and all(v > 0 for row in rows.values() for v in row)
    assert f"zett.load_model({str(tiny_model_dir)!r})" in out
    assert main(["demo", "--model", str(tiny_model_dir), "--langs", "en,klingon"]) == 1
    assert "no texts in klingon" in capsys.readouterr().err
