"""A counseling conversation on a `Qwen3Engine`: the `Session` API on Qwen3-Omni.

One turn reads as `carellm.session.Session`'s: the prompt (persona, history trimmed to
the same context budget, media) is prefilled once; the emotion report and the model's
risk signal are scored on that prefill by `carellm.assessment.assess_turn` (candidate
log-probabilities, never generated); crisis rules and escalation are `carellm.safety`'s;
the reply is sampled by `carellm.generation.Sampler` on the prefill's cache. Speech is
Qwen3-Omni's own talker + code2wav, fed by this turn's thinker pass
(`carellm.qwen3.runtime.speak`), in one talker run after the reply text.

Qwen3-Omni keeps speech with a custom system prompt, so the persona *is* the system
prompt: no Qwen2.5 identity sentence in front of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import numpy as np
import torch

from carellm import generation
from carellm.assessment import assess_turn, escalation_for
from carellm.conversation import Conversation, SessionOptions, check_language
from carellm.prompts import QWEN_SPEECH_SENTENCE, get_persona, system_prompt
from carellm.qwen3.engine import build_qwen3_inputs, media_ids
from carellm.qwen3.runtime import TalkerSettings, decode, prefill, speak
from carellm.reply import (
    OUTPUT_RATE,
    Assessment,
    AudioChunk,
    EscalationDelta,
    Final,
    Reply,
    TextDelta,
)
from carellm.session import CONTEXT_BUDGET, Session, Stopwatch, check_speech, stream_in_worker
from carellm.turn import PreparedTurn, Turn

logger = logging.getLogger(__name__)

# What this tier does differently from the Qwen2.5-Omni session (in every Reply.notes).
NOTES = (
    "Qwen3-Omni speech: one talker run after the reply text (audio follows the text)",
    "Qwen3-Omni: no transcript of the user's audio; safety uses the text and model signals",
)


def qwen3_system_prompt(persona, language: str | None = None) -> str:
    """The persona, shared rules and language line, without Qwen2.5's speech sentence."""
    return system_prompt(persona, language).removeprefix(QWEN_SPEECH_SENTENCE).strip()


