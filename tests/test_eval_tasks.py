"""Multiple-choice accuracy: the scoring rule, forced answers, tokenizer invariance and bad task files."""

import json
import math

import pytest
import torch
from conftest import cli, tiny_llama

import zett
from tokenizers_zoo import byte_tokenizer, encode_text
from zett.evaluate.tasks import _batch_scores, _batches, _choice_scores, continuation_ids, start_token_id


def bigram_llama(tokenizer, follows: dict[str, str], strength: float = 10.0):
    """A tiny Llama that is a bigram model: attention and MLP outputs are zero, so the last hidden state is the
    current token's embedding, and the output layer makes each character of ``follows`` predict its value."""
    model = tiny_llama(len(tokenizer), tied=False, hidden_size=64)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.get_input_embeddings().weight
        normed = emb / emb.pow(2).mean(-1, keepdim=True).sqrt()
        head = model.get_output_embeddings().weight
        head.zero_()
        for cur, nxt in follows.items():
            (c,), (n,) = encode_text(tokenizer, cur), encode_text(tokenizer, nxt)
            head[n] += strength * normed[c]
    return model


def write_task(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_forced_answer_scores_one_and_inverted_task_zero(tmp_path):
    tok = byte_tokenizer()
    model = bigram_llama(tok, {" ": "y", "y": "e", "e": "s"})
    rows = [{"context": f"Q: question {i}?\nA:", "choices": ["no", "yes"], "answer": 1} for i in range(6)]
    right = write_task(tmp_path / "right.jsonl", rows)
    wrong = write_task(tmp_path / "wrong.jsonl", [dict(r, answer=0) for r in rows])
    res = zett.evaluate.choice_accuracy(model, tok, [right, wrong], progress=False)
    assert res["right"].accuracy == 1.0 and res["wrong"].accuracy == 0.0
    assert res["right"].chance == 0.5 and res["right"].n == 6
    low, high = res["right"].interval
    assert 0.5 < low < 1.0 == high  # Wilson: 6/6 is not certainty
    assert res["right"].above_chance and not res["wrong"].above_chance
    assert res.macro().value == pytest.approx(0.5)


def uniform_model(vocab_size):
    model = tiny_llama(vocab_size, tied=False)
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()
    return model


def test_per_byte_normalisation_by_hand(byte_bpe):
    """Under a uniform model every token costs log V, so a choice scores -log V * tokens / bytes of ' ' + choice."""
    model = uniform_model(len(byte_bpe))
    example = zett.evaluate.tasks.Example("The quick brown fox", ("jumps over", "zqxjv"), 0)
    n_tok = [len(encode_text(byte_bpe, " jumps over")), len(encode_text(byte_bpe, " zqxjv"))]
    assert n_tok[0] / 11 != n_tok[1] / 6  # the two choices differ per byte
    scores = _choice_scores(model, byte_bpe, start_token_id(byte_bpe), example, 256)
    expected = [-math.log(len(byte_bpe)) * n_tok[0] / 11, -math.log(len(byte_bpe)) * n_tok[1] / 6]
    assert scores == pytest.approx(expected, rel=1e-5)


def test_tie_earns_expected_accuracy(tmp_path):
    """Byte model, uniform: every choice of one byte length ties, and the answer gets 1/k credit, not 1 or 0."""
    tok = byte_tokenizer()
    model = uniform_model(len(tok))
    task = write_task(tmp_path / "t.jsonl", [{"context": "x", "choices": ["ab", "cd", "ef"], "answer": 2}])
    res = zett.evaluate.choice_accuracy(model, tok, task, progress=False)
    assert res["t"].accuracy == pytest.approx(1 / 3)


def test_shared_context_cache_matches_full_forward(byte_bpe):
    """Choices scored with the context's cache equal a plain forward over context + choice."""
    model = tiny_llama(len(byte_bpe))
    example = zett.evaluate.tasks.Example("def add(a, b):\n    return", ("a + b", "a - b - 1", "print"), 0)
    scores = _choice_scores(model, byte_bpe, start_token_id(byte_bpe), example, 256)
    ctx = [start_token_id(byte_bpe)] + encode_text(byte_bpe, example.context)
    for choice, got in zip(example.choices, scores):
        cont = continuation_ids(byte_bpe, " " + choice)
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=torch.tensor([ctx + cont])).logits[0].float(), -1)
        total = sum(float(lp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
        assert got == pytest.approx(total / len((" " + choice).encode()), abs=1e-5)


def test_batched_examples_score_as_one_at_a_time(byte_bpe):
    """Examples of different context lengths and choice counts in one right-padded batch: each choice scores as
    it does alone (padding masked, positions continuing each context), including a one-token choice."""
    model = tiny_llama(len(byte_bpe))
    examples = [
        zett.evaluate.tasks.Example("def add(a, b):\n    return", ("a + b", "a - b - 1", "print"), 0),
        zett.evaluate.tasks.Example("Hi", ("there", "x"), 1),
        zett.evaluate.tasks.Example("The capital of France is a city called", ("Paris", "Rome", "Oslo", "Bern"), 0),
    ]
    start = start_token_id(byte_bpe)
    batched = _batch_scores(model, byte_bpe, start, examples, 256)
    for ex, got in zip(examples, batched, strict=True):
        assert got == pytest.approx(_choice_scores(model, byte_bpe, start, ex, 256), abs=1e-5)
    assert [len(b) for b in _batches(examples * 3, 7)] == [2, 2, 2, 2, 1]


def test_continuation_covers_exactly_the_choice_bytes(spm_bpe, byte_bpe):
    from tokenizers_zoo import surface_forms

    for tok in (spm_bpe, byte_bpe, byte_tokenizer()):
        forms = surface_forms(tok)
        for text in (" yes", " naïve café", " 日本"):
            assert b"".join(forms[i] for i in continuation_ids(tok, text)) == text.encode()


def test_own_tokenizer_transfer_scores_like_the_original(byte_bpe, tmp_path):
    model = tiny_llama(len(byte_bpe))
    new, new_tok = zett.transfer(model, byte_bpe, base_tokenizer=byte_bpe)
    rows = [{"context": f"Item {i}:", "choices": ["red", "green apples", "blue"], "answer": i % 3} for i in range(9)]
    task = write_task(tmp_path / "colours.jsonl", rows)
    a = zett.evaluate.choice_accuracy(model, byte_bpe, task, progress=False)
    b = zett.evaluate.choice_accuracy(new, new_tok, task, progress=False)
    assert (a["colours"].predictions == b["colours"].predictions).all()
    assert a["colours"].accuracy == b["colours"].accuracy
    texts = ["The quick brown fox.", "Der schnelle braune Fuchs."]
    assert zett.evaluate.bits_per_byte(new, new_tok, texts, progress=False) == pytest.approx(
        zett.evaluate.bits_per_byte(model, byte_bpe, texts, progress=False), rel=1e-6
    )


def test_macro_mean_on_reference_tasks(tmp_path):
    tok = byte_tokenizer()
    model = bigram_llama(tok, {" ": "y", "y": "e", "e": "s"})
    easy = write_task(
        tmp_path / "easy.jsonl", [{"context": f"{i}:", "choices": ["no", "yes"], "answer": 1} for i in range(12)]
    )
    hard = write_task(
        tmp_path / "hard.jsonl", [{"context": f"{i}:", "choices": ["no", "yes"], "answer": 0} for i in range(12)]
    )
    ref = zett.evaluate.choice_accuracy(model, tok, [easy, hard], progress=False)
    assert ref.above_chance() == ["easy"]
    res = zett.evaluate.choice_accuracy(model, tok, [easy, hard], reference=ref, progress=False)
    out = res.as_dict()
    assert out["reference_above_chance"] == ["easy"]
    assert out["macro_reference_above_chance"]["value"] == 1.0 and out["macro"]["value"] == 0.5
    assert {"task", "accuracy", "ci_low", "ci_high", "n", "chance"} <= set(out["tasks"][0])


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"choices": ["a", "b"], "answer": 0}', "missing context"),
        ('{"context": "c", "choices": ["a", "b"], "answer": 2}', "answer must be an index"),
        ('{"context": "c", "choices": ["a"], "answer": 0}', "at least two"),
        ('{"context": "c", "choices": ["a", "b"]', "not JSON"),
        ('["c", ["a", "b"], 0]', "JSON object"),
    ],
)
def test_bad_task_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"context": "c", "choices": ["a", "b"], "answer": 0}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        zett.evaluate.load_tasks(path)
    assert f"{path}:2" in str(info.value) and "\n" not in str(info.value)


