"""EmpatheticDialogues: unquoted CSV with _comma_, extra fields, grouping, parquet."""

from __future__ import annotations

from pathlib import Path

import pytest

from carellm.data import ED32_LABELS, load, read_empathetic_dialogues
from carellm.errors import DataFormatError

ED = Path(__file__).parent / "assets" / "data" / "ed"


def test_ed32_labels():
    assert len(ED32_LABELS) == 32 == len(set(ED32_LABELS))
    assert ED32_LABELS[0] == "afraid" and ED32_LABELS[-1] == "trusting"


def test_conversations_grouped_ordered_and_decoded():
    stream = read_empathetic_dialogues(ED)
    records = list(stream)
    assert [(r.id, r.labels) for r in records] == [
        ("hit:0_conv:1", {"ed32": "sentimental"}),
        ("hit:1_conv:2", {"ed32": "afraid"}),
        ("hit:3_conv:6", {"ed32": "joyful"}),
    ]
    assert [(m["role"], m["content"]) for m in records[0].messages] == [
        ("user", "I remember going to see the fireworks with my best friend."),
        ("assistant", "Was this a friend you were in love with, or just a best friend?"),
        ("user", "This was a best friend. I miss her."),
    ]
    # rows out of utterance_idx order and a line with 10 fields (first 8 kept)
    assert [(m["role"], m["content"]) for m in records[1].messages] == [
        ("user", "I heard a noise downstairs last night."),
        ("assistant", "Oh no, what happened?"),
    ]
    meta = records[0].meta
    assert meta["prompt"] == "I remember going to the fireworks with my best friend, it was great."
    assert meta["split"] == "train" and meta["license"] == "CC BY-NC 4.0"
    assert meta["speakers"] == {"user": "1", "assistant": "0"}
    assert sorted((s.line, s.reason) for s in stream.skipped.entries) == [
        (7, "unknown emotion context 'grumpy'"),
        (8, "expected 8 fields, found 3"),
    ]


def test_parquet_form_gives_the_same_records(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    lines = (ED / "train.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    rows = [line.split(",")[:8] for line in lines[1:] if line.count(",") >= 7]
    table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(header)})
    table = table.set_column(1, "utterance_idx", pa.array([int(r[1]) for r in rows]))
    pq.write_table(table, tmp_path / "train.parquet")
    stream = load(tmp_path / "train.parquet", format="empathetic_dialogues")
    assert list(stream) == list(read_empathetic_dialogues(ED / "train.csv"))
    assert [(s.line, s.reason) for s in stream.skipped.entries] == [
        (6, "unknown emotion context 'grumpy'")
    ]


def test_bad_utterance_idx_skips_the_conversation(tmp_path):
    header = (ED / "train.csv").read_text(encoding="utf-8").splitlines()[0]
    (tmp_path / "test.csv").write_text(
        f"{header}\nc1,1,sad,p,1,hello,,\nc1,two,sad,p,2,hi,,\nc2,1,sad,p,1,a,,\nc2,2,sad,p,2,b,,\n",
        encoding="utf-8",
    )
    stream = read_empathetic_dialogues(tmp_path)
    assert [r.id for r in stream] == ["c2"]
    assert [(s.line, s.reason) for s in stream.skipped.entries] == [
        (3, "utterance_idx 'two' is not an integer")
    ]


def test_wrong_format_is_reported():
    with pytest.raises(
        DataFormatError, match="expected EmpatheticDialogues .* found columns Sr No."
    ):
        read_empathetic_dialogues(Path(__file__).parent / "assets" / "data" / "meld")
    with pytest.raises(DataFormatError, match="found dev.tsv, emotions.txt, train.tsv"):
        read_empathetic_dialogues(
            Path(__file__).parent / "assets" / "data" / "goemotions" / "original"
        )
