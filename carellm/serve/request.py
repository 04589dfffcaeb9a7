"""Reading an OpenAI-style chat request: the body's schema, messages → turns, data URLs.

`ChatCompletionRequest` is the body of ``POST /v1/chat/completions``; `parse_messages`
turns its ``messages`` into earlier (user turn, assistant text) pairs plus the current
user turn, with media still as bytes; `prepare_raw` decodes one turn through
`carellm.turn.prepare`. Every problem raises `InputError` whose ``field`` is the JSON
path at fault (``messages[2].content[0]``), which the server returns as OpenAI's
``param``. Nothing here touches the model or the disk.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from carellm.errors import InputError
from carellm.media.common import AUDIO_RATE
from carellm.prompts import DEFAULT_VOICE

AUDIO_FORMATS = ("wav", "pcm16")  # speech output: a WAV file, or raw 16-bit little-endian PCM
# Client formats for input_audio; any of them is decoded by carellm.media.load_audio.
INPUT_AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg", "opus", "m4a", "webm", "aac")
TOKENS_PER_AUDIO_SECOND = 25  # audio encoder: one token per 40 ms
PIXELS_PER_TOKEN = 28 * 28  # vision: one token per merged 28×28 patch


class AudioOutput(BaseModel):
    """OpenAI's ``audio`` request field: how to speak the reply."""

    model_config = ConfigDict(extra="ignore")
    voice: str = DEFAULT_VOICE  # "Chelsie" or "Ethan"
    format: str = "wav"  # one of AUDIO_FORMATS


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options`` request field."""

    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False  # a last chunk (empty ``choices``) carries the token usage


class ChatCompletionRequest(BaseModel):
    """The body of ``POST /v1/chat/completions``; unknown fields are ignored.

    ``temperature``/``top_p`` are ignored: the persona sets sampling. ``persona``,
    ``report``, ``language`` and ``region`` are CareLLM's additions (OpenAI clients pass
    them with ``extra_body``).
    """

    model_config = ConfigDict(extra="ignore")
    model: str | None = None  # echoed back; any name is accepted
    messages: list[dict] = Field(min_length=1)
    modalities: list[Literal["text", "audio"]] = ["text"]
    audio: AudioOutput | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1  # choices per request; only 1 is supported (see check_supported)
    tools: list | None = None  # function calling; not supported (see check_supported)
    seed: int | None = None  # fixes the reply's sampling (same text streamed or not)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    persona: str = "counselor"  # counselor, listener or cbt
    report: bool = True  # score the emotion report (False: faster, emotion is null)
    language: Literal["zh", "en"] | None = None  # reply language; None follows the user
    region: str | None = None  # ISO country code for crisis resources ("US", "CN", "CA")


def check_supported(req: ChatCompletionRequest) -> None:
    """InputError for the OpenAI features this server does not offer."""
    if req.n != 1:
        raise InputError(
            "n", f"n={req.n} is not supported: this server returns one choice per request; "
            "send n=1 or leave it out (ask again for another reply)",
        )  # fmt: skip
    if req.tools:
        raise InputError(
            "tools", "tools (function calling) are not supported by this server; "
            "leave 'tools' out and send plain chat messages",
        )  # fmt: skip


@dataclass(frozen=True)
class RawTurn:
    """One user message with its media still encoded (bytes from data URLs)."""

    text: str | None
    where: str = "messages"  # JSON path of the message, for error messages
    audio: bytes | None = None
    image: bytes | None = None
    video: bytes | None = None


@dataclass(frozen=True)
class ParsedChat:
    """The conversation in a request: earlier exchanges, then the turn to answer."""

    history: tuple[tuple[RawTurn, str], ...]  # (user turn, assistant reply text), oldest first
    current: RawTurn


def b64decode(data: object, field: str) -> bytes:
    """Strict base64 (standard alphabet, padding optional); InputError otherwise."""
    if not isinstance(data, str) or not data:
        raise InputError(field, "expected a non-empty base64 string")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InputError(field, f"not valid base64 ({e}); encode the file's bytes") from e


def decode_data_url(url: object, kind: str, field: str) -> bytes:
    """The bytes of a ``data:<kind>/...;base64,...`` URL; http(s) URLs are refused."""
    if not isinstance(url, str):
        raise InputError(field, f"expected a data URL string, got {type(url).__name__}")
    if url.startswith(("http://", "https://")):
        raise InputError(
            field,
            "only data URLs (data:...;base64,...) are accepted: this server fetches nothing, "
            "so nothing leaves the machine",
        )
    head, sep, payload = url.partition(",")
    if not (sep and head.startswith("data:") and head.endswith(";base64")):
        raise InputError(field, f"expected a data:{kind}/...;base64,... URL")
    return b64decode(payload, field)


def _url_of(part: dict, key: str, field: str) -> object:
    value = part.get(key)
    if isinstance(value, dict):
        return value.get("url")
    return value  # some clients send the URL string directly


def _add_media(found: dict, kind: str, data: bytes, field: str) -> None:
    if kind in found:
        raise InputError(field, f"one {kind} per message; send the others in separate messages")
    found[kind] = data


def _parse_part(part: object, found: dict, texts: list[str], field: str) -> None:
    if not isinstance(part, dict):
        raise InputError(field, "a content part must be an object with a 'type'")
    kind = part.get("type")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise InputError(field, "a text part needs a string 'text'")
        texts.append(part["text"])
    elif kind == "input_audio":
        spec = part.get("input_audio")
        if not isinstance(spec, dict):
            raise InputError(field, "input_audio must be an object with 'data' and 'format'")
        if spec.get("format", "wav") not in INPUT_AUDIO_FORMATS:
            raise InputError(
                field,
                f"unknown audio format {spec.get('format')!r}; use one of {INPUT_AUDIO_FORMATS}",
            )
        _add_media(found, "audio", b64decode(spec.get("data"), field), field)
    elif kind == "audio_url":  # vLLM's spelling of the same thing
        _add_media(
            found, "audio", decode_data_url(_url_of(part, kind, field), "audio", field), field
        )
    elif kind == "image_url":
        _add_media(
            found, "image", decode_data_url(_url_of(part, kind, field), "image", field), field
        )
    elif kind == "video_url":
        _add_media(
            found, "video", decode_data_url(_url_of(part, kind, field), "video", field), field
        )
    else:
        raise InputError(
            field,
            f"unsupported content part type {kind!r}; use text, input_audio, image_url or video_url",
        )


def parse_user(content: object, field: str) -> RawTurn:
    """A user message's content (a string or a list of parts) as a RawTurn."""
    where = field.removesuffix(".content")
    if isinstance(content, str):
        return RawTurn(text=content, where=where)
    if not isinstance(content, list) or not content:
        raise InputError(field, "content must be a string or a non-empty list of parts")
    found: dict[str, bytes] = {}
    texts: list[str] = []
    for j, part in enumerate(content):
        _parse_part(part, found, texts, f"{field}[{j}]")
    return RawTurn(text="\n".join(texts) or None, where=where, **found)


