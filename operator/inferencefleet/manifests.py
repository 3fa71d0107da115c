"""Read InferencePool / FleetQuota YAML files into models, with errors a person can act on.

Every problem is reported as ``FILE:DOC-INDEX: KIND/NAME: field.path: message``; malformed
YAML and unknown kinds get one clear line too, never a traceback. Reading is bounded: at most
MAX_INPUT_BYTES of UTF-8, MAX_DEPTH levels of nesting, MAX_VALUES values in all once YAML aliases are
expanded (no alias bombs, no recursive aliases), and echoed values are cut short.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from .api.defaulting import field_path, without_nulls
from .api.durations import format_duration
from .api.v1alpha1 import API_VERSION, FleetQuota, InferencePool
from .errors import InvalidInput, UserError, shortened, shown

KINDS: dict[str, type[BaseModel]] = {"InferencePool": InferencePool, "FleetQuota": FleetQuota}
_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([A-Za-z_][A-Za-z0-9_.]*): (.*)$", re.S)

MAX_INPUT_BYTES = 3 * 1024 * 1024
"""Largest file read: the API server's limit on a request body."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists (an InferencePool is about 8 levels deep)."""
MAX_VALUES = 100_000
"""Most values (mapping, list and scalar nodes) in one file once its aliases are expanded: about a thousand
InferencePools, and a bound on the time every check after reading takes (a few seconds)."""


class _Refused(yaml.MarkedYAMLError):
    """YAML that parses but goes beyond what is read (depth, size, recursion, integer length)."""


class _PythonParser(Reader, Scanner, Parser):
    """PyYAML's own parser, where its libyaml binding is not installed (five times slower)."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


_EventSource: Any = _PythonParser
if yaml.__with_libyaml__:
    from yaml._yaml import CParser as _EventSource


class _BoundedLoader(Composer, _EventSource, SafeConstructor, Resolver):  # type: ignore[misc]
    """A safe loader (libyaml's parser, PyYAML's composer and safe constructor) that refuses a key given twice in one mapping (as ``kubectl --validate=strict`` does),
    recursive aliases, nesting deeper than MAX_DEPTH, files that expand to more than MAX_VALUES values
    and integers too long to convert."""

    def __init__(self, stream: str) -> None:
        _EventSource.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._values = 0
        self._open: set[str] = set()
        self._sizes: dict[int, int] = {}

    def compose_document(self) -> yaml.Node | None:
        self._sizes.clear()
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> Any:
        event: Any = self.peek_event()
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(None, None, f"recursive alias *{event.anchor}", mark)
            node = super().compose_node(parent, index)
            self._count(self._expanded(node), mark)
            return node
        self._count(1, mark)
        if self._depth >= MAX_DEPTH:
            raise _Refused(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)

    def _count(self, values: int, mark: Any) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise _Refused(
                None, None, f"the file expands to more than {MAX_VALUES} values (YAML aliases?)", mark)

    def _expanded(self, node: Any) -> int:
        """Values in ``node`` with every alias under it expanded (memoized: shared nodes are counted once)."""
        size = self._sizes.get(id(node))
        if size is None:
            children: list[yaml.Node] = []
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [child for pair in node.value for child in pair]
            size = 1 + sum(self._expanded(child) for child in children)
            self._sizes[id(node)] = size
        return size

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            raise _Refused(
                None, None, f"integer of {len(node.value)} digits is too long to read "
                f"(at most {sys.get_int_max_str_digits()})", node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports an unhashable key itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {shown(key)}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


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
        kind = self.body.get("kind", "?") if isinstance(self.body, dict) else "?"
        return kind if isinstance(kind, str) and len(kind) <= 63 else shown(kind)

    @property
    def name(self) -> str:
        meta = self.body.get("metadata") if isinstance(self.body, dict) else None
        name = meta.get("name", "?") if isinstance(meta, dict) else "?"
        return name if isinstance(name, str) and len(name) <= 253 else shown(name)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one document."""

    document: Document
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.document.source}:{self.document.index}: {self.document.kind}/{self.document.name}"
        message = shortened(self.message)
        return f"{where}: {shortened(self.path)}: {message}" if self.path else f"{where}: {message}"


def read_text(path: str, what: str = "") -> str:
    """The UTF-8 text of ``path`` ('-' reads standard input), at most MAX_INPUT_BYTES; ``what`` prefixes
    errors (e.g. '--signals'). Anything else raises UserError (exit status 2)."""
    label = f"{what} {path}".strip()
    try:
        if path == "-":
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read(MAX_INPUT_BYTES + 1) if stream is not None else sys.stdin.read(MAX_INPUT_BYTES + 1)
        else:
            with open(path, "rb") as file:
                data = file.read(MAX_INPUT_BYTES + 1)
    except OSError as error:
        raise UserError(f"{label}: cannot read: {error.strerror or error}") from None
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if len(data) > MAX_INPUT_BYTES:
        raise UserError(f"{label}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB, the most read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{label}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})") from None


