"""SoulChatCorpus (Chen et al., 2023) and other Chinese counseling corpora in the same
families of shapes: PsyDTCorpus, EmoLLM, SMILE/SMILECHAT, CPsyCounD-style transcripts.

Input: a JSON file (a top-level list of dialogues, or one dialogue), a JSONL file, a
plain-text transcript (``.txt``, UTF-8, one dialogue per file), or a folder of them (SMILE
ships one dialogue per file). JSON arrays are streamed element by element, so the
258k-dialogue SoulChatCorpus file is never held in memory at once.

The shape is detected per dialogue:

- ``messages``: OpenAI style ``[{"role": ..., "content": ...}]`` (SoulChatCorpus, PsyDTCorpus);
- ``conversations``: ShareGPT style ``[{"from": "human"|"gpt"|"system", "value": ...}]``;
- ``conversation``: xtuner style ``[{"system"?, "input", "output"}]`` (EmoLLM);
- ``instruction``/``input``/``output``: Alpaca style single turn;
- a transcript: a string (or list of strings, or a ``text``/``dialogue`` field) whose turns
  start with a speaker tag and a full- or half-width colon: ``用户：``/``求助者：``/``来访者：``
  (user) and ``心理咨询师：``/``咨询师：``/``支持者：`` (assistant).

Anything else is skipped with its file:line in the skip log. Other top-level scalar
fields (``id``, ``topic``, ``normalizedTag`` ...) are kept in meta. A ``.txt`` file given
on its own is the whole input, so a bad one (empty, no speaker tags, one-sided) raises
`DataFormatError` at once; inside a folder it is skipped like any bad dialogue.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from carellm.data._io import JSONItemError, iter_json_items, iter_jsonl
from carellm.data.records import ChatRecord, RecordStream, SkipLog, existing_path, message_problem
from carellm.errors import DataFormatError

NAME = "soulchat"
LICENSE = "see source"  # SoulChat code is Apache-2.0; each corpus states its own data terms
CITATION = (
    "Chen et al. 2023, SoulChat: Improving LLMs' Empathy, Listening, and Comfort Abilities "
    "through Fine-tuning with Multi-turn Empathy Conversations, Findings of EMNLP 2023"
)
_EXPECTED = (
    "counseling dialogues as JSON/JSONL with 'messages', 'conversations', 'conversation', "
    "instruction/output, or 用户：/心理咨询师： transcripts (also as .txt files)"
)
_SUFFIXES = (".json", ".jsonl", ".txt")

USER_TAGS: tuple[str, ...] = ("用户", "求助者", "来访者")
ASSISTANT_TAGS: tuple[str, ...] = ("心理咨询师", "咨询师", "支持者")
# A turn starts at a line start with a speaker tag and a full-width or ASCII colon.
_TURN = re.compile(r"^[ \t]*(心理咨询师|咨询师|支持者|用户|求助者|来访者)[ \t]*[：:][ \t]*", re.M)
_ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
}
_TRANSCRIPT_KEYS = ("text", "dialogue", "dialog", "transcript", "content")
# Fields that hold the dialogue itself, so not copied to meta.
_DIALOGUE_KEYS = _TRANSCRIPT_KEYS + ("instruction", "input", "output", "system")


def read_soulchat(path: str | os.PathLike, progress: bool = False) -> RecordStream:
    """Stream counseling dialogues from a JSON/JSONL/.txt file or a folder of them."""
    path = existing_path(path, _EXPECTED)
    files = _data_files(path)
    if path.is_file() and path.suffix == ".txt":
        try:
            record = _text_record(path)
        except ValueError as e:
            raise DataFormatError(f"{path}: {e}") from e
        return RecordStream(NAME, path, lambda skips: iter([record]), progress)

    def generate(skips: SkipLog) -> Iterator[ChatRecord]:
        for f in files:
            yield from _read_file(f, skips)

    return RecordStream(NAME, path, generate, progress)


def _data_files(path: Path) -> list[Path]:
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    files = [f for f in files if f.is_file() and f.suffix in _SUFFIXES]
    if not files:
        raise DataFormatError(f"{path}: expected {_EXPECTED}; found no .json, .jsonl or .txt file")
    return files


def _text_record(f: Path) -> ChatRecord:
    """The one dialogue of a plain-text transcript file; ValueError says why not."""
    try:
        text = f.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError("is not UTF-8 text; re-save it as UTF-8") from e
    if not text.strip():
        raise ValueError(
            "the transcript is empty; write one turn per line starting with 用户： or 心理咨询师："
        )
    return to_record(text, default_id=f.stem, file=f.name)


def _read_file(f: Path, skips: SkipLog) -> Iterator[ChatRecord]:
    if f.suffix == ".txt":
        try:
            yield _text_record(f)
        except ValueError as e:
            skips.add(f, 1, str(e))
        return
    items = iter_jsonl(f) if f.suffix == ".jsonl" else iter_json_items(f)
    try:
        first = next(items, None)
        if first and isinstance(first[1], str) and len(_TURN.findall(first[1])) < 2:
            # SMILE: the whole file is one dialogue, a list of single-turn strings
            lines = [first[1]] + [value for _, value in items]
            items = iter([(1, lines)])
        elif first:
            items = _chain(first, items)
        for number, item in items:
            if isinstance(item, JSONItemError):
                skips.add(f, number, str(item))
                continue
            try:
                yield to_record(item, default_id=f"{f.stem}:{number}", file=f.name)
            except ValueError as e:
                skips.add(f, number, str(e))
    except JSONItemError as e:
        skips.add(f, e.line, f"{e}; rest of file not read")


def _chain(first: tuple[int, Any], rest: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    yield first
    yield from rest


def to_record(item: Any, default_id: str, file: str = "") -> ChatRecord:
    """One dialogue in any supported shape -> ChatRecord; ValueError says why not."""
    shape, messages = _messages(item)
    for i, message in enumerate(messages):
        problem = message_problem(message)
        if problem:
            raise ValueError(f"{shape} turn {i}: {problem}")
    if not any(m["role"] == "user" for m in messages) or not any(
        m["role"] == "assistant" for m in messages
    ):
        raise ValueError(f"{shape} dialogue needs at least one user and one assistant turn")
    extra = {}
    if isinstance(item, dict):
        extra = {k: v for k, v in item.items() if isinstance(v, (str, int, float, bool))}
        extra = {k: v for k, v in extra.items() if k not in _DIALOGUE_KEYS}
    record_id = str(extra.pop("id", default_id))
    return ChatRecord(
        id=record_id,
        source=NAME,
        messages=tuple(messages),
        meta={**extra, "file": file, "shape": shape, "license": LICENSE},
    )


def _messages(item: Any) -> tuple[str, list[dict[str, Any]]]:
    """(shape name, chat messages) of one dialogue; ValueError for an unknown shape."""
    if isinstance(item, str):
        return "transcript", parse_transcript(item)
    if isinstance(item, list) and item and all(isinstance(x, str) for x in item):
        return "transcript", parse_transcript("\n".join(item))
    if not isinstance(item, dict):
        raise ValueError(f"unknown dialogue shape: a JSON {type(item).__name__}")
    if isinstance(item.get("messages"), list):
        return "messages", [_openai(m) for m in item["messages"]]
    if isinstance(item.get("conversations"), list):
        return "sharegpt", [_sharegpt(m) for m in item["conversations"]]
    if isinstance(item.get("conversation"), list):
        return "xtuner", _xtuner(item["conversation"])
    if isinstance(item.get("output"), str) and ("instruction" in item or "input" in item):
        return "alpaca", _alpaca(item)
    for key in _TRANSCRIPT_KEYS:
        value = item.get(key)
        if isinstance(value, (str, list)) and value:
            return _messages(value)
    raise ValueError(f"unknown dialogue shape with keys {', '.join(sorted(item))[:80]}")


def _openai(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        return {"role": None}
    return {
        "role": _ROLE_ALIASES.get(message.get("role"), message.get("role")),
        "content": message.get("content"),
    }


def _sharegpt(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        return {"role": None}
    return {
        "role": _ROLE_ALIASES.get(message.get("from"), message.get("from")),
        "content": message.get("value"),
    }


def _xtuner(turns: list[Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise ValueError("xtuner conversation turns must be objects")
        if turn.get("system"):
            messages.append({"role": "system", "content": turn["system"]})
        messages.append({"role": "user", "content": turn.get("input")})
        messages.append({"role": "assistant", "content": turn.get("output")})
    return messages


def _alpaca(item: dict[str, Any]) -> list[dict[str, Any]]:
    prompt = "\n".join(str(item[k]) for k in ("instruction", "input") if item.get(k))
    messages = [{"role": "system", "content": item["system"]}] if item.get("system") else []
    return messages + [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": item["output"]},
    ]


def parse_transcript(text: str) -> list[dict[str, Any]]:
    """Split a ``用户：… 心理咨询师：…`` transcript into chat messages.

    Lines without a speaker tag continue the previous turn. ValueError when no tag is
    found or text precedes the first tag.
    """
    matches = list(_TURN.finditer(text))
    if not matches:
        raise ValueError(
            "transcript has no 用户：/心理咨询师： (or 求助者/支持者) speaker tags; start each "
            "turn's line with one (full-width or ASCII colon)"
        )
    if text[: matches[0].start()].strip():
        raise ValueError("transcript has text before the first speaker tag")
    messages = []
    for match, following in zip(matches, matches[1:] + [None], strict=True):
        end = following.start() if following else len(text)
        role = "user" if match.group(1) in USER_TAGS else "assistant"
        messages.append({"role": role, "content": text[match.end() : end].strip()})
    return messages
