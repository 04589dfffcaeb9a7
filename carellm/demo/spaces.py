"""Hugging Face ZeroGPU support: hold a GPU only while a turn runs.

On a ZeroGPU Space (env ``SPACES_ZERO_GPU`` set and the ``spaces`` package importable)
`on_gpu` wraps the turn function with ``spaces.GPU(duration=...)``, the duration
estimated per call from the turn's media and reply length. Everywhere else it returns
the function unchanged, so the same app runs locally, on a dedicated GPU Space and in
tests.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

ZERO_GPU_ENV = "SPACES_ZERO_GPU"  # set by Hugging Face on ZeroGPU hardware
BASE_SECONDS = 20.0  # s, prefill + emotion report + moving weights on a fresh GPU
MEDIA_FACTOR = 1.0  # s of GPU per s of input audio/video (encoders + longer prompt)
TOKEN_SECONDS = 0.05  # s per reply token (thinker decode)
SPEECH_FACTOR = 2.0  # speech roughly triples decode time (talker + token2wav)
MAX_SECONDS = 300  # s, ZeroGPU's longest allowed reservation for most accounts


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space: the env var is set and `spaces` can be imported."""
    flag = os.environ.get(ZERO_GPU_ENV, "").strip().lower()
    return flag not in ("", "0", "false", "no") and importlib.util.find_spec("spaces") is not None


def media_seconds(source) -> float:
    """Duration in s of an audio/video path (0 when unknown or not a path)."""
    if not isinstance(source, (str, Path)):
        return 0.0
    try:
        import av

        with av.open(str(source)) as container:
            return float(container.duration or 0) / 1e6  # av.time_base: microseconds
    except Exception:  # a bad file fails later with the engine's own message
        return 0.0


def turn_seconds(session, turn) -> int:
    """GPU seconds to reserve for one turn of `session` (see the constants above)."""
    media = media_seconds(turn.audio) + media_seconds(turn.video)
    decode = session.options.max_new_tokens * TOKEN_SECONDS
    if session.options.speech:
        decode *= 1 + SPEECH_FACTOR
    return int(min(MAX_SECONDS, BASE_SECONDS + MEDIA_FACTOR * media + decode))


def on_gpu(fn, duration=turn_seconds):
    """``fn`` wrapped with ``spaces.GPU(duration=duration)`` on ZeroGPU, else ``fn``.

    ``duration`` is a number of seconds or a callable taking ``fn``'s arguments.
    """
    if not on_zero_gpu():
        return fn
    import spaces

    logger.info("ZeroGPU: turns reserve a GPU per call (duration estimated per turn)")
    return spaces.GPU(duration=duration)(fn)
