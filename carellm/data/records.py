"""CareLLM's one chat-record format, its JSONL files, and the skip log every reader fills.

A record is one dialogue (or one labelled utterance) as Qwen chat messages::

    {"id": "...", "source": "goemotions",
     "messages": [{"role": "user", "content": "..."}],
     "labels": {"goemotions": ["joy"]}, "meta": {"split": "train"}}

``content`` is a string, or for multimodal turns a list of parts in the Qwen chat style:
``{"type": "text", "text": ...}``, ``{"type": "audio", "audio": path}``,
``{"type": "video", "video": path}``, ``{"type": "image", "image": path}``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carellm.errors import DataFormatError

logger = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("system", "user", "assistant")
PART_TYPES: tuple[str, ...] = ("text", "audio", "video", "image")


@dataclass(frozen=True)
class ChatRecord:
    """One dialogue in Qwen chat form, with optional labels and free-form metadata."""

    id: str  # unique within its source, e.g. "hit:0_conv:1" or "train:eebbqej"
    source: str  # loader format that produced it, e.g. "goemotions"
    messages: tuple[dict[str, Any], ...]  # {"role": one of ROLES, "content": str | list[part]}
    labels: dict[str, Any] = field(default_factory=dict)  # label set name -> label(s)
    meta: dict[str, Any] = field(default_factory=dict)  # split, license, provenance, ...

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to a JSONL line."""
        return {
            "id": self.id,
            "source": self.source,
            "messages": [dict(m) for m in self.messages],
            "labels": self.labels,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> ChatRecord:
        """Build a record from a decoded JSON object; ValueError names the first problem."""
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object, found {type(obj).__name__}")
        for key in ("id", "source"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise ValueError(f"{key!r} must be a non-empty string")
        messages = obj.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty list")
        for i, message in enumerate(messages):
            problem = message_problem(message)
            if problem:
                raise ValueError(f"messages[{i}]: {problem}")
        for key in ("labels", "meta"):
            if not isinstance(obj.get(key, {}), dict):
                raise ValueError(f"{key!r} must be an object")
        return cls(
            id=obj["id"],
            source=obj["source"],
            messages=tuple(messages),
            labels=obj.get("labels", {}),
            meta=obj.get("meta", {}),
        )


def message_problem(message: Any) -> str | None:
    """What is wrong with one chat message, or None when it is well formed."""
    if not isinstance(message, dict):
        return "a message must be an object"
    if message.get("role") not in ROLES:
        return f"role must be one of {', '.join(ROLES)}, found {message.get('role')!r}"
    content = message.get("content")
    if isinstance(content, str):
        return None if content.strip() else "content is empty"
    if not isinstance(content, list) or not content:
        return "content must be a string or a non-empty list of parts"
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in PART_TYPES or not isinstance(part.get(kind), str):
            return f"each part needs a type in {', '.join(PART_TYPES)} and a string under that key"
    return None


def text_of(content: str | list[dict[str, Any]]) -> str:
    """The text of a message's content: the string itself, or its text parts joined."""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part.get("type") == "text")


@dataclass(frozen=True)
class Skip:
    """One input record a reader could not use."""

    file: str  # path of the input file
    line: int  # 1-based line (or row / array element, as the reader documents)
    reason: str  # why it was skipped, one line

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class SkipLog:
    """Records skipped while reading (mutable: readers append while they stream)."""

    count: int = 0  # every skip, including those past `max_kept`
    entries: list[Skip] = field(default_factory=list)  # the first `max_kept` skips
    max_kept: int = 10_000  # bound on memory for badly broken files

    def add(self, file: str | os.PathLike, line: int, reason: str) -> None:
        self.count += 1
        if len(self.entries) < self.max_kept:
            self.entries.append(Skip(str(file), line, reason))
        logger.debug("skipped %s:%d: %s", file, line, reason)

    def __len__(self) -> int:
        return self.count

    def summary(self, limit: int = 5) -> str:
        """A few lines: the count, then the first `limit` skips as file:line: reason."""
        if not self.count:
            return "skipped 0 records"
        lines = [f"skipped {self.count} record(s):"]
        lines += [f"  {skip}" for skip in self.entries[:limit]]
        if self.count > limit:
            lines.append(f"  ... and {self.count - limit} more")
        return "\n".join(lines)


class RecordStream:
    """Records read lazily from one source; iterate it (more than once if you like).

    ``skipped`` is the `SkipLog` of the latest pass; it is complete once the pass ends,
    and its summary is logged then.
    """

    def __init__(
        self,
        source: str,
        path: Path,
        generate: Callable[[SkipLog], Iterator[ChatRecord]],
        progress: bool = False,
    ):
        self.source = source  # format name
        self.path = path  # what was opened
        self.progress = progress  # show a tqdm bar while iterating
        self.skipped = SkipLog()
        self._generate = generate

    def __iter__(self) -> Iterator[ChatRecord]:
        self.skipped = SkipLog()
        records = self._generate(self.skipped)
        if self.progress:
            from tqdm.auto import tqdm

            records = tqdm(records, desc=f"{self.source} {self.path.name}", unit=" rec")
        yield from records
        if self.skipped.count:
            logger.warning("%s: %s", self.path, self.skipped.summary())

    def __repr__(self) -> str:
        return f"RecordStream(source={self.source!r}, path='{self.path}')"


def existing_path(path: str | os.PathLike, expected: str) -> Path:
    """`path` as a Path, or DataFormatError saying what was expected there."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataFormatError(f"{path} does not exist; expected {expected}")
    return path


def read_records(path: str | os.PathLike, progress: bool = False) -> RecordStream:
    """Stream `ChatRecord`s from a JSONL file written by `write_records`.

    Lines that are not JSON or not records are skipped and listed in ``.skipped``.
    """
    path = existing_path(path, "a CareLLM records .jsonl file")
    if path.is_dir():
        raise DataFormatError(f"{path} is a directory; expected a CareLLM records .jsonl file")
    first = _first_line(path)
    if first and not first.startswith("{"):
        raise DataFormatError(
            f"{path} is not JSONL records (first line starts {first[:30]!r}); "
            "convert it first with `carellm data convert`"
        )

    def generate(skips: SkipLog) -> Iterator[ChatRecord]:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield ChatRecord.from_dict(json.loads(line))
                except (json.JSONDecodeError, ValueError) as e:
                    skips.add(path, number, f"not a record: {e}")

    return RecordStream("records", path, generate, progress)


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                return line.strip()
    return ""


def write_records(records: Iterable[ChatRecord], path: str | os.PathLike) -> int:
    """Write records as JSONL (UTF-8, one per line); return how many were written.

    Writes to a temporary file beside `path` and renames it at the end, so an
    interrupted conversion never leaves a half-written file under the final name.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
                count += 1
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return count
