"""GoEmotions (Demszky et al., 2020): Reddit comments labelled with 27 emotions + neutral.

Three layouts are read, chosen from what is at `path`:

- original release: ``train.tsv``/``dev.tsv``/``test.tsv`` (no header; text, comma-separated
  label ids, comment id) with optional ``emotions.txt`` giving the id -> name order;
- Hugging Face "simplified": parquet, JSON or JSONL with columns ``text``, ``labels``
  (ids or names) and ``id``; the split is taken from the file name;
- raw rater-level CSVs (``goemotions_1.csv`` ...; or the HF "raw" parquet): one row per
  rater with a 0/1 column per emotion. Rows are aggregated per comment id as in the paper:
  a label is kept when at least ``min_raters`` (2) raters chose it; comments left with no
  label are skipped (reason in the skip log). Aggregation reads every row before
  yielding, because a comment's ratings are not contiguous.

Each record is one user message with the comment text, labelled with GoEmotions names
and their Ekman and sentiment groups.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from carellm.data._io import (
    JSONItemError,
    iter_json_items,
    iter_jsonl,
    iter_parquet_rows,
    parquet_columns,
    peek_lines,
)
from carellm.data.records import ChatRecord, RecordStream, SkipLog, existing_path
from carellm.emotion.taxonomy import (
    EKMAN_LABELS,
    GOEMOTIONS_LABELS,
    SENTIMENT_LABELS,
    ekman_group,
    sentiment_group,
)
from carellm.errors import DataFormatError

NAME = "goemotions"
LICENSE = "CC BY 4.0 (text from Reddit)"
CITATION = "Demszky et al. 2020, GoEmotions: A Dataset of Fine-Grained Emotions, ACL 2020"
SPLIT_SIZES = {"train": 43_410, "dev": 5_426, "test": 5_427}  # published, simplified set
_SPLITS = ("train", "dev", "test")
_EXPECTED = (
    "GoEmotions: train/dev/test.tsv (+emotions.txt), simplified parquet/JSON/JSONL "
    "(text, labels, id), or raw rater CSVs (text, id, ..., rater_id, one column per emotion)"
)


def read_goemotions(
    path: str | os.PathLike, progress: bool = False, min_raters: int = 2
) -> RecordStream:
    """Stream GoEmotions records from a file or folder in any of the three layouts.

    `min_raters` applies to the raw rater CSVs only (labels chosen by fewer are dropped).
    """
    path = existing_path(path, _EXPECTED)
    files = _data_files(path)
    labels = _label_names(path)
    plan = [(f, _layout(f)) for f in files]

    def generate(skips: SkipLog) -> Iterator[ChatRecord]:
        raw = [f for f, kind in plan if kind == "raw"]
        for f, kind in plan:
            if kind == "original":
                yield from _read_tsv(f, labels, skips)
            elif kind == "simplified":
                yield from _read_simplified(f, labels, skips)
        if raw:
            yield from _read_raw(raw, min_raters, skips)

    return RecordStream(NAME, path, generate, progress)


def _label_names(path: Path) -> tuple[str, ...]:
    """Label order from emotions.txt beside the data when present, else the taxonomy's."""
    folder = path if path.is_dir() else path.parent
    emotions = folder / "emotions.txt"
    if not emotions.is_file():
        return GOEMOTIONS_LABELS
    names = tuple(line.strip() for line in emotions.read_text(encoding="utf-8").splitlines())
    names = tuple(n for n in names if n)
    if set(names) != set(GOEMOTIONS_LABELS):
        raise DataFormatError(
            f"{emotions} does not list the 28 GoEmotions labels; remove it or restore the original"
        )
    return names


def _data_files(path: Path) -> list[Path]:
    """The data files to read: `path` itself, or the TSVs of a folder when it has any
    (the release folder also holds JSON label mappings), else its CSV/parquet/JSON files."""
    if path.is_file():
        return [path]
    order = {split: i for i, split in enumerate(_SPLITS)}
    found = sorted(
        (f for f in path.iterdir() if f.is_file()),
        key=lambda f: (order.get(_split_of(f), len(order)), f.name),
    )
    tsv = [f for f in found if f.suffix == ".tsv"]
    files = tsv or [
        f
        for f in found
        if f.suffix in (".csv", ".parquet", ".json", ".jsonl") and "mapping" not in f.stem
    ]
    if not files:
        names = ", ".join(f.name for f in found[:8]) or "no files"
        raise DataFormatError(f"{path}: expected {_EXPECTED}; found {names}")
    return files


def _layout(f: Path) -> str:
    """Which layout a file is in: "original", "simplified" or "raw" (else DataFormatError)."""
    if f.suffix == ".tsv":
        first = (peek_lines(f, 1) or [""])[0]
        fields = first.split("\t")
        if len(fields) != 3 or not all(x.isdigit() for x in fields[1].split(",")):
            raise DataFormatError(
                f"{f}: expected GoEmotions TSV lines 'text<TAB>label ids<TAB>id'; found {first[:60]!r}"
            )
        return "original"
    if f.suffix == ".csv":
        header = (peek_lines(f, 1) or [""])[0]
        if "rater_id" not in header.split(","):
            raise DataFormatError(
                f"{f}: expected a GoEmotions raw rater CSV (with a rater_id column); "
                f"found header {header[:80]!r}"
            )
        return "raw"
    if f.suffix == ".parquet":
        columns = parquet_columns(f)
        if "rater_id" in columns:
            return "raw"
        if {"text", "labels"} <= set(columns):
            return "simplified"
        raise DataFormatError(
            f"{f}: expected GoEmotions columns text, labels, id; found {', '.join(columns)}"
        )
    if f.suffix in (".json", ".jsonl"):
        return "simplified"  # checked record by record
    raise DataFormatError(f"{f}: expected {_EXPECTED}; found a {f.suffix or 'suffix-less'} file")


