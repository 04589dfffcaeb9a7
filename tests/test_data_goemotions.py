"""GoEmotions: original TSVs, HF simplified (parquet/JSONL) and raw rater CSVs."""

from __future__ import annotations

from pathlib import Path

import pytest

from carellm.data import load, read_goemotions
from carellm.errors import DataFormatError

ASSETS = Path(__file__).parent / "assets" / "data"
ORIGINAL = ASSETS / "goemotions" / "original"


def _summary(records):
    return [(r.id, r.messages[0]["content"], r.labels) for r in records]


def test_original_release_tsvs():
    stream = load(ORIGINAL, format="goemotions")
    records = list(stream)
    assert _summary(records) == [
        ("train:c1", "I love this so much, thank you!",
         {"goemotions": ["gratitude", "love"], "ekman": ["joy"], "sentiment": ["positive"]}),
        ("train:c2", "Why would anyone do that?",
         {"goemotions": ["anger", "curiosity"], "ekman": ["anger", "surprise"],
          "sentiment": ["negative", "ambiguous"]}),
        ("train:c5", "Okay.",
         {"goemotions": ["neutral"], "ekman": ["neutral"], "sentiment": ["neutral"]}),
        ("dev:d1", 'That is "terrifying".',
         {"goemotions": ["fear"], "ekman": ["fear"], "sentiment": ["negative"]}),
    ]  # fmt: skip
    assert all(r.source == "goemotions" and len(r.messages) == 1 for r in records)
    assert records[0].messages[0]["role"] == "user"
    assert records[0].meta["split"] == "train" and records[0].meta["license"].startswith(
        "CC BY 4.0"
    )
    skipped = [(Path(s.file).name, s.line, s.reason) for s in stream.skipped.entries]
    assert skipped == [
        ("train.tsv", 3, "expected 3 tab-separated fields, found 1"),
        ("train.tsv", 4, "unknown label '99'"),
    ]


def test_single_tsv_file_and_progress_bar(capsys):
    records = list(read_goemotions(ORIGINAL / "dev.tsv", progress=True))
    assert [r.id for r in records] == ["dev:d1"]


def test_emotions_txt_must_hold_the_28_labels(tmp_path):
    (tmp_path / "train.tsv").write_text("hi\t0\tx\n", encoding="utf-8")
    (tmp_path / "emotions.txt").write_text("joy\nsadness\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="emotions.txt does not list the 28"):
        read_goemotions(tmp_path)


def test_simplified_jsonl_with_ids_and_names():
    stream = read_goemotions(ASSETS / "goemotions" / "simplified")
    assert _summary(stream) == [
        ("dev:s1", "So proud of you!",
         {"goemotions": ["admiration", "pride"], "ekman": ["joy"], "sentiment": ["positive"]}),
        ("dev:s3", "meh", {"goemotions": ["neutral"], "ekman": ["neutral"], "sentiment": ["neutral"]}),
    ]  # fmt: skip
    assert [(s.line, s.reason.split(":")[0]) for s in stream.skipped.entries] == [
        (2, "invalid JSON"),
        (4, "expected an object with text, labels, id"),
    ]


def test_simplified_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "text": ["Thanks!", "I miss him", "??"],
            "labels": [[15], [25, 16], [42]],
            "id": ["p1", "p2", "p3"],
        }
    )
    pq.write_table(table, tmp_path / "train-00000-of-00001.parquet")
    stream = load(tmp_path, format="goemotions")
    assert _summary(stream) == [
        ("train:p1", "Thanks!", {"goemotions": ["gratitude"], "ekman": ["joy"], "sentiment": ["positive"]}),
        ("train:p2", "I miss him",
         {"goemotions": ["grief", "sadness"], "ekman": ["sadness"], "sentiment": ["negative"]}),
    ]  # fmt: skip
    assert [(s.line, s.reason) for s in stream.skipped.entries] == [(3, "unknown label 42")]


def test_parquet_with_other_columns_is_rejected(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"utterance": ["x"]}), tmp_path / "train.parquet")
    with pytest.raises(
        DataFormatError, match="expected GoEmotions columns text, labels, id; found utterance"
    ):
        read_goemotions(tmp_path)


def test_raw_rater_rows_are_aggregated_with_two_rater_agreement():
    stream = read_goemotions(ASSETS / "goemotions" / "raw")
    records = list(stream)
    assert _summary(records) == [
        ("raw:a1", "That game hurt.",
         {"goemotions": ["sadness"], "ekman": ["sadness"], "sentiment": ["negative"]}),
        ("raw:c3", "Thanks a lot",
         {"goemotions": ["gratitude"], "ekman": ["joy"], "sentiment": ["positive"]}),
    ]  # fmt: skip
    assert [r.meta["raters"] for r in records] == [3, 2]
    assert [(s.line, s.reason) for s in stream.skipped.entries] == [
        (9, "bad rater row: expected 0/1, found 'maybe'"),
        (3, "comment b2: no label chosen by 2+ raters"),
    ]


def test_raw_min_raters_one_keeps_every_choice():
    records = list(load(ASSETS / "goemotions" / "raw", format="goemotions", min_raters=1))
    assert records[0].labels["goemotions"] == ["anger", "sadness", "neutral"]
    assert [r.id for r in records] == ["raw:a1", "raw:b2", "raw:c3"]


def test_wrong_format_says_what_was_expected_and_found(tmp_path):
    with pytest.raises(
        DataFormatError, match="raw rater CSV .*found header 'conv_id,utterance_idx"
    ):
        read_goemotions(ASSETS / "ed")
    with pytest.raises(DataFormatError, match="expected GoEmotions: .*found a .txt file"):
        read_goemotions(ORIGINAL / "emotions.txt")
    (tmp_path / "test.tsv").write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"expected GoEmotions TSV lines .*found 'a\\tb'"):
        read_goemotions(tmp_path)
    (tmp_path / "test.tsv").unlink()
    (tmp_path / "notes.md").write_text("hi", encoding="utf-8")
    with pytest.raises(DataFormatError, match="found notes.md"):
        read_goemotions(tmp_path)
