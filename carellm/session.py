"""A counseling conversation: history, turns, streaming, export.

`Session.stream(turn)` is the one code path; `respond` consumes it. History is only
appended when a turn completes, so a turn that fails (bad input, an error in the
model) leaves the conversation exactly as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from carellm import generation, speech
from carellm.errors import InputError
from carellm.prompts import check_voice, get_persona, system_prompt
from carellm.turn import PreparedTurn, Stopwatch, Turn, build_inputs, prepare

logger = logging.getLogger(__name__)

CONTEXT_BUDGET = 6000  # tokens of history + current turn before trimming starts
MEDIA_HISTORY_TURNS = 2  # past turns whose audio/image is re-encoded; older media is dropped
SAMPLE_RATE = speech.OUTPUT_RATE  # Hz of Reply.audio


@dataclass(frozen=True)
class Reply:
    """The assistant's answer to one turn."""

    text: str  # what the user reads (model text, plus the crisis escalation if any)
    audio: np.ndarray | None  # float32 mono at `sample_rate`, None without speech
    sample_rate: int
    emotion: object  # carellm.emotion.EmotionReport, or None when report=False
    safety: object  # carellm.safety.SafetyAssessment of this turn
    timings: dict  # seconds per stage: media, prefill, report, decode, speech, total
    model_text: str = ""  # the model's own words, before any escalation was added
    escalated: bool = False  # a crisis escalation with hotline resources was added
    notes: tuple[str, ...] = ()  # what this backend could not do (e.g. no speech)


@dataclass(frozen=True)
class TextDelta:
    text: str  # new characters of the reply


@dataclass(frozen=True)
class EscalationDelta(TextDelta):
    """The crisis escalation appended to the reply (also a TextDelta for simple UIs)."""


@dataclass(frozen=True)
class AudioChunk:
    audio: np.ndarray  # float32 mono, one sentence
    sample_rate: int


@dataclass(frozen=True)
class Assessment:
    """Emitted before the reply: the emotion report and safety of the turn."""

    emotion: object
    safety: object


@dataclass(frozen=True)
class Final:
    reply: Reply


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


