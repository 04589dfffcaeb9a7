"""A counseling conversation on a `LlamaEngine`: the `Session` API, text only.

One turn reads as `carellm.session.Session`'s: the prompt is built by the same
`carellm.prompts.build_inputs` (persona, history trimmed to the same context budget,
media refused with the same message), prefilled once by llama.cpp; the emotion report
is scored on branches of that prompt's KV cache (`Runtime.score`: candidate
log-probabilities, never a second generation) and turned into a report by
`carellm.emotion.build_report`; crisis rules and escalation are `carellm.safety`'s;
the reply is sampled by `carellm.generation.Sampler`. There is no speech on this tier:
``Reply.audio`` is None and ``Reply.notes`` says so.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections.abc import Iterator
from dataclasses import replace

from carellm import emotion, safety
from carellm.assessment import _question_ids, escalation_for  # ids encoded once per engine
from carellm.conversation import Conversation, SessionOptions, check_language
from carellm.lite.engine import check_room
from carellm.prompts import CRISIS_NOTE, build_inputs, check_voice, get_persona, system_prompt
from carellm.reply import OUTPUT_RATE, Assessment, EscalationDelta, Final, Reply, TextDelta
from carellm.session import CONTEXT_BUDGET, Session, Stopwatch, stream_in_worker
from carellm.turn import PreparedTurn, Turn

logger = logging.getLogger(__name__)

NO_SPEECH_NOTE = "no speech on the llama.cpp CPU tier: text replies only"


class LlamaSession(Conversation):
    """An independent conversation on a shared `LlamaEngine` (see `LlamaEngine.session`)."""

    def __init__(self, engine, *, persona="counselor", voice="Chelsie", language=None,
                 speech=None, seed=None, max_new_tokens=256, region=None,
                 context_budget=CONTEXT_BUDGET):  # fmt: skip
        self.engine = engine
        self.options = SessionOptions(
            persona=get_persona(persona), voice=check_voice(voice),
            language=check_language(language), speech=bool(speech), seed=seed,
            max_new_tokens=max_new_tokens, region=region,
        )  # fmt: skip
        self.context_budget = int(context_budget)  # tokens; see Session._history_view
        self._history = []

    # The history is kept, trimmed and replayed exactly as the transformers Session does.
    _history_view = Session._history_view
    _remember = Session._remember
    add_exchange = Session.add_exchange

    def stream(self, turn: Turn, report: bool = True, *, cancel=None) -> Iterator[object]:
        """Yield Assessment and TextDelta events, then Final(reply). Closing the stream or
        setting ``cancel`` (a threading.Event) ends the turn with the history unchanged."""
        yield from stream_in_worker(self, turn, report, cancel=cancel)

    def _run(self, prepared: PreparedTurn, report: bool, clock: Stopwatch, start: float):
        engine, opts = self.engine, self.options
        t = time.perf_counter()
        system = system_prompt(opts.persona, opts.language)
        inputs = build_inputs(engine, system, self._history_view(prepared), prepared)
        ids = inputs.tensors["input_ids"][0].tolist()
        questions = [_question_ids(engine, q) for q in emotion.questions_for(prepared.modalities)]
        branch_tokens = sum(len(q) + sum(map(len, c)) for q, c in questions) if report else 0
        check_room(engine, len(ids), opts.max_new_tokens + 64, branch_tokens)
        t = clock.add("media", t)
        engine.runtime.prefill(ids)
        t = clock.add("prefill", t)
        report_obj, turn_safety, note = self._assess(prepared, questions if report else None)
        clock.add("report", t)
        yield Assessment(report_obj, turn_safety)
        escalation = escalation_for(turn_safety, opts.region)
        text = ""
        for delta in self._reply(note, clock):
            text += delta
            yield TextDelta(delta)
        if escalation:
            yield EscalationDelta("\n\n" + escalation)
        clock.seconds["total"] = time.perf_counter() - start
        reply = Reply(
            text=text.strip() + ("\n\n" + escalation if escalation else ""), audio=None,
            sample_rate=OUTPUT_RATE, emotion=report_obj, safety=turn_safety,
            timings=dict(clock.seconds), model_text=text.strip(), escalated=bool(escalation),
            notes=(NO_SPEECH_NOTE,), prompt_tokens=clock.tokens.get("prompt", 0),
            completion_tokens=clock.tokens.get("completion", 0),
        )  # fmt: skip
        self._remember(prepared, reply, 0)
        yield Final(reply)

    def _assess(self, prepared: PreparedTurn, questions):
        """(report or None, SafetyAssessment, note for the reply prompt), as
        `carellm.assessment.assess_turn` combines them."""
        rules = safety.assess(prepared.text)
        report_obj, note = None, ""
        if questions is not None:
            report_obj = self._report(prepared, questions, rules.level)
            note = emotion.summarize_for_prompt(report_obj)
        level = safety.max_level(rules.level, report_obj.risk if report_obj else "none")
        combined = rules
        if level != rules.level:
            resources = safety.resources_for(rules.lang) if level != "none" else ()
            combined = replace(rules, level=level, resources=resources)
        if safety.level_at_least(level, "high"):
            note = (note + " " if note else "") + CRISIS_NOTE
        return report_obj, combined, note

    def _report(self, prepared: PreparedTurn, questions, floor: str):
        """The scored report, or the keyword fallback (logged) if scoring fails."""
        names = emotion.questions_for(prepared.modalities)
        try:
            values = self.engine.runtime.score(questions)
            scores = {q.name: dict(zip(q.candidates, v)) for q, v in zip(names, values)}
            return emotion.build_report(scores, text=prepared.text,
                                        modalities=prepared.modalities, risk_floor=floor)  # fmt: skip
        except Exception:  # never lose the turn over the report: fall back, visibly
            logger.exception("emotion report scoring failed; using the keyword fallback")
            return emotion.fallback_report(prepared.text, modalities=prepared.modalities,
                                           risk_floor=floor)  # fmt: skip

    def _reply(self, note: str, clock: Stopwatch) -> Iterator[str]:
        """Sample the reply after the prompt (and the report's note), streaming text."""
        import torch

        from carellm import generation

        engine, opts = self.engine, self.options
        runtime = engine.runtime
        t = time.perf_counter()
        suffix = (
            f"<|im_start|>system\n{note}<|im_end|>\n" if note else ""
        ) + "<|im_start|>assistant\n"
        seed = None if opts.seed is None else opts.seed + len(self._history)
        sampler = generation.Sampler(
            generation.Sampling(temperature=opts.persona.temperature, top_p=opts.persona.top_p),
            engine.banned_ids, None if seed is None else torch.Generator().manual_seed(seed),
        )  # fmt: skip
        logits = runtime.extend(engine.encode(suffix))
        prompt = len(runtime.tokens)  # conversation + report note + assistant opening
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated: list[int] = []
        stops = (engine.im_end, engine.endoftext)
        while len(generated) < opts.max_new_tokens:
            token = sampler(torch.from_numpy(logits), generated)
            if token in stops:
                break
            generated.append(token)
            delta = utf8.decode(runtime.piece(token))
            t = clock.add("decode", t)
            if delta:
                yield delta
            t = time.perf_counter()
            if len(generated) == opts.max_new_tokens or runtime.room() == 0:
                break
            logits = runtime.extend([token])
        clock.tokens.update(prompt=prompt, completion=len(generated))
        tail = utf8.decode(b"", final=True)
        if tail:
            yield tail
        clock.add("decode", t)
