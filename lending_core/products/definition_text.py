"""A definition in its file format (TOML, as in ``catalogue/``) and back.

The database keeps a definition as a mapping; staff read and edit it as text laid out like the
shipped files: plain keys first, then each table, arrays of tables as ``[[admission]]``, and
arrays nested inside those (scorecard bins, limit bases) as one inline table per line. Reading
the text back gives the same mapping, so editing in the console loses nothing but comments.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any, Mapping

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class UnreadableText(ValueError):
    """The text is not valid TOML; ``problem`` names the line and column."""

    def __init__(self, problem: str):
        self.problem = problem
        super().__init__(problem)


def from_text(text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends "(at line 12, column 5)": put the place first, as the
        # definition's own problems do ("pricing: …").
        match = re.search(r"^(.*) \(at line (\d+), column (\d+)\)$", str(exc))
        raise UnreadableText(f"line {match[2]}, column {match[3]}: {match[1]}" if match else str(exc)) from None


def to_text(raw: Mapping[str, Any]) -> str:
    lines: list[str] = []
    _table(lines, (), raw)
    return "\n".join(lines).strip() + "\n"


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)


def _inline(path: tuple[str, ...], value: Any) -> bool:
    """Written as ``key = value`` in its table: scalars, lists of scalars, and below the top
    level a small table of scalars (``A = "1.0"`` factors, ``amount_max = { min, max }``)."""
    if _is_tables(value):
        return False
    if isinstance(value, Mapping):
        return bool(path) and all(not isinstance(v, (Mapping, list)) for v in value.values())
    return True


def _table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    for key, value in table.items():
        if _inline(path, value):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        if _inline(path, value):
            continue
        inner = (*path, key)
        if isinstance(value, Mapping):
            if not value or any(_inline(inner, v) for v in value.values()):
                lines.extend(["", f"[{_dotted(inner)}]"])
            _table(lines, inner, value)
        else:
            for item in value:
                lines.extend(["", f"[[{_dotted(inner)}]]"])
                _element(lines, item)


def _element(lines: list[str], item: Mapping[str, Any]) -> None:
    """One element of an array of tables: what it nests is written inline, line by line."""
    for key, value in item.items():
        if _is_tables(value):
            lines.append(f"{_key(key)} = [")
            lines.extend(f"  {_value(element)}," for element in value)
            lines.append("]")
        else:
            lines.append(f"{_key(key)} = {_value(value)}")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(_key(part) for part in path)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string (the same escapes).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"a definition holds no {type(value).__name__}")
