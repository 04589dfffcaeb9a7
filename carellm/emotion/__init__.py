"""The per-turn emotion report: schema (`EmotionReport`), questions, scoring, fallback.

Torch-free: the scores come from `carellm.assessment`; this package turns them into a
report. ``taxonomy`` holds the GoEmotions/Ekman/sentiment labels; ``lexicon`` the
display names, VAD values and keyword cues.
"""

from carellm.emotion.report import (
    LABEL_INFO,
    QUESTIONS,
    RISK_LEVELS,
    EmotionReport,
    Evidence,
    LabelScore,
    Question,
    build_report,
    fallback_report,
    questions_for,
    summarize_for_prompt,
    trajectory_rows,
    write_trajectory,
)
from carellm.errors import ReportError

__all__ = [
    "LABEL_INFO", "QUESTIONS", "RISK_LEVELS", "EmotionReport", "Evidence", "LabelScore",
    "Question", "ReportError", "build_report", "fallback_report", "questions_for",
    "summarize_for_prompt", "trajectory_rows", "write_trajectory",
]  # fmt: skip
