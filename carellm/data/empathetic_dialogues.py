"""EmpatheticDialogues (Rashkin et al., 2019): 25k two-person conversations grounded in
one of 32 emotion situations.

Reads ``train.csv``/``valid.csv``/``test.csv`` (or a folder of them, or parquet files with
the same columns). The CSVs are not quoted: commas inside text are written ``_comma_``
and decoded here. Some lines carry more than 8 comma-separated fields; like the
original loader, only the first 8 are used. Lines with fewer than 8 fields, or a
non-integer ``utterance_idx``, are skipped and reported as file:line.

Rows of one ``conv_id`` are contiguous in the release; they become one record with the
turns in ``utterance_idx`` order. The first speaker is the user, the other the
assistant. Labels: ``{"ed32": context}``; the situation prompt goes to meta.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from carellm.data._io import iter_parquet_rows, parquet_columns, peek_lines
from carellm.data.records import ChatRecord, RecordStream, SkipLog, existing_path
from carellm.errors import DataFormatError

NAME = "empathetic_dialogues"
LICENSE = "CC BY-NC 4.0"
CITATION = (
    "Rashkin et al. 2019, Towards Empathetic Open-domain Conversation Models: "
    "a New Benchmark and Dataset, ACL 2019"
)
# Conversations per split in the release (utterances: 76,673 / 12,030 / 10,943).
SPLIT_SIZES = {"train": 19_533, "valid": 2_770, "test": 2_547}

# The 32 emotion situations of the `context` column.
ED32_LABELS: tuple[str, ...] = (
    "afraid", "angry", "annoyed", "anticipating", "anxious", "apprehensive", "ashamed",
    "caring", "confident", "content", "devastated", "disappointed", "disgusted",
    "embarrassed", "excited", "faithful", "furious", "grateful", "guilty", "hopeful",
    "impressed", "jealous", "joyful", "lonely", "nostalgic", "prepared", "proud", "sad",
    "sentimental", "surprised", "terrified", "trusting",
)  # fmt: skip

COLUMNS: tuple[str, ...] = (
    "conv_id", "utterance_idx", "context", "prompt", "speaker_idx", "utterance",
    "selfeval", "tags",
)  # fmt: skip
_EXPECTED = f"EmpatheticDialogues train/valid/test CSV or parquet with columns {','.join(COLUMNS)}"


def read_empathetic_dialogues(path: str | os.PathLike, progress: bool = False) -> RecordStream:
    """Stream one record per conversation from a CSV/parquet file or a folder of them."""
    path = existing_path(path, _EXPECTED)
    files = _data_files(path)
    for f in files:
        _check_columns(f)

    def generate(skips: SkipLog) -> Iterator[ChatRecord]:
        for f in files:
            rows = _parquet_rows(f) if f.suffix == ".parquet" else _csv_rows(f, skips)
            yield from _conversations(f, rows, skips)

    return RecordStream(NAME, path, generate, progress)


def _data_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    order = {"train": 0, "valid": 1, "validation": 1, "test": 2}
    files = [f for f in path.iterdir() if f.suffix in (".csv", ".parquet")]
    files.sort(key=lambda f: (order.get(f.stem.split("-")[0], 3), f.name))
    if not files:
        found = ", ".join(sorted(f.name for f in path.iterdir())[:8]) or "no files"
        raise DataFormatError(f"{path}: expected {_EXPECTED}; found {found}")
    return files


def _check_columns(f: Path) -> None:
    if f.suffix == ".parquet":
        found = parquet_columns(f)
        ok = set(COLUMNS[:6]) <= set(found)  # read by name; selfeval/tags are unused
    else:
        found = (peek_lines(f, 1) or [""])[0].split(",")
        ok = tuple(found[:8]) == COLUMNS  # read by position
    if not ok:
        raise DataFormatError(f"{f}: expected {_EXPECTED}; found columns {','.join(found)[:80]}")


def _csv_rows(f: Path, skips: SkipLog) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) from an unquoted ED CSV: split on commas, first 8 fields only."""
    with f.open(encoding="utf-8", errors="replace") as lines:
        next(lines, None)  # header
        for number, line in enumerate(lines, start=2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split(",")
            if len(fields) < len(COLUMNS):
                skips.add(f, number, f"expected {len(COLUMNS)} fields, found {len(fields)}")
                continue
            yield number, dict(zip(COLUMNS, fields[: len(COLUMNS)], strict=True))


def _parquet_rows(f: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, row in iter_parquet_rows(f):
        yield number, {k: "" if row.get(k) is None else str(row[k]) for k in COLUMNS}


def _conversations(
    f: Path, rows: Iterable[tuple[int, dict[str, str]]], skips: SkipLog
) -> Iterator[ChatRecord]:
    """Group contiguous rows by conv_id and build one record per group."""
    group: list[tuple[int, dict[str, str]]] = []
    for number, row in rows:
        if group and row["conv_id"] != group[0][1]["conv_id"]:
            record = _record(f, group, skips)
            if record:
                yield record
            group = []
        group.append((number, row))
    if group:
        record = _record(f, group, skips)
        if record:
            yield record


def _decode(text: str) -> str:
    return text.replace("_comma_", ",").strip()


def _record(f: Path, group: list[tuple[int, dict[str, str]]], skips: SkipLog) -> ChatRecord | None:
    first_line, first = group[0]
    conv_id = first["conv_id"]
    turns = []
    for number, row in group:
        try:
            turns.append((int(row["utterance_idx"]), row["speaker_idx"], _decode(row["utterance"])))
        except ValueError:
            skips.add(f, number, f"utterance_idx {row['utterance_idx']!r} is not an integer")
            return None
    turns.sort(key=lambda t: t[0])
    if len({t[0] for t in turns}) != len(turns):
        skips.add(f, first_line, f"conversation {conv_id} repeats an utterance_idx")
        return None
    if first["context"] not in ED32_LABELS:
        skips.add(f, first_line, f"unknown emotion context {first['context']!r}")
        return None
    if any(not text for _, _, text in turns):
        skips.add(f, first_line, f"conversation {conv_id} has an empty utterance")
        return None
    user = turns[0][1]
    messages = tuple(
        {"role": "user" if speaker == user else "assistant", "content": text}
        for _, speaker, text in turns
    )
    return ChatRecord(
        id=conv_id,
        source=NAME,
        messages=messages,
        labels={"ed32": first["context"]},
        meta={
            "split": f.stem.split("-")[0],
            "prompt": _decode(first["prompt"]),
            "speakers": {
                "user": user,
                "assistant": next((s for _, s, _ in turns if s != user), ""),
            },
            "license": LICENSE,
        },
    )
