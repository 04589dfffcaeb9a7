"""CareLLM: multimodal counseling research on Qwen2.5-Omni.

    import carellm
    engine = carellm.load("Qwen/Qwen2.5-Omni-3B")      # or "auto", a folder, "tiny"
    session = engine.session(persona="counselor", voice="Chelsie")
    reply = session.respond(carellm.Turn(text="I can't sleep before exams."))
    reply.text, reply.audio, reply.emotion, reply.safety

Heavy modules (torch, transformers) load on first use of a name below, not on import.
"""

from __future__ import annotations

import importlib

from carellm.errors import (
    CareLLMError,
    DataFormatError,
    InputError,
    MemoryPlanError,
    ModelLoadError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "load": "carellm.engine",
    "RemoteEngine": "carellm.remote",
    "Engine": "carellm.engine",
    "Turn": "carellm.turn",
    "Session": "carellm.session",
    "Reply": "carellm.session",
    "TextDelta": "carellm.session",
    "AudioChunk": "carellm.session",
    "Assessment": "carellm.session",
    "Final": "carellm.session",
    "EmotionReport": "carellm.emotion",
    "SafetyAssessment": "carellm.safety",
    "select": "carellm.selection",
    "Needs": "carellm.selection",
    "Plan": "carellm.selection",
    "PERSONAS": "carellm.prompts",
    "VOICES": "carellm.prompts",
}

__all__ = [
    "CareLLMError", "DataFormatError", "InputError", "MemoryPlanError", "ModelLoadError",
    *_LAZY,
]  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'carellm' has no attribute {name!r}")
