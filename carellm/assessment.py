"""Per-turn emotion report and crisis safety, on a branch of the turn's prefill.

The report is scored, not generated: every (question, candidate) continuation is
scored in batched forward passes over views of the shared prefix cache, so the
multimodal prompt is never encoded twice and the result is always a valid label.

Safety combines signals, each a level of `carellm.safety.LEVELS`, kept in
`SafetyAssessment.signals`:

* ``"text"``: the crisis rules (`carellm.safety.assess`) on the user's typed text;
* ``"transcript"``: the same rules on what the user said (`assess_transcript`), when a
  transcript exists;
* ``"model"``: the model's scored answer to the risk question, asked on **every** turn
  (also with ``report=False``) in the user's language. Each candidate's score is its
  mean log-probability per token (so a level whose name takes more tokens is not
  penalised), softmaxed over the five levels. The model signal is "high" (or
  "imminent" when that is the likelier of the two) when P(high) + P(imminent) >=
  ``threshold`` (`MODEL_ESCALATION_THRESHOLD` by default); otherwise the most probable
  of "none", "low" and "moderate". If scoring fails the rules still decide and
  ``signals`` has no "model" key.

Policy: ``level`` = the most severe signal (a crisis any signal sees is never lowered
by another). From "high" up the reply gets an escalation with hotline resources in
code, whatever the model wrote.

What the person said (`transcribe`) is a short greedy continuation of the same prefill
after an instruction, so no audio is encoded twice. It runs after the reply has been
decoded (the reply's first text and audio never wait for it): `context.rewind` takes the
cache back to the prompt first and again afterwards, so the transcript sees only what the
user sent, not the reply. The crisis rules then read it too (`assess_transcript`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

from carellm import context, emotion, generation, safety
from carellm.emotion.lexicon import RISK_CANDIDATES, RISK_QUESTIONS, Question
from carellm.errors import InputError
from carellm.generation import Prefill, score_candidates
from carellm.prompts import CRISIS_NOTE

logger = logging.getLogger(__name__)

# The report is asked as the start of an assistant turn (what the model "would say").
REPORT_OPENING = "<|im_start|>assistant\n"
# P(high) + P(imminent) from which the model signal escalates (0-1).
MODEL_ESCALATION_THRESHOLD = 0.5
_LEVELS = safety.LEVELS
MAX_TRANSCRIPT_TOKENS = 160  # tokens; about 30-60 s of speech
TRANSCRIPT_INSTRUCTION = (
    "Transcribe exactly what the user said aloud in their latest audio message, in the "
    "language they spoke (Chinese in Chinese characters). Output only the words."
)


def risk_question(lang: str) -> Question:
    """The risk question in ``lang`` ("zh" or "en"); candidates in LEVELS order."""
    return Question(f"risk_{lang}", RISK_QUESTIONS[lang], RISK_CANDIDATES[lang], None)


def _question_ids(engine, question) -> tuple[list[int], list[list[int]]]:
    """Token ids of a question and its candidates, encoded once per engine."""
    cache = engine.report_ids
    if question.name not in cache:
        q_ids = engine.encode(REPORT_OPENING) + engine.encode(question.prompt)
        cache[question.name] = (q_ids, [engine.encode(" " + c) for c in question.candidates])
    return cache[question.name]


def _report_scores(engine, pre: Prefill, questions) -> dict[str, dict[str, float]]:
    """scores[question][candidate] = mean log P per token of the candidate."""
    batches = [_question_ids(engine, q) for q in questions]
    values = score_candidates(engine.thinker, pre, batches)
    return {
        q.name: {c: v / max(1, len(ids)) for c, v, ids in zip(q.candidates, vals, batch[1])}
        for q, vals, batch in zip(questions, values, batches)
    }


def risk_probabilities(scores: dict[str, float], lang: str) -> dict[str, float]:
    """Level -> probability: softmax of the risk candidates' mean log-probabilities."""
    logps = [float(scores[c]) for c in RISK_CANDIDATES[lang]]
    if any(math.isnan(v) or v == math.inf for v in logps) or max(logps) == -math.inf:
        raise ValueError(f"unusable risk scores {logps}")
    weights = [math.exp(v - max(logps)) for v in logps]
    return {level: w / sum(weights) for level, w in zip(_LEVELS, weights)}


def model_level(probs: dict[str, float], threshold: float = MODEL_ESCALATION_THRESHOLD) -> str:
    """The model signal's level from its probabilities (see the module docstring)."""
    if probs["high"] + probs["imminent"] >= threshold:
        return "imminent" if probs["imminent"] > probs["high"] else "high"
    return max(("none", "low", "moderate"), key=lambda level: probs[level])


