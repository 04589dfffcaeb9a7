"""The remote backend: CareLLM sessions whose model runs on an OpenAI-compatible server.

    engine = carellm.load("Qwen/Qwen2.5-Omni-7B", backend="openai", base_url="http://127.0.0.1:8091/v1")
    session = engine.session(persona="counselor", voice="Chelsie")
    reply = session.respond(carellm.Turn(text="I can't sleep before exams."))

The server can be vLLM-Omni (``vllm serve Qwen/Qwen2.5-Omni-7B --omni``, or
``Qwen/Qwen3-Omni-30B-A3B-Instruct``: text and speech), mainline ``vllm serve`` (text
only), ``carellm serve`` or any OpenAI-compatible server; `carellm.remote.wire` reads the
text and speech wherever each puts them (several choices, audio stream chunks) and makes
``reply.audio`` a 24 kHz float32 waveform. When a server refuses streaming, speech or WAV
while streaming, the turn is asked again without it (``reply.notes`` says what was lost).

CareLLM keeps what is its own on this side: the persona's system prompt, the
conversation history (sent in full with every request), the crisis rules and escalation
(`carellm.safety` on the user's text, whatever the server says), and the emotion report:
the server's ``carellm`` extension when it returns one, else
`carellm.emotion.fallback_report` (source "fallback": a remote server shares no prefix
cache to score the report on). When the server returns no speech, ``reply.audio`` is
None and ``reply.notes`` says so.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from carellm import safety
from carellm.conversation import Conversation
from carellm.errors import CareLLMError, InputError, RemoteError
from carellm.prompts import check_voice, get_persona, system_prompt
from carellm.remote import wire as remote_wire
from carellm.remote.wire import content_parts, text_only
from carellm.reply import OUTPUT_RATE

logger = logging.getLogger(__name__)

MEDIA_HISTORY_TURNS = 2  # past turns whose media is re-sent (the local Session keeps all in budget)
DEFAULT_TIMEOUT_S = 300.0  # s per request: a long multimodal turn on a busy server
NO_SPEECH_NOTE = "no speech from this server: it returned text only"
BAD_SPEECH_NOTE = "some of the server's speech could not be decoded and was dropped"


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
    ``stream=False`` asks for whole responses (set by itself when a server refuses to
    stream, as vLLM-Omni 0.12 did).
    """

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, stream: bool = True):  # fmt: skip
        import httpx

        base_url = base_url.rstrip("/")
        self.base_url = base_url if base_url.endswith("/v1") else base_url + "/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self._model = model
        self.speech = True  # asked for; whether it comes depends on the server
        self.stream = bool(stream)  # server-sent events, else one response per turn

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


# ------------------------------------------------------------------ the session


