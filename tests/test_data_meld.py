"""MELD: cp1252/UTF-8 CSVs, clip lookup, missing clips, labels."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from carellm.data import MELD7_LABELS, load, read_meld
from carellm.data.meld import clean_text
from carellm.errors import DataFormatError

MELD = Path(__file__).parent / "assets" / "data" / "meld"


def _write_clip(path: Path) -> None:
    """A 2-frame 16x16 MPEG-4 clip made with PyAV."""
    av = pytest.importorskip("av")
    np = pytest.importorskip("numpy")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for _ in range(2):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture
def meld_dir(tmp_path) -> Path:
    """The fixture CSVs with clips for dia0_utt0 and dia0_utt1 of train (dia1_utt0 missing)."""
    shutil.copytree(MELD, tmp_path / "meld")
    clips = tmp_path / "meld" / "train_splits"
    clips.mkdir()
    for name in ("dia0_utt0.mp4", "dia0_utt1.mp4"):
        _write_clip(clips / name)
    return tmp_path / "meld"


def test_meld7_labels():
    assert MELD7_LABELS == ("neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust")


def test_records_with_clips_text_and_labels(meld_dir, caplog):
    stream = load(meld_dir, format="meld")
    with caplog.at_level(logging.WARNING, logger="carellm.data.meld"):
        records = list(stream)
    assert [(r.id, r.labels) for r in records] == [
        ("train:dia0_utt0", {"meld7": "surprise", "sentiment": "negative"}),
        ("train:dia0_utt1", {"meld7": "neutral", "sentiment": "neutral"}),
        ("train:dia1_utt0", {"meld7": "anger", "sentiment": "negative"}),
        ("dev:dia0_utt0", {"meld7": "joy", "sentiment": "positive"}),
    ]
    clip = str((meld_dir / "train_splits" / "dia0_utt0.mp4").resolve())
    assert records[0].messages == (
        {
            "role": "user",
            "content": [
                {"type": "video", "video": clip},
                {"type": "text", "text": "Oh my God, he's lost it."},
            ],
        },
    )
    assert records[0].meta["speaker"] == "Monica" and records[0].meta["clip"] == clip
    assert records[0].meta["starttime"] == "00:16:16,059"
    # cp1252 curly quotes, and UTF-8 mojibake in the dev file
    assert records[2].messages[0]["content"] == [{"type": "text", "text": 'I said "no"!'}]
    assert records[2].meta["clip"] is None
    assert records[3].messages[0]["content"][0]["text"] == "It's fine."
    assert "1 of 3 utterances have no clip" in caplog.text
    assert [(Path(s.file).name, s.line, s.reason) for s in stream.skipped.entries] == [
        ("train_sent_emo.csv", 5, "unknown emotion 'happy'")
    ]


def test_require_clip_skips_utterances_without_one(meld_dir):
    stream = read_meld(meld_dir / "train_sent_emo.csv", require_clip=True)
    assert [r.id for r in stream] == ["train:dia0_utt0", "train:dia0_utt1"]
    reasons = [s.reason for s in stream.skipped.entries]
    assert reasons[0].startswith("clip dia1_utt0.mp4 not found in")
    assert reasons[1] == "unknown emotion 'happy'"


def test_explicit_clip_folder(meld_dir, tmp_path):
    (record,) = read_meld(meld_dir / "dev_sent_emo.csv", clips=meld_dir / "train_splits")
    assert record.messages[0]["content"][0]["type"] == "video"
    with pytest.raises(DataFormatError, match="does not exist; expected a folder of dia"):
        read_meld(meld_dir, clips=tmp_path / "none")


def test_clean_text():
    assert clean_text("Itâ€™s â€œfineâ€\x9d") == 'It\'s "fine"'
    assert clean_text("  Ã  ") == "Ã"  # not mojibake: left alone


def test_wrong_format_is_reported():
    with pytest.raises(DataFormatError, match="expected MELD .* found header 'conv_id"):
        read_meld(MELD.parent / "ed")
