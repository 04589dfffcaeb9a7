"""MELD (Poria et al., 2019): utterances from the TV series Friends with emotion and
sentiment labels and a video clip each.

Reads ``train_sent_emo.csv``/``dev_sent_emo.csv``/``test_sent_emo.csv`` (or a folder of
them) with columns ``Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,
Utterance_ID,Season,Episode,StartTime,EndTime``, and clips named ``dia{D}_utt{U}.mp4``.

Clips are looked for in `clips` when given, else beside each CSV in the release's
folder names (``train_splits``, ``dev_splits_complete``, ``output_repeated_splits_test``,
or ``<split>``/``<split>_splits``). An utterance whose clip is missing still yields a
text-only record with ``meta["clip"] = None`` (its label is still usable); the number
missing is logged at the end. Pass ``require_clip=True`` to skip such utterances instead
(each is then in the skip log).

The CSVs are decoded as UTF-8, else Windows-1252, else Latin-1; UTF-8 read as 1252
("Itâ€™s") is repaired, and typographic quotes become ASCII ones.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from carellm.data._io import decode_text, peek_lines
from carellm.data.records import ChatRecord, RecordStream, SkipLog, existing_path
from carellm.errors import DataFormatError

logger = logging.getLogger(__name__)

NAME = "meld"
LICENSE = "GPL-3.0"
CITATION = (
    "Poria et al. 2019, MELD: A Multimodal Multi-Party Dataset for Emotion Recognition "
    "in Conversations, ACL 2019"
)
MELD7_LABELS: tuple[str, ...] = (
    "neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust",
)  # fmt: skip
SENTIMENT_LABELS: tuple[str, ...] = ("neutral", "positive", "negative")
SPLIT_SIZES = {"train": 9_989, "dev": 1_109, "test": 2_610}  # utterances in the release

REQUIRED_COLUMNS: tuple[str, ...] = (
    "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
)  # fmt: skip
_EXPECTED = "MELD *_sent_emo.csv with columns " + ",".join(REQUIRED_COLUMNS)
_CLIP_DIRS = {
    "train": ("train_splits", "train"),
    "dev": ("dev_splits_complete", "dev_splits", "dev"),
    "test": ("output_repeated_splits_test", "test_splits", "test"),
}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def read_meld(
    path: str | os.PathLike,
    progress: bool = False,
    clips: str | os.PathLike | None = None,
    require_clip: bool = False,
) -> RecordStream:
    """Stream one record per MELD utterance: a user message of [video part, text part]."""
    path = existing_path(path, _EXPECTED)
    files = _data_files(path)
    clip_dir = existing_path(clips, "a folder of dia{D}_utt{U}.mp4 clips") if clips else None

    def generate(skips: SkipLog) -> Iterator[ChatRecord]:
        for f in files:
            split = f.stem.split("_")[0]
            folder = clip_dir or _find_clip_dir(f.parent, split)
            yield from _read_csv(f, split, folder, require_clip, skips)

    return RecordStream(NAME, path, generate, progress)


def _data_files(path: Path) -> list[Path]:
    if path.is_dir():
        order = {"train": 0, "dev": 1, "test": 2}
        files = sorted(
            path.glob("*.csv"), key=lambda f: (order.get(f.stem.split("_")[0], 3), f.name)
        )
    else:
        files = [path]
    if not files:
        raise DataFormatError(f"{path}: expected {_EXPECTED}; found no .csv file")
    for f in files:
        header = (peek_lines(f, 1) or [""])[0]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise DataFormatError(f"{f}: expected {_EXPECTED}; found header {header[:80]!r}")
    return files


def _find_clip_dir(folder: Path, split: str) -> Path | None:
    for name in _CLIP_DIRS.get(split, (split,)) + (f"{split}_splits", "clips"):
        if (folder / name).is_dir():
            return folder / name
    return None


def clean_text(text: str) -> str:
    """Repair UTF-8-read-as-1252 mojibake, make quotes ASCII, trim whitespace."""
    if "â" in text or "Ã" in text:
        try:
            text = b"".join(_byte_of(c) for c in text).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass  # not mojibake after all
    return text.translate(_QUOTES).replace("\u2026", "...").strip()


def _byte_of(char: str) -> bytes:
    """The byte a character came from when UTF-8 was misread as 1252 (or, for the five
    bytes 1252 leaves undefined, as Latin-1)."""
    try:
        return char.encode("cp1252")
    except UnicodeEncodeError:
        return char.encode("latin-1")


def _read_csv(
    f: Path, split: str, clip_dir: Path | None, require_clip: bool, skips: SkipLog
) -> Iterator[ChatRecord]:
    text, encoding = decode_text(f.read_bytes())
    logger.debug("%s decoded as %s", f, encoding)
    if clip_dir is None:
        logger.info("%s: no clip folder found; records are text only", f)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    total = missing = 0
    for row in reader:
        number = reader.line_num
        try:
            record = _record(row, split, clip_dir)
        except ValueError as e:
            skips.add(f, number, str(e))
            continue
        total += 1
        if clip_dir is not None and record.meta["clip"] is None:
            missing += 1
            if require_clip:
                skips.add(f, number, f"clip {record.meta['clip_name']} not found in {clip_dir}")
                continue
        yield record
    if missing:
        logger.warning("%s: %d of %d utterances have no clip in %s", f, missing, total, clip_dir)


def _record(row: dict[str, str | None], split: str, clip_dir: Path | None) -> ChatRecord:
    """One utterance row -> record; ValueError names what is wrong with the row."""
    if None in row or any(row.get(c) is None for c in REQUIRED_COLUMNS):
        raise ValueError("wrong number of fields")
    emotion = row["Emotion"].strip().lower()
    sentiment = row["Sentiment"].strip().lower()
    if emotion not in MELD7_LABELS:
        raise ValueError(f"unknown emotion {row['Emotion']!r}")
    if sentiment not in SENTIMENT_LABELS:
        raise ValueError(f"unknown sentiment {row['Sentiment']!r}")
    if not (row["Dialogue_ID"].strip().isdigit() and row["Utterance_ID"].strip().isdigit()):
        raise ValueError(f"ids must be integers: {row['Dialogue_ID']!r}, {row['Utterance_ID']!r}")
    dialogue, utterance = int(row["Dialogue_ID"]), int(row["Utterance_ID"])
    utterance_text = clean_text(row["Utterance"])
    if not utterance_text:
        raise ValueError("empty utterance")
    clip_name = f"dia{dialogue}_utt{utterance}.mp4"
    clip = clip_dir / clip_name if clip_dir is not None else None
    clip = clip if clip is not None and clip.is_file() else None
    content = [{"type": "text", "text": utterance_text}]
    if clip is not None:
        content.insert(0, {"type": "video", "video": str(clip.resolve())})
    meta = {
        "split": split,
        "speaker": clean_text(row["Speaker"]),
        "dialogue_id": dialogue,
        "utterance_id": utterance,
        "clip_name": clip_name,
        "clip": str(clip.resolve()) if clip is not None else None,
        **{k.lower(): row[k] for k in ("Season", "Episode", "StartTime", "EndTime") if row.get(k)},
        "license": LICENSE,
    }
    return ChatRecord(
        id=f"{split}:dia{dialogue}_utt{utterance}",
        source=NAME,
        messages=({"role": "user", "content": content},),
        labels={"meld7": emotion, "sentiment": sentiment},
        meta=meta,
    )
