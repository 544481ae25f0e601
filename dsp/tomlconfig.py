"""TOML config files with errors that name the file, the line and the key.

Every config file in the project (board config, hwsim config, server config,
recording rules, tone plans) goes through this module, so an integrator
always gets the same kind of message::

    site.toml:14: key 'spans[2].framing': expected one of cas, ccs, got 'cass'

The stdlib ``tomllib`` parses but keeps no positions. We parse with tomllib
(so what is accepted is exactly TOML 1.0) and then run a small position
scanner over the same, already-valid text that records the line where each
key, table, array-of-tables element and array element is defined. A lookup
for a path that was not written in the file (a missing key) falls back to
the nearest enclosing thing that was: usually the table header.

API
---
``load(path) -> Config`` and ``loads(text, file="<string>") -> Config``
    Parse; a syntax error, an unreadable file or bad UTF-8 is a
    ``ConfigError`` with the line tomllib reported.

``ConfigError(file, line, key, message)``
    ``str()`` is ``FILE:LINE: key 'a.b[2].c': message``; ``line`` and
    ``key`` may be None (then those parts are left out). Attributes
    ``file``, ``line``, ``key`` (formatted string or None) and ``message``.

``Config`` is the root ``Node``; it adds ``file``, ``text``, ``data`` (the
plain dict from tomllib) and ``line_of(keypath)``.

``Node`` is a view on one table with typed readers. ``key`` below is one
key of this table; a missing key without a ``default`` is an error::

    node.get_str(key, default=..., choices=("cas", "ccs"))
    node.get_int(key, default=..., min=0, max=31)     # bool is not an int
    node.get_float(key, default=..., min=..., max=...) # an int is accepted
    node.get_bool(key, default=...)
    node.get_list(key, default=..., item=str)          # item type checked
    node.table(key, required=False) -> Node            # missing -> empty Node
    node.tables(key) -> list[Node]                     # [[array.of.tables]]
    node.check_keys({"framing", "coding"})             # typo -> did you mean
    node.error(key, "what is wrong") -> ConfigError    # for validator checks
    node.line_of(key), node.line, node.key, node.keypath, node.data

``cfg.section(name)`` and ``cfg.sections(name)`` are ``table`` and
``tables`` under names that read well at the top level.

Key paths are tuples (``("spans", 2, "framing")``) or strings in the same
notation the messages use (``'spans[2].framing'``, ``'boards."sim://a".law'``).

Where it lives: here in dsp, which reads its tone plans with it and imports
no other package of the project (this module needs the standard library
only). ``boarddrv.tomlconfig`` is its public name for the rest of the
project: it re-exports these names, so a ConfigError is one class
whichever name a caller imports it by.
"""
from __future__ import annotations

import array
import bisect
import json
import os
import re
import tomllib
from collections.abc import Iterable
from typing import Any

__all__ = ["ConfigError", "ConfigErrors", "ErrorCollector", "Config", "Node", "load", "loads",
           "format_key", "parse_key"]

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_NEWLINE = re.compile("\n")
_STRING_END = re.compile(r'["\\]')    # the closing quote or a backslash escape
# An array of one-line strings without escapes, with commas, whitespace and comments between
# (possessive: no backtracking, whatever the length); and the strings and comments in it.
_FLAT_STRINGS = re.compile(r"""\[(?:[ \t\r\n,]++|#[^\n]*+|"[^"\\\n]*+"|'[^'\n]*+')*+\]""")
_ARRAY_TOKEN = re.compile(r"""#[^\n]*|"[^"\\\n]*"|'[^'\n]*'""")


class ConfigError(ValueError):
    """A config problem located at FILE:LINE and a key path.

    A ValueError so that code which only wants "bad input" can catch it
    without importing this module.
    """

    def __init__(self, file: str | os.PathLike[str], line: int | None,
                 key: str | KeyPath | None, message: str) -> None:
        self.file = os.fspath(file)
        self.line = line
        self.key = format_key(key) if isinstance(key, tuple) else key
        self.message = message
        super().__init__(str(self))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # pickle with all four fields (multiprocessing hands errors between processes)
        return (type(self), (self.file, self.line, self.key, self.message))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.key:
            return f"{where}: key '{self.key}': {self.message}"
        return f"{where}: {self.message}"


