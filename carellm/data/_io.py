"""File helpers shared by the dataset readers: streaming JSON, robust text decoding,
parquet rows. Positions are 1-based lines so skips can be reported as file:line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from carellm.errors import DataFormatError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20  # 1 MiB of text read per step when streaming a JSON array
_DECODER = json.JSONDecoder()


class JSONItemError(ValueError):
    """A JSON value that cannot be decoded; `line` is where it starts."""

    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


def iter_json_items(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, value) for each element of a top-level JSON array, read in chunks.

    A top-level object (or other value) is yielded as the single item. A syntax error
    ends the stream with `JSONItemError`: nothing after it can be located reliably.
    """
    with path.open(encoding="utf-8-sig") as f:
        yield from _ArrayStream(f).items()


class _ArrayStream:
    """Incremental reader of one JSON array: decodes element by element from a buffer."""

    def __init__(self, f):
        self.f = f  # open text file
        self.buf = ""  # text read but not yet consumed (from self.pos on)
        self.pos = 0  # index into buf
        self.line = 1  # line number at self.pos

    def items(self) -> Iterator[tuple[int, Any]]:
        if self._next_char() != "[":
            yield self.line, self._value()
            return
        self.pos += 1
        while True:
            char = self._next_char()
            if char == "]":
                return
            if char == "":
                raise JSONItemError(self.line, "invalid JSON: file ends inside the array")
            if char == ",":
                self.pos += 1
                continue
            start = self.line
            yield start, self._value()

    def _more(self) -> bool:
        chunk = self.f.read(_CHUNK)
        if not chunk:
            return False
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return True

    def _next_char(self) -> str:
        """Skip whitespace (counting lines); the next character, or "" at end of file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.line += self.buf[self.pos] == "\n"
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def _value(self) -> Any:
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self._more():  # the value may just be cut off by the chunk
                    continue
                where = self.line + self.buf.count("\n", self.pos, e.pos)
                raise JSONItemError(where, f"invalid JSON: {e.msg}") from e
            if end == len(self.buf) and self._more():  # a number may continue
                continue
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            return value


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any | JSONItemError]]:
    """(line, value) per non-blank line; a line that is not JSON yields a JSONItemError."""
    with path.open(encoding="utf-8-sig") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as e:
                yield number, JSONItemError(number, f"invalid JSON: {e.msg}")


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8, else Windows-1252, else Latin-1; return (text, encoding).

    Some releases (MELD) mix encodings; Latin-1 never fails, so this never raises.
    """
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def parquet_columns(path: Path) -> list[str]:
    """Column names of a parquet file (DataFormatError when it is not parquet)."""
    import pyarrow.parquet as pq

    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except Exception as e:  # pyarrow raises several types for a non-parquet file
        raise DataFormatError(f"{path} is not a readable parquet file ({e})") from e


def iter_parquet_rows(path: Path, batch_size: int = 4096) -> Iterator[tuple[int, dict]]:
    """(row number, row dict) for each row of a parquet file, 1-based, in batches."""
    import pyarrow.parquet as pq

    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        for item in batch.to_pylist():
            row += 1
            yield row, item


def peek_lines(path: Path, n: int = 2) -> list[str]:
    """The first `n` lines of a text file (decoded leniently), without line endings."""
    lines: list[str] = []
    with path.open("rb") as f:
        for raw in f:
            lines.append(decode_text(raw)[0].rstrip("\r\n"))
            if len(lines) == n:
                break
    return lines
