"""``inferencefleet crds [--check]``: write (or check) the generated CRDs in crds/ and the Helm chart."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from ..errors import UserError

CRDS_DIR = Path("crds")
CHART_CRDS_DIR = Path("charts/inferencefleet/crds")
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="generate the CRD YAML from the API models",
        description=(
            "Write crds/*.yaml and charts/inferencefleet/crds/*.yaml from the pydantic models. "
            "With --check write nothing: print a unified diff of every stale file and exit 1 "
            "(0 when up to date). Exit 2 for usage errors."
        ),
    )
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 and show the diff if stale"
    )
    parser.add_argument("--out-dir", type=Path, help="CRD directory (default: REPO/crds)")
    parser.add_argument(
        "--chart-dir", type=Path, help="chart CRD directory (default: REPO/charts/inferencefleet/crds)"
    )
    parser.set_defaults(func=run)


def repo_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` (else above this package) holding pyproject.toml and operator/."""
    for base in (start.resolve(), _PACKAGE_DIR):
        for candidate in (base, *base.parents):
            if (candidate / "pyproject.toml").is_file() and (
                candidate / "operator" / "inferencefleet"
            ).is_dir():
                return candidate
    raise UserError(
        f"cannot find the repository root (a directory with pyproject.toml and operator/inferencefleet/) "
        f"at or above {start}; run inside the repository or pass both --out-dir and --chart-dir"
    )


def _stale_diff(path: Path, text: str) -> str:
    """Unified diff from the file on disk to ``text`` ('' when identical)."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            text.splitlines(keepends=True),
            f"{path} (committed)",
            f"{path} (generated)",
        )
    )


def run(args: argparse.Namespace) -> int:
    from ..api.crdgen import rendered_files

    needs_root = args.out_dir is None or args.chart_dir is None
    root = repo_root(Path.cwd()) if needs_root else Path.cwd()
    directories = [args.out_dir or root / CRDS_DIR, args.chart_dir or root / CHART_CRDS_DIR]
    rendered = rendered_files()
    files = {directory / name: text for directory in directories for name, text in rendered.items()}
    if args.check:
        diffs = [diff for path, text in files.items() if (diff := _stale_diff(path, text))]
        sys.stdout.write("".join(diffs))
        if diffs:
            print(
                f"{len(diffs)} CRD file(s) stale: run `inferencefleet crds` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"{len(files)} CRD files up to date")
        return 0
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise UserError(f"{path}: cannot write: {error.strerror or error}") from None
        print(f"wrote {path}")
    return 0