class ConfigErrors(ConfigError):
    """Several config problems found in one pass, in the order found.

    A ConfigError (the first problem's file, line, key and message) whose
    ``str()`` lists every problem, one per line, up to ``LIMIT`` and then
    "... and N more"; ``errors`` holds them all.
    """

    LIMIT = 20

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors: list[ConfigError] = []
        for e in errors:
            self.errors += e.errors if isinstance(e, ConfigErrors) else [e]
        if not self.errors:
            raise ValueError("ConfigErrors needs at least one error")
        first = self.errors[0]
        super().__init__(first.file, first.line, first.key, first.message)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.errors,))

    def __str__(self) -> str:
        shown = [ConfigError.__str__(e) for e in self.errors[:self.LIMIT]]
        more = len(self.errors) - self.LIMIT
        return "\n".join(shown + ([f"... and {more} more"] if more > 0 else []))


class ErrorCollector:
    """Goes on after an error so that one run reports them all (``ConfigErrors``).

    ``attempt(fn, *args)`` runs ``fn``; a ConfigError it raises is kept and
    ``default`` returned. ``check()`` raises what was kept, if anything.
    """

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def attempt(self, fn: Any, *args: Any, default: Any = None, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            self.add(exc)
            return default

    def add(self, exc: ConfigError) -> None:
        self.errors += exc.errors if isinstance(exc, ConfigErrors) else [exc]

    def check(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ConfigErrors(self.errors)


def format_key(keypath: KeyPath | str) -> str:
    """('spans', 2, 'framing') -> 'spans[2].framing'; odd keys are quoted."""
    if isinstance(keypath, str):
        return keypath
    out = ""
    for part in keypath:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)
            out += f".{text}" if out else text
    return out


def parse_key(key: str | KeyPath) -> KeyPath:
    """'spans[2].framing' -> ('spans', 2, 'framing'); the inverse of format_key."""
    if isinstance(key, tuple):
        return key
    parts: list[str | int] = []
    i, n = 0, len(key)
    while i < n:
        c = key[i]
        if c == ".":
            i += 1
        elif c == "[":
            j = key.index("]", i)
            parts.append(int(key[i + 1:j]))
            i = j + 1
        elif c in "\"'":
            s = _Scanner(key)
            s.pos = i
            parts.append(s.simple_key())
            i = s.pos
        else:
            m = re.compile(r"[A-Za-z0-9_-]+").match(key, i)
            if not m:
                raise ValueError(f"bad key path {key!r} at character {i}")
            parts.append(m.group())
            i = m.end()
    return tuple(parts)


# --------------------------------------------------------------------------
# Position scanner. Runs only on text tomllib accepted, so it can be lenient:
# it tracks structure (keys, headers, arrays, inline tables) and skips values.

class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.nl = [m.start() for m in _NEWLINE.finditer(text)]
        self.lines: dict[KeyPath, int] = {}
        # the lines of an array's elements, one compact array per array (a list of
        # 300 000 numbers is 1.2 MB here, not 300 000 dict entries)
        self.elements: dict[KeyPath, array.array] = {}
        self.aot_count: dict[KeyPath, int] = {}

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_left(self.nl, self.pos if pos is None else pos) + 1

    def peek(self, k: int = 1) -> str:
        return self.text[self.pos:self.pos + k]

    def skip_ws(self, newlines: bool = False) -> None:
        """Skip spaces/tabs, comments and (optionally) newlines."""
        t, n = self.text, len(self.text)
        while self.pos < n:
            c = t[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.pos += 1
            elif c == "#":
                while self.pos < n and t[self.pos] != "\n":
                    self.pos += 1
            else:
                break

    def record(self, path: KeyPath, line: int) -> None:
        self.lines.setdefault(path, line)

    def simple_key(self) -> str:
        t = self.text
        c = t[self.pos]
        if c == '"':
            j = self.pos + 1
            while t[j] != '"':
                j += 2 if t[j] == "\\" else 1
            raw = t[self.pos:j + 1]
            self.pos = j + 1
            return tomllib.loads(f"k = {raw}")["k"]
        if c == "'":
            j = t.index("'", self.pos + 1)
            raw = t[self.pos + 1:j]
            self.pos = j + 1
            return raw
        m = re.compile(r"[A-Za-z0-9_-]+").match(t, self.pos)
        assert m, f"scanner: key expected at line {self.line()}"
        self.pos = m.end()
        return m.group()

    def skip_string(self) -> None:
        """Past a one-line string value (its text is not needed, only where it ends)."""
        t = self.text
        if t[self.pos] == "'":
            self.pos = t.index("'", self.pos + 1) + 1
            return
        j = self.pos + 1
        while True:
            m = _STRING_END.search(t, j)
            assert m, f"scanner: unterminated string at line {self.line()}"
            j = m.start()
            if t[j] == '"':
                self.pos = j + 1
                return
            j += 2   # a backslash and the character it escapes

    def dotted_key(self) -> list[str]:
        parts = [self.simple_key()]
        while True:
            self.skip_ws()
            if self.peek() != ".":
                return parts
            self.pos += 1
            self.skip_ws()
            parts.append(self.simple_key())

    def resolve(self, parts: list[str]) -> KeyPath:
        """Header keys: a prefix naming an array of tables means its last element."""
        path: KeyPath = ()
        for part in parts:
            path = path + (part,)
            if path in self.aot_count:
                path = path + (self.aot_count[path] - 1,)
        return path

    def document(self) -> dict[KeyPath, int]:
        table: KeyPath = ()
        n = len(self.text)
        while True:
            self.skip_ws(newlines=True)
            if self.pos >= n:
                return self.lines
            line = self.line()
            if self.peek(2) == "[[":
                self.pos += 2
                self.skip_ws()
                parts = self.dotted_key()
                self.skip_ws()
                self.pos += 2  # ]]
                base = self.resolve(parts[:-1]) + (parts[-1],)
                index = self.aot_count.get(base, 0)
                self.aot_count[base] = index + 1
                self.record(base, line)
                table = base + (index,)
                self.record(table, line)
            elif self.peek() == "[":
                self.pos += 1
                self.skip_ws()
                parts = self.dotted_key()
                self.skip_ws()
                self.pos += 1  # ]
                table = self.resolve(parts)
                for k in range(1, len(table) + 1):
                    self.record(table[:k], line)
            else:
                self.keyval(table)

    def keyval(self, table: KeyPath) -> None:
        line = self.line()
        parts = self.dotted_key()
        for k in range(1, len(parts) + 1):
            self.record(table + tuple(parts[:k]), line)
        self.skip_ws()
        self.pos += 1  # =
        self.skip_ws()
        self.value(table + tuple(parts))

    def value(self, path: KeyPath) -> None:
        t = self.text
        if t.startswith('"""', self.pos) or t.startswith("'''", self.pos):
            q = t[self.pos:self.pos + 3]
            j = self.pos + 3
            while not t.startswith(q, j):
                j += 2 if (q == '"""' and t[j] == "\\") else 1
            j += 3
            extra = 0
            while j < len(t) and t[j] == q[0] and extra < 2:
                j += 1  # up to two quotes may end the content: """a"""""
                extra += 1
            self.pos = j
        elif t[self.pos] in "\"'":
            self.skip_string()
        elif t[self.pos] == "[":
            lines = self.elements.setdefault(path, array.array("I"))
            flat = _FLAT_STRINGS.match(t, self.pos)
            if flat is not None:    # a list of plain strings (a long list of numbers): at once
                nl = self.nl
                lines.extend(bisect.bisect_left(nl, m.start()) + 1
                             for m in _ARRAY_TOKEN.finditer(t, flat.start(), flat.end())
                             if m.group()[0] != "#")
                self.pos = flat.end()
                return
            self.pos += 1
            index = 0
            while True:
                self.skip_ws(newlines=True)
                if t[self.pos] == "]":
                    self.pos += 1
                    return
                lines.append(self.line())
                self.value(path + (index,))
                index += 1
                self.skip_ws(newlines=True)
                if t[self.pos] == ",":
                    self.pos += 1
        elif t[self.pos] == "{":
            self.pos += 1
            while True:
                self.skip_ws(newlines=True)
                if t[self.pos] == "}":
                    self.pos += 1
                    return
                self.keyval(path)
                self.skip_ws(newlines=True)
                if t[self.pos] == ",":
                    self.pos += 1
        else:  # number, bool, date-time: up to a delimiter
            m = re.compile(r"[^,\]}\n#]*").match(t, self.pos)
            assert m is not None
            self.pos = m.end()


def locate(text: str) -> dict[KeyPath, int]:
    """Map every key path defined in (valid) TOML text to its 1-based line.

    Array elements are not in it (``Config.line_of`` has them too).
    """
    return _Scanner(text).document()


# --------------------------------------------------------------------------

_REQUIRED: Any = object()
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "an array", dict: "a table"}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return f"string {value!r}"
    return f"{type(value).__name__} {value!r}"


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


class Node:
    """One table of a config file, with readers that raise located errors."""

    def __init__(self, config: Config, keypath: KeyPath, data: dict[str, Any]) -> None:
        self.config = config
        self.keypath = keypath
        self.data = data

    # -- where --------------------------------------------------------------
    @property
    def key(self) -> str:
        return format_key(self.keypath)

    @property
    def line(self) -> int | None:
        return self.config.line_of(self.keypath)

    def line_of(self, key: str | int | None = None) -> int | None:
        return self.config.line_of(self.keypath if key is None else self.keypath + (key,))

    def error(self, key: str | int | KeyPath | None, message: str) -> ConfigError:
        """A ConfigError for `key` of this table (None: the table itself).

        `key` may also be a tuple going deeper, e.g. ("ports", 3)."""
        sub: KeyPath = () if key is None else (key if isinstance(key, tuple) else (key,))
        path = self.keypath + sub
        return ConfigError(self.config.file, self.config.line_of(path), path or None, message)

    # -- raw access ---------------------------------------------------------
    def __contains__(self, key: str) -> bool:
        return key in self.data

    def keys(self) -> list[str]:
        return list(self.data)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def _fetch(self, key: str, default: Any, kind: type) -> tuple[bool, Any]:
        if key not in self.data:
            if default is _REQUIRED:
                raise self.error(key, f"missing (required, {_TYPE_NAMES[kind]})")
            return False, default
        value = self.data[key]
        if not _is(value, kind):
            raise self.error(key, f"expected {_TYPE_NAMES[kind]}, got {_describe(value)}")
        return True, value

    # -- typed readers ------------------------------------------------------
    def get_str(self, key: str, default: Any = _REQUIRED, *,
                choices: Iterable[str] | None = None) -> str:
        found, value = self._fetch(key, default, str)
        if found and choices is not None:
            options = list(choices)
            if value not in options:
                raise self.error(key, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    def get_int(self, key: str, default: Any = _REQUIRED, *,
                min: int | None = None, max: int | None = None) -> int:
        found, value = self._fetch(key, default, int)
        if found:
            self._check_range(key, value, min, max)
        return value

    def get_float(self, key: str, default: Any = _REQUIRED, *,
                  min: float | None = None, max: float | None = None) -> float:
        found, value = self._fetch(key, default, float)
        if found:
            self._check_range(key, value, min, max)
            return float(value)
        return value

    def _check_range(self, key: str, value: float, lo: float | None, hi: float | None) -> None:
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            if lo is not None and hi is not None:
                want = f"between {lo} and {hi}"
            elif lo is not None:
                want = f"at least {lo}"
            else:
                want = f"at most {hi}"
            raise self.error(key, f"expected {want}, got {value}")

    def get_bool(self, key: str, default: Any = _REQUIRED) -> bool:
        return self._fetch(key, default, bool)[1]

    def get_list(self, key: str, default: Any = _REQUIRED, *,
                 item: type | None = None) -> list[Any]:
        found, value = self._fetch(key, default, list)
        if found and item is not None:
            for i, v in enumerate(value):
                if not _is(v, item):
                    raise self.error((key, i), f"expected {_TYPE_NAMES.get(item, item.__name__)}, "
                                               f"got {_describe(v)}")
        return value

    def table(self, key: str, required: bool = False) -> Node:
        """The sub-table `key`; an empty Node if absent and not required."""
        if key not in self.data:
            if required:
                raise self.error(key, "missing (required table)")
            return Node(self.config, self.keypath + (key,), {})
        value = self.data[key]
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {_describe(value)}")
        return Node(self.config, self.keypath + (key,), value)

    def tables(self, key: str, required: bool = False) -> list[Node]:
        """An array of tables ([[key]] or key = [{...}, ...]); [] if absent."""
        if key not in self.data:
            if required:
                raise self.error(key, f"missing (required: at least one [[{key}]])")
            return []
        value = self.data[key]
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of tables ([[{key}]]), got {_describe(value)}")
        out = []
        for i, v in enumerate(value):
            if not isinstance(v, dict):
                raise self.error((key, i), f"expected a table, got {_describe(v)}")
            out.append(Node(self.config, self.keypath + (key, i), v))
        return out

    section = table
    sections = tables

    def check_keys(self, allowed: Iterable[str]) -> None:
        """Reject keys not in `allowed`, suggesting the closest allowed key."""
        allowed = list(allowed)
        for key in self.data:
            if key in allowed:
                continue
            import difflib  # only for the error message (its import costs every run)
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            if close:
                hint = f"did you mean '{close[0]}'?"
            else:
                hint = "allowed here: " + ", ".join(sorted(allowed)) if allowed else "no keys allowed here"
            raise self.error(key, f"unknown key ({hint})")

    def __repr__(self) -> str:
        return f"<Node {self.config.file}:{self.line} {self.key or '(root)'}>"


class Config(Node):
    """A parsed config file: the root table plus the positions of its keys."""

    def __init__(self, file: str | os.PathLike[str], text: str, data: dict[str, Any]) -> None:
        self.file = os.fspath(file)
        self.text = text
        scanner = _Scanner(text)
        self._lines = scanner.document()
        self._elements = scanner.elements   # array path -> the line of each element
        super().__init__(self, (), data)

    def line_of(self, keypath: str | KeyPath | int | None = None) -> int | None:
        """Line where keypath is defined, else where its nearest parent is; None if neither."""
        if keypath is None:
            return None
        path = parse_key(keypath) if isinstance(keypath, str) else (
            (keypath,) if isinstance(keypath, int) else keypath)
        while path:
            if path in self._lines:
                return self._lines[path]
            if isinstance(path[-1], int):
                elements = self._elements.get(path[:-1])
                if elements is not None and 0 <= path[-1] < len(elements):
                    return elements[path[-1]]
            path = path[:-1]
        return None


_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_END = re.compile(r"\s*\(at end of document\)\s*$")


def loads(text: str, file: str | os.PathLike[str] = "<string>") -> Config:
    """Parse TOML text; syntax errors become ConfigError at tomllib's line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _POS.search(msg)
        if m:
            raise ConfigError(file, int(m.group(1)), None,
                              f"TOML syntax error: {msg[:m.start()]} (column {m.group(2)})") from None
        m = _END.search(msg)
        if m:
            raise ConfigError(file, text.count("\n") + 1, None,
                              f"TOML syntax error: {msg[:m.start()]} (at end of file)") from None
        raise ConfigError(file, None, None, f"TOML syntax error: {msg}") from None
    return Config(file, text, data)


def load(path: str | os.PathLike[str]) -> Config:
    """Read and parse a TOML file; unreadable files and bad UTF-8 are ConfigErrors."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(path, None, None, f"cannot read config: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(path, line, None, f"not valid UTF-8 (byte {exc.start})") from None
    return loads(text, path)
