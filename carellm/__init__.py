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
    RemoteError,
    ReportError,
)

__version__ = "0.1.0"

# public name -> module that defines it. The vocabulary (Turn, Reply, events, reports,
# safety) lives in torch-free modules; only load/Engine/Session/select pull in torch.
_LAZY = {
    "load": "carellm.engine",
    "RemoteEngine": "carellm.remote",
    "Engine": "carellm.engine",
    "Turn": "carellm.turn",
    "Session": "carellm.session",
    "Reply": "carellm.reply",
    "TextDelta": "carellm.reply",
    "AudioChunk": "carellm.reply",
    "Assessment": "carellm.reply",
    "Final": "carellm.reply",
    "EmotionReport": "carellm.emotion",
    "SafetyAssessment": "carellm.safety",
    "select": "carellm.planning",
    "Needs": "carellm.planning",
    "Plan": "carellm.planning",
    "PERSONAS": "carellm.prompts",
    "VOICES": "carellm.prompts",
}

__all__ = [
    "CareLLMError", "DataFormatError", "InputError", "MemoryPlanError", "ModelLoadError",
    "RemoteError", "ReportError",
    *_LAZY,
]  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'carellm' has no attribute {name!r}")