class Qwen3Session(Conversation):
    """An independent conversation on a shared `Qwen3Engine` (see `Qwen3Engine.session`).

    ``sampling``: the reply's `generation.Sampling` (default: the persona's temperature
    and top-p); ``talker``: `TalkerSettings` for speech (default: Qwen's).
    """

    def __init__(self, engine, *, persona="counselor", voice="Chelsie", language=None,
                 speech=None, seed=None, max_new_tokens=256, region=None,
                 context_budget=CONTEXT_BUDGET, sampling=None, talker=None):  # fmt: skip
        self.engine = engine
        self.options = SessionOptions(
            persona=get_persona(persona), voice=engine.check_voice(voice),
            language=check_language(language),
            speech=engine.speech if speech is None else check_speech(speech, engine), seed=seed,
            max_new_tokens=max_new_tokens, region=region,
        )  # fmt: skip
        self.sampling = sampling  # generation.Sampling or None (the persona's)
        self.talker = talker or TalkerSettings()
        self.context_budget = int(context_budget)  # tokens; see Session._history_view
        self._history = []
        self._cancel = None  # the running turn's cancel Event, if any
        self.last_prompt_ids: list[int] = []  # the thinker's prompt of the last turn (+ suffix)
        self.last_reply_ids: list[int] = []  # the tokens it generated (with its stop token)

    # The history is kept, trimmed and replayed exactly as the transformers Session does.
    _history_view = Session._history_view
    _remember = Session._remember
    add_exchange = Session.add_exchange

    def _speech_setting(self, speech) -> bool:
        return check_speech(speech, self.engine)

    def configure(self, *, persona=None, voice=None, language=..., speech=None) -> None:
        """As `Conversation.configure`, with this checkpoint's voices."""
        if voice is not None:
            voice = self.engine.check_voice(voice)
            self.options.voice = voice
        super().configure(persona=persona, language=language, speech=speech)

    def stream(self, turn: Turn, report: bool = True, *, cancel=None) -> Iterator[object]:
        """Yield Assessment, TextDelta and AudioChunk events, then Final(reply).

        Setting ``cancel`` (a threading.Event, e.g. a server's client went away) ends the
        turn at the next reply token or before speech, with no Final and the history
        unchanged. The model work runs in a worker thread holding the engine lock
        (`TurnWorker`), so any thread may resume, close or drop this stream.
        """
        self._cancel = cancel = cancel if cancel is not None else threading.Event()
        engine = self.engine
        talker = getattr(engine.model, "talker", None)  # stop points: thinker and talker steps
        points = [engine.thinker.model] + ([talker] if talker is not None else [])
        yield from stream_in_worker(self, turn, report, cancel=cancel, points=points)

    def _run(self, prepared: PreparedTurn, report: bool, clock: Stopwatch, start: float):
        engine, opts = self.engine, self.options
        t = time.perf_counter()
        system = qwen3_system_prompt(opts.persona, opts.language)
        inputs = build_qwen3_inputs(engine, system, self._history_view(prepared), prepared)
        t = clock.add("media", t)
        layer = engine.model.config.talker_config.accept_hidden_layer if opts.speech else None
        pre = prefill(engine.thinker, inputs.tensors, use_audio_in_video=inputs.use_audio_in_video,
                      hidden_layer=layer)  # fmt: skip
        t = clock.add("prefill", t)
        emotion, safety, note = assess_turn(engine, pre, prepared, report=report)
        clock.add("report", t)
        yield Assessment(emotion, safety)
        escalation = escalation_for(safety, opts.region)
        suffix = (
            f"<|im_start|>system\n{note}<|im_end|>\n" if note else ""
        ) + "<|im_start|>assistant\n"
        suffix_ids = engine.encode(suffix)
        self.last_prompt_ids = pre.input_ids[0].tolist() + suffix_ids
        tokens, stop = [], []
        text = ""
        for token, delta in self._decode(pre, suffix_ids, clock):
            if self._cancelled():
                return
            if delta is None:
                stop.append(token)
                continue
            tokens.append(token)
            text += delta
            if delta:
                yield TextDelta(delta)
        tail = engine.tokenizer.decode(tokens, skip_special_tokens=True)[len(text) :]
        if tail:  # a reply cut inside a character: show what there is
            text += tail
            yield TextDelta(tail)
        self.last_reply_ids = tokens + stop
        if escalation:
            yield EscalationDelta("\n\n" + escalation)
        audio = None
        if self._cancelled():
            return
        if opts.speech:
            # the stop token is not spoken: Qwen's generate() puts tts_eos right after the text
            spoken = tokens + (engine.encode("\n\n" + escalation) if escalation else [])
            audio = self._speak(pre, suffix_ids, spoken if tokens or escalation else [], clock)
            if audio.size:
                yield AudioChunk(audio, OUTPUT_RATE)
        clock.seconds["total"] = time.perf_counter() - start
        reply = Reply(
            text=text.strip() + ("\n\n" + escalation if escalation else ""), audio=audio,
            sample_rate=OUTPUT_RATE, emotion=emotion, safety=safety, timings=dict(clock.seconds),
            model_text=text.strip(), escalated=bool(escalation), notes=NOTES,
            prompt_tokens=len(self.last_prompt_ids), completion_tokens=len(tokens),
        )  # fmt: skip
        self._remember(prepared, reply, inputs.media_tokens)
        yield Final(reply)

    def _cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def _sampler(self) -> generation.Sampler:
        opts = self.options
        sampling = self.sampling or generation.Sampling(
            temperature=opts.persona.temperature, top_p=opts.persona.top_p
        )
        seed = None if opts.seed is None else opts.seed + len(self._history)
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        return generation.Sampler(sampling, self.engine.banned_ids, gen)

    def _decode(self, pre, suffix_ids: list[int], clock: Stopwatch):
        """(token, new text) per reply token; (stop token, None) when the reply ends."""
        engine = self.engine
        stops = (engine.im_end, engine.endoftext)
        steps = decode(engine.thinker, pre, suffix_ids, self._sampler(), stop_ids=stops,
                       max_new_tokens=self.options.max_new_tokens)  # fmt: skip
        tokens, text = [], ""
        t = time.perf_counter()
        for token in steps:
            if token in stops:
                yield token, None
                break
            tokens.append(token)
            new = engine.tokenizer.decode(tokens, skip_special_tokens=True)
            t = clock.add("decode", t)
            if new.endswith("\ufffd"):  # an incomplete UTF-8 character: wait for the next token
                yield token, ""
            else:
                yield token, new[len(text) :]
                text = new
            t = time.perf_counter()
        clock.add("decode", t)

    def _speak(self, pre, suffix_ids, spoken: list[int], clock: Stopwatch) -> np.ndarray:
        """This turn's waveform (float32, 24 kHz); empty when there is nothing to say."""
        t = time.perf_counter()
        if not spoken:
            return np.zeros(0, np.float32)
        opts = self.options
        if opts.seed is not None:  # the talker samples with torch's global generator
            torch.manual_seed(opts.seed + 7919 * len(self._history))
        wav = speak(self.engine.model, pre, suffix_ids, spoken, opts.voice, media_ids(self.engine),
                    self.talker)  # fmt: skip
        clock.add("speech", t)
        return wav.numpy().astype(np.float32, copy=False)
