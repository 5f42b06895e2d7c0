"""benchmarks/common.py's Results: rows land on disk as they are measured, wherever the file is to go."""

import importlib.util
import json

from zett.paths import REPO


def _common():
    spec = importlib.util.spec_from_file_location("bench_common", REPO / "benchmarks" / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_write_each_row_into_a_directory_that_did_not_exist(tmp_path):
    Results = _common().Results
    path = tmp_path / "study" / "references" / "rows.json"
    res = Results(path, {"docs": 2})
    res.add(method="fvt", target="sampled", hardware="test")
    assert json.loads(path.read_text())["rows"][0]["method"] == "fvt"
    again = Results(path, {"docs": 9})  # a resumed study reads what was there
    assert again.has(method="fvt", target="sampled") and again.data["meta"] == {"docs": 2}
