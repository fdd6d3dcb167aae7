"""Change values in the plan file without disturbing anything else in it.

A plan is hand-written and commented; a CLI edit must not reformat it. Rather than
re-dump a round-tripped document (ruamel.yaml's round trip keeps comments but still
normalises spacing, quoting and indentation), we let ruamel.yaml *compose* the text —
which gives every node's exact character span — and splice the new value into that
span. Every byte outside the changed value stays as it was. Missing keys are inserted
as one new line (block mappings) or one ``, key: value`` (flow mappings). The result is
loaded again and compared with the intended data; any difference aborts the edit.

Writes are atomic (temp file in the same directory, fsync, rename, fsync of the
directory) and refuse with :class:`PlanChanged` when the file's content hash is no
longer the one the edit was computed from, so a concurrent hand edit is never lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "EditError",
    "PlanChanged",
    "PlanFile",
    "Scalar",
    "content_hash",
    "set_values",
    "write_atomic",
]

Scalar = str | int | float | bool | None
KeyPath = tuple[str, ...]

_PLAIN_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


class EditError(ValueError):
    """The requested change cannot be made safely to this text."""


class PlanChanged(RuntimeError):
    """The plan file changed on disk since it was read; nothing was written."""

    def __init__(self, path: Path, expected: str, found: str) -> None:
        super().__init__(
            f"{path} changed since it was read (sha256 {expected[:12]} -> {found[:12]}); "
            "nothing was written — re-run the command to act on the current plan"
        )
        self.path = path
        self.expected = expected
        self.found = found


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class PlanFile:
    """The plan's text as read, with the hash a later write is checked against."""

    path: Path
    text: str
    sha256: str

    @classmethod
    def read(cls, path: Path) -> PlanFile:
        data = path.read_bytes()
        return cls(path, data.decode("utf-8"), content_hash(data))

    def data(self) -> Any:
        return _load(self.text)

    def write(self, new_text: str) -> str:
        """Write ``new_text`` unless the file changed since :meth:`read`; returns new hash."""
        return write_atomic(self.path, new_text, expected_sha256=self.sha256)


def set_values(text: str, changes: Mapping[KeyPath, Scalar]) -> str:
    """Return ``text`` with each key path set to its scalar value (in the given order)."""
    expected = _load(text)
    for path, value in changes.items():
        if not path:
            raise EditError("empty key path")
        text = _set_one(text, path, value)
        _assign(expected, path, value)
    if _load(text) != expected:
        raise EditError("the edited plan would not read back as intended; nothing changed")
    return text


def _load(text: str) -> Any:
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise EditError(f"the plan is not valid YAML: {exc}") from exc


def _compose(text: str) -> Node:
    try:
        node = YAML(typ="rt").compose(io.StringIO(text))
    except YAMLError as exc:
        raise EditError(f"the plan is not valid YAML: {exc}") from exc
    if not isinstance(node, MappingNode):
        raise EditError("the plan's top level must be a mapping")
    return node


def _assign(data: Any, path: KeyPath, value: Scalar) -> None:
    for key in path[:-1]:
        if not isinstance(data, dict):
            raise EditError(f"{'.'.join(path)}: {key!r} is not inside a mapping")
        if data.get(key) is None:
            data[key] = {}
        data = data[key]
    if not isinstance(data, dict):
        raise EditError(f"{'.'.join(path)}: parent is not a mapping")
    data[path[-1]] = value


def _set_one(text: str, path: KeyPath, value: Scalar) -> str:
    node: Node = _compose(text)
    for depth, key in enumerate(path):
        if not isinstance(node, MappingNode):
            raise EditError(f"{'.'.join(path[:depth])} is not a mapping")
        child = _child(node, key)
        if child is None:
            return _insert(text, node, path[depth:], value)
        node = child
    if not isinstance(node, ScalarNode):
        raise EditError(f"{'.'.join(path)} holds a collection, not a single value")
    start, end = node.start_mark.index, node.end_mark.index
    if node.style is None and start == end:  # `key:` with nothing after it
        return text[:start] + " " + _render(value, None) + text[end:]
    return text[:start] + _render(value, node.style) + text[end:]


def _child(node: MappingNode, key: str) -> Node | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node  # type: ignore[no-any-return]
    return None


def _insert(text: str, parent: MappingNode, rest: KeyPath, value: Scalar) -> str:
    rendered = _render(value, None)
    for key in reversed(rest[1:]):
        rendered = f"{{{key}: {rendered}}}"
    entry = f"{rest[0]}: {rendered}"
    if parent.flow_style:
        if not parent.value:
            at = parent.start_mark.index + 1
            return text[:at] + entry + text[at:]
        at = int(parent.value[-1][1].end_mark.index)
        return text[:at] + ", " + entry + text[at:]
    if not parent.value:
        raise EditError("cannot add a key to an empty block mapping")
    indent: int = parent.value[0][0].start_mark.column
    at = _content_end(parent)
    newline = text.find("\n", at)
    if newline == -1:
        newline = len(text)
    eol = "\r\n" if text[newline - 1 : newline] == "\r" else "\n"
    if eol == "\r\n":
        newline -= 1
    return text[:newline] + eol + " " * indent + entry + text[newline:]


def _content_end(node: Node) -> int:
    """Index just past the last character of real content (not trailing comments)."""
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _content_end(last[1] if isinstance(node, MappingNode) else last)
    return int(node.end_mark.index)


def _render(value: Scalar, style: str | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if style in ('"', "'"):
        if style == "'":
            return "'" + value.replace("'", "''") + "'"
        return _double_quoted(value)
    if _PLAIN_SAFE.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return _double_quoted(value)


def _double_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[int]:
    """Serialise writers that use this module (hand editors do not lock; the hash
    check catches them)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def write_atomic(path: Path, new_text: str, *, expected_sha256: str) -> str:
    """Replace ``path`` with ``new_text`` if its content still hashes to ``expected_sha256``.

    Raises :class:`PlanChanged` (writing nothing) otherwise. Returns the new hash.
    """
    real = path.resolve()  # a symlinked plan keeps its link; the target is replaced
    directory = real.parent
    data = new_text.encode("utf-8")
    with _directory_lock(directory) as dir_fd:
        found = content_hash(real.read_bytes())
        if found != expected_sha256:
            raise PlanChanged(path, expected_sha256, found)
        mode = stat.S_IMODE(real.stat().st_mode)
        tmp = directory / f".{real.name}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, real)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        os.fsync(dir_fd)
    return content_hash(data)
