"""SoulChat-style corpora: OpenAI messages, ShareGPT, xtuner, Alpaca, transcripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from carellm.data import load, parse_transcript, read_soulchat
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
    with pytest.raises(DataFormatError, match="found no .json or .jsonl file"):
        read_soulchat(SOULCHAT.parent / "ed")
