"""Safe YAML loading that remembers the line of every key.

Only the plain YAML types are built (SafeLoader): a `!!python/...` tag or any
other language-specific tag is refused, never constructed. Duplicate keys,
several documents and alias bombs are refused too, each with the line.

Numbers are read as YAML 1.2 reads them: `1e3` and `1.5E-3` are numbers, `010`
is ten (not octal eight) and `1:30` is text (not ninety). The text of every
plain scalar read as a number or true/false is kept (`LineMap.texts`), so a
label written `01` or `NO` can stay the text it was written as.
"""

from __future__ import annotations

import errno
import re
import stat
from pathlib import Path

import yaml

from ..errors import SpecError

Key = tuple[object, ...]
MAX_BYTES = 5_000_000  # a spec is a page of text; anything this large is a mistake
MAX_VALUES = 200_000  # values aliases may add by expansion: stops "billion laughs" documents
# Beyond this many characters, libyaml's parser (ten times faster) reads the text when installed:
# a 150,000-entry list then loads in about 2 s instead of 20 s.
LARGE_TEXT = 100_000
MAX_DEPTH = 50


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_DECIMAL = re.compile(r"^[-+]?[0-9]+$")
_SURROGATE = re.compile("[\ud800-\udfff]")


class SpecLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's numbers (1e3 is a number, 010 is ten, 1:30 is text)."""


class FastSpecLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SpecLoader's rules on libyaml's parser, for long texts (same values, same safety)."""


def _construct_int(loader: SpecLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    return int(text, 10) if _DECIMAL.match(text) else int(text, 0)


for _loader in (SpecLoader, FastSpecLoader):
    _loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _loader.add_implicit_resolver(
        _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
    )
    _loader.add_implicit_resolver(
        _FLOAT,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    )
    _loader.add_constructor(_INT, _construct_int)


def load_scalar(text: str) -> object:
    """One value as the spec file would read it (for `--set key=value`)."""
    return yaml.load(text, Loader=SpecLoader)  # noqa: S506 (SpecLoader is a SafeLoader)


class LineMap(dict):
    """Maps a path of keys and indices to the 1-based line where it is written.

    `texts` maps the path of each plain scalar read as a number or true/false to its text.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.texts: dict[Key, str] = {}

    def line(self, path: Key) -> int | str | None:
        path = tuple(path)
        while path:
            if path in self:
                return self[path]
            path = path[:-1]
        return self.get((), None)


