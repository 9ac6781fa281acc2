"""JSON and YAML documents from files, with bounded size, nesting and alias expansion.

``json.loads`` and ``yaml.safe_load`` execute nothing, but a small file can still cost a lot:
a 500-byte YAML "billion laughs" expands to 10^9 values once copied, ``&a [*a]`` refers to
itself, and a few kilobytes of brackets exhaust Python's recursion. Every document is
checked against :data:`guide.limits.MAX_DOCUMENT_VALUES` (aliases counted each time they
are used) and :data:`guide.limits.MAX_NESTING` before a caller walks it; every failure is
one line naming the file, raised as the caller's error class.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Type, Union

from guide.errors import GuideError
from guide.limits import MAX_DOCUMENT_BYTES, MAX_DOCUMENT_VALUES, MAX_NESTING

PathLike = Union[str, "os.PathLike[str]"]


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


def check_document(value: Any, source: str, error: Type[Exception] = GuideError) -> Any:
    """`value` unchanged when it nests at most MAX_NESTING deep and holds at most
    MAX_DOCUMENT_VALUES values (shared sub-documents counted at every use)."""
    stack, count = [(value, 0)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_DOCUMENT_VALUES:
            raise error(f"{source}: more than {MAX_DOCUMENT_VALUES} values (YAML aliases expanded)")
        if depth > MAX_NESTING:
            raise error(f"{source}: nested deeper than {MAX_NESTING} levels (or refers to itself)")
        if isinstance(node, dict):
            stack.extend((item, depth + 1) for pair in node.items() for item in pair)
        elif isinstance(node, (list, tuple, set, frozenset)):
            stack.extend((item, depth + 1) for item in node)
    return value


def _read_text(path: Path, error: Type[Exception]) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise error(f"{path}: {size} bytes, more than the {MAX_DOCUMENT_BYTES} a document may have")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read it ({_line(exc)})") from None


def parse_json(text: str, source: str, error: Type[Exception] = GuideError) -> Any:
    """The JSON value of `text` (checked as above); one-line `error` when it is not JSON."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise error(f"{source}: nested deeper than {MAX_NESTING} levels") from None
    except ValueError as exc:
        raise error(f"{source}: not valid JSON ({_line(exc)})") from None
    return check_document(value, source, error)


def load_json(path: PathLike, error: Type[Exception] = GuideError) -> Any:
    """The JSON value in the file at `path` (size, nesting and values bounded)."""
    path = Path(path)
    return parse_json(_read_text(path, error), str(path), error)


def parse_yaml(text: str, source: str, error: Type[Exception] = GuideError) -> Any:
    """The YAML value of `text` via ``yaml.safe_load`` (plain data only), checked as above."""
    import yaml

    if len(text) > MAX_DOCUMENT_BYTES:
        raise error(f"{source}: more than {MAX_DOCUMENT_BYTES} characters")
    try:
        value = yaml.safe_load(text)
    except RecursionError:
        raise error(f"{source}: nested deeper than {MAX_NESTING} levels") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or _line(exc)
        raise error(f"{source}: not valid YAML ({where}{problem})") from None
    return check_document(value, source, error)


def load_yaml(path: PathLike, error: Type[Exception] = GuideError) -> Any:
    """The YAML value in the file at `path` (size, nesting and alias expansion bounded)."""
    path = Path(path)
    return parse_yaml(_read_text(path, error), str(path), error)
