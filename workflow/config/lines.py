"""Map every key and array element of a TOML document to the line it starts on.

``tomllib`` gives values but no positions, and ``tomlkit`` only positions syntax errors, so
this small scanner walks the (already syntax-checked) text and records, for each path such as
``("milestones", 3, "due")`` or ``("groups", 0, "provinces", 2)``, the 1-based line number.
It understands tables, arrays of tables, dotted keys, inline tables, nested arrays and every
string form; it does not validate, because ``tomllib`` already has.
"""

from __future__ import annotations

Path = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self.table_counts: dict[Path, int] = {}

    # -- low level -------------------------------------------------------------
    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.pos < len(self.text):
                if self.text[self.pos] == "\n":
                    self.line += 1
                self.pos += 1

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces, comments and (when ``newlines``) line breaks."""
        while self.pos < len(self.text):
            char = self.peek()
            if char in " \t\r" or (newlines and char == "\n"):
                self.advance()
            elif char == "#":
                while self.pos < len(self.text) and self.peek() != "\n":
                    self.advance()
            else:
                return

    def record(self, path: Path, prefixes: int = 0) -> None:
        """Note the current line for ``path`` and for its last ``prefixes`` ancestors."""
        for end in range(len(path) - prefixes, len(path) + 1):
            self.lines.setdefault(path[:end], self.line)

    # -- strings and keys --------------------------------------------------------
    def read_string(self) -> str:
        quote = self.peek()
        if self.text.startswith(quote * 3, self.pos):
            self.advance(3)
            end = self.text.find(quote * 3, self.pos)
            while end != -1 and quote == '"' and self._escaped(end):
                end = self.text.find(quote * 3, end + 1)
            end = len(self.text) if end == -1 else end
            # A closing delimiter may carry up to two extra quotes belonging to the content.
            while self.text.startswith(quote * 4, end):
                end += 1
            value = self.text[self.pos : end]
            self.advance(end + 3 - self.pos)
            return value
        self.advance()
        chars: list[str] = []
        while self.pos < len(self.text) and self.peek() != quote:
            if quote == '"' and self.peek() == "\\":
                chars.append(self.peek(1))
                self.advance(2)
                continue
            chars.append(self.peek())
            self.advance()
        self.advance()
        return "".join(chars)

    def _escaped(self, index: int) -> bool:
        backslashes = 0
        while index - 1 - backslashes >= 0 and self.text[index - 1 - backslashes] == "\\":
            backslashes += 1
        return backslashes % 2 == 1

    def read_key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in "\"'":
                parts.append(self.read_string())
            else:
                start = self.pos
                while self.peek() and self.peek() in _BARE_KEY_CHARS:
                    self.advance()
                parts.append(self.text[start : self.pos])
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
            while self.peek() and self.peek() not in ",]}\n#":
                self.advance()

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
