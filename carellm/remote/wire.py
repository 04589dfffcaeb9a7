"""The remote backend's wire format: a turn as OpenAI content parts, and a reply's text and
speech read back from wherever the server put them.

`content_parts` encodes a turn (audio as WAV, the image as PNG, video as it came, all as
base64 data: nothing is fetched by URL). Requests carry ``modalities`` (vLLM-Omni's
default is the engine's own, e.g. ["text", "audio"]; any other value is a 400),
``audio.format`` and, for vLLM-Omni, ``speaker`` (lower-cased there and checked against
the talker's speakers).

`carellm.remote` sends one chat-completions request per turn and hands every response
object (a whole ``chat.completion`` or one ``chat.completion.chunk`` of a stream) to
`pieces`, which yields the reply's text, its speech as a 24 kHz float32 waveform, and
``carellm serve``'s extension object, whichever server shape it came in:

- OpenAI and ``carellm serve``: one choice. Text in ``message.content`` /
  ``delta.content``; speech in ``message.audio.data`` / ``delta.audio.data`` (base64;
  ``carellm serve`` adds ``format`` and ``sample_rate``). OpenAI's audio models leave
  ``content`` null and put the words in ``audio.transcript``: used when no content comes.
- vLLM-Omni (``vllm serve Qwen/Qwen2.5-Omni-7B --omni``, also Qwen3-Omni). Followed:
  ``vllm_omni/entrypoints/openai/serving_chat.py``, ``protocol/chat_completion.py`` and
  ``protocol/audio.py`` of vllm-project/vllm-omni, main branch at commit
  00a3619b9b6647378a285e9d135475e2fa085744 (newer than v0.12.0rc1; PyPI's newest
  release when this was written: vllm-omni 0.30.0). Not streamed: one choice
  per output modality, both with ``index`` 0: the text choice (``message.content``) then
  the audio choice (``message.audio = {id, data, expires_at, transcript: ""}``, ``data``
  a base64 file in the requested ``audio.format``: wav by default, also pcm (raw PCM16),
  flac, mp3, opus). Streamed: every chunk has a top-level ``modality``; in an
  ``"audio"`` chunk ``choices[i].delta.content`` is NOT text but the base64 file of the
  newest speech segment (a whole WAV each), and the last chunk has no ``modality``.
  The rate is the talker's: 24 kHz for Qwen2.5-Omni and Qwen3-Omni; other models
  (Ming-flash-omni: 44.1 kHz) are resampled to 24 kHz here.
- mainline ``vllm serve``: text only, in the OpenAI shape.

Speech is decoded by `carellm.media.load_audio` (WAV, FLAC, MP3, Opus; any rate), raw
PCM16 is read at the rate the server states (else 24 kHz). A part that cannot be decoded
is reported in `Piece.bad_audio`, never as text.
"""

from __future__ import annotations

import base64
import binascii
import io
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carellm.errors import InputError
from carellm.media import MediaLimits, load_audio
from carellm.reply import OUTPUT_RATE

# What the speech decoder accepts: any length (a streamed segment can be a few ms),
# silence too (pauses between sentences), replies up to an hour.
SPEECH_LIMITS = MediaLimits(audio_rate=OUTPUT_RATE, min_audio_seconds=0.0, silence_rms=0.0,
                            max_audio_seconds=3600.0)  # fmt: skip
_MAGIC = (b"RIFF", b"OggS", b"fLaC", b"ID3")  # self-describing containers
_RAW = ("pcm", "pcm16")  # raw little-endian 16-bit PCM


# ------------------------------------------------------------------ a turn, out


def _wav_b64(wave: np.ndarray, rate: int) -> str:
    from carellm.media.audio import wav_bytes

    return base64.b64encode(wav_bytes(wave, rate)).decode("ascii")


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _video_part(source) -> dict:
    if isinstance(source, (bytes, bytearray)):
        data, mime = bytes(source), "video/mp4"
    else:
        path = Path(source)
        data, mime = path.read_bytes(), mimetypes.guess_type(path.name)[0] or "video/mp4"
    return {"type": "video_url", "video_url": {"url": _data_url(data, mime)}}


def content_parts(turn, prepared) -> list[dict]:
    """OpenAI content parts for a turn: decoded audio as WAV, the image as PNG (both
    already validated and resized by `prepare`), the video file as it came."""
    from carellm.media import AUDIO_RATE

    parts: list[dict] = []
    if prepared.audio:
        wave = np.concatenate(prepared.audio)
        parts.append({"type": "input_audio",
                      "input_audio": {"data": _wav_b64(wave, AUDIO_RATE), "format": "wav"}})  # fmt: skip
    if prepared.image is not None:
        buffer = io.BytesIO()
        prepared.image.save(buffer, format="PNG")
        url = _data_url(buffer.getvalue(), "image/png")
        parts.append({"type": "image_url", "image_url": {"url": url}})
    if turn.video is not None:
        parts.append(_video_part(turn.video))
    if prepared.text:
        parts.append({"type": "text", "text": prepared.text})
    return parts


