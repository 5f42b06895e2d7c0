"""The import direction of SPEC §2: tokenizers_zoo -> hypernet -> zett, never backwards (read from the code's
syntax trees, so usage examples in docstrings or model cards do not count)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"tokenizers_zoo": 0, "hypernet": 1, "zett": 2}


def upward_imports(package: str, root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted((root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if LAYERS.get(top, -1) > LAYERS[package]:
                    found.append(f"{path.relative_to(root)}:{node.lineno} imports {name}")
    return found


@pytest.mark.parametrize("package", ["tokenizers_zoo", "hypernet"])
def test_lower_layers_never_import_higher_ones(package):
    assert upward_imports(package) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    bad = tmp_path / "hypernet"
    bad.mkdir()
    source = '"""import zett (a docstring, not an import)"""\n\ndef f():\n    from zett.models import load_model\n'
    (bad / "x.py").write_text(source)
    assert upward_imports("hypernet", tmp_path) == ["hypernet/x.py:4 imports zett.models"]


def long_files(root: Path = ROOT, limit: int = 400) -> list[str]:
    dirs = ("tokenizers_zoo", "hypernet", "zett", "tests", "benchmarks", "examples")
    paths = sorted(p for d in dirs for p in (root / d).rglob("*.py"))
    return [f"{p.relative_to(root)}: {n} lines" for p in paths if (n := len(p.read_text().splitlines())) > limit]


def test_no_python_file_is_over_400_lines(tmp_path):
    assert long_files() == []
    (tmp_path / "zett").mkdir()
    (tmp_path / "zett" / "big.py").write_text("x = 1\n" * 401)
    assert long_files(tmp_path) == ["zett/big.py: 401 lines"]
