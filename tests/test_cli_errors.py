"""Broken user files give one line naming the file and the problem (CLI and API); ``--eos-token`` on the CLI."""

import pytest
from transformers import AutoConfig, AutoTokenizer

import zett
from tokenizers_zoo import load_tokenizer
from zett.cli import main


def one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "zett: error: " in err and "Traceback" not in err, err
    message = err[err.index("zett: error: ") :]  # after any progress bar the model load drew
    assert message.count("\n") == 1, err
    return message


@pytest.fixture
def broken_tokenizers(tmp_path, byte_bpe):
    """Truncated and foreign tokenizer files next to each other, each in its own directory."""
    good = tmp_path / "good"
    byte_bpe.save_pretrained(good)
    text = (good / "tokenizer.json").read_text()
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "tokenizer.json").write_text(text[: len(text) // 2])  # a download that stopped halfway
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "tokenizer.json").write_text(text)
    (tmp_path / "cfg" / "tokenizer_config.json").write_text('{"model_max_length": 12')
    (tmp_path / "other.json").write_text('{"vocab": {"a": 0}}')  # valid JSON, not a tokenizer
    (tmp_path / "junk.model").write_bytes(b"not a protobuf at all \x00\xff\xfe")
    (tmp_path / "empty.model").write_bytes(b"")  # parses as an empty protobuf message
    return tmp_path


@pytest.mark.parametrize(
    "spec, names, problem",
    [
        ("cut/tokenizer.json", "cut/tokenizer.json", "not valid JSON"),
        ("cut", "cut/tokenizer.json", "not valid JSON"),
        ("cfg", "cfg/tokenizer_config.json", "not valid JSON"),
        ("cfg/tokenizer.json", "cfg/tokenizer_config.json", "not valid JSON"),
        ("other.json", "other.json", "as a tokenizer.json"),
        ("junk.model", "junk.model", "SentencePiece"),
        ("empty.model", "empty.model", "no vocabulary pieces"),
    ],
)
def test_a_broken_tokenizer_file_is_named_in_one_line(broken_tokenizers, tiny_model_dir, capsys, spec, names, problem):
    path = broken_tokenizers / spec
    with pytest.raises(ValueError) as exc:
        load_tokenizer(path)
    assert str(broken_tokenizers / names) in str(exc.value) and problem in str(exc.value)
    assert "\n" not in str(exc.value)
    err = one_line_error(
        capsys,
        ["transfer", "--model", str(tiny_model_dir), "--tokenizer", str(path), "--out", str(broken_tokenizers / "out")],
    )
    assert str(broken_tokenizers / names) in err and problem in err
    assert not (broken_tokenizers / "out").exists() or not any((broken_tokenizers / "out").iterdir())


def test_a_missing_tokenizer_path_is_one_line(tmp_path, tiny_model_dir, capsys):
    err = one_line_error(
        capsys,
        [
            "transfer",
            "--model",
            str(tiny_model_dir),
            "--tokenizer",
            str(tmp_path / "nope" / "tokenizer.json"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert "nope/tokenizer.json" in err and "does not exist" in err


def test_texts_that_are_not_utf8_name_the_file_and_line(tmp_path, tiny_model_dir, capsys):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("first paragraph\n\nsecond, caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt:3 is not UTF-8 .*byte 0xe9"):
        zett.read_texts(latin)
    jsonl = tmp_path / "latin1.jsonl"
    jsonl.write_bytes('{"text": "ok"}\n{"text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.jsonl:2 is not UTF-8"):
        zett.read_texts(jsonl)
    err = one_line_error(
        capsys,
        [
            "transfer",
            "--model",
            str(tiny_model_dir),
            "--tokenizer",
            "byte",
            "--eval-texts",
            str(latin),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert f"{latin}:3 is not UTF-8" in err and "iconv" in err


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"text": "a"', "is not JSON"),
        ('{"body": "x"}', "has no 'text' field (it has 'body')"),
        ("[1, 2]", "is a JSON array, not an object"),
        ('{"text": 5}', "has a non-string 'text' (5)"),
        ('"just a string"', "is a JSON string, not an object"),
    ],
)
def test_a_bad_jsonl_line_is_named_with_its_number(tmp_path, line, problem):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "fine"}\n\n' + line + "\n")
    with pytest.raises(ValueError) as exc:
        zett.read_texts(path)
    assert str(exc.value).startswith(f"{path}:3 ") and problem in str(exc.value) and "\n" not in str(exc.value)


def test_cli_eos_token_for_a_target_that_declares_none(tmp_path, tiny_model_dir, byte_bpe_small, capsys):
    target = tmp_path / "target.json"  # a bare tokenizer.json: no config, so no EOS, though <|endoftext|> is there
    byte_bpe_small.backend_tokenizer.save(str(target))
    assert load_tokenizer(target).eos_token_id is None
    base = ["transfer", "--model", str(tiny_model_dir), "--tokenizer", str(target)]
    err = one_line_error(capsys, base + ["--out", str(tmp_path / "a")])
    assert "no EOS token" in err and "--eos-token" in err
    assert main(base + ["--eos-token", "<|endoftext|>", "--out", str(tmp_path / "b")]) == 0
    eos = byte_bpe_small.backend_tokenizer.token_to_id("<|endoftext|>")
    assert AutoConfig.from_pretrained(tmp_path / "b").eos_token_id == eos
    assert AutoTokenizer.from_pretrained(tmp_path / "b").eos_token == "<|endoftext|>"


@pytest.mark.parametrize("command", [[], ["transfer"], ["eval"], ["distill"], ["train-hypernet"], ["demo"]])
def test_help_prints_for_every_command(command, capsys):
    """argparse formats help strings with %: a literal '%' in one (e.g. '95% CIs') breaks `zett --help`."""
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: zett" in capsys.readouterr().out
