"""Hostile or broken YAML: every command that reads manifests answers with one short line and the right
exit status (1 invalid, 2 unreadable), in bounded time and memory, never a traceback."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from inferencefleet.cli import main
from inferencefleet.manifests import MAX_DEPTH, MAX_INPUT_BYTES, MAX_VALUES

HEAD = "apiVersion: inferencefleet.io/v1alpha1\nkind: InferencePool\nmetadata: {name: hostile}\n"


def _bomb(levels: int, at: str = "spec: {model: *%s}") -> str:
    """A billion-laughs document: each anchor is a list of nine aliases of the one before."""
    lines = [HEAD.rstrip("\n"), 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + at % f"l{levels - 1}" + "\n"


UNREADABLE: dict[str, tuple[bytes, str]] = {
    "not UTF-8": (HEAD.encode() + b"spec: {tier: \xff\xfe}\n", "not UTF-8 text (byte 0xff at offset"),
    "nested 500 deep": ((HEAD + "spec: " + "[" * 500 + "]" * 500 + "\n").encode(),
                        f"refused YAML: nested deeper than {MAX_DEPTH} levels"),
    "recursive alias": ((HEAD + "spec: &a {model: *a}\n").encode(), "refused YAML: recursive alias *a"),
    "integer of 5000 digits": ((HEAD + "spec: {replicas: {min: " + "9" * 5000 + "}}\n").encode(),
                               "refused YAML: integer of 5000 digits is too long to read (at most 4300)"),
    "alias bomb": (_bomb(7).encode(), f"refused YAML: the file expands to more than {MAX_VALUES} values"),
    "too large": (b"# " + b"x" * MAX_INPUT_BYTES + b"\n", "larger than 3 MiB"),
}


@pytest.mark.parametrize("case", UNREADABLE)
@pytest.mark.parametrize("command", ["validate", "render", "plan"])
def test_unreadable_yaml_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
                                                 command: str) -> None:
    content, message = UNREADABLE[case]
    path = tmp_path / "pool.yaml"
    path.write_bytes(content)
    signals = tmp_path / "signals.json"
    signals.write_text('{"at": 0, "pools": []}')
    extra = ["--signals", str(signals)] if command == "plan" else []
    assert main([command, "-f", str(path), *extra]) == 2
    captured = capsys.readouterr()
    output = (captured.out + captured.err).strip()
    assert message in output
    assert "\n" not in output and len(output) < 300 and "Traceback" not in output


def test_many_documents_count_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = HEAD + "spec: {engine: {extraArgs: [" + ", ".join(["a"] * 60_000) + "]}}\n"
    path = tmp_path / "pools.yaml"
    path.write_text("---\n".join([document] * 2))  # 60,000 values each: too many together
    assert main(["validate", "-f", str(path)]) == 2
    assert f"the file expands to more than {MAX_VALUES} values" in capsys.readouterr().out


def test_standard_input_is_bounded_and_decoded_too(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"kind: \xc3\x28\n")))
    assert main(["validate", "-f", "-"]) == 2
    assert capsys.readouterr().out.strip() == "-: not UTF-8 text (byte 0xc3 at offset 6)"


def test_a_small_alias_expansion_is_validated_but_echoed_short(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(_bomb(4, "spec: {tier: free, model: {name: m}, replicas: *%s}"))  # 9^4 values: under the cap
    assert main(["validate", "-f", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    replicas = next(line for line in lines if ": spec.replicas: " in line)
    assert "must be a mapping, got [[[" in replicas
    assert all(len(line) < 300 for line in lines)


def test_long_values_are_cut_in_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(HEAD.replace("hostile", "x" * 100_000) + "spec: {tier: " + "Y" * 100_000 + ", model: {name: m}}\n")
    assert main(["validate", "-f", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any("spec.tier: must have at most 63 characters" in line for line in lines)
    assert all(len(line) < 400 for line in lines)


def test_an_invalid_manifest_is_exit_1_in_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(HEAD + "spec: {tier: free, model: {name: m}, replicas: {min: -1}}\n")
    for command in (["validate"], ["render"]):
        assert main([*command, "-f", str(path)]) == 1
        captured = capsys.readouterr()
        assert "spec.replicas.min: must be at least 0, got -1" in captured.out + captured.err


def test_the_same_bounds_hold_without_libyaml(tmp_path: Path) -> None:
    """Where PyYAML has no libyaml binding, its own parser feeds the same bounded composer."""
    for case in ("nested 500 deep", "recursive alias", "alias bomb"):
        content, message = UNREADABLE[case]
        path = tmp_path / "pool.yaml"
        path.write_bytes(content)
        script = ("import sys, yaml; yaml.__with_libyaml__ = False\n"
                  "from inferencefleet.cli import main\n"
                  "sys.exit(main(['validate', '-f', sys.argv[1]]))")
        done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=False)
        assert done.returncode == 2 and message in done.stdout and "Traceback" not in done.stderr
