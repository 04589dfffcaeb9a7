"""Per-turn emotion report and crisis safety, on a branch of the turn's prefill.

The report is scored, not generated: every (question, candidate) continuation is
scored in batched forward passes over views of the shared prefix cache, so the
multimodal prompt is never encoded twice and the result is always a valid label. The
turn's safety level is the maximum of the crisis rules on the user's text and the
report's risk; from "high" up the reply gets an escalation with hotline resources in
code, whatever the model wrote.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from carellm import emotion, safety
from carellm.generation import Prefill, score_candidates

logger = logging.getLogger(__name__)

# The report is asked as the start of an assistant turn (what the model "would say").
REPORT_OPENING = "<|im_start|>assistant\n"


def _question_ids(engine, question) -> tuple[list[int], list[list[int]]]:
    """Token ids of a question and its candidates, encoded once per engine."""
    cache = engine.report_ids
    if question.name not in cache:
        q_ids = engine.encode(REPORT_OPENING) + engine.encode(question.prompt)
        cache[question.name] = (q_ids, [engine.encode(" " + c) for c in question.candidates])
    return cache[question.name]


def _report_scores(engine, pre: Prefill, questions) -> dict[str, dict[str, float]]:
    """scores[question][candidate] = log P(candidate | prompt, question)."""
    batches = [_question_ids(engine, q) for q in questions]
    values = score_candidates(engine.thinker, pre, batches)
    return {q.name: dict(zip(q.candidates, v)) for q, v in zip(questions, values)}


def emotion_report(engine, pre: Prefill, text: str, modalities: set[str], risk_floor: str):
    """The model's report, or a transparent keyword fallback if scoring fails."""
    try:
        questions = emotion.questions_for(modalities)
        scores = _report_scores(engine, pre, questions)
        return emotion.build_report(scores, text=text, modalities=modalities, risk_floor=risk_floor)
    except Exception:  # never lose the turn over the report: fall back, visibly
        logger.exception("emotion report scoring failed; using the keyword fallback")
        return emotion.fallback_report(text, modalities=modalities, risk_floor=risk_floor)


def assess_turn(engine, pre: Prefill, prepared, *, report: bool):
    """(emotion report or None, SafetyAssessment, note for the reply prompt)."""
    rules = safety.assess(prepared.text)
    report_obj = None
    note = ""
    if report:
        floor = rules.level
        report_obj = emotion_report(engine, pre, prepared.text, prepared.modalities, floor)
        note = emotion.summarize_for_prompt(report_obj)
    level = safety.max_level(rules.level, report_obj.risk if report_obj else "none")
    combined = rules
    if level != rules.level:
        combined = replace(
            rules,
            level=level,
            resources=safety.resources_for(rules.lang) if level != "none" else (),
        )
    if safety.level_at_least(level, "high"):
        note = (note + " " if note else "") + (
            "Safety: the user may be in crisis. Respond with warmth, take it seriously, and "
            "encourage them to contact a crisis line or emergency services now."
        )
    return report_obj, combined, note


def escalation_for(assessment, region: str | None = None) -> str:
    """The escalation text added to the reply at high/imminent levels, else ""."""
    if not safety.level_at_least(assessment.level, "high"):
        return ""
    return safety.escalation_message(assessment, region=region)