def load_yaml(path: Path) -> tuple[object, LineMap]:
    """Read a YAML file into plain Python values and a LineMap; SpecError if unreadable."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(f"{path}: is a directory, not a YAML spec file; give the spec file")
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"{path}: is not a regular file; give a YAML spec file")
        if info.st_size > MAX_BYTES:
            raise SpecError(
                f"{path}: is {info.st_size} bytes, far too large for a spec; check the path"
            )
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found; check the path") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{path}:{line}: the spec is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
            "save it as UTF-8"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpecError(
                f"{path}: is a symbolic link loop (following it leads back to itself); "
                "give the spec file itself"
            ) from None
        raise SpecError(
            f"{path}: cannot read the spec ({exc.strerror}); check its permissions"
        ) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, filename: str = "<spec>") -> tuple[object, LineMap]:
    """Parse YAML text; SpecError naming the line for syntax errors and unsafe tags."""
    try:
        loader = (FastSpecLoader if len(text) > LARGE_TEXT else SpecLoader)(text)
    except yaml.reader.ReaderError as exc:
        raise SpecError(_unprintable(exc, text, filename)) from None
    try:
        node = loader.get_single_node()
        lines = LineMap()
        if node is not None:
            problems: list[str] = []
            _record(node, (), lines, set(), problems, filename)
            if problems:
                raise SpecError(problems)
            # Only what aliases add counts (values beyond the distinct nodes written): a long
            # plain list is no larger than its text. No text holds more nodes than characters.
            written: dict[int, int] = {}
            if _size(node, written, MAX_VALUES + len(text)) - len(written) > MAX_VALUES:
                raise SpecError(
                    f"{filename}: the YAML expands to more than {MAX_VALUES} values through "
                    "aliases (*name); write the spec out plainly"
                )
        value = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_describe(exc, filename)) from None
    except yaml.reader.ReaderError as exc:
        raise SpecError(_unprintable(exc, text, filename)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{filename}: YAML error: {exc}; check the file's syntax") from None
    except RecursionError:
        raise SpecError(
            f"{filename}: the YAML is nested too deeply; a spec needs a few levels"
        ) from None
    finally:
        loader.dispose()
    return value, lines


# What to do about the YAML errors people actually make.
_ADVICE = (
    (
        "could not determine a constructor",
        "tags that build objects (!!python/..., !tag) are not allowed in a spec; write plain values",
    ),
    (
        "found another document",
        "a spec is one YAML document: remove the second '---' and what follows",
    ),
    ("'\\t'", "indent with spaces, not tabs"),
    ("mapping values are not allowed", "check the indentation, and quote values that contain ': '"),
    ("found unhashable key", "keys must be plain names"),
    ("end of stream", "a quote or bracket is not closed"),
    ("expected ',' or ']'", "a [list] is not closed with ']' or has a missing comma"),
    ("expected ',' or '}'", "a {mapping} is not closed with '}' or has a missing comma"),
    ("could not find expected ':'", "a key needs ': ' after it; check the indentation"),
    ("found undefined alias", "define the anchor (&name) before using *name"),
)


def _unprintable(exc: yaml.reader.ReaderError, text: str, filename: str) -> str:
    line = text[: max(exc.position, 0)].count("\n") + 1
    return (
        f"{filename}:{line}: the spec contains the control character #x{exc.character:04x}, which YAML "
        "does not allow; delete it (or write it as an escape inside double quotes)"
    )


def _describe(exc: yaml.MarkedYAMLError, filename: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{filename}:{mark.line + 1}" if mark else filename
    what = exc.problem or exc.context or "invalid YAML"
    if (
        exc.context
        and exc.problem
        and exc.context_mark
        and exc.problem_mark
        and exc.context_mark.line != exc.problem_mark.line
    ):
        what += f" ({exc.context} on line {exc.context_mark.line + 1})"
    advice = next(
        (a for key, a in _ADVICE if key in what), "check the syntax on and just above this line"
    )
    return f"{where}: YAML error: {what}; {advice}"


def _record(
    node: yaml.Node, path: Key, lines: LineMap, seen: set[int], problems: list[str], filename: str
) -> None:
    # An alias points at a node already walked: walking it again would let a
    # "billion laughs" document cost exponential time.
    if id(node) in seen:
        return
    if len(path) > MAX_DEPTH:
        raise SpecError(
            f"{filename}:{node.start_mark.line + 1}: the YAML is nested more than {MAX_DEPTH} levels deep"
        )
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if (
        isinstance(node, yaml.ScalarNode)
        and node.tag in (_INT, _FLOAT, _BOOL)
        and node.style is None
    ):
        lines.texts.setdefault(path, node.value)
    if isinstance(node, yaml.ScalarNode) and _SURROGATE.search(node.value):
        # "\ud83d\ude00" escapes half characters one at a time; no file or label can hold them.
        problems.append(
            f"{filename}:{node.start_mark.line + 1}: a \\u escape here writes half of a character "
            "(a UTF-16 surrogate); write the character itself, or \\U0001xxxx in double quotes"
        )
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in first and key != "<<":
                dotted = ".".join(
                    str(p) if str(p).isidentifier() else repr(str(p))[:60] for p in (*path, key)
                )
                problems.append(
                    f"{filename}:{line}: {dotted}: duplicate key (first written on line {first[key]}); "
                    "keep only one"
                )
                continue
            first[key] = line
            lines[path + (key,)] = line
            _record(value_node, path + (key,), lines, seen, problems, filename)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record(item, path + (i,), lines, seen, problems, filename)


def _size(node: yaml.Node, memo: dict[int, int], cap: int) -> int:
    # Values the document expands to, counting each alias as a full copy (capped at cap + 1);
    # memoised, so linear in the nodes written.
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once instead of looping
    total = 1
    if isinstance(node, yaml.MappingNode):
        total += sum(_size(k, memo, cap) + _size(v, memo, cap) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(_size(item, memo, cap) for item in node.value)
    memo[id(node)] = min(total, cap + 1)
    return memo[id(node)]


def where(filename: str, lines: LineMap, loc) -> str:
    """`FILE:LINE` of a YAML path, or `FILE (--set ...)` for an overridden value."""
    line = lines.line(loc)
    if isinstance(line, str):  # the value came from --set
        return f"{filename} ({line})"
    return f"{filename}:{line}" if line else filename