def _assistant_text(content: object, field: str) -> str:
    if content is None:
        return ""  # e.g. an audio-only reply echoed back by the client
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise InputError(field, "assistant content must be a string or a list of text parts")


def parse_messages(messages: list[dict]) -> ParsedChat:
    """Earlier user/assistant pairs and the last user message.

    System messages are ignored (the persona sets the instructions and safety rules);
    assistant messages before the first user message (greetings) are dropped. After
    that, roles must alternate user, assistant, ..., ending with user.
    """
    turns: list[RawTurn] = []
    replies: list[str] = []
    for i, message in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InputError(field, "each message must be an object with 'role' and 'content'")
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        if role == "user":
            if len(turns) > len(replies):
                raise InputError(field, "two user messages in a row; merge them into one")
            turns.append(parse_user(message.get("content"), f"{field}.content"))
        elif role == "assistant":
            if not turns:
                continue  # a greeting before the user spoke carries nothing to answer
            if len(replies) == len(turns):
                raise InputError(field, "two assistant messages in a row")
            replies.append(_assistant_text(message.get("content"), f"{field}.content"))
        else:
            raise InputError(field, f"unsupported role {role!r}; use system, user or assistant")
    if not turns or len(turns) == len(replies):
        raise InputError("messages", "the last message must be from the user")
    return ParsedChat(tuple(zip(turns[:-1], replies)), turns[-1])


def prepare_raw(raw: RawTurn):
    """Decode a RawTurn into a `carellm.turn.PreparedTurn` (InputError names the message).

    Video bytes are decoded in memory (PyAV reads a seekable buffer), so the upload is
    never written to disk, not even to a temporary file.
    """
    from carellm.turn import Turn, prepare

    try:
        return prepare(Turn(text=raw.text, audio=raw.audio, image=raw.image, video=raw.video))
    except InputError as e:
        raise InputError(f"{raw.where}.{e.field}", str(e).partition(": ")[2]) from e


def media_tokens(prepared) -> int:
    """Rough count of the placeholder tokens a past turn's media adds when re-encoded.

    Only the context-budget trimming reads it; the session measures the real count for
    turns it runs itself.
    """
    total = sum(len(a) for a in prepared.audio) / AUDIO_RATE * TOKENS_PER_AUDIO_SECOND
    if prepared.image is not None:
        total += prepared.image.width * prepared.image.height / PIXELS_PER_TOKEN
    if prepared.video is not None:
        t, h, w, _ = prepared.video.frames.shape
        total += t / 2 * h * w / PIXELS_PER_TOKEN
    return int(total)
