"""A command that needs an uninstalled extra says which one to install, never an ImportError traceback."""

from __future__ import annotations

import sys

import pytest

from inferencefleet.cli import main


@pytest.mark.parametrize("argv, module, extra", [
    (["demo"], "matplotlib", "sim"),
    (["simulate", "-f", "pool.yaml", "--out", "out"], "matplotlib", "sim"),
    (["engine-sim", "--profile", "llama3-8b-h100-tp1", "--port", "0"], "aiohttp", "enginesim"),
])
def test_missing_extra_names_the_extra(monkeypatch, capsys, argv, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # what `import module` and find_spec see when it is absent
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"pip install 'inferencefleet[{extra}]'" in err and module in err and "Traceback" not in err


def test_an_import_error_inside_a_command_names_the_extra(monkeypatch, capsys):
    """The safety net: a module of an extra missing deeper than the command's own check."""
    import inferencefleet.commands.crds as crds

    def fail(_args):
        import matplotlib.pyplot  # noqa: F401

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(crds, "run", fail)
    assert main(["crds", "--check"]) == 2
    assert "inferencefleet[sim]" in capsys.readouterr().err


def test_an_import_error_outside_the_extras_is_not_hidden(monkeypatch):
    import inferencefleet.commands.crds as crds

    def fail(_args):
        import no_such_module_anywhere  # noqa: F401

    monkeypatch.setattr(crds, "run", fail)
    with pytest.raises(ModuleNotFoundError):
        main(["crds", "--check"])
