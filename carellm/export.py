"""Writing a session to disk: the only place CareLLM writes conversation data.

``export_session(session, folder)`` writes ``session.json`` (turns, replies, emotion
reports, safety, timings), ``trajectory.csv``, and WAVs: ``turn_NN_reply.wav`` (24 kHz)
and ``turn_NN_user_K.wav`` (16 kHz) for voice turns. Images and videos are referenced
by kind only: they are not copied.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from carellm.errors import CareLLMError
from carellm.media.audio import write_wav
from carellm.media.common import AUDIO_RATE

logger = logging.getLogger(__name__)


def _turn_record(index: int, turn, reply, folder: Path) -> dict:
    user_wavs = []
    for k, chunk in enumerate(turn.audio):
        name = f"turn_{index:02d}_user_{k}.wav"
        write_wav(folder / name, chunk, AUDIO_RATE)
        user_wavs.append(name)
    reply_wav = None
    if reply.audio is not None and reply.audio.size:
        reply_wav = f"turn_{index:02d}_reply.wav"
        write_wav(folder / reply_wav, reply.audio, reply.sample_rate)
    return {
        "turn": index,
        "user": {
            "text": turn.text,
            "modalities": sorted(turn.modalities),
            "audio_files": user_wavs,
        },
        "reply": {
            "text": reply.text,
            "model_text": reply.model_text,
            "escalated": reply.escalated,
            "transcript": reply.transcript,  # what the user said in this turn's audio
            "audio_file": reply_wav,
            "sample_rate": reply.sample_rate,
        },
        "emotion": reply.emotion.to_dict() if reply.emotion is not None else None,
        "safety": reply.safety.to_dict() if reply.safety is not None else None,
        "timings": reply.timings,
    }


def export_session(session, path) -> Path:
    """Write the session into folder ``path`` (created); returns the JSON file's path."""
    from carellm.emotion import write_trajectory

    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CareLLMError(
            f"cannot create export folder {folder}: {e.strerror}; pick a writable path"
        ) from e
    opts = session.options
    record = {
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": session.engine.info.model,
        "tiny_random_model": session.engine.info.tiny,
        "persona": opts.persona.name,
        "voice": opts.voice,
        "turns": [_turn_record(i, t, r, folder) for i, (t, r) in enumerate(session.history, 1)],
    }
    out = folder / "session.json"
    out.write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    reports = session.trajectory()
    if reports:
        write_trajectory(reports, folder / "trajectory.csv")
    logger.info("exported %d turns to %s", len(record["turns"]), folder)
    return out
