"""Read InferencePool / FleetQuota YAML files into models, with errors a person can act on.

Every problem is reported as ``FILE:DOC-INDEX: KIND/NAME: field.path: message``; malformed
YAML and unknown kinds get one clear line too, never a traceback.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .api.defaulting import field_path, without_nulls
from .api.v1alpha1 import API_VERSION, FleetQuota, InferencePool
from .errors import UserError

KINDS: dict[str, type[BaseModel]] = {"InferencePool": InferencePool, "FleetQuota": FleetQuota}
_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([A-Za-z_][A-Za-z0-9_.]*): (.*)$", re.S)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (as ``kubectl --validate=strict`` does)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports an unhashable key itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def known_kind(body: Any) -> str | None:
    """The document's kind if it is one of KINDS (a non-string kind is simply unknown)."""
    kind = body.get("kind") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) and kind in KINDS else None


@dataclass(frozen=True)
class Document:
    """One YAML document of a file; ``index`` counts from 0 and skips nothing."""

    source: str
    index: int
    body: Any

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "?")) if isinstance(self.body, dict) else "?"

    @property
    def name(self) -> str:
        meta = self.body.get("metadata") if isinstance(self.body, dict) else None
        return str(meta.get("name", "?")) if isinstance(meta, dict) else "?"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one document."""

    document: Document
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.document.source}:{self.document.index}: {self.document.kind}/{self.document.name}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def read_documents(path: str) -> list[Document]:
    """All non-empty documents in ``path`` ('-' reads standard input)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"{path}: cannot read: {error.strerror or error}") from None
    source = "<stdin>" if path == "-" else path
    try:
        bodies = list(yaml.load_all(text, Loader=_UniqueKeyLoader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:line {mark.line + 1}" if mark is not None else source
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UserError(f"{where}: malformed YAML: {problem}") from None
    return [Document(source, i, body) for i, body in enumerate(bodies) if body is not None]


_PLAIN: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "unknown field (not part of the inferencefleet.io/v1alpha1 schema; check the spelling)",
    "int_type": "must be an integer, got {input!r}",
    "int_parsing": "must be an integer, got {input!r}",
    "int_from_float": "must be an integer, got {input!r}",
    "float_type": "must be a number, got {input!r}",
    "bool_type": "must be true or false, got {input!r}",
    "string_type": "must be a string, got {input!r}",
    "dict_type": "must be a mapping, got {input!r}",
    "model_type": "must be a mapping, got {input!r}",
    "list_type": "must be a list, got {input!r}",
    "greater_than": "must be greater than {gt}, got {input!r}",
    "greater_than_equal": "must be at least {ge}, got {input!r}",
    "less_than_equal": "must be at most {le}, got {input!r}",
    "string_too_short": "must have at least {min_length} character(s), got {input!r}",
    "string_too_long": "must have at most {max_length} characters",
    "string_pattern_mismatch": "must match the pattern {pattern}, got {input!r}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
}
"""Plain messages for pydantic's error types (field path first, then what is allowed and what was given)."""


def _message(item: Any) -> str:
    """One pydantic error item as a sentence a user can act on."""
    kind, ctx = item["type"], item.get("ctx", {})
    if kind == "literal_error" and ctx.get("expected"):
        message = f"must be one of {ctx['expected']}, got {item['input']!r}"
        if isinstance(item["input"], bool):
            message += " (quote it: YAML reads bare Off/On/Yes/No as booleans)"
        return message
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in _PLAIN:
        return _PLAIN[kind].format(input=item.get("input"), **ctx)
    return str(item["msg"]).removeprefix("Value error, ")


def pydantic_problems(document: Document, error: ValidationError) -> list[Problem]:
    """Problems from a pydantic error, with the field path taken from the message where a validator put it."""
    problems = []
    for item in error.errors(include_url=False):
        path, message = field_path(item["loc"]), _message(item)
        prefixed = _FIELD_PREFIX.match(message)
        if prefixed and item["type"] == "value_error":
            path = f"{path}.{prefixed.group(1)}" if path else prefixed.group(1)
            message = prefixed.group(2)
        problems.append(Problem(document, path, message))
    return problems


def parse(document: Document) -> tuple[BaseModel | None, list[Problem]]:
    """The model for one document, or the problems that stop it being one."""
    body = document.body
    if not isinstance(body, dict):
        return None, [Problem(document, "", f"must be a mapping (a Kubernetes object), got {type(body).__name__}")]
    kind = known_kind(body)
    if kind is None:
        allowed = ", ".join(KINDS)
        return None, [Problem(document, "kind",
                              f"unknown kind {body.get('kind')!r}; allowed: {allowed} ({API_VERSION})")]
    if body.get("apiVersion") != API_VERSION:
        return None, [Problem(document, "apiVersion", f"must be {API_VERSION!r}, got {body.get('apiVersion')!r}")]
    try:
        return KINDS[kind].model_validate(without_nulls(body), strict=True), []
    except ValidationError as error:
        return None, pydantic_problems(document, error)


def load(paths: Iterable[str], kind: type[BaseModel]) -> list[Any]:
    """Every object of ``kind`` in ``paths``; any invalid document raises one UserError listing all problems."""
    found, problems = [], []
    for path in paths:
        for document in read_documents(path):
            model, errors = parse(document)
            problems.extend(errors)
            if isinstance(model, kind):
                found.append(model)
    if len(problems) == 1:
        raise UserError(str(problems[0]))
    if problems:
        raise UserError("invalid input:\n" + "\n".join(str(p) for p in problems))
    return found


def load_pools(paths: Iterable[str]) -> list[InferencePool]:
    """InferencePools from files (other kinds in the files are ignored)."""
    pools = load(paths, InferencePool)
    if not pools:
        raise UserError(f"no InferencePool ({API_VERSION}) found in {', '.join(paths)}")
    return pools


def load_quota(path: str) -> FleetQuota:
    """The single FleetQuota in ``path``."""
    quotas: list[FleetQuota] = load([path], FleetQuota)
    if len(quotas) != 1:
        raise UserError(f"{path}: expected exactly one FleetQuota, found {len(quotas)}")
    return quotas[0]
