"""YAML text → plain Python values plus the line of every key path.

PyYAML's node API (``yaml.compose``) keeps positions; we convert nodes ourselves so
that mapping keys stay the strings the author wrote (YAML 1.1 would turn a key ``on:``
into ``True``), duplicate keys are reported instead of silently overwritten, and
recursive aliases cannot hang the validator.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_NODES = 200_000  # aliases can expand a small file exponentially ("billion laughs")


class YamlProblem(Exception):
    def __init__(self, message: str, line: int | None, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.path = path


def load_with_lines(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse one YAML document; returns (value, {key path: 1-based line})."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(f"invalid YAML: {problem}", line) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}", None) from exc
    if node is None:
        raise YamlProblem("the plan is empty", 1)
    lines: dict[Path, int] = {(): node.start_mark.line + 1}
    return _Converter(lines).convert(node, ()), lines


class _Converter:
    def __init__(self, lines: dict[Path, int]) -> None:
        self.lines = lines
        self.scalars = SafeConstructor()
        self.active: set[int] = set()
        self.budget = MAX_NODES

    def convert(self, node: Node, path: Path) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise YamlProblem(
                f"the plan expands to more than {MAX_NODES} values (alias bomb?)",
                node.start_mark.line + 1,
                path,
            )
        if isinstance(node, ScalarNode):
            try:
                return self.scalars.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
                line = node.start_mark.line + 1
                raise YamlProblem(f"invalid value: {problem}", line, path) from exc
        if id(node) in self.active:
            raise YamlProblem("recursive alias", node.start_mark.line + 1, path)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items = []
                for i, item in enumerate(node.value):
                    self.lines.setdefault((*path, i), item.start_mark.line + 1)
                    items.append(self.convert(item, (*path, i)))
                return items
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            raise YamlProblem("unsupported YAML node", node.start_mark.line + 1, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    value = self.convert(source, path)
                    if not isinstance(value, dict):
                        raise YamlProblem("merge key '<<' needs a mapping", line, path)
                    for k, v in value.items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem("mapping keys must be plain strings", line, path)
            key = str(key_node.value)
            if key in result:
                raise YamlProblem(f"duplicate key {key!r}", line, (*path, key))
            self.lines[(*path, key)] = line
            result[key] = self.convert(value_node, (*path, key))
        for k, v in merged.items():
            result.setdefault(k, v)
        return result
