"""The ``inferencefleet`` command: one sub-command per module in ``inferencefleet.commands``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands
from .errors import UserError
from .extras import extra_providing, missing_extra_error


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="inferencefleet",
        description="Run and autoscale LLM inference fleets on Kubernetes at the lowest cost per good request.",
    )
    parser.add_argument("--version", action="version", version=f"inferencefleet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code (0 ok, 1 invalid input, 2 unreadable input or usage error)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"inferencefleet {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except ModuleNotFoundError as error:
        extra = extra_providing(error.name)
        if extra is None:
            raise
        print(f"inferencefleet {args.command}: error: {missing_extra_error(extra, [str(error.name)])}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `inferencefleet render ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
