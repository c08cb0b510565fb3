"""The one YAML reader for definition files (v2 environments, conda files, v1 conda_dependencies.yml).

YAML aliases share a node: a 600-byte file whose aliases refer to aliases nine levels deep stands
for a billion strings, and anything that walks it (a check, a message, a copy) expands them. Like
Go's YAML library, Kiln counts what the aliases would expand to *before* anything walks the data:
the composed node graph is measured once (each node counted once per reference, shared subgraphs
memoized, linear in the file), and a document over ``MAX_NODES`` nodes, a cycle of aliases or
nesting deeper than ``MAX_DEPTH`` is refused with one short line. Modest, honest uses of anchors
(a list shared by two sections) still load.
"""

from __future__ import annotations

from typing import Any

from kiln.environment.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from kiln.errors import FormatError

__all__ = ["load_yaml"]


class _Refused(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _expanded_size(root: Any) -> int:
    """How many nodes ``root`` stands for with every alias expanded; raises ``_Refused`` above
    ``MAX_NODES`` or on a cycle. Iterative: a node is sized once, after its children."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        else:
            children = []
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_NODES:
                line = node.start_mark.line + 1 if node.start_mark is not None else None
                raise _Refused(f"YAML aliases expand this document beyond {MAX_NODES} values "
                               "(an alias bomb?): write the values out, or use fewer aliases", line)
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            line = node.start_mark.line + 1 if node.start_mark is not None else None
            raise _Refused("a YAML alias refers to a node that contains it (a cycle)", line)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _composer() -> Any:
    from ruamel.yaml.composer import Composer

    class BoundedComposer(Composer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.warn_double_anchors = False  # a reused anchor name is legal YAML: the later one wins

        def compose_document(self) -> Any:
            node = super().compose_document()
            if node is not None:
                _expanded_size(node)
            return node

    return BoundedComposer


def load_yaml(text: str, source: str, *, round_trip: bool = False) -> Any:
    """The YAML document in ``text`` (``source`` names it in errors): plain Python data, or ruamel's
    round-trip objects (comments and order kept) with ``round_trip=True``. Raises ``FormatError``
    for invalid YAML, duplicate keys, nesting deeper than ``MAX_DEPTH`` and alias bombs."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if len(text) > MAX_FILE_BYTES:
        raise FormatError(source, f"{len(text)} characters: too large for a definition file (at most "
                                  f"{MAX_FILE_BYTES} bytes)")
    if "\x00" in text:
        raise FormatError(source, "binary content, not a YAML file")
    yaml = YAML(typ="rt") if round_trip else YAML(typ="safe", pure=True)  # pure: the composer is Python's
    yaml.Composer = _composer()
    yaml.max_depth = MAX_DEPTH
    try:
        return yaml.load(text)
    except _Refused as e:
        where = f"line {e.line}: " if e.line is not None else ""
        raise FormatError(source, f"{where}{e.message}") from None
    except RecursionError:
        raise FormatError(source, f"nested more than {MAX_DEPTH} levels deep: not an environment definition") from None
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        if "maximum depth" in str(problem):
            problem = f"nested more than {MAX_DEPTH} levels deep"
        from kiln.environment.limits import cut

        raise FormatError(source, f"not valid YAML: {where}{cut(str(problem))}") from None
