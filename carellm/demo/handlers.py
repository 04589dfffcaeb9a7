"""The demo's event handlers: one browser session's state and what each button does.

`ChatState` lives in a ``gr.State`` (one per browser tab, or per API client, created on
the first turn); `Handlers` holds only the shared engine and session options, never a
conversation. `Handlers.respond` is a generator: it yields a tuple in `OUTPUTS` order
each time the chat, the emotion panel, the banner or the spoken reply changes.
`Handlers.api_respond` is the same turn for `gradio_client`: one call, one result.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from carellm.demo import views
from carellm.demo.spaces import on_gpu
from carellm.errors import CareLLMError, InputError
from carellm.media.audio import wav_bytes
from carellm.reply import Assessment, AudioChunk, Final, TextDelta
from carellm.turn import Turn

logger = logging.getLogger(__name__)

# Output slots of `respond`, in order (layout binds a component to each name).
OUTPUTS = ("state", "chat", "speech", "emotion", "trajectory", "trajectory_caption",
           "banner", "status", "message", "video", "image")  # fmt: skip
# Output slots of `api_respond` (the /respond API endpoint), in order.
API_OUTPUTS = ("reply", "spoken_reply", "emotion_report", "safety", "transcript", "state")
SKIP = {"__type__": "update"}  # gr.skip(): leave the component as it is
MEDIA_KINDS = ("audio", "image", "video")  # what the message box accepts, by MIME type
ICONS = {"audio": "🎤", "video": "🎬", "image": "🖼️"}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class ChatState:
    """One browser session: its Session, the chat as shown, and the latest crisis."""

    session: object = None  # carellm.Session, created on the first turn
    messages: list = field(default_factory=list)  # Chatbot role/content dicts
    crisis: object = None  # SafetyAssessment of the last high/imminent turn, until Reset
    id: str = field(default_factory=lambda: uuid.uuid4().hex)  # names this conversation in exports
    times: list = field(default_factory=list)  # (sent, replied) ISO-8601 UTC per completed turn


@dataclass
class Pending:
    """The chat bubbles of the turn being streamed."""

    text: str  # what the user typed
    notes: list  # attachment lines, e.g. "🎤 voice.wav"
    sent: str  # ISO-8601 UTC time the turn was sent
    user: dict = field(init=False)  # the user's Chatbot message
    shown: dict = field(init=False)  # the assistant's message, growing as text streams

    def __post_init__(self):
        self.user = {"role": "user", "content": views.user_message(self.text, self.notes)}
        self.shown = {"role": "assistant", "content": ""}


def run_turn(session, turn: Turn):
    """The GPU part of a turn: the session's event stream (wrapped for ZeroGPU)."""
    yield from session.stream(turn)


def kind_of(path) -> str | None:
    """A file's kind from its name's MIME type: "audio", "image", "video" or None."""
    mime = mimetypes.guess_type(str(path))[0] or ""
    kind = mime.split("/")[0]
    return kind if kind in MEDIA_KINDS else None


def collect_media(files, video=None, image=None) -> dict:
    """The turn's {"audio", "video", "image"} paths from the message box's files plus the
    webcam/photo components; at most one of each kind (InputError otherwise)."""
    media = {"audio": None, "video": video, "image": image}
    for path in files or []:
        kind = kind_of(path)
        if kind is None:
            raise InputError("files", f"{Path(path).name} is not audio, an image or a video; "
                                      "attach a voice note, a photo or a video")  # fmt: skip
        if media[kind] is not None:
            raise InputError(kind, f"attach at most one {kind} file per message; remove one")
        media[kind] = path
    return media


def attachments(audio, video, image) -> list[str]:
    named = (("audio", audio), ("video", video), ("image", image))
    return [f"{ICONS[kind]} {Path(x).name if isinstance(x, (str, Path)) else 'attachment'}"
            for kind, x in named if x is not None]  # fmt: skip


def _banner(safety) -> dict:
    return {"__type__": "update", "value": views.crisis_banner(safety),
            "visible": views.crisis_visible(safety)}  # fmt: skip


def _message_parts(message) -> tuple[str, list]:
    """(text, files) of a MultimodalTextbox value (a dict) or of plain text."""
    if isinstance(message, dict):
        return message.get("text") or "", list(message.get("files") or [])
    return message or "", []