class Session(Conversation):
    """An independent conversation on a shared `Engine` (see `Engine.session`)."""

    def __init__(self, engine, *, persona="counselor", voice="Chelsie", language=None,
                 speech=None, seed=None, max_new_tokens=256, region=None,
                 context_budget=CONTEXT_BUDGET):  # fmt: skip
        if language not in (None, "zh", "en"):
            raise InputError(
                "language", f"unknown language {language!r}; use 'zh', 'en' or None (auto)"
            )
        if speech and not engine.speech:
            raise InputError(
                "speech", "this engine was loaded without a talker; load with speech=True"
            )
        self.engine = engine
        self.options = SessionOptions(
            persona=get_persona(persona), voice=check_voice(voice), language=language,
            speech=engine.speech if speech is None else bool(speech), seed=seed,
            max_new_tokens=max_new_tokens, region=region,
        )  # fmt: skip
        self.context_budget = int(context_budget)  # tokens; see _history_view
        self._history: list[Exchange] = []

    # -- public API -------------------------------------------------------------------
    def configure(self, *, persona=None, voice=None, language=..., speech=None) -> None:
        """Change persona, voice, language or speech from the next turn on."""
        opts = self.options
        if persona is not None:
            opts.persona = get_persona(persona)
        if voice is not None:
            opts.voice = check_voice(voice)
        if language is not ...:
            if language not in (None, "zh", "en"):
                raise InputError(
                    "language", f"unknown language {language!r}; use 'zh', 'en' or None"
                )
            opts.language = language
        if speech is not None:
            if speech and not self.engine.speech:
                raise InputError(
                    "speech", "this engine was loaded without a talker; load with speech=True"
                )
            opts.speech = bool(speech)

    def add_exchange(self, turn, reply_text: str, media_tokens: int = 0) -> None:
        """Put an earlier (user turn, assistant text) pair into the history without running
        the model, e.g. a conversation replayed from a client or a dataset."""
        prepared = turn if isinstance(turn, PreparedTurn) else prepare(turn)
        reply = Reply(reply_text, None, SAMPLE_RATE, None, None, {}, model_text=reply_text)
        self._remember(prepared, reply, media_tokens)

    # -- the turn -----------------------------------------------------------------------
    def stream(self, turn: Turn, report: bool = True) -> Iterator[object]:
        """Yield Assessment, TextDelta and AudioChunk events, then Final(reply)."""
        clock = Stopwatch()
        start = t = time.perf_counter()
        # InputError before anything else happens; a server may pass an already prepared turn
        prepared = (
            turn if isinstance(turn, PreparedTurn) else prepare(turn, self.engine.media_limits)
        )
        clock.add("media", t)
        with self.engine.lock:
            clock.add("queue", start + clock.seconds["media"])
            yield from self._run(prepared, report, clock, time.perf_counter(), start)

    def _run(self, prepared, report, clock, t, start):
        from carellm.assessment import assess_turn, escalation_for

        opts, engine = self.options, self.engine
        history = self._history_view(prepared)
        inputs = build_inputs(engine, system_prompt(opts.persona, opts.language), history, prepared)
        t = clock.add("media", t)
        pre = generation.prefill(
            engine.thinker, inputs.tensors, keep_hidden=opts.speech,
            use_audio_in_video=inputs.use_audio_in_video,
        )  # fmt: skip
        t = clock.add("prefill", t)
        emotion, safety, note = assess_turn(engine, pre, prepared, report=report)
        t = clock.add("report", t)
        yield Assessment(emotion, safety)
        escalation = escalation_for(safety, opts.region)
        reply_text, audio = "", []
        for event in self._reply_events(pre, note, clock, escalation):
            if isinstance(event, AudioChunk):
                audio.append(event.audio)
            elif not isinstance(event, EscalationDelta):
                reply_text += event.text
            yield event
        clock.seconds["total"] = time.perf_counter() - start
        reply = Reply(
            text=reply_text.strip() + ("\n\n" + escalation if escalation else ""),
            audio=np.concatenate(audio) if audio else (np.zeros(0, np.float32) if opts.speech else None),
            sample_rate=SAMPLE_RATE, emotion=emotion, safety=safety,
            timings=dict(clock.seconds), model_text=reply_text.strip(), escalated=bool(escalation),
        )  # fmt: skip
        self._remember(prepared, reply, inputs.media_tokens)
        yield Final(reply)

    def _reply_events(self, pre, note: str, clock: Stopwatch, escalation: str = ""):
        """Decode the reply on the prefill's cache; speak each finished sentence; then
        append the crisis escalation (if any), spoken too: its tokens are fed through the
        thinker after the reply so the talker gets the same kind of input."""
        engine, opts = self.engine, self.options
        suffix = (
            f"<|im_start|>system\n{note}<|im_end|>\n" if note else ""
        ) + "<|im_start|>assistant\n"
        gen = (
            torch.Generator().manual_seed(opts.seed + len(self._history))
            if opts.seed is not None
            else None
        )
        persona = opts.persona
        sampler = generation.Sampler(
            generation.Sampling(temperature=persona.temperature, top_p=persona.top_p),
            engine.banned_ids, gen,
        )  # fmt: skip
        suffix_ids = engine.encode(suffix)
        steps = generation.decode(
            engine.thinker, pre, suffix_ids, sampler, stop_ids=(engine.im_end, engine.endoftext),
            max_new_tokens=opts.max_new_tokens, keep_hidden=opts.speech,
        )  # fmt: skip
        t = time.perf_counter()
        prompt_hidden = next(steps) if opts.speech else None
        tokens, hidden, text, spoken_upto, spoken_chars = [], [], "", 0, 0
        for step in steps:
            tokens.append(step.token)
            if step.hidden is not None:
                hidden.append(step.hidden)
            new = engine.tokenizer.decode(tokens, skip_special_tokens=True)
            if new.endswith("\ufffd"):
                continue  # an incomplete UTF-8 character: wait for the next token
            delta, text = new[len(text) :], new
            t = clock.add("decode", t)
            if delta:
                yield TextDelta(delta)
            if opts.speech and speech.sentence_complete(text[spoken_chars:]):
                yield from self._speak(
                    pre, suffix_ids, prompt_hidden, tokens, hidden, spoken_upto, clock
                )
                spoken_upto, spoken_chars = len(tokens), len(text)
            t = time.perf_counter()
        clock.add("decode", t)
        if opts.speech and len(tokens) > spoken_upto and text[spoken_chars:].strip():
            yield from self._speak(
                pre, suffix_ids, prompt_hidden, tokens, hidden, spoken_upto, clock
            )
        if escalation:
            extra = "\n\n" + escalation
            yield EscalationDelta(extra)
            if opts.speech:
                ids = engine.encode(extra)
                hidden.append(generation.force(engine.thinker, pre, ids))
                start, tokens = len(tokens), tokens + ids
                yield from self._speak(pre, suffix_ids, prompt_hidden, tokens, hidden, start, clock)

    def _speak(self, pre, suffix_ids, prompt_hidden, tokens, hidden, start, clock):
        t = time.perf_counter()
        engine, opts = self.engine, self.options
        device = pre.input_ids.device
        prompt_ids = torch.cat([pre.input_ids, torch.tensor([suffix_ids], device=device)], dim=1)
        settings = speech.SpeechSettings(voice=opts.voice)
        if engine.talker_eos:
            settings = speech.SpeechSettings(voice=opts.voice, eos_token_ids=engine.talker_eos)
        seed = None if opts.seed is None else opts.seed + 7919 * len(self._history) + start
        wav = speech.speak(
            engine.model, prompt_ids, torch.cat([pre.hidden, prompt_hidden], dim=1),
            tokens[start:], torch.cat(hidden[start:], dim=1), pre.mm_meta, settings, seed,
        )  # fmt: skip
        clock.add("speech", t)
        if wav.size:
            yield AudioChunk(wav, SAMPLE_RATE)

    # -- history --------------------------------------------------------------------------
    def _history_view(self, current: PreparedTurn) -> list[tuple[PreparedTurn, str, bool]]:
        """Past exchanges trimmed to the context budget: oldest media first, then oldest turns."""
        engine = self.engine
        current_tokens = len(engine.encode(current.text)) + 400  # media estimate is added later
        past = list(self._history)
        keep = [
            i >= len(past) - MEDIA_HISTORY_TURNS and e.turn.video is None
            for i, e in enumerate(past)
        ]

        def total() -> int:
            return current_tokens + sum(
                e.tokens + (e.media_tokens if k else 0) for e, k in zip(past, keep)
            )

        while total() > self.context_budget and any(keep):
            keep[keep.index(True)] = False
        while total() > self.context_budget and past:
            past.pop(0)
            keep.pop(0)
        return [(e.turn, e.reply.text, k) for e, k in zip(past, keep)]

    def _remember(self, prepared: PreparedTurn, reply: Reply, media_tokens: int = 0) -> None:
        tokens = len(self.engine.encode(prepared.text)) + len(self.engine.encode(reply.text)) + 10
        self._history.append(Exchange(prepared, reply, tokens, media_tokens))


__all__ = [
    "Assessment",
    "AudioChunk",
    "Final",
    "Reply",
    "Session",
    "TextDelta",
    "Turn",
]
