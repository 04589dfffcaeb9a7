"""Writing OpenAI-style responses: completions, stream chunks, speech, errors.

Speech is returned in OpenAI's audio-output shape, ``message.audio = {"id", "data",
"expires_at", "transcript"}`` with ``data`` a base64 WAV (24 kHz mono PCM16) or raw
PCM16. Every response also carries CareLLM's extension object ``carellm`` (emotion
report, safety, escalation, timings, notes).
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import numpy as np

from carellm.media.audio import wav_bytes

AUDIO_TTL_S = 3600  # s: nominal expiry reported for a reply's audio (nothing is stored)
NO_SPEECH_NOTE = "no speech from this server: it was started without a talker (text only)"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def pcm16(audio: np.ndarray) -> bytes:
    """float32 [-1, 1] mono → little-endian int16 bytes."""
    clipped = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def audio_b64(audio: np.ndarray, rate: int, fmt: str) -> str:
    data = wav_bytes(audio, rate) if fmt == "wav" else pcm16(audio)
    return base64.b64encode(data).decode("ascii")


def extension(reply, *, timings: dict, notes: list[str]) -> dict:
    """The ``carellm`` object: what the turn assessed and how long it took."""
    return {
        "emotion": reply.emotion.to_dict() if reply.emotion is not None else None,
        "safety": reply.safety.to_dict() if reply.safety is not None else None,
        "escalated": reply.escalated,
        "transcript": reply.transcript,  # what the user said aloud (voice/video turns)
        "model_text": reply.model_text,  # the reply before any escalation was added
        "timings": timings,
        "notes": notes,
    }


def assessment_extension(emotion, safety) -> dict:
    """The early ``carellm`` chunk of a stream, sent before the first text delta."""
    return {
        "emotion": emotion.to_dict() if emotion is not None else None,
        "safety": safety.to_dict() if safety is not None else None,
    }


def usage(reply) -> dict:
    """OpenAI's ``usage``: tokens the thinker read for the turn, and reply tokens."""
    prompt, completion = reply.prompt_tokens, reply.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


def completion(request_id: str, model: str, reply, *, audio_format: str | None, ext: dict) -> dict:
    """A ``chat.completion`` object; ``audio_format`` None means text was asked only.

    ``content`` always holds the text (OpenAI leaves it null when audio is returned;
    most clients read ``content``, so CareLLM keeps both).
    """
    message: dict = {"role": "assistant", "content": reply.text}
    if audio_format and reply.audio is not None and reply.audio.size:
        message["audio"] = {
            "id": new_id("audio"),
            "data": audio_b64(reply.audio, reply.sample_rate, audio_format),
            "expires_at": int(time.time()) + AUDIO_TTL_S,
            "transcript": reply.text,
        }
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage(reply),
        "carellm": ext,
    }


def chunk(
    request_id: str,
    model: str,
    delta: dict,
    *,
    finish_reason: str | None = None,
    carellm: dict | None = None,
) -> dict:
    """One ``chat.completion.chunk``."""
    body = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if carellm is not None:
        body["carellm"] = carellm
    return body


def usage_chunk(request_id: str, model: str, reply) -> dict:
    """The chunk ``stream_options.include_usage`` asks for: no choices, the usage."""
    return {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": [], "usage": usage(reply)}  # fmt: skip


def audio_delta(audio_id: str, audio: np.ndarray, rate: int, fmt: str) -> dict:
    """A stream delta holding one sentence of speech (a whole WAV file, or raw PCM16)."""
    return {
        "audio": {
            "id": audio_id,
            "data": audio_b64(audio, rate, fmt),
            "format": fmt,
            "sample_rate": rate,
            "expires_at": int(time.time()) + AUDIO_TTL_S,
        }
    }


def sse(obj) -> str:
    """One server-sent event line pair."""
    payload = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return f"data: {payload}\n\n"


def error_body(
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    kind: str = "invalid_request_error",
) -> dict:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