def combine(base: safety.SafetyAssessment, signals: dict[str, str]) -> safety.SafetyAssessment:
    """``base`` with ``signals`` and ``level`` = their maximum (resources from moderate up)."""
    level = safety.max_level(*signals.values())
    resources = base.resources
    if level != base.level:
        moderate = safety.level_at_least(level, "moderate")
        resources = safety.resources_for(base.lang) if moderate else ()
    return replace(base, level=level, signals=dict(signals), resources=resources)


def assess_transcript(
    assessment: safety.SafetyAssessment, transcript: str | None, *, typed: bool = True
):
    """``assessment`` with the rules run on what the user said as ``signals["transcript"]``.

    For a voice or video turn whose speech was transcribed; the transcript's phrases and
    categories join the text's. ``typed=False`` (a turn with no typed text) takes the
    language, and so the hotlines, from the speech. Unchanged for no transcript.
    """
    if not transcript:
        return assessment
    heard = safety.assess(transcript, lang=assessment.lang if typed else None)
    merged = replace(
        assessment,
        lang=assessment.lang if typed else heard.lang,
        categories=tuple(
            c for c in safety.CATEGORIES if c in assessment.categories or c in heard.categories
        ),
        matched=tuple(dict.fromkeys(assessment.matched + heard.matched)),
    )
    return combine(merged, {**assessment.signals, "transcript": heard.level})


def assess_turn(
    engine,
    pre: Prefill,
    prepared,
    *,
    report: bool,
    threshold: float = MODEL_ESCALATION_THRESHOLD,
    transcript: str | None = None,
):
    """(emotion report or None, SafetyAssessment, note for the reply prompt).

    The risk question is scored on every turn; with ``report`` the emotion (and voice,
    visual) questions are scored in the same batch. ``threshold`` as in `model_level`.
    """
    if not 0.0 < threshold <= 1.0:
        raise InputError("threshold", f"expected 0 < threshold <= 1, got {threshold!r}")
    rules = safety.assess(prepared.text)
    lang = rules.lang
    asked = [q for q in emotion.questions_for(prepared.modalities) if q.name != "risk"]
    asked = (asked if report else []) + [risk_question(lang)]
    signals = dict(rules.signals)
    scores = probs = None
    try:
        scores = _report_scores(engine, pre, asked)
        probs = risk_probabilities(scores.pop(f"risk_{lang}"), lang)
        signals["model"] = model_level(probs, threshold)
    except Exception:  # never lose the turn over the model: the rules still decide
        logger.exception("model risk scoring failed; the crisis rules decide alone")
        scores = None
    combined = assess_transcript(combine(rules, signals), transcript)
    report_obj, note = None, ""
    if report:
        report_obj = _report(scores, probs, prepared, combined.level)
        note = emotion.summarize_for_prompt(report_obj)
    if safety.level_at_least(combined.level, "high"):
        note = (note + " " if note else "") + CRISIS_NOTE
    return report_obj, combined, note


def _report(scores, probs, prepared, level: str):
    """The emotion report from the batch's scores, or the keyword fallback; risk = level."""
    if scores is None:
        report = emotion.fallback_report(
            prepared.text, modalities=prepared.modalities, risk_floor=level
        )
    else:
        risk = {lvl: math.log(max(p, 1e-300)) for lvl, p in probs.items()}
        report = emotion.build_report(
            {**scores, "risk": risk}, text=prepared.text, modalities=prepared.modalities,
            risk_floor=level,
        )  # fmt: skip
    return replace(report, risk=level)


def escalation_for(assessment, region: str | None = None) -> str:
    """The escalation text added to the reply at high/imminent levels, else ""."""
    if not safety.level_at_least(assessment.level, "high"):
        return ""
    return safety.escalation_message(assessment, region=region)


def transcript_suffix(engine) -> list[int]:
    """Token ids of the transcript instruction and the assistant opening after the prompt."""
    text = f"<|im_start|>system\n{TRANSCRIPT_INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"
    return engine.encode(text)


def transcribe(engine, pre: Prefill, *, max_new_tokens=MAX_TRANSCRIPT_TOKENS) -> str:
    """Greedy transcript of the prompt's latest audio; leaves ``pre.cache`` at the prompt."""
    context.rewind(pre)
    greedy = generation.Sampler(
        generation.Sampling(temperature=0.0, repetition_penalty=1.0), engine.banned_ids, None
    )
    try:
        steps = generation.decode(
            engine.thinker, pre, transcript_suffix(engine), greedy,
            stop_ids=(engine.im_end, engine.endoftext), max_new_tokens=max_new_tokens,
            keep_hidden=False,
        )  # fmt: skip
        tokens = [step.token for step in steps]
    finally:
        context.rewind(pre)
    return engine.tokenizer.decode(tokens, skip_special_tokens=True).strip()
