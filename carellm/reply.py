"""What a turn gives back: the `Reply` and the events `Session.stream` yields.

Torch-free on purpose (NumPy only), so UIs and the remote backend can use these types
without loading torch: ``from carellm import Reply, TextDelta`` imports no model code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OUTPUT_RATE = 24000  # Hz: Qwen2.5-Omni's token2wav output, the rate of every Reply.audio


@dataclass(frozen=True)
class Reply:
    """The assistant's answer to one turn."""

    text: str  # what the user reads (model text, plus the crisis escalation if any)
    audio: np.ndarray | None  # float32 mono at `sample_rate`, None without speech
    sample_rate: int  # Hz, OUTPUT_RATE
    emotion: object  # carellm.emotion.EmotionReport, or None when report=False
    safety: object  # carellm.safety.SafetyAssessment of this turn
    timings: dict  # seconds per stage: media, prefill, report, decode, speech, total
    model_text: str = ""  # the model's own words, before any escalation was added
    escalated: bool = False  # a crisis escalation with hotline resources was added
    notes: tuple[str, ...] = ()  # what this backend could not do (e.g. no speech)
    transcript: str | None = None  # what the user said in this turn's audio, when transcribed
    prompt_tokens: int = 0  # tokens the thinker read for this turn (system, history, media, turn)
    completion_tokens: int = 0  # reply tokens the thinker generated (0: not run here)


@dataclass(frozen=True)
class TextDelta:
    text: str  # new characters of the reply


@dataclass(frozen=True)
class EscalationDelta(TextDelta):
    """The crisis escalation appended to the reply (also a TextDelta for simple UIs)."""


@dataclass(frozen=True)
class AudioChunk:
    audio: np.ndarray  # float32 mono, one sentence
    sample_rate: int  # Hz, OUTPUT_RATE


@dataclass(frozen=True)
class Assessment:
    """Emitted before the reply: the emotion report and safety of the turn."""

    emotion: object
    safety: object


@dataclass(frozen=True)
class Final:
    reply: Reply
