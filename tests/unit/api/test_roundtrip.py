"""YAML -> model -> wire -> model is the identity."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inferencefleet.manifests import Document, parse

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "policies" / "examples").glob("*.yaml"))


def _load(body):
    model, problems = parse(Document("roundtrip", 0, body))
    assert problems == []
    return model


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_load_wire_load_is_identity(path):
    model = _load(yaml.safe_load(path.read_text()))
    wire = model.to_wire()
    again = _load(yaml.safe_load(yaml.safe_dump(wire)))
    assert again == model
    assert again.to_wire() == wire


def test_wire_form_writes_durations_as_strings():
    pool = _load(yaml.safe_load((Path(EXAMPLES[0]).parent / "llama3-70b-premium.yaml").read_text()))
    autoscaling = pool.to_wire()["spec"]["autoscaling"]
    assert autoscaling["slo"] == {"ttftP99": "1s", "itlP99": "75ms"}
    assert autoscaling["coldStart"] == "3m"
