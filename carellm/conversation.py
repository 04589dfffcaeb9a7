"""What every conversation offers, local (`carellm.session.Session`) or remote
(`carellm.remote.RemoteSession`): options, history, reset, trajectory, respond, export.

Torch-free: the remote backend and UIs use it without loading model code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carellm.errors import InputError
from carellm.reply import Final, Reply
from carellm.turn import PreparedTurn, Turn

LANGUAGES = (None, "zh", "en")  # a session's reply language; None follows the user


def check_language(language: str | None) -> str | None:
    if language not in LANGUAGES:
        raise InputError(
            "language", f"unknown language {language!r}; use 'zh', 'en' or None (auto)"
        )
    return language


@dataclass
class Exchange:
    """One completed turn in the history."""

    turn: PreparedTurn
    reply: Reply
    tokens: int  # text tokens of the user message + reply
    media_tokens: int  # placeholder tokens of its media when re-encoded


@dataclass
class SessionOptions:
    """What a session was opened with (changed through `Session.configure`)."""

    persona: object
    voice: str
    language: str | None
    speech: bool
    seed: int | None
    max_new_tokens: int
    region: str | None = None
    extra: dict = field(default_factory=dict)


class Conversation:
    """What every conversation offers, local or remote: history, reset, trajectory,
    respond (by consuming `stream`) and export. Subclasses define `stream` and keep
    ``self._history`` as a list of records with ``turn`` and ``reply``."""

    _history: list

    def configure(self, *, persona=None, voice=None, language=..., speech=None) -> None:
        """Change persona, voice, language or speech from the next turn on."""
        from carellm.prompts import check_voice, get_persona

        opts = self.options
        if persona is not None:
            opts.persona = get_persona(persona)
        if voice is not None:
            opts.voice = check_voice(voice)
        if language is not ...:
            opts.language = check_language(language)
        if speech is not None:
            opts.speech = self._speech_setting(speech)

    def _speech_setting(self, speech) -> bool:
        """What ``configure(speech=...)`` stores; a backend that cannot speak notes it."""
        return bool(speech)

    @property
    def history(self) -> list[tuple[PreparedTurn, Reply]]:
        """Completed (turn, reply) pairs, oldest first (a copy)."""
        return [(e.turn, e.reply) for e in self._history]

    def reset(self) -> None:
        self._history.clear()

    def trajectory(self) -> list:
        """The emotion report of each turn that has one, oldest first."""
        return [e.reply.emotion for e in self._history if e.reply.emotion is not None]

    def export_trajectory(self, path):
        """Write the per-turn emotion reports as .json or .csv (by suffix); returns the path."""
        from carellm.emotion import write_trajectory

        return write_trajectory(self.trajectory(), path)

    def respond(self, turn: Turn, report: bool = True) -> Reply:
        """Run one turn to completion and return its Reply."""
        final = None
        for event in self.stream(turn, report=report):
            if isinstance(event, Final):
                final = event.reply
        assert final is not None, "stream() always ends with Final"
        return final

    def export(self, path) -> object:
        """Write the session (JSON, trajectory, WAVs) into folder ``path``."""
        from carellm.export import export_session

        return export_session(self, path)