def read_documents(path: str) -> list[Document]:
    """All non-empty documents in ``path`` ('-' reads standard input)."""
    text = read_text(path)
    source = "<stdin>" if path == "-" else path
    try:
        bodies = list(yaml.load_all(text, Loader=_BoundedLoader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:line {mark.line + 1}" if mark is not None else source
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        what = "refused YAML" if isinstance(error, _Refused) else "malformed YAML"
        raise UserError(f"{where}: {what}: {shortened(problem)}") from None
    return [Document(source, i, body) for i, body in enumerate(bodies) if body is not None]


_PLAIN: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "unknown field (not part of the inferencefleet.io/v1alpha1 schema; check the spelling)",
    "int_type": "must be an integer, got {input}",
    "int_parsing": "must be an integer, got {input}",
    "int_from_float": "must be an integer, got {input}",
    "float_type": "must be a number, got {input}",
    "bool_type": "must be true or false, got {input}",
    "string_type": "must be a string, got {input}",
    "dict_type": "must be a mapping, got {input}",
    "model_type": "must be a mapping, got {input}",
    "list_type": "must be a list, got {input}",
    "greater_than": "must be greater than {gt}, got {input}",
    "greater_than_equal": "must be at least {ge}, got {input}",
    "less_than_equal": "must be at most {le}, got {input}",
    "string_too_short": "must have at least {min_length} character(s), got {input}",
    "string_too_long": "must have at most {max_length} characters",
    "string_pattern_mismatch": "must match the pattern {pattern}, got {input}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
}
"""Plain messages for pydantic's error types (field path first, then what is allowed and what was given)."""


def _message(item: Any) -> str:
    """One pydantic error item as a sentence a user can act on."""
    kind, ctx = item["type"], item.get("ctx", {})
    if kind == "literal_error" and ctx.get("expected"):
        message = f"must be one of {ctx['expected']}, got {shown(item['input'])}"
        if isinstance(item["input"], bool):
            message += " (quote it: YAML reads bare Off/On/Yes/No as booleans)"
        return message
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in _PLAIN:
        return _PLAIN[kind].format(input=shown(item.get("input")), **ctx)
    return str(item["msg"]).removeprefix("Value error, ")


def _given(body: Any, loc: tuple[Any, ...]) -> Any:
    """The value at ``loc`` in the document as written (None when the path is not there)."""
    for part in loc:
        if (isinstance(body, dict) and part in body) or (isinstance(body, list) and isinstance(part, int) \
                and -len(body) <= part < len(body)):
            body = body[part]
        else:
            return None
    return body


def _as_written(item: Any, given: Any) -> Any:
    """A bound error on a duration (checked in seconds) in the document's own terms: '1h', not 3600.0."""
    bounds = ("greater_than", "greater_than_equal", "less_than_equal")
    if item["type"] in bounds and isinstance(given, str) and isinstance(item.get("input"), float):
        return {**item, "input": given, "ctx": {k: format_duration(v) for k, v in item.get("ctx", {}).items()}}
    return item


def pydantic_problems(document: Document, error: ValidationError) -> list[Problem]:
    """Problems from a pydantic error, with the field path taken from the message where a validator put it."""
    problems = []
    for item in error.errors(include_url=False):
        item = _as_written(item, _given(document.body, item["loc"]))
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
                              f"unknown kind {shown(body.get('kind'))}; allowed: {allowed} ({API_VERSION})")]
    if body.get("apiVersion") != API_VERSION:
        return None, [Problem(document, "apiVersion",
                              f"must be {API_VERSION!r}, got {shown(body.get('apiVersion'))}")]
    try:
        return KINDS[kind].model_validate(without_nulls(body), strict=True), []
    except ValidationError as error:
        return None, pydantic_problems(document, error)


def load(paths: Iterable[str], kind: type[BaseModel]) -> list[Any]:
    """Every object of ``kind`` in ``paths``; any invalid document raises one InvalidInput listing all problems."""
    found, problems = [], []
    for path in paths:
        for document in read_documents(path):
            model, errors = parse(document)
            problems.extend(errors)
            if isinstance(model, kind):
                found.append(model)
    if len(problems) == 1:
        raise InvalidInput(str(problems[0]))
    if problems:
        raise InvalidInput("invalid input:\n" + "\n".join(str(p) for p in problems))
    return found


def load_pools(paths: Iterable[str]) -> list[InferencePool]:
    """InferencePools from files (other kinds in the files are ignored)."""
    pools = load(paths, InferencePool)
    if not pools:
        raise InvalidInput(f"no InferencePool ({API_VERSION}) found in {', '.join(paths)}")
    return pools


def load_quota(path: str) -> FleetQuota:
    """The single FleetQuota in ``path``."""
    quotas: list[FleetQuota] = load([path], FleetQuota)
    if len(quotas) != 1:
        raise InvalidInput(f"{path}: expected exactly one FleetQuota, found {len(quotas)}")
    return quotas[0]