class RemoteSession(Conversation):
    """A conversation on a `RemoteEngine`: the public API of `carellm.session.Session`."""

    def __init__(self, engine: RemoteEngine, options):
        self.engine = engine
        self.options = options
        self._history: list[_Exchange] = []

    def _request_body(self, parts: list[dict], report: bool, *, stream: bool | None = None,
                      speech: bool | None = None, audio_format: str = "wav") -> dict:  # fmt: skip
        opts = self.options
        messages = [{"role": "system", "content": system_prompt(opts.persona, opts.language)}]
        for i, e in enumerate(self._history):
            recent = i >= len(self._history) - MEDIA_HISTORY_TURNS and e.turn.video is None
            content = e.parts if recent else text_only(e.parts, e.turn)
            messages += [{"role": "user", "content": content},
                         {"role": "assistant", "content": e.reply.text}]  # fmt: skip
        messages.append({"role": "user", "content": parts})
        body = {"model": self.engine.model, "messages": messages,
                "stream": self.engine.stream if stream is None else stream,
                "max_tokens": opts.max_new_tokens, "temperature": opts.persona.temperature,
                "top_p": opts.persona.top_p, "persona": opts.persona.name, "report": report}  # fmt: skip
        if opts.seed is not None:
            body["seed"] = opts.seed
        if opts.language:
            body["language"] = opts.language
        if opts.region:
            body["region"] = opts.region
        if opts.speech if speech is None else speech:
            body["modalities"] = ["text", "audio"]  # vLLM-Omni's default for Qwen-Omni too
            body["audio"] = {"voice": opts.voice, "format": audio_format}  # OpenAI, carellm
            body["speaker"] = opts.voice  # vLLM-Omni reads the talker's voice here
        else:
            body["modalities"] = ["text"]  # vLLM-Omni would otherwise run the talker too
        return body

    def _send(self, body: dict) -> Iterator[dict]:
        """The server's response objects: stream chunks until ``[DONE]``, or one body.

        Raises `_Refused` (before anything is yielded) when the status is not 200."""
        import httpx

        client = self.engine.client
        try:
            if not body["stream"]:
                r = client.post("/chat/completions", json=body)
                if r.status_code != 200:
                    raise _Refused(r.status_code, _error_message(r))
                yield _checked(_json(r.text))
                return
            with client.stream("POST", "/chat/completions", json=body) as r:
                if r.status_code != 200:
                    r.read()
                    raise _Refused(r.status_code, _error_message(r))
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    yield _checked(_json(payload))
        except httpx.HTTPError as e:
            raise RemoteError(f"cannot reach {self.engine.base_url} ({e}); is it running?") from e

    def _responses(self, parts: list[dict], report: bool, run: _RemoteTurn) -> Iterator[dict]:
        """Send the turn; when the server refuses something it cannot do (streaming,
        speech, WAV while streaming), ask again without it and say so in the notes."""
        want = {"stream": self.engine.stream, "speech": self.options.speech, "audio_format": "wav"}
        for _ in range(len(want) + 1):
            run.audio_format = want["audio_format"]
            try:
                yield from self._send(self._request_body(parts, report, **want))
                if want["stream"] != self.engine.stream:
                    self.engine.stream = False  # it answered whole: remember for this server
                return
            except _Refused as e:
                change = _fallback(e, want)
                if change is None:
                    raise RemoteError(e.describe(self.engine.base_url)) from None
                key, value, note = change
                logger.warning("%s refused %s=%s (%s); asking with %s", self.engine.base_url,
                               key, want[key], e.message, value)  # fmt: skip
                want[key] = value
                if note:
                    run.notes.append(note)
        raise RemoteError(f"{self.engine.base_url} refused every form of the request")

    def stream(self, turn, report: bool = True) -> Iterator[object]:
        """Yield Assessment, TextDelta and AudioChunk events, then Final(reply)."""
        from carellm.turn import prepare

        start = time.perf_counter()
        prepared = prepare(turn)  # InputError before anything is sent
        parts = content_parts(turn, prepared)
        run = _RemoteTurn(self, prepared, report, start)
        yield from run.events(self._responses(parts, report, run))
        self._history.append(_Exchange(prepared, run.reply, parts))