def test_bad_task_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{empty} holds no examples"):
        zett.evaluate.load_tasks(empty)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"context": "caf\xe9", "choices": ["a", "b"], "answer": 0}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=f"{latin} is not UTF-8"):
        zett.evaluate.load_tasks(latin)
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        zett.evaluate.load_tasks(tmp_path / "missing.jsonl")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no .jsonl task files"):
        zett.evaluate.load_tasks(tmp_path / "nothing")


def test_real_tasks_load():
    from conftest import assets_or_skip

    tasks = zett.evaluate.load_tasks(assets_or_skip() / "tasks")
    assert len(tasks) == 25 and all(t.examples for t in tasks)
    assert all(0 <= e.answer < len(e.choices) for t in tasks for e in t.examples)
    assert all(50 <= len(t.examples) <= 200 for t in tasks)


def test_cli_eval_table_and_json(tiny_model_dir, tmp_path, capsys):
    from zett.cli import main

    texts = tmp_path / "valid.jsonl"
    texts.write_text(
        "".join(json.dumps({"text": f"Document {i}: the quick brown fox."}) + "\n" for i in range(5)), encoding="utf-8"
    )
    task = write_task(
        tmp_path / "colours.jsonl",
        [{"context": f"Item {i}:", "choices": ["red", "blue"], "answer": i % 2} for i in range(6)],
    )
    out = tmp_path / "report.json"
    assert (
        cli(
            "eval",
            "--model",
            tiny_model_dir,
            "--texts",
            texts,
            "--tasks",
            task,
            "--reference",
            tiny_model_dir,
            "--prompts",
            2,
            "--json",
            out,
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "valid.jsonl" in table and "colours" in table and "chrF" in table
    report = json.loads(out.read_text())
    assert {"file", "bpb", "ci_low", "ci_high", "n_docs"} <= set(report["texts"][0])
    assert report["texts"][0]["n_docs"] == 5 and report["texts"][0]["ci_low"] <= report["texts"][0]["bpb"]
    assert {"task", "accuracy", "ci_low", "ci_high", "n", "chance"} <= set(report["tasks"]["tasks"][0])
    assert report["agreement"]["similarity_chrf"]["value"] == 1.0  # the model against itself
    # the single-file call of before still prints its JSON keys
    assert main(["eval", "--model", str(tiny_model_dir), "--texts", str(texts), "--json"]) == 0
    old = json.loads(capsys.readouterr().out)
    assert old["bpb"] == pytest.approx(report["texts"][0]["bpb"]) and old["docs"] == 5


def test_cli_eval_scores_50_examples_per_task_unless_told(tiny_model_dir, tmp_path, capsys):
    from zett.cli import main

    rows = [{"context": f"Item {i}:", "choices": ["red", "blue"], "answer": i % 2} for i in range(60)]
    task = write_task(tmp_path / "colours.jsonl", rows)
    for extra, n in (([], 50), (["--max-examples", "0"], 60), (["--max-examples", "7"], 7)):
        assert main(["eval", "--model", str(tiny_model_dir), "--tasks", str(task), "--json", *extra]) == 0
        assert json.loads(capsys.readouterr().out)["tasks"]["tasks"][0]["n"] == n


def test_cli_eval_errors_are_one_line(tiny_model_dir, tmp_path, capsys):
    from zett.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": "c", "choices": ["a", "b"], "answer": 5}\n', encoding="utf-8")
    assert main(["eval", "--model", str(tiny_model_dir), "--tasks", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("zett: error:") and f"{bad}:1" in err and "\n" not in err
    assert main(["eval", "--model", str(tiny_model_dir)]) == 1
    assert "nothing to evaluate" in capsys.readouterr().err
