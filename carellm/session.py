"""A counseling conversation: history, turns, streaming, export.

`Session.stream(turn)` is the one code path; `respond` consumes it. History is only
appended when a turn completes, so a turn that fails (bad input, an error in the
model) leaves the conversation exactly as it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from carellm import context, generation, speech
from carellm.assessment import assess_transcript, assess_turn, escalation_for, transcribe
from carellm.conversation import Conversation, Exchange, SessionOptions, check_language
from carellm.errors import InputError
from carellm.prompts import build_inputs, check_voice, get_persona, system_prompt
from carellm.reply import (
    OUTPUT_RATE,
    Assessment,
    AudioChunk,
    EscalationDelta,
    Final,
    Reply,
    TextDelta,
)
from carellm.turn import PreparedTurn, Turn, prepare
from carellm.worker import TurnCancelled, TurnWorker, stop_points, worker_stream

logger = logging.getLogger(__name__)

CONTEXT_BUDGET = 6000  # tokens of history + current turn before trimming starts
TRIM_TO = 0.75  # over the budget, history is cut in one block down to this share of it
CURRENT_ESTIMATE = 400  # tokens added to the current turn's text for its media (a guess)


def check_speech(speech: bool, engine) -> bool:
    if speech and not engine.speech:
        raise InputError("speech", "this engine was loaded without a talker; load with speech=True")
    return bool(speech)


class Stopwatch:
    """Accumulates seconds per stage name, and the turn's token counts."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.tokens: dict[str, int] = {}  # "prompt" (read by the thinker), "completion"

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now


@dataclass(frozen=True)
class _Finished:
    """A turn's last item from its worker: the reply and what the history keeps of it."""

    reply: Reply
    media_tokens: int  # placeholder tokens of the turn's media (context-budget trimming)
    context: context.Context | None  # the thinker's cache for the next turn, or None


def stream_in_worker(session, turn: Turn, report: bool, *, cancel=None, points=()):
    """The stream of a session whose ``_run(prepared, report, clock, start)`` yields its
    events and ends with Final: the turn is prepared here (a bad input raises before any
    model work), then run in a `TurnWorker` that holds the engine lock, so any thread may
    resume, close or drop the stream; closing it ends the turn. Used by the llama.cpp and
    Qwen3-Omni sessions (`Session.stream` also keeps its history in the reader)."""
    clock = Stopwatch()
    start = time.perf_counter()
    prepared = (
        turn if isinstance(turn, PreparedTurn) else prepare(turn, session.engine.media_limits)
    )
    clock.add("media", start)
    yield from worker_stream(
        session.engine.lock, partial(session._run, prepared, report, clock, start),
        on_queued=partial(clock.add, "queue"), points=points, cancel=cancel,
    )  # fmt: skip