def text_only(parts: list[dict], prepared) -> list[dict]:
    """An old turn's parts without media, saying what was sent (as the local session)."""
    sent = sorted(prepared.modalities - {"text"})
    note = f"(The user sent {' and '.join(sent)}, not shown again.) " if sent else ""
    text = note + (prepared.text or "")
    return [{"type": "text", "text": text.strip() or "(media)"}]


# ------------------------------------------------------------------ a reply, in


@dataclass(frozen=True)
class Piece:
    """One thing a response object carried; exactly one field is set."""

    text: str = ""  # new characters of the reply (message/delta content)
    transcript: str = ""  # new characters of OpenAI's audio.transcript (text when no content)
    audio: np.ndarray | None = None  # float32 mono speech at OUTPUT_RATE (24 kHz)
    ext: dict | None = None  # carellm serve's `carellm` object (emotion, safety, notes...)
    bad_audio: str = ""  # why a speech part could not be decoded (it is dropped)


def pieces(obj: dict, audio_format: str = "wav") -> Iterator[Piece]:
    """The pieces of one ``chat.completion`` or ``chat.completion.chunk`` object.

    ``audio_format``: the ``audio.format`` the request asked for (vLLM-Omni's streamed
    audio chunks do not repeat it).
    """
    if isinstance(obj.get("carellm"), dict):
        yield Piece(ext=obj["carellm"])
    choices = [c for c in obj.get("choices") or () if isinstance(c, dict)]
    if any("message" in c for c in choices):
        yield from _message_pieces(choices, audio_format)
        return
    modality = obj.get("modality") or "text"
    for choice in choices:
        if (choice.get("index") or 0) != 0:  # n > 1 alternatives: the reply is choice 0
            continue
        delta = choice.get("delta") or {}
        if modality == "audio":  # vLLM-Omni: the content is base64 speech
            yield from _speech(delta.get("content"), audio_format, None)
        elif modality == "text":
            yield from _delta_text_and_audio(delta, audio_format)


def _delta_text_and_audio(delta: dict, audio_format: str) -> Iterator[Piece]:
    if isinstance(delta.get("content"), str) and delta["content"]:
        yield Piece(text=delta["content"])
    audio = delta.get("audio")
    if isinstance(audio, dict):
        if isinstance(audio.get("transcript"), str) and audio["transcript"]:
            yield Piece(transcript=audio["transcript"])
        fmt = audio.get("format") or audio_format
        yield from _speech(audio.get("data"), fmt, audio.get("sample_rate"))


def _message_pieces(choices: list[dict], audio_format: str) -> Iterator[Piece]:
    """A whole response: the first choice with text is the reply's text, the first with
    audio its speech (vLLM-Omni sends them as two choices, OpenAI as one)."""
    text = speech = None
    for choice in choices:
        message = choice.get("message") or {}
        content = _content_text(message.get("content"))
        audio = message.get("audio") if isinstance(message.get("audio"), dict) else {}
        if text is None and (content or audio.get("transcript")):
            text = Piece(text=content) if content else Piece(transcript=audio["transcript"])
        if speech is None and audio.get("data"):
            speech = audio
    if text is not None:
        yield text
    if speech is not None:
        fmt = speech.get("format") or audio_format
        yield from _speech(speech["data"], fmt, speech.get("sample_rate"))


def _content_text(content) -> str:
    """``content`` as a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content
                       if isinstance(p, dict) and p.get("type") == "text")  # fmt: skip
    return ""


def _speech(data, fmt: str | None, rate) -> Iterator[Piece]:
    if not isinstance(data, str) or not data:
        return  # vLLM-Omni sends empty audio deltas for silent talker segments
    try:
        wave = decode_speech(data, fmt, rate)
    except InputError as e:
        yield Piece(bad_audio=str(e))
        return
    if wave is not None and wave.size:
        yield Piece(audio=wave)


def decode_speech(data: str, fmt: str | None = None, rate: int | None = None) -> np.ndarray | None:
    """Base64 speech → float32 mono at OUTPUT_RATE; None when it holds no samples.

    A file (WAV, FLAC, MP3, Ogg/Opus: recognised by its header, or declared by ``fmt``)
    goes through `load_audio`, which reads its own rate and resamples; ``fmt`` "pcm" /
    "pcm16", or no ``fmt`` and no header, is raw PCM16 at ``rate`` (default 24 kHz: what
    vLLM-Omni and OpenAI send as pcm / pcm16).
    Raises `InputError` (field "speech") when the bytes are not audio.
    """
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InputError("speech", f"the server's audio is not base64 ({e})") from e
    if not raw:
        return None
    fmt = fmt.lower() if isinstance(fmt, str) else None
    if raw.startswith(_MAGIC) or fmt not in (*_RAW, None):
        wave = load_audio(raw, limits=SPEECH_LIMITS, field="speech")
    else:  # raw PCM16: declared so, or no format and no header
        pcm = np.frombuffer(raw[: len(raw) // 2 * 2], "<i2")
        if pcm.size == 0:
            return None
        wave = load_audio((pcm, int(rate or OUTPUT_RATE)), limits=SPEECH_LIMITS, field="speech")
    return np.asarray(wave, np.float32)