def _split_of(f: Path) -> str:
    stem = f.stem.lower()
    if stem.startswith("validation") or stem.startswith("dev"):
        return "dev"
    return next((s for s in _SPLITS if stem.startswith(s)), stem)


def make_record(
    comment_id: str, text: str, names: list[str], split: str, **meta: Any
) -> ChatRecord:
    """One GoEmotions record: the text as a user message, labels with their groups."""
    names = [n for n in GOEMOTIONS_LABELS if n in names]  # taxonomy order, no duplicates
    ekman = {ekman_group(n) for n in names}
    sentiment = {sentiment_group(n) for n in names}
    return ChatRecord(
        id=f"{split}:{comment_id}",
        source=NAME,
        messages=({"role": "user", "content": text},),
        labels={
            "goemotions": names,
            "ekman": [g for g in EKMAN_LABELS if g in ekman],
            "sentiment": [g for g in SENTIMENT_LABELS if g in sentiment],
        },
        meta={"split": split, "comment_id": comment_id, **meta, "license": LICENSE},
    )


def _names(value: Any, labels: tuple[str, ...]) -> list[str]:
    """Label names from ids (ints or digit strings) or names; ValueError when unknown."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = []
    for item in items:
        if isinstance(item, str) and item.strip() in labels:
            names.append(item.strip())
        elif str(item).strip().isdigit() and int(item) < len(labels):
            names.append(labels[int(item)])
        else:
            raise ValueError(f"unknown label {item!r}")
    if not names:
        raise ValueError("no labels")
    return names


def _read_tsv(f: Path, labels: tuple[str, ...], skips: SkipLog) -> Iterator[ChatRecord]:
    split = _split_of(f)
    with f.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 3:
                skips.add(f, number, f"expected 3 tab-separated fields, found {len(fields)}")
                continue
            text, ids, comment_id = fields
            try:
                names = _names(ids, labels)
            except ValueError as e:
                skips.add(f, number, str(e))
                continue
            if not text.strip():
                skips.add(f, number, "empty text")
                continue
            yield make_record(comment_id, text, names, split)


def _read_simplified(f: Path, labels: tuple[str, ...], skips: SkipLog) -> Iterator[ChatRecord]:
    split = _split_of(f)
    if f.suffix == ".parquet":
        rows: Iterator[tuple[int, Any]] = iter_parquet_rows(f)
    elif f.suffix == ".jsonl":
        rows = iter_jsonl(f)
    else:
        rows = iter_json_items(f)
    try:
        for number, row in rows:
            if isinstance(row, JSONItemError):
                skips.add(f, number, str(row))
                continue
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                skips.add(f, number, "expected an object with text, labels, id")
                continue
            try:
                names = _names(row.get("labels") or [], labels)
            except ValueError as e:
                skips.add(f, number, str(e))
                continue
            yield make_record(str(row.get("id", f"{f.stem}-{number}")), row["text"], names, split)
    except JSONItemError as e:
        skips.add(f, e.line, f"{e}; rest of file not read")


def _read_raw(files: list[Path], min_raters: int, skips: SkipLog) -> Iterator[ChatRecord]:
    """Aggregate rater rows per comment id (in first-seen order), then yield records."""
    texts: dict[str, str] = {}
    votes: dict[str, dict[str, int]] = {}
    raters: dict[str, int] = {}
    where: dict[str, tuple[Path, int]] = {}
    for f in files:
        for number, row in _raw_rows(f):
            try:
                chosen = [n for n in GOEMOTIONS_LABELS if _flag(row[n])]
                comment_id, text = row["id"], row["text"]
            except (KeyError, ValueError) as e:
                skips.add(f, number, f"bad rater row: {e}")
                continue
            if comment_id not in texts:
                texts[comment_id], votes[comment_id], raters[comment_id] = text, {}, 0
                where[comment_id] = (f, number)
            raters[comment_id] += 1
            for name in chosen:
                votes[comment_id][name] = votes[comment_id].get(name, 0) + 1
    for comment_id, text in texts.items():
        names = [n for n, count in votes[comment_id].items() if count >= min_raters]
        if not names:
            f, number = where[comment_id]
            skips.add(f, number, f"comment {comment_id}: no label chosen by {min_raters}+ raters")
            continue
        yield make_record(comment_id, text, names, "raw", raters=raters[comment_id])


def _raw_rows(f: Path) -> Iterator[tuple[int, dict]]:
    if f.suffix == ".parquet":
        yield from iter_parquet_rows(f)
        return
    with f.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, row


def _flag(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true"):
        return True
    if text in ("0", "false", ""):
        return False
    raise ValueError(f"expected 0/1, found {value!r}")