class Session(Conversation):
    """An independent conversation on a shared `Engine` (see `Engine.session`)."""

    def __init__(self, engine, *, persona="counselor", voice="Chelsie", language=None,
                 speech=None, seed=None, max_new_tokens=256, region=None,
                 context_budget=CONTEXT_BUDGET):  # fmt: skip
        self.engine = engine
        self.options = SessionOptions(
            persona=get_persona(persona), voice=check_voice(voice),
            language=check_language(language),
            speech=engine.speech if speech is None else check_speech(speech, engine), seed=seed,
            max_new_tokens=max_new_tokens, region=region,
        )  # fmt: skip
        self.context_budget = int(context_budget)  # tokens; see _history_view
        self._history: list[Exchange] = []
        self._context: context.Context | None = None  # the cache the next turn may reuse

    # -- public API -------------------------------------------------------------------
    def _speech_setting(self, speech) -> bool:
        return check_speech(speech, self.engine)  # this engine must have a talker

    def add_exchange(self, turn, reply_text: str, media_tokens: int = 0) -> None:
        """Put an earlier (user turn, assistant text) pair into the history without running
        the model, e.g. a conversation replayed from a client or a dataset."""
        prepared = turn if isinstance(turn, PreparedTurn) else prepare(turn)
        reply = Reply(reply_text, None, OUTPUT_RATE, None, None, {}, model_text=reply_text)
        self._remember(prepared, reply, media_tokens)

    # -- the turn -----------------------------------------------------------------------
    def stream(
        self, turn: Turn, report: bool = True, *, cancel: threading.Event | None = None
    ) -> Iterator[object]:
        """Yield Assessment, TextDelta and AudioChunk events, then Final(reply).

        The model work runs in a worker thread that holds the engine lock (see
        `TurnWorker`), so any thread may resume, close or drop this generator.
        Closing or dropping it cancels the turn: the model is freed at its next step (a
        reply token, a speech code) and the history is left unchanged. Setting
        ``cancel`` does the same from any thread, even while a reader waits for the next
        event (a server whose client went away).
        """
        clock = Stopwatch()
        t = time.perf_counter()
        # InputError before anything else happens; a server may pass an already prepared turn
        prepared = (
            turn if isinstance(turn, PreparedTurn) else prepare(turn, self.engine.media_limits)
        )
        clock.add("media", t)
        worker = TurnWorker(
            self.engine.lock, partial(self._run, prepared, report, clock, t),
            on_queued=partial(clock.add, "queue"), points=stop_points(self.engine), cancel=cancel,
        )  # fmt: skip
        try:
            while (item := worker.next()) is not None:
                if isinstance(item, _Finished):
                    self._remember(prepared, item.reply, item.media_tokens)
                    self._context = item.context
                    item = Final(item.reply)
                yield item
        finally:
            worker.cancel.set()  # a no-op once the turn is over

    def _run(self, prepared, report, clock, start):
        """The model work of one turn (runs in the `TurnWorker` thread, lock held)."""
        opts, engine = self.options, self.engine
        t = time.perf_counter()
        history = self._history_view(prepared)
        inputs = build_inputs(engine, system_prompt(opts.persona, opts.language), history, prepared)
        t = clock.add("media", t)
        # the held cache is handed over for this turn; a new one is kept only if it completes
        held, self._context = self._context, None
        pre, positions, media, ran = context.prefill(
            engine.thinker, inputs.tensors, held, keep_hidden=opts.speech,
            use_audio_in_video=inputs.use_audio_in_video,
        )  # fmt: skip
        t = clock.add("prefill", t)
        emotion, safety, note = assess_turn(engine, pre, prepared, report=report)
        t = clock.add("report", t)
        yield Assessment(emotion, safety)
        escalation = escalation_for(safety, opts.region)
        reply_text, audio, fed = "", [], ([], [])
        for event in self._reply_events(pre, note, clock, escalation, fed):
            if isinstance(event, AudioChunk):
                audio.append(event.audio)
            elif not isinstance(event, EscalationDelta):
                reply_text += event.text
            yield event
        heard = None
        if prepared.audio or prepared.use_audio_in_video:
            heard, safety, late = yield from self._hear(
                pre, prepared, emotion, safety, escalation, clock
            )
            if late:
                escalation = late
                for chunk in self._speak_escalation(pre, late, clock):
                    audio.append(chunk.audio)
                    yield chunk
        clock.seconds["total"] = time.perf_counter() - start
        timings = dict(clock.seconds, prefill_tokens=ran)  # tokens the thinker ran to prefill
        reply = Reply(
            text=reply_text.strip() + ("\n\n" + escalation if escalation else ""),
            audio=np.concatenate(audio) if audio else (np.zeros(0, np.float32) if opts.speech else None),
            sample_rate=OUTPUT_RATE, emotion=emotion, safety=safety,
            timings=timings, model_text=reply_text.strip(), escalated=bool(escalation),
            prompt_tokens=clock.tokens["prompt"], completion_tokens=clock.tokens["completion"],
            transcript=heard,
        )  # fmt: skip
        yield _Finished(reply, inputs.media_tokens, self._keep(pre, positions, media, fed))

    def _keep(self, pre, positions, media, fed) -> context.Context | None:
        """The turn's cache as the next turn's context: prompt + the reply tokens fed after
        it (when nothing rewound them), and their states when speech is on. None when it
        holds more than `held_limit` tokens, which bounds its memory."""
        ids, hidden = fed
        states = torch.cat(hidden, dim=1) if hidden and pre.hidden is not None else None
        held = context.keep(pre, positions, media, ids, states)
        return held if held.length <= self.held_limit() else None

    def held_limit(self) -> int:
        """Most tokens a kept context may hold: the system prompt, the context budget, one
        reply and its opening (with a crisis note)."""
        opts = self.options
        system = len(self.engine.encode(system_prompt(opts.persona, opts.language)))
        return system + self.context_budget + opts.max_new_tokens + 128

    def _reply_events(self, pre, note: str, clock: Stopwatch, escalation: str = "", fed=None):
        """Decode the reply on the prefill's cache and speak it while it grows: one talker
        run per reply, fed each token's state (`speech.SpeechStream`, a worker thread),
        audio yielded between text deltas as chunks finish; then append the crisis
        escalation (if any), spoken too: its tokens are fed through the thinker after the
        reply so the talker gets the same kind of input. ``clock["speech"]`` is the time
        spent waiting for audio after the text was complete (the rest overlaps decode).
        ``fed`` (ids, states) collects the tokens fed to the thinker after the prompt and,
        with speech, their states (what the next turn's context keeps)."""
        engine, opts = self.engine, self.options
        fed_ids, fed_hidden = fed if fed is not None else ([], [])
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
        fed_ids += suffix_ids
        if opts.speech:
            fed_hidden.append(next(steps))
        voice = self._speak(pre, suffix_ids, fed_hidden[-1]) if opts.speech else None
        try:
            t = time.perf_counter()
            tokens, text = [], ""
            for step in steps:
                tokens.append(step.token)
                fed_ids.append(step.token)
                if voice:
                    fed_hidden.append(step.hidden)
                    voice.push(step.token, step.hidden)
                new = engine.tokenizer.decode(tokens, skip_special_tokens=True)
                if new.endswith("\ufffd"):
                    continue  # an incomplete UTF-8 character: wait for the next token
                delta, text = new[len(text) :], new
                t = clock.add("decode", t)
                if delta:
                    yield TextDelta(delta)
                if voice:
                    yield from (AudioChunk(a, OUTPUT_RATE) for a in voice.ready())
                t = time.perf_counter()
            clock.add("decode", t)
            clock.tokens.update(prompt=pre.length + len(suffix_ids), completion=len(tokens))
            if escalation:
                extra = "\n\n" + escalation
                yield EscalationDelta(extra)
                if voice:
                    ids = engine.encode(extra)
                    hidden = generation.force(engine.thinker, pre, ids)
                    fed_ids += ids
                    fed_hidden.append(hidden)
                    for i, token in enumerate(ids):
                        voice.push(token, hidden[:, i : i + 1])
            if voice:
                t = time.perf_counter()
                for audio in voice.finish():
                    t = clock.add("speech", t)
                    yield AudioChunk(audio, OUTPUT_RATE)
                    t = time.perf_counter()
                clock.add("speech", t)
        finally:
            if voice:
                voice.cancel()  # a stream closed early must not leave the talker running

    def _hear(self, pre, prepared, emotion, safety, escalation: str, clock: Stopwatch):
        """Transcribe the turn's speech after the reply (the reply never waits for it) and run
        the crisis rules on it. A crisis heard only in the voice still escalates in this turn:
        an updated `Assessment` and the escalation text are yielded here, and the returned
        escalation is spoken by the caller. Returns (transcript, safety, new escalation)."""
        t = time.perf_counter()
        try:
            heard = transcribe(self.engine, pre) or None
        except Exception:  # never lose the turn over the transcript: the other signals stand
            logger.exception("transcription failed; safety uses the text and model signals")
            return None, safety, ""
        finally:
            clock.add("transcript", t)
        updated = assess_transcript(safety, heard, typed=bool(prepared.text))
        if updated.signals.get("transcript") is None:
            return heard, safety, ""
        late = "" if escalation else escalation_for(updated, self.options.region)
        if updated.level != safety.level or updated.signals != safety.signals:
            yield Assessment(emotion, updated)
        if late:
            yield EscalationDelta("\n\n" + late)
        return heard, updated, late

    def _speak_escalation(self, pre, escalation: str, clock):
        """The late escalation, spoken after the transcript: fed through the thinker right
        after the prompt (the cache was rewound there) as an assistant turn of its own,
        with a talker run of its own."""
        if not self.options.speech:
            return
        opening = self.engine.encode("<|im_start|>assistant\n")
        ids = self.engine.encode("\n\n" + escalation)
        states = generation.force(self.engine.thinker, pre, opening + ids)
        n = len(opening)
        voice = self._speak(pre, opening, states[:, :n])
        try:
            for i, token in enumerate(ids):
                voice.push(token, states[:, n + i : n + i + 1])
            t = time.perf_counter()
            for audio in voice.finish():
                yield AudioChunk(audio, OUTPUT_RATE)
            clock.add("speech", t)
        finally:
            voice.cancel()
            context.rewind(pre)

    def _speak(self, pre, suffix_ids, suffix_hidden) -> speech.SpeechStream:
        """Start the reply's talker + token2wav on the prompt (prefill + reply suffix)."""
        opts = self.options
        seed = None if opts.seed is None else opts.seed + 7919 * len(self._history)
        prompt_ids = torch.cat(
            [pre.input_ids, torch.tensor([suffix_ids], device=pre.input_ids.device)], dim=1
        )
        prompt_hidden = torch.cat([pre.hidden, suffix_hidden], dim=1)
        settings = speech.settings_for(self.engine, opts.voice)
        return speech.SpeechStream(self.engine.model, prompt_ids, prompt_hidden, settings, seed)

    # -- history --------------------------------------------------------------------------
    def _history_view(self, current: PreparedTurn) -> list[tuple[PreparedTurn, str, bool]]:
        """Past exchanges that fit the context budget, as (turn, reply text, keep media).

        The view keeps a stable prefix from turn to turn, so the thinker's cache serves the
        next turn (`carellm.context`): past media stay while the budget allows (video is
        never shown again), and when the prompt would exceed the budget the oldest media,
        then the oldest turns, are dropped in one block down to ``TRIM_TO`` of it, so the
        cut moves rarely. The cut is replayed from the first turn on, which makes the view
        a function of the history, the current turn and the budget.
        """
        past, budget = self._history, self.context_budget
        media_cut = turn_cut = 0  # exchanges before these lose their media / are dropped
        for n in range(len(past) + 1):
            turn = current if n == len(past) else past[n].turn
            now = len(self.engine.encode(turn.text)) + CURRENT_ESTIMATE
            media_cut, turn_cut = _cut(past[:n], now, media_cut, turn_cut, budget)
        return [
            (e.turn, e.reply.text, i >= media_cut and e.turn.video is None)
            for i, e in enumerate(past)
            if i >= turn_cut
        ]

    def _remember(self, prepared: PreparedTurn, reply: Reply, media_tokens: int = 0) -> None:
        tokens = len(self.engine.encode(prepared.text)) + len(self.engine.encode(reply.text)) + 10
        self._history.append(Exchange(prepared, reply, tokens, media_tokens))


def _cut(past: list[Exchange], now: int, media_cut: int, turn_cut: int, budget: int):
    """The (media, turn) cut for a prompt of ``past`` plus a current turn of ``now``
    tokens: unchanged while it fits ``budget``, else moved on in one block."""

    def media(i: int) -> int:
        return past[i].media_tokens if i >= media_cut and past[i].turn.video is None else 0

    total = now + sum(past[i].tokens + media(i) for i in range(turn_cut, len(past)))
    if total <= budget:
        return media_cut, turn_cut
    while total > TRIM_TO * budget and media_cut < len(past):
        total -= media(media_cut) if media_cut >= turn_cut else 0
        media_cut += 1
    while total > TRIM_TO * budget and turn_cut < len(past):
        total -= past[turn_cut].tokens
        turn_cut += 1
    return media_cut, turn_cut


__all__ = ["Session", "Stopwatch", "TurnCancelled", "TurnWorker"]
