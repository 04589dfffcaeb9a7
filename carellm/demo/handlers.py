"""The demo's event handlers: one browser session's state and what each button does.

`ChatState` lives in a ``gr.State`` (one per browser tab, created on the first turn);
`Handlers` holds only the shared engine and session options, never a conversation.
`Handlers.respond` is a generator: it yields a tuple in `OUTPUTS` order each time the
chat, the emotion panel, the banner or the spoken reply changes.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from carellm.demo import views
from carellm.demo.spaces import on_gpu
from carellm.errors import CareLLMError, InputError
from carellm.media.audio import wav_bytes
from carellm.reply import Assessment, AudioChunk, Final, TextDelta
from carellm.turn import Turn

logger = logging.getLogger(__name__)

# Output slots of `respond`, in order (app.py binds a component to each name).
OUTPUTS = ("state", "chat", "speech", "emotion", "trajectory", "trajectory_caption",
           "banner", "status", "text", "audio", "video", "image")  # fmt: skip
SKIP = {"__type__": "update"}  # gr.skip(): leave the component as it is


@dataclass
class ChatState:
    """One browser session: its Session, the chat as shown, and the latest crisis."""

    session: object = None  # carellm.Session, created on the first turn
    messages: list = field(default_factory=list)  # Chatbot role/content dicts
    crisis: object = None  # SafetyAssessment of the last high/imminent turn, until Reset


def run_turn(session, turn: Turn):
    """The GPU part of a turn: the session's event stream (wrapped for ZeroGPU)."""
    yield from session.stream(turn)


def attachments(audio, video, image) -> list[str]:
    named = (("🎤", audio), ("🎬", video), ("🖼️", image))
    return [f"{icon} {Path(x).name if isinstance(x, (str, Path)) else 'attachment'}"
            for icon, x in named if x is not None]  # fmt: skip


def _banner(safety) -> dict:
    return {"__type__": "update", "value": views.crisis_banner(safety),
            "visible": views.crisis_visible(safety)}  # fmt: skip


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

    # -- one turn ----------------------------------------------------------------------
    def respond(self, text, audio, video, image, persona, voice, speech, state):
        """Run one turn; yields `OUTPUTS` tuples as the reply streams in."""
        state = state if isinstance(state, ChatState) else ChatState()
        turn = Turn(text=text or None, audio=audio, video=video, image=image or None)
        try:
            session = self.session_for(state, persona, voice, speech)
            events = self._run_turn(session, turn)
            first = next(events)  # media are decoded and checked before this returns
        except CareLLMError as e:
            yield self._refused(state, e, text, audio, video, image)
            return
        user = {"role": "user", "content": views.user_message(text or "", attachments(audio, video, image))}  # fmt: skip
        shown = {"role": "assistant", "content": ""}
        view = self._view(state, chat=[*state.messages, user, shown], text="", audio=None,
                          video=None, image=None)  # fmt: skip
        try:
            yield from self._stream(state, session, first, events, user, shown, view)
        except Exception as e:  # the Session kept its history: show the chat as it was
            logger.exception("turn failed")
            message = str(e) if isinstance(e, CareLLMError) else "the model failed on this turn (see the server log)"  # fmt: skip
            yield self._pack(self._view(state, status=views.error_line(message)))

    def _stream(self, state, session, first, events, user, shown, view):
        for event in self._chain(first, events):
            view["speech"] = None
            if isinstance(event, Assessment):
                view["emotion"] = views.emotion_panel(event.emotion, event.safety)
                if views.crisis_visible(event.safety):
                    state.crisis = event.safety
                    view["banner"] = _banner(event.safety)
            elif isinstance(event, TextDelta):
                shown["content"] += event.text
            elif isinstance(event, AudioChunk):
                view["speech"] = wav_bytes(event.audio, event.sample_rate)
            elif isinstance(event, Final):
                reply = event.reply
                shown["content"] = reply.text
                report = {"role": "assistant", "content": views.report_message(reply.emotion, reply.safety),
                          "metadata": {"title": "Emotion report", "status": "done"}}  # fmt: skip
                state.messages += [user, shown, report]
                view["chat"] = list(state.messages)
                reports = session.trajectory()
                view["trajectory"] = views.trajectory_frame(reports)
                view["trajectory_caption"] = views.trajectory_caption(reports)
            view["state"] = state
            yield self._pack(view)

    @staticmethod
    def _chain(first, events):
        yield first
        yield from events

    def _refused(self, state, error, text, audio, video, image) -> tuple:
        """Outputs after an InputError: a warning, text kept, the faulty upload removed."""
        _warn(str(error))
        field_name = getattr(error, "field", "")
        kept = {"audio": audio, "video": video, "image": image}
        if field_name in kept:
            kept[field_name] = None
        elif isinstance(error, InputError) and field_name != "text":
            kept = dict.fromkeys(kept)  # cannot tell which upload: clear them all
        return self._pack(self._view(state, status=views.error_line(str(error)), text=text, **kept))

    # -- buttons -------------------------------------------------------------------------
    def reset(self, state):
        """Forget the conversation (the tab keeps its Session object and settings)."""
        state = state if isinstance(state, ChatState) else ChatState()
        if state.session is not None:
            state.session.reset()
        state.messages, state.crisis = [], None
        view = self._view(state, status="Conversation cleared.", text="", audio=None,
                          video=None, image=None)  # fmt: skip
        return self._pack(view)

    def export(self, state):
        """Zip of session.json, trajectory.csv and WAVs in a new temp folder; None if empty."""
        session = getattr(state, "session", None)
        if session is None or not session.history:
            _warn("Nothing to export yet: send a message first.")
            return None
        folder = Path(tempfile.mkdtemp(prefix="carellm-export-"))
        session.export(folder / "session")
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
            "text": SKIP, "audio": SKIP, "video": SKIP, "image": SKIP,
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
