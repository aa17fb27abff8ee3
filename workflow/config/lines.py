"""Map every key and array element of a TOML document to the line it starts on.

``tomllib`` gives values but no positions, and ``tomlkit`` only positions syntax errors, so
this small scanner walks the (already syntax-checked) text and records, for each path such as
``("milestones", 3, "due")`` or ``("groups", 0, "provinces", 2)``, the 1-based line number.
It understands tables, arrays of tables, dotted keys, inline tables, nested arrays and every
string form; it does not validate, because ``tomllib`` already has.
"""

from __future__ import annotations

import re
import tomllib

Path = tuple[str | int, ...]
MAX_NESTING = 64

# Each pattern is matched at the current position; the scanner never looks at one character at
# a time, so a 100,000-organisation file with one typo is scanned in a second or two.
_BLANK = re.compile(r"(?:[ \t\r]+|#[^\n]*)*")
_BLANK_LINES = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]*")
_BARE_VALUE = re.compile(r"[^,\]}\n#]*")
_BASIC_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"?')
_LITERAL_STRING = re.compile(r"'[^'\n]*'?")
# A bare key, then a one-line basic or literal string, or a bare scalar (number, boolean, date),
# then at most a comment up to the end of the line: no position inside needs recording.
_SIMPLE_LINE = re.compile(
    r"([A-Za-z0-9_-]+)[ \t]*=[ \t]*"
    r"""(?:"(?:[^"\\\n]|\\.)*"(?!")|'[^'\n]*'(?!')|[^\s,\]}#\[{"']+)"""
    r"[ \t]*(?:#[^\n]*)?(?=\r?\n|$)"
)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self.table_counts: dict[Path, int] = {}

    # -- low level -------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def advance_to(self, end: int) -> None:
        end = min(end, len(self.text))
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def advance(self, count: int = 1) -> None:
        self.advance_to(self.pos + count)

    def skip(self, pattern: re.Pattern[str]) -> str:
        match = pattern.match(self.text, self.pos)
        assert match is not None  # every pattern here also matches the empty string
        self.advance_to(match.end())
        return match.group()

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces, comments and (when ``newlines``) line breaks."""
        self.skip(_BLANK_LINES if newlines else _BLANK)

    def record(self, path: Path, prefixes: int = 0) -> None:
        """Note the current line for ``path`` and for its last ``prefixes`` ancestors."""
        for end in range(len(path) - prefixes, len(path) + 1):
            self.lines.setdefault(path[:end], self.line)

    # -- strings and keys --------------------------------------------------------
    def read_string(self) -> str:
        """Skip a string of any form; return it as written, quotes included."""
        start, quote = self.pos, self.peek()
        if self.text.startswith(quote * 3, self.pos):
            end = self.text.find(quote * 3, self.pos + 3)
            while end != -1 and quote == '"' and self._escaped(end):
                end = self.text.find(quote * 3, end + 1)
            end = len(self.text) if end == -1 else end
            # A closing delimiter may carry up to two extra quotes belonging to the content.
            while self.text.startswith(quote * 4, end):
                end += 1
            self.advance_to(end + 3)
        else:
            self.skip(_BASIC_STRING if quote == '"' else _LITERAL_STRING)
        return self.text[start : self.pos]

    def _escaped(self, index: int) -> bool:
        backslashes = 0
        while index - 1 - backslashes >= 0 and self.text[index - 1 - backslashes] == "\\":
            backslashes += 1
        return backslashes % 2 == 1

    def read_key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in ('"', "'"):
                parts.append(_quoted_key(self.read_string()))
            else:
                parts.append(self.skip(_BARE_KEY))
            self.skip_blank(newlines=False)
            if self.peek() == ".":
                self.advance()
                continue
            return parts

    # -- values ----------------------------------------------------------------------
    def read_value(self, path: Path) -> None:
        self.skip_blank(newlines=False)
        char = self.peek()
        if char in "\"'":
            self.read_string()
        elif char == "[":
            self.read_array(path)
        elif char == "{":
            self.read_inline_table(path)
        else:
            self.skip(_BARE_VALUE)

    def read_array(self, path: Path) -> None:
        self.advance()  # [
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.peek() in ("]", ""):
                self.advance()
                return
            self.record((*path, index))
            self.read_value((*path, index))
            index += 1
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()

    def read_inline_table(self, path: Path) -> None:
        self.advance()  # {
        while True:
            self.skip_blank(newlines=True)
            if self.peek() in ("}", ""):
                self.advance()
                return
            key = self.read_key()
            self.record((*path, *key), len(key) - 1)
            self.skip_blank(newlines=False)
            self.advance()  # =
            self.read_value((*path, *key))
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()

    # -- document --------------------------------------------------------------------
    def scan(self) -> dict[Path, int]:
        table: Path = ()
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            if self.peek() == "[":
                table = self.read_header()
                continue
            simple = _SIMPLE_LINE.match(self.text, self.pos)
            if simple:  # the common case, ``key = "value"`` on one line, in one step
                self.lines.setdefault((*table, simple.group(1)), self.line)
                self.pos = simple.end()
                continue
            key = self.read_key()
            self.record((*table, *key), len(key) - 1)
            self.skip_blank(newlines=False)
            self.advance()  # =
            self.read_value((*table, *key))

    def read_header(self) -> Path:
        is_array = self.text.startswith("[[", self.pos)
        self.advance(2 if is_array else 1)
        parts = self.read_key()
        self.advance(2 if is_array else 1)
        # A header names its path through the *last* element of any array of tables on the way
        # (``[milestones.extra]`` after two ``[[milestones]]`` is ``milestones[1].extra``).
        key: Path = ()
        for part in parts[:-1]:
            key = (*key, part)
            if key in self.table_counts:
                key = (*key, self.table_counts[key] - 1)
        key = (*key, parts[-1])
        if is_array:
            count = self.table_counts.get(key, 0)
            self.table_counts[key] = count + 1
            self.record(key)
            key = (*key, count)
        self.record(key)
        return key


def key_lines(text: str) -> dict[Path, int]:
    """Return ``{path: line}`` for every key, table and array element of a valid TOML text."""
    return _Scanner(text).scan()


def line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of ``path``, or of its nearest recorded ancestor (1 when none)."""
    probe = path
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return 1


def _quoted_key(written: str) -> str:
    """The key a quoted key stands for, escapes decoded (``"\\u0041"`` is ``A``)."""
    try:
        value = tomllib.loads(f"k = {written}")["k"]
    except tomllib.TOMLDecodeError:
        return written[1:-1]
    return value if isinstance(value, str) else written[1:-1]


# Strings (so brackets inside them do not count), comments, and brackets: for the depth scan.
_NESTING_TOKENS = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[\[\]{}]'
)


def nesting_line(text: str, limit: int = MAX_NESTING) -> int:
    """The line where arrays and inline tables first nest deeper than ``limit`` (1 if never).

    Iterative, for text that made the TOML parser run out of stack. Table headers count as
    brackets too, which only matters for files that are not this deep anyway.
    """
    depth = 0
    for match in _NESTING_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return text.count("\n", 0, match.start()) + 1
        elif token in "]}":
            depth = max(0, depth - 1)
    return 1


def long_number_line(text: str, digits: int = 4300) -> int:
    """The line of the first run of more than ``digits`` digits (1 if none)."""
    match = re.search(f"[0-9_]{{{digits + 1},}}", text)
    return 1 if match is None else text.count("\n", 0, match.start()) + 1