class Handlers:
    """Event handlers bound to one engine; every call gets the tab's ChatState."""

    def __init__(self, engine, session_kwargs: dict | None = None):
        self.engine = engine
        self.session_kwargs = dict(session_kwargs or {})
        self._run_turn = on_gpu(run_turn)

    # -- the session -------------------------------------------------------------------
    def session_for(self, state: ChatState, persona: str, voice: str, speech: bool):
        """The tab's Session, created lazily; persona/voice/speech apply from this turn."""
        speech = bool(speech) and self.engine.speech
        if state.session is None:
            kwargs = {"persona": persona, "voice": voice, "speech": speech}
            state.session = self.engine.session(**(self.session_kwargs | kwargs))
        else:
            state.session.configure(persona=persona, voice=voice, speech=speech)
        return state.session

    def _start(self, state, text, media, persona, voice, speech):
        """Validate and start a turn: (session, first event, the rest of the events)."""
        turn = Turn(text=text or None, audio=media["audio"], video=media["video"],
                    image=media["image"] or None)  # fmt: skip
        session = self.session_for(state, persona, voice, speech)
        events = self._run_turn(session, turn)
        return session, next(events), events  # media are decoded and checked by next()

    # -- one turn ----------------------------------------------------------------------
    def respond(self, message, video, image, persona, voice, speech, state):
        """Run one turn; yields `OUTPUTS` tuples as the reply streams in."""
        state = state if isinstance(state, ChatState) else ChatState()
        text, files = _message_parts(message)
        sent = now_iso()
        try:
            media = collect_media(files, video, image)
            session, first, events = self._start(state, text, media, persona, voice, speech)
        except CareLLMError as e:
            yield self._refused(state, e, text, files, video, image)
            return
        pending = Pending(text, attachments(**media), sent)
        view = self._view(state, chat=[*state.messages, pending.user, pending.shown],
                          video=None, image=None, message={"text": "", "files": []})  # fmt: skip
        try:
            for event in self._chain(first, events):
                yield self._pack(self._update(state, session, event, view, pending))
        except Exception as e:  # the Session kept its history: show the chat as it was
            logger.exception("turn failed")
            message = str(e) if isinstance(e, CareLLMError) else "the model failed on this turn (see the server log)"  # fmt: skip
            yield self._pack(self._view(state, status=views.error_line(message)))

    def _update(self, state, session, event, view, pending) -> dict:
        """Apply one stream event to ``view`` (and, on Final, to the tab's state)."""
        view["speech"] = None
        if isinstance(event, Assessment):
            view["emotion"] = views.emotion_panel(event.emotion, event.safety)
            if views.crisis_visible(event.safety):
                state.crisis = event.safety
                view["banner"] = _banner(event.safety)
        elif isinstance(event, TextDelta):
            pending.shown["content"] += event.text
        elif isinstance(event, AudioChunk):
            view["speech"] = wav_bytes(event.audio, event.sample_rate)
        elif isinstance(event, Final):
            self._finish(state, event.reply, pending)
            view["chat"] = list(state.messages)
            reports = session.trajectory()
            view["trajectory"] = views.trajectory_frame(reports)
            view["trajectory_caption"] = views.trajectory_caption(reports)
        view["state"] = state
        return view

    @staticmethod
    def _finish(state, reply, pending) -> None:
        """A completed turn: the chat gains user (with the transcript), reply and report."""
        pending.user["content"] = views.user_message(pending.text, pending.notes, reply.transcript)
        pending.shown["content"] = reply.text
        report = views.report_chat_message(reply.emotion, reply.safety)
        state.messages += [pending.user, pending.shown, report]
        state.times.append((pending.sent, now_iso()))

    @staticmethod
    def _chain(first, events):
        yield first
        yield from events

    def _refused(self, state, error, text, files, video, image) -> tuple:
        """Outputs after an InputError: a warning, text kept, the faulty upload removed."""
        _warn(str(error))
        field_name = getattr(error, "field", "")
        if field_name in MEDIA_KINDS:
            files = [f for f in files if kind_of(f) != field_name]
            video = None if field_name == "video" else video
            image = None if field_name == "image" else image
        elif field_name == "files":
            files = [f for f in files if kind_of(f) is not None]
        elif isinstance(error, InputError) and field_name != "text":
            files, video, image = [], None, None  # cannot tell which upload: clear them all
        message = {"text": text, "files": files}
        view = self._view(state, status=views.error_line(str(error)), message=message,
                          video=video, image=image)  # fmt: skip
        return self._pack(view)

    # -- the API ------------------------------------------------------------------------
    def api_respond(self, text=None, audio=None, image=None, video=None, persona="counselor",
                    voice="Chelsie", speech=True, state=None):  # fmt: skip
        """One turn for API clients: (reply, spoken reply, emotion report, safety,
        transcript, state). The spoken reply is ``(24000, int16 array)``: Gradio writes
        it to a WAV file; None without speech. Bad input raises ``gr.Error``."""
        state = state if isinstance(state, ChatState) else ChatState()
        media = {"audio": audio or None, "image": image or None, "video": video or None}
        sent = now_iso()
        try:
            session, first, events = self._start(state, text, media, persona, voice, speech)
        except CareLLMError as e:
            import gradio as gr

            raise gr.Error(str(e)) from e
        # run the stream to its end (not just to Final) so the session finishes the turn
        reply = [e.reply for e in self._chain(first, events) if isinstance(e, Final)][-1]
        self._finish(state, reply, Pending(text or "", attachments(**media), sent))
        spoken = None
        if reply.audio is not None and reply.audio.size:  # 16-bit PCM, as Gradio writes WAVs
            spoken = (reply.sample_rate, (np.clip(reply.audio, -1, 1) * 32767).astype(np.int16))
        emotion = reply.emotion.to_dict() if reply.emotion is not None else None
        return reply.text, spoken, emotion, reply.safety.to_dict(), reply.transcript or "", state

    # -- buttons -------------------------------------------------------------------------
    def reset(self, state):
        """Forget the conversation (the tab keeps its Session object and settings)."""
        state = state if isinstance(state, ChatState) else ChatState()
        if state.session is not None:
            state.session.reset()
        state.messages, state.crisis, state.times = [], None, []
        state.id = uuid.uuid4().hex  # a new conversation from here on
        view = self._view(state, status="Conversation cleared.", video=None, image=None,
                          message={"text": "", "files": []})  # fmt: skip
        return self._pack(view)

    def export(self, state):
        """Zip of session.json, trajectory.csv and WAVs in a new temp folder; None if empty.

        session.json gains the tab's ``session_id`` and each turn's ``sent_at`` and
        ``replied_at`` (ISO-8601, UTC)."""
        session = getattr(state, "session", None)
        if session is None or not session.history:
            _warn("Nothing to export yet: send a message first.")
            return None
        folder = Path(tempfile.mkdtemp(prefix="carellm-export-"))
        record_path = session.export(folder / "session")
        record = json.loads(Path(record_path).read_text(encoding="utf-8"))
        record["session_id"] = state.id
        for turn, (sent, replied) in zip(record["turns"], state.times):
            turn["sent_at"], turn["replied_at"] = sent, replied
        Path(record_path).write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")  # fmt: skip
        archive = shutil.make_archive(str(folder / "carellm-session"), "zip", folder / "session")
        shutil.rmtree(folder / "session")
        logger.info("exported %d turns to %s", len(session.history), archive)
        return archive

    # -- outputs -------------------------------------------------------------------------
    def _view(self, state: ChatState, **changes) -> dict:
        """Every output, recomputed from the state; ``changes`` override slots."""
        reports = state.session.trajectory() if state.session is not None else []
        last = state.session.history[-1][1] if state.session and state.session.history else None
        view = {
            "state": state, "chat": list(state.messages), "speech": None,
            "emotion": views.emotion_panel(last.emotion, last.safety) if last else views.NO_REPORT,
            "trajectory": views.trajectory_frame(reports),
            "trajectory_caption": views.trajectory_caption(reports),
            "banner": _banner(state.crisis), "status": "",
            "message": SKIP, "video": SKIP, "image": SKIP,
        }  # fmt: skip
        view.update(changes)
        return view

    @staticmethod
    def _pack(view: dict) -> tuple:
        return tuple(view[name] for name in OUTPUTS)


def _warn(message: str) -> None:
    """A toast in the browser (gr.Warning); only a log line outside a Gradio event."""
    logger.warning("%s", message)
    try:
        import gradio as gr

        gr.Warning(message)
    except Exception:  # no Gradio request context (unit tests, scripts)
        pass