class _Refused(Exception):
    """The server answered a request with an error status (nothing was yielded yet)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    def describe(self, base_url: str) -> str:
        hints = {401: "check api_key", 403: "check api_key", 413: "send smaller media",
                 404: "check model= (GET /v1/models lists the served names) and base_url",
                 429: "the server is busy; retry later", 503: "the server is busy; retry later"}  # fmt: skip
        hint = hints.get(self.status, "see the server's log" if self.status >= 500 else "")
        message = self.message.rstrip(". ") if hint else self.message
        return f"{base_url} answered {self.status}: {message}" + (f"; {hint}" if hint else "")


def _fallback(e: _Refused, want: dict) -> tuple[str, object, str | None] | None:
    """What to ask without after a refusal: (key, new value, note for the reply) or None."""
    message = e.message.lower()
    if want["speech"] and "modalit" in message:  # vLLM-Omni: "Unsupported output modalities"
        return "speech", False, f"no speech: the server cannot produce audio ({e.message})"
    if want["speech"] and want["audio_format"] != "pcm16" and "pcm16" in message:
        return "audio_format", "pcm16", None  # OpenAI streams speech as pcm16 only
    if want["stream"] and ("stream" in message or e.status in (500, 501)):
        return "stream", False, None  # vLLM-Omni <= 0.12: "Not support streaming output now."
    return None


def _json(text: str) -> dict:
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise RemoteError(f"the server sent something that is not JSON: {text[:120]!r}") from e
    if not isinstance(obj, dict):
        raise RemoteError(f"the server sent a {type(obj).__name__}, not a chat-completion object")
    return obj


def _checked(obj: dict) -> dict:
    """The object, unless it is an error (OpenAI's ``error`` or vLLM's ``object: error``)."""
    if "error" in obj or obj.get("object") == "error":
        raise RemoteError(f"the server failed mid-reply: {_error_message(obj)}")
    return obj


class _RemoteTurn:
    """The state of one remote turn: text, speech, server extension, notes."""

    def __init__(self, session: RemoteSession, prepared, report: bool, start: float):
        self.session, self.prepared, self.report, self.start = session, prepared, report, start
        self.rules = safety.assess(prepared.text or "")
        self.text, self.audio = "", []
        self.text_source = ""  # "content" or "transcript": whichever the server uses
        self.audio_format = "wav"  # the audio.format of the request being answered
        self.notes: list[str] = []  # what this turn could not do, for Reply.notes
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

    def events(self, responses: Iterator[dict]) -> Iterator[object]:
        """Events from the server's response objects (stream chunks or whole bodies)."""
        for obj in responses:
            for piece in remote_wire.pieces(obj, self.audio_format):
                yield from self._take(piece)
        if self.safety is None:
            yield self._assessment(self.server_ext)
        yield from self._finish()

    def _take(self, piece) -> Iterator[object]:
        from carellm.reply import AudioChunk, TextDelta

        if piece.ext is not None:
            self.server_ext.update(piece.ext)
            if self.safety is None and (piece.ext.get("emotion") or piece.ext.get("safety")):
                yield self._assessment(piece.ext)
        text = self._new_text(piece)
        if text:
            if self.safety is None:
                yield self._assessment({})
            self.text += text
            yield TextDelta(text)
        if piece.audio is not None:
            if self.safety is None:  # speech can come before any text (vLLM-Omni async chunk)
                yield self._assessment({})
            self.audio.append(piece.audio)
            yield AudioChunk(piece.audio, OUTPUT_RATE)
        if piece.bad_audio:
            logger.warning("dropped speech the server sent: %s", piece.bad_audio)
            if BAD_SPEECH_NOTE not in self.notes:
                self.notes.append(BAD_SPEECH_NOTE)

    def _new_text(self, piece) -> str:
        """Content text; OpenAI's audio transcript only when the server sends no content."""
        if piece.text and self.text_source != "transcript":
            self.text_source = "content"
            return piece.text
        if piece.transcript and self.text_source != "content":
            self.text_source = "transcript"
            return piece.transcript
        return ""

    def _finish(self) -> Iterator[object]:
        from carellm.assessment import escalation_for
        from carellm.reply import EscalationDelta, Final

        escalation = escalation_for(self.safety, self.session.options.region)
        text = self.text.strip()
        if escalation and escalation not in text:  # carellm serve escalates already
            yield EscalationDelta("\n\n" + escalation)
            text = (text + "\n\n" + escalation).strip()
        notes = list(self.server_ext.get("notes") or ()) + self.notes
        if not self.text.strip():
            notes.append("the server returned no text")
        if self.session.options.speech and not self.audio and not notes:
            notes.append(NO_SPEECH_NOTE)
        server = self.server_ext.get("timings") or {}
        timings = {f"server_{k}": v for k, v in server.items()}  # as the server measured them
        timings["total"] = time.perf_counter() - self.start  # here, network included
        model_text = self.server_ext.get("model_text", self.text.strip())
        self.reply = _reply_class()(
            text=text, audio=np.concatenate(self.audio) if self.audio else None,
            sample_rate=OUTPUT_RATE, emotion=self.emotion, safety=self.safety, timings=timings,
            model_text=model_text, escalated=bool(escalation) or bool(self.server_ext.get("escalated")),
            notes=tuple(notes),
        )  # fmt: skip
        yield Final(self.reply)


def _error_message(source) -> str:
    """The message of an error body: OpenAI's ``{"error": {"message"}}``, vLLM's older
    ``{"object": "error", "message"}``, FastAPI's ``{"detail"}``, else the raw text."""
    try:
        body = source if isinstance(source, dict) else source.json()
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)[:500]
        return str(error)[:500]
    except Exception:
        return (getattr(source, "text", "") or str(source)).strip()[:300]
