"""Every config in examples/ is valid for the command its header names."""

import pytest
import yaml

import zett
from zett.paths import REPO

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_is_valid(path):
    spec = yaml.safe_load(path.read_text())
    header = path.read_text().splitlines()[0]
    if "zett distill" in header:
        assert {"student", "teacher", "data", "out"} <= set(spec)
        config = zett.DistillConfig.from_dict(spec["config"])
        assert config.steps > 0 and config.mixed_precision != "bf16"  # bf16 is emulated (slow) on most CPUs
    elif "--distill-config" in path.read_text():  # a DistillConfig for zett transfer --distill-config
        config = zett.DistillConfig.from_yaml(path)
        assert config.mixed_precision != "bf16" and config.chat_prompts in (None, "builtin")
    else:
        config = zett.HypernetTrainConfig.from_yaml(path)
        assert config.steps > 0


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"distill_gemma_to_smollm2_math.yaml", "distill_gemma_to_smollm2_mix.yaml"} <= names
