"""``inferencefleet validate -f FILE ...``: check manifests against the models AND the generated CRD schemas."""

from __future__ import annotations

import argparse
import sys
from functools import cache
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from ..api.schema_check import SchemaChecker
    from ..manifests import Document, Problem

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate InferencePool / FleetQuota YAML",
        description=(
            "Check every document of every file against the pydantic models and against the generated "
            "CRD schema (structure, defaults and CEL rules, as the API server would). Prints one line per "
            "problem as FILE:DOC-INDEX: KIND/NAME: field.path: message. Exit status: 0 all valid; "
            "1 some document invalid (including unknown kinds and empty files); 2 a file is unreadable "
            "or is not valid YAML (the other files are still checked)."
        ),
    )
    parser.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="extend",
        nargs="+",
        required=True,
        metavar="FILE",
        help="YAML file, possibly multi-document; '-' reads standard input; repeatable",
    )
    parser.set_defaults(func=run)


@cache
def _checker(kind: str) -> SchemaChecker:
    from ..api.crdgen import kind_for, openapi_schema
    from ..api.schema_check import SchemaChecker

    return SchemaChecker(openapi_schema(kind_for(kind).model))


def document_problems(document: Document) -> list[Problem]:
    """Problems of one document: the model's first, then the CRD schema's on paths the model did not flag."""
    from ..api.v1alpha1 import API_VERSION
    from ..manifests import Problem, known_kind, parse

    _, problems = parse(document)
    body = document.body
    kind = known_kind(body)
    if kind is None or body.get("apiVersion") != API_VERSION:
        return problems
    flagged = {p.path for p in problems}
    extra = [
        Problem(document, f.path, f.message)
        for f in _checker(kind).check(body)
        if f.path not in flagged
    ]
    return problems + extra


def run(args: argparse.Namespace) -> int:
    from ..manifests import read_documents

    status, count = EXIT_OK, 0
    for path in args.files:
        try:
            documents = read_documents(path)
        except UserError as error:
            print(error)
            status = EXIT_UNREADABLE
            continue
        if not documents:
            print(f"{path}: no YAML documents")
            status = max(status, EXIT_INVALID)
        for document in documents:
            count += 1
            problems = document_problems(document)
            for problem in problems:
                print(problem)
            if problems:
                status = max(status, EXIT_INVALID)
    if status == EXIT_OK:
        print(f"{count} document(s) valid", file=sys.stderr)
    return status
