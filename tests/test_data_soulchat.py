"""SoulChat-style corpora: OpenAI messages, ShareGPT, xtuner, Alpaca, transcripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carellm.cli import main
from carellm.data import load, parse_transcript, read_records, read_soulchat
from carellm.errors import DataFormatError

SOULCHAT = Path(__file__).parent / "assets" / "data" / "soulchat"


def _turns(record):
    return [(m["role"], m["content"]) for m in record.messages]


def test_json_list_with_every_shape():
    stream = read_soulchat(SOULCHAT / "multi_turn.json")
    records = list(stream)
    assert [(r.id, r.meta["shape"]) for r in records] == [
        ("1", "messages"),
        ("multi_turn:3", "sharegpt"),
        ("multi_turn:4", "transcript"),
    ]
    assert _turns(records[0]) == [
        ("user", "我最近总是失眠。"),
        ("assistant", "听起来你最近压力很大。"),
    ]
    assert records[0].meta["topic"] == "情感"
    assert _turns(records[1]) == [
        ("system", "你是心理咨询师。"),
        ("user", "我很焦虑。"),
        ("assistant", "能说说是什么让你焦虑吗？"),
    ]
    # full-width and ASCII colons; an untagged line continues the turn
    assert _turns(records[2]) == [
        ("user", "我和父母吵架了。"),
        ("assistant", "发生了什么？"),
        ("user", "他们不理解我，\n我很难过。"),
        ("assistant", "我能感受到你的难过。"),
    ]
    assert [(s.line, s.reason) for s in stream.skipped.entries] == [
        (5, "unknown dialogue shape with keys foo"),
        (6, "messages turn 0: role must be one of system, user, assistant, found 'patient'"),
    ]


def test_jsonl_xtuner_and_alpaca_with_a_broken_line():
    stream = load(SOULCHAT / "emollm.jsonl", format="soulchat")
    records = list(stream)
    assert _turns(records[0]) == [
        ("system", "你是心理医生。"),
        ("user", "我失恋了。"),
        ("assistant", "我很遗憾听到这个。"),
        ("user", "怎么办？"),
        ("assistant", "给自己一些时间。"),
    ]
    assert _turns(records[1]) == [("user", "我总是担心考试。"), ("assistant", "考试前紧张很常见。")]
    assert records[1].meta == {"file": "emollm.jsonl", "shape": "alpaca", "license": "see source"}
    assert [(Path(s.file).name, s.line) for s in stream.skipped.entries] == [("emollm.jsonl", 2)]
    assert stream.skipped.entries[0].reason.startswith("invalid JSON")


def test_smile_file_is_one_dialogue_and_folders_are_read_recursively():
    (record,) = read_soulchat(SOULCHAT / "smile")
    assert _turns(record) == [
        ("user", "我压力好大。"),
        ("assistant", "你愿意多说一些吗？"),
        ("user", "工作太多了。"),
        ("assistant", "听起来你很累。"),
    ]
    assert len(list(read_soulchat(SOULCHAT))) == 6


def test_parse_transcript_rejects_untagged_text():
    assert parse_transcript("求助者:你好\n支持者 ： 你好呀") == [
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好呀"},
    ]
    with pytest.raises(ValueError, match="no 用户"):
        parse_transcript("just some text")
    with pytest.raises(ValueError, match="text before the first speaker tag"):
        parse_transcript("前言\n用户：你好")


def test_one_sided_dialogue_and_truncated_array_are_reported(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(
        '[{"messages": [{"role": "user", "content": "hi"}]},\n{"messages": [', encoding="utf-8"
    )
    stream = read_soulchat(path)
    assert list(stream) == []
    assert [(s.line, s.reason.split(";")[0]) for s in stream.skipped.entries] == [
        (1, "messages dialogue needs at least one user and one assistant turn"),
        (2, "invalid JSON: Expecting value"),
    ]


def test_folder_without_json_is_rejected():
    with pytest.raises(DataFormatError, match="found no .json, .jsonl or .txt file"):
        read_soulchat(SOULCHAT.parent / "ed")


TRANSCRIPTS = SOULCHAT.parent / "transcripts"
GOLDEN = SOULCHAT.parent / "transcripts_golden.jsonl"


def _convert(source, out, capsys) -> tuple[int, str]:
    code = main(["data", "convert", str(source), "--format", "soulchat", "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_txt_transcripts_convert_to_the_golden_records(tmp_path, capsys):
    # full-width colons (UTF-8), and the same session saved with a BOM, CRLF, ASCII colons
    code, printed = _convert(TRANSCRIPTS, tmp_path / "out.jsonl", capsys)
    assert code == 0 and "wrote 2 records" in printed and "skipped 0 records" in printed
    written = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert written == GOLDEN.read_text(encoding="utf-8")


def test_one_txt_file_converts_like_the_same_transcript_inside_json(tmp_path, capsys):
    source = TRANSCRIPTS / "session_fullwidth.txt"
    code, printed = _convert(source, tmp_path / "one.jsonl", capsys)
    assert code == 0 and "wrote 1 records" in printed
    (record,) = read_records(tmp_path / "one.jsonl")
    golden = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert record.to_dict() == golden[1]
    embedded = tmp_path / "embedded.json"
    embedded.write_text(
        json.dumps([{"text": source.read_text(encoding="utf-8")}], ensure_ascii=False),
        encoding="utf-8",
    )
    (from_json,) = read_soulchat(embedded)
    assert from_json.messages == record.messages and from_json.meta["shape"] == "transcript"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the transcript is empty; write one turn per line starting with 用户"),
        (b" \n\n\t\n", "the transcript is empty"),
        ("我最近很难过。\n谢谢你听我说。\n".encode(), "no 用户：/心理咨询师："),
        ("前言\n用户：你好\n心理咨询师：你好\n".encode(), "text before the first speaker tag"),
        ("用户：你好\n用户：在吗\n".encode(), "needs at least one user and one assistant turn"),
        ("用户：你好\n心理咨询师：你好\n".encode("gbk"), "is not UTF-8 text; re-save it as UTF-8"),
    ],
)
def test_bad_txt_transcript_is_one_clear_error(tmp_path, capsys, content, message):
    source = tmp_path / "bad.txt"
    source.write_bytes(content)
    with pytest.raises(DataFormatError, match=message) as error:
        read_soulchat(source)
    assert str(error.value).startswith(f"{source}: ") and "\n" not in str(error.value)
    code, printed = _convert(source, tmp_path / "out.jsonl", capsys)
    assert code == 2 and printed == f"error: {error.value}\n"
    assert not (tmp_path / "out.jsonl").exists()


def test_bad_txt_inside_a_folder_is_skipped_with_its_reason(tmp_path):
    (tmp_path / "good.txt").write_text("用户：你好\n心理咨询师：你好呀\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("整理于 2024 年\n", encoding="utf-8")
    stream = read_soulchat(tmp_path)
    assert [r.id for r in stream] == ["good"]
    (skip,) = stream.skipped.entries
    assert (Path(skip.file).name, skip.line) == ("notes.txt", 1) and "no 用户" in skip.reason
