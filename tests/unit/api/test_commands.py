"""The `crds`, `validate` and `demo` commands through the CLI entry point."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
import yaml

from inferencefleet.api.crdgen import KINDS
from inferencefleet.cli import main
from inferencefleet.manifests import Document, parse

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_FILES = sorted((REPO / "policies" / "examples").glob("*.yaml"))
INVALID_FILES = sorted((REPO / "policies" / "invalid").glob("*.yaml"))
BUNDLED = REPO / "operator" / "inferencefleet" / "data" / "examples"


def _expectation(path: Path) -> str:
    found = re.search(r"^# expect: (.+)$", path.read_text(), re.M)
    assert found, f"{path} has no '# expect: <message>' line"
    return found.group(1)


def test_there_is_an_invalid_example_per_rule():
    assert len(INVALID_FILES) >= 20


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_is_valid(path, capsys):
    assert main(["validate", "-f", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_all_examples_at_once(capsys):
    assert main(["validate", *[a for p in EXAMPLE_FILES for a in ("-f", str(p))]]) == 0
    assert "5 document(s) valid" in capsys.readouterr().err


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.name)
def test_every_invalid_example_fails_with_its_message(path, capsys):
    code = main(["validate", "-f", str(path)])
    output = capsys.readouterr()
    assert code in (1, 2)
    assert _expectation(path) in output.out + output.err
    assert "Traceback" not in output.out + output.err


@pytest.mark.parametrize(
    "path",
    [p for p in INVALID_FILES if not _expectation(p).startswith(("line ", "malformed YAML", "kind: unknown kind"))],
    ids=lambda p: p.name,
)
def test_the_crd_schema_alone_rejects_every_invalid_example_too(path):
    from inferencefleet.api.crdgen import kind_for, openapi_schema
    from inferencefleet.api.schema_check import SchemaChecker

    body = yaml.safe_load(path.read_text())
    assert SchemaChecker(openapi_schema(kind_for(body["kind"]).model)).check(body) != []


def test_problem_lines_name_file_document_kind_and_path(capsys):
    path = REPO / "policies" / "invalid" / "replicas-min-above-max.yaml"
    assert main(["validate", "-f", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{path}:0: InferencePool/replicas-min-above-max: spec.replicas.min: 5 must be less than or equal to max (2)"
    ]


def test_multi_document_stdin_reports_each_bad_document_once(monkeypatch, capsys):
    good = (REPO / "policies" / "examples" / "quota.yaml").read_text()
    bad = (REPO / "policies" / "invalid" / "expert-parallel-dense.yaml").read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{good}\n---\n{bad}\n---\n{bad}"))
    assert main(["validate", "-f", "-"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["<stdin>:1", "<stdin>:2"]
    assert all("spec.topology.expertParallel" in line for line in lines)


def test_a_path_flagged_by_both_checks_is_reported_once(tmp_path, capsys):
    body = yaml.safe_load((REPO / "policies" / "examples" / "llama3-8b-free.yaml").read_text())
    body["spec"]["tier"] = ""
    body["spec"]["replicas"]["unknownKey"] = 1
    path = tmp_path / "pool.yaml"
    path.write_text(yaml.safe_dump(body))
    assert main(["validate", "-f", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("spec.tier:") == 1
    assert out.count("spec.replicas.unknownKey:") == 1


def test_unreadable_file_is_one_line_and_exit_2_after_checking_the_rest(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    code = main(["validate", "-f", str(missing), "-f", str(EXAMPLE_FILES[0])])
    out = capsys.readouterr().out
    assert code == 2
    assert out.strip() == f"{missing}: cannot read: No such file or directory"


def test_empty_file_is_invalid(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert main(["validate", "-f", str(empty)]) == 1
    assert "no YAML documents" in capsys.readouterr().out


def test_bundled_examples_match_the_policies_examples():
    bundled = sorted(BUNDLED.glob("*.yaml"))
    assert [p.name for p in bundled] == [p.name for p in EXAMPLE_FILES]
    for copy, original in zip(bundled, EXAMPLE_FILES, strict=True):
        assert copy.read_bytes() == original.read_bytes(), f"{copy} differs from {original}"


def test_demo_refuses_an_invalid_example(tmp_path, capsys):
    for path in EXAMPLE_FILES:
        shutil.copy(path, tmp_path)
    shutil.copy(REPO / "policies" / "invalid" / "count-in-managed-mode.yaml", tmp_path)
    assert main(["demo", "--examples", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "spec.replicas.count" in capsys.readouterr().out


def test_crds_check_passes_on_the_committed_files(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert main(["crds", "--check"]) == 0
    assert capsys.readouterr().out.strip() == f"{2 * len(KINDS)} CRD files up to date"


def test_crds_check_fails_with_a_diff_on_a_stale_copy(tmp_path, capsys):
    out_dir, chart_dir = tmp_path / "crds", tmp_path / "chart"
    assert main(["crds", "--out-dir", str(out_dir), "--chart-dir", str(chart_dir)]) == 0
    stale = out_dir / KINDS[0].filename
    stale.write_text(stale.read_text().replace("shortNames:\n    - ipool", "shortNames:\n    - infpool"))
    capsys.readouterr()
    assert main(["crds", "--check", "--out-dir", str(out_dir), "--chart-dir", str(chart_dir)]) == 1
    diff = capsys.readouterr().out
    assert f"--- {stale} (committed)" in diff
    assert "-    - infpool" in diff and "+    - ipool" in diff
    assert str(chart_dir) not in diff


def test_crds_writes_identical_crd_and_chart_copies(tmp_path):
    assert main(["crds", "--out-dir", str(tmp_path / "a"), "--chart-dir", str(tmp_path / "b")]) == 0
    for kind in KINDS:
        first, second = (tmp_path / d / kind.filename for d in ("a", "b"))
        assert first.read_text() == second.read_text()
        assert yaml.safe_load(first.read_text())["metadata"]["name"] == kind.crd_name


def test_committed_chart_crds_are_copies_of_crds():
    for kind in KINDS:
        assert (REPO / "crds" / kind.filename).read_bytes() == (
            REPO / "charts" / "inferencefleet" / "crds" / kind.filename
        ).read_bytes()


def test_parse_accepts_api_server_style_nulls():
    body = yaml.safe_load(EXAMPLE_FILES[0].read_text())
    body["spec"]["engine"] = None
    assert parse(Document("x", 0, body))[1] == []
