"""Safe YAML loading that remembers the line of every key.

Only the plain YAML types are built (SafeLoader): a `!!python/...` tag or any
other language-specific tag is refused, never constructed.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import SpecError

Key = tuple[object, ...]


class LineMap(dict):
    """Maps a path of keys and indices to the 1-based line where it is written."""

    def line(self, path: Key) -> int | None:
        path = tuple(path)
        while path:
            if path in self:
                return self[path]
            path = path[:-1]
        return self.get((), None)


def load_yaml(path: Path) -> tuple[object, LineMap]:
    """Read a YAML file into plain Python values and a LineMap; SpecError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a YAML spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the spec ({exc}); check its permissions and encoding") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, filename: str = "<spec>") -> tuple[object, LineMap]:
    """Parse YAML text; SpecError naming the line for syntax errors and unsafe tags."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines = LineMap()
        if node is not None:
            _record(node, (), lines, set())
        value = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}" if mark else filename
        what = exc.problem or exc.context or "invalid YAML"
        if isinstance(exc, yaml.constructor.ConstructorError):
            what = f"{what}; tags that build objects are not allowed in a spec, write plain values"
        raise SpecError(f"{where}: YAML error: {what}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{filename}: YAML error: {exc}") from None
    except RecursionError:
        raise SpecError(f"{filename}: YAML is nested too deeply") from None
    finally:
        loader.dispose()
    return value, lines


def _record(node: yaml.Node, path: Key, lines: LineMap, seen: set[int]) -> None:
    # An alias points at a node already walked: walking it again would let a
    # "billion laughs" document cost exponential time.
    if id(node) in seen or len(path) > 50:
        return
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                lines[path + (key,)] = key_node.start_mark.line + 1
                _record(value_node, path + (key,), lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record(item, path + (i,), lines, seen)
