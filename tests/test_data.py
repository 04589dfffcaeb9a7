"""The common record format, `load`, `stats` and the `carellm data` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carellm.cli import main
from carellm.data import (
    FORMATS,
    ChatRecord,
    _io,
    format_stats,
    load,
    read_records,
    stats,
    write_records,
)
from carellm.errors import DataFormatError

ASSETS = Path(__file__).parent / "assets" / "data"


def _records() -> list[ChatRecord]:
    return [
        ChatRecord(
            id="r1",
            source="test",
            messages=(
                {"role": "system", "content": "abc"},
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi there"},
            ),
            labels={"goemotions": ["joy", "love"]},
        ),
        ChatRecord(
            id="r2",
            source="test",
            messages=(
                {"role": "user", "content": "hey"},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "okay!"},
                {"role": "assistant", "content": "bye"},
            ),
            labels={"goemotions": ["joy"]},
        ),
        ChatRecord(
            id="r3",
            source="meld",
            messages=(
                {
                    "role": "user",
                    "content": [
                        {"type": "video", "video": "/x.mp4"},
                        {"type": "text", "text": "wow"},
                    ],
                },
            ),
            labels={"meld7": "joy"},
            meta={"split": "train"},
        ),
    ]


def test_write_then_read_round_trips(tmp_path):
    out = tmp_path / "sub" / "records.jsonl"
    assert write_records(_records(), out) == 3
    stream = read_records(out)
    assert list(stream) == _records()
    assert stream.skipped.count == 0
    assert not (tmp_path / "sub" / "records.jsonl.part").exists()
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"id", "source", "messages", "labels", "meta"}


def test_read_records_reports_bad_lines_with_file_and_line(tmp_path):
    path = tmp_path / "records.jsonl"
    good = json.dumps(_records()[0].to_dict())
    bad_role = json.dumps(
        {"id": "x", "source": "s", "messages": [{"role": "bot", "content": "hi"}]}
    )
    path.write_text("\n".join([good, "{oops", "", bad_role, good]) + "\n", encoding="utf-8")
    stream = read_records(path)
    assert [r.id for r in stream] == ["r1", "r1"]
    assert stream.skipped.count == 2
    assert [(s.file, s.line) for s in stream.skipped.entries] == [(str(path), 2), (str(path), 4)]
    assert "role must be one of system, user, assistant" in stream.skipped.entries[1].reason
    assert f"{path}:2:" in stream.skipped.summary()


def test_read_records_rejects_other_formats(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist; expected a CareLLM records"):
        read_records(tmp_path / "missing.jsonl")
    with pytest.raises(DataFormatError, match="not JSONL records .*carellm data convert"):
        read_records(ASSETS / "goemotions" / "original" / "train.tsv")


def test_load_unknown_format_lists_the_available_ones():
    with pytest.raises(DataFormatError) as e:
        load(ASSETS, format="csv")
    assert all(name in str(e.value) for name in FORMATS)


@pytest.mark.parametrize("name", FORMATS)
def test_load_missing_path_names_the_expected_format(tmp_path, name):
    with pytest.raises(DataFormatError, match="does not exist; expected"):
        load(tmp_path / "nope", format=name)


def test_load_rejects_options_the_format_does_not_take():
    with pytest.raises(DataFormatError, match="does not take option.s. clips; it takes: none"):
        load(ASSETS / "ed", format="empathetic_dialogues", clips="x")


def test_stats_matches_hand_computed_values():
    result = stats(_records())
    assert result.records == 3
    assert result.messages == 8
    assert result.sources == {"test": 2, "meld": 1}
    assert (result.turns.mean, result.turns.median, result.turns.max) == (
        pytest.approx(7 / 3),
        2,
        4,
    )
    user = result.chars_by_role["user"]
    assert (user.count, user.mean, user.median, user.max) == (4, 4.0, 4.0, 5)
    assistant = result.chars_by_role["assistant"]
    assert (assistant.count, assistant.mean, assistant.median, assistant.max) == (3, 4.0, 3, 8)
    assert result.chars_by_role["system"].max == 3
    assert result.media == {"video": 1}
    assert result.labels == {"goemotions": {"joy": 2, "love": 1}, "meld7": {"joy": 1}}
    text = format_stats(result)
    assert "records   3" in text
    assert "labels: goemotions" in text
    assert "joy        2  66.7%" in text


def test_stats_of_a_path_equals_stats_of_its_records(tmp_path):
    write_records(_records(), tmp_path / "r.jsonl")
    assert stats(tmp_path / "r.jsonl") == stats(_records())
    assert stats([]).turns.count == 0


def test_json_array_streaming_is_chunk_independent(tmp_path, monkeypatch):
    path = ASSETS / "soulchat" / "multi_turn.json"
    whole = list(_io.iter_json_items(path))
    monkeypatch.setattr(_io, "_CHUNK", 7)  # split values and numbers across reads
    assert list(_io.iter_json_items(path)) == whole
    assert [line for line, _ in whole] == [2, 3, 4, 5, 6]
    numbers = tmp_path / "n.json"
    numbers.write_text('[12345,\n 678, {"a": [1, 2]}]', encoding="utf-8")
    assert list(_io.iter_json_items(numbers)) == [(1, 12345), (2, 678), (2, {"a": [1, 2]})]


def test_json_array_syntax_error_reports_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"a": 1},\n{"b": }\n]', encoding="utf-8")
    items = _io.iter_json_items(path)
    assert next(items) == (1, {"a": 1})
    with pytest.raises(_io.JSONItemError) as e:
        next(items)
    assert e.value.line == 2


def test_cli_convert_then_stats(tmp_path, capsys):
    out = tmp_path / "ed.jsonl"
    rc = main(["data", "convert", str(ASSETS / "ed"), "--format", "empathetic_dialogues",
               "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0
    assert f"wrote 3 records to {out}" in printed
    assert "skipped 2 record(s):" in printed
    assert "train.csv:8: expected 8 fields, found 3" in printed
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3

    assert main(["data", "stats", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "records   3" in printed
    assert "messages  7" in printed
    assert "turns     mean 2.33  median 2  max 3" in printed
    assert "labels: ed32" in printed


def test_cli_convert_prints_the_skip_summary_once(tmp_path, capsys, caplog):
    rc = main(["data", "convert", str(ASSETS / "ed"), "--format", "empathetic_dialogues",
               "--out", str(tmp_path / "ed.jsonl")])  # fmt: skip
    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text
    assert rc == 0
    assert everything.count("skipped 2 record(s)") == 1
    assert everything.count("train.csv:8: expected 8 fields, found 3") == 1


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    rc = main(["data", "convert", str(tmp_path / "nope"), "--format", "meld",
               "--out", str(tmp_path / "o.jsonl")])  # fmt: skip
    assert rc == 2
    assert "error:" in capsys.readouterr().err
