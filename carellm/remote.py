"""The remote backend: CareLLM sessions whose thinker runs on an OpenAI-compatible server.

    engine = carellm.remote.RemoteEngine("http://127.0.0.1:8901/v1")
    session = engine.session(persona="counselor", voice="Chelsie")
    reply = session.respond(carellm.Turn(text="I can't sleep before exams."))

The server can be ``vllm serve Qwen/Qwen2.5-Omni-7B`` (text out), vLLM-Omni (text and
speech) or ``carellm serve``. CareLLM keeps what is its own on this side: the persona's
system prompt, the conversation history (sent in full with every request), the crisis
rules and escalation (`carellm.safety` on the user's text, whatever the server says),
and the emotion report: the server's ``carellm`` extension when it returns one, else
`carellm.emotion.fallback_report` (source "fallback": a remote server shares no prefix
cache to score the report on). Media go out as data URLs / ``input_audio``. When the
server returns no speech, ``reply.audio`` is None and ``reply.notes`` says so.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import mimetypes
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from carellm import safety
from carellm.conversation import Conversation
from carellm.errors import CareLLMError, InputError, RemoteError
from carellm.prompts import check_voice, get_persona, system_prompt
from carellm.reply import OUTPUT_RATE

logger = logging.getLogger(__name__)

MEDIA_HISTORY_TURNS = 2  # past turns whose media is re-sent (as the local Session does)
DEFAULT_TIMEOUT_S = 300.0  # s per request: a long multimodal turn on a busy server
NO_SPEECH_NOTE = "no speech from this server: it returned text only"


@dataclass(frozen=True)
class RemoteInfo:
    """What `EngineInfo` says for a local model, for a remote one."""

    model: str  # the served model's name
    base_url: str  # e.g. http://127.0.0.1:8901/v1
    device: str = "remote"
    dtype: str = ""
    speech: bool = True  # speech is asked for; the server decides (see Reply notes)
    tiny: bool = False
    reason: str = ""


def _reply_class():
    """Replies are plain `Reply` objects; ``notes`` says what the server could not do."""
    from carellm.reply import Reply

    return Reply


@dataclass
class _Exchange:
    turn: object  # PreparedTurn
    reply: object  # RemoteReply
    parts: list  # the user message's content parts, media included


class RemoteEngine:
    """An OpenAI-compatible server seen as an `Engine`: ``.session()`` opens conversations.

    ``base_url`` ends with ``/v1`` (added when missing). ``model``: the name to ask for
    (default: the server's first model). ``api_key`` is sent as a Bearer token.
    """

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S):  # fmt: skip
        import httpx

        base_url = base_url.rstrip("/")
        self.base_url = base_url if base_url.endswith("/v1") else base_url + "/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self._model = model
        self.speech = True  # asked for; whether it comes depends on the server

    @property
    def model(self) -> str:
        if self._model is None:
            try:
                r = self.client.get("/models")
                r.raise_for_status()
                self._model = r.json()["data"][0]["id"]
            except Exception as e:
                raise RemoteError(
                    f"cannot list models at {self.base_url} ({e}); check the URL or pass model="
                ) from e
        return self._model

    @property
    def info(self) -> RemoteInfo:
        return RemoteInfo(model=self.model, base_url=self.base_url)

    def session(self, persona: str = "counselor", voice: str = "Chelsie",
                language: str | None = None, *, speech: bool | None = None,
                seed: int | None = None, max_new_tokens: int = 256,
                region: str | None = None) -> RemoteSession:  # fmt: skip
        """A new conversation; same arguments and API as `Engine.session`."""
        if language not in (None, "zh", "en"):
            raise InputError("language", f"unknown language {language!r}; use 'zh', 'en' or None")
        from carellm.conversation import SessionOptions

        options = SessionOptions(
            persona=get_persona(persona), voice=check_voice(voice), language=language,
            speech=True if speech is None else bool(speech), seed=seed,
            max_new_tokens=max_new_tokens, region=region,
        )  # fmt: skip
        return RemoteSession(self, options)

    def close(self) -> None:
        self.client.close()


# ------------------------------------------------------------------ encoding a turn


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


def _text_only(parts: list[dict], prepared) -> list[dict]:
    """An old turn's parts without media, saying what was sent (as the local session)."""
    sent = sorted(prepared.modalities - {"text"})
    note = f"(The user sent {' and '.join(sent)}, not shown again.) " if sent else ""
    text = note + (prepared.text or "")
    return [{"type": "text", "text": text.strip() or "(media)"}]


def _decode_speech(data: str, fmt: str | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    raw = base64.b64decode(data)
    if fmt == "pcm16" or not raw.startswith((b"RIFF", b"OggS", b"fLaC", b"ID3")):
        return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0, OUTPUT_RATE
    wave, rate = sf.read(io.BytesIO(raw), dtype="float32", always_2d=False)
    return (wave.mean(axis=1) if wave.ndim == 2 else wave).astype(np.float32), int(rate)


# ------------------------------------------------------------------ the session


class RemoteSession(Conversation):
    """A conversation on a `RemoteEngine`: the public API of `carellm.session.Session`."""

    def __init__(self, engine: RemoteEngine, options):
        self.engine = engine
        self.options = options
        self._history: list[_Exchange] = []

    def _request_body(self, parts: list[dict], report: bool) -> dict:
        opts = self.options
        messages = [{"role": "system", "content": system_prompt(opts.persona, opts.language)}]
        for i, e in enumerate(self._history):
            recent = i >= len(self._history) - MEDIA_HISTORY_TURNS and e.turn.video is None
            content = e.parts if recent else _text_only(e.parts, e.turn)
            messages += [{"role": "user", "content": content},
                         {"role": "assistant", "content": e.reply.text}]  # fmt: skip
        messages.append({"role": "user", "content": parts})
        body = {"model": self.engine.model, "messages": messages, "stream": True,
                "max_tokens": opts.max_new_tokens, "temperature": opts.persona.temperature,
                "top_p": opts.persona.top_p, "persona": opts.persona.name, "report": report}  # fmt: skip
        if opts.seed is not None:
            body["seed"] = opts.seed
        if opts.language:
            body["language"] = opts.language
        if opts.region:
            body["region"] = opts.region
        if opts.speech:
            body["modalities"] = ["text", "audio"]
            body["audio"] = {"voice": opts.voice, "format": "wav"}
        return body

    def _chunks(self, body: dict) -> Iterator[dict]:
        """The server's stream chunks (JSON objects), until ``[DONE]``."""
        import httpx

        try:
            with self.engine.client.stream("POST", "/chat/completions", json=body) as r:
                if r.status_code != 200:
                    r.read()
                    raise RemoteError(f"{self.engine.base_url} answered {r.status_code}: "
                                      f"{_error_message(r)}")  # fmt: skip
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    chunk = json.loads(payload)
                    if "error" in chunk:
                        raise RemoteError(f"the server failed mid-reply: {_error_message(chunk)}")
                    yield chunk
        except httpx.HTTPError as e:
            raise RemoteError(f"cannot reach {self.engine.base_url} ({e}); is it running?") from e

    def stream(self, turn, report: bool = True) -> Iterator[object]:
        """Yield Assessment, TextDelta and AudioChunk events, then Final(reply)."""
        from carellm.turn import prepare

        start = time.perf_counter()
        prepared = prepare(turn)  # InputError before anything is sent
        parts = content_parts(turn, prepared)
        run = _RemoteTurn(self, prepared, report, start)
        yield from run.events(self._chunks(self._request_body(parts, report)))
        self._history.append(_Exchange(prepared, run.reply, parts))


class _RemoteTurn:
    """The state of one streamed remote turn: text, speech, server extension."""

    def __init__(self, session: RemoteSession, prepared, report: bool, start: float):
        self.session, self.prepared, self.report, self.start = session, prepared, report, start
        self.rules = safety.assess(prepared.text or "")
        self.text, self.audio, self.rate = "", [], OUTPUT_RATE
        self.server_ext: dict = {}
        self.emotion = self.safety = None
        self.reply = None

    def _assessment(self, ext: dict):
        """Emotion (server's, else fallback) and the safety of the turn, as local."""
        from carellm.emotion import EmotionReport, fallback_report
        from carellm.reply import Assessment

        emotion = None
        if self.report and ext.get("emotion"):
            try:
                emotion = EmotionReport.from_dict(ext["emotion"])
            except CareLLMError as e:
                logger.warning("the server's emotion report is invalid (%s); using fallback", e)
        if self.report and emotion is None:
            emotion = fallback_report(self.prepared.text, modalities=self.prepared.modalities,
                                      risk_floor=self.rules.level)  # fmt: skip
        server_level = (ext.get("safety") or {}).get("level", "none")
        if server_level not in safety.LEVELS:
            server_level = "none"
        level = safety.max_level(
            self.rules.level, emotion.risk if emotion else "none", server_level
        )
        combined = self.rules
        if level != self.rules.level:
            combined = replace(self.rules, level=level,
                               resources=safety.resources_for(self.rules.lang, self.session.options.region))  # fmt: skip
        self.emotion, self.safety = emotion, combined
        return Assessment(emotion, combined)

    def events(self, chunks: Iterator[dict]) -> Iterator[object]:
        from carellm.reply import AudioChunk, TextDelta

        for chunk in chunks:
            ext = chunk.get("carellm") or {}
            if ext:
                self.server_ext.update(ext)
            if self.safety is None and (ext.get("emotion") or ext.get("safety")):
                yield self._assessment(ext)
            delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
            if delta.get("content"):
                if self.safety is None:
                    yield self._assessment({})
                self.text += delta["content"]
                yield TextDelta(delta["content"])
            speech = delta.get("audio") or {}
            if speech.get("data"):
                wave, self.rate = _decode_speech(speech["data"], speech.get("format"))
                self.audio.append(wave)
                yield AudioChunk(wave, self.rate)
        if self.safety is None:
            yield self._assessment(self.server_ext)
        yield from self._finish()

    def _finish(self) -> Iterator[object]:
        from carellm.assessment import escalation_for
        from carellm.reply import Final, TextDelta

        escalation = escalation_for(self.safety, self.session.options.region)
        text = self.text.strip()
        if escalation and escalation not in text:  # carellm serve escalates already
            yield TextDelta("\n\n" + escalation)
            text += "\n\n" + escalation
        notes = list(self.server_ext.get("notes") or ())
        wants_speech = self.session.options.speech
        if wants_speech and not self.audio and not notes:
            notes.append(NO_SPEECH_NOTE)
        server = self.server_ext.get("timings") or {}
        timings = {f"server_{k}": v for k, v in server.items()}  # as the server measured them
        timings["total"] = time.perf_counter() - self.start  # here, network included
        model_text = self.server_ext.get("model_text", self.text.strip())
        self.reply = _reply_class()(
            text=text, audio=np.concatenate(self.audio) if self.audio else None,
            sample_rate=self.rate, emotion=self.emotion, safety=self.safety, timings=timings,
            model_text=model_text, escalated=bool(escalation) or bool(self.server_ext.get("escalated")),
            notes=tuple(notes),
        )  # fmt: skip
        yield Final(self.reply)


def _error_message(source) -> str:
    try:
        body = source if isinstance(source, dict) else source.json()
        return str(body["error"]["message"])
    except Exception:
        return getattr(source, "text", str(source))[:300]
