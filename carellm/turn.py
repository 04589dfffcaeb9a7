"""The first stage of a turn: what the user sends (`Turn`) and its validation.

`prepare` checks the text and decodes the media (`carellm.media`) into a `PreparedTurn`,
raising `InputError` before anything else runs; it has no side effects. Torch-free.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np

from carellm.errors import InputError

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 8000  # characters in one turn's text (about 2-4k tokens)
# Control characters other than tab/newline, and Qwen's own special-token syntax: a
# user must not be able to type "<|IMAGE|>" and desynchronise the media placeholders.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPECIAL = re.compile(r"<\|[^|<>]{1,32}\|>")


@dataclass(frozen=True)
class Turn:
    """What the user sends in one turn. At least one field must be set.

    ``audio``: a path, bytes, (array, rate) or (rate, array); resampled to 16 kHz mono.
    ``image``: a path, bytes, PIL image or array. ``video``: a path; its audio track is
    used when ``use_audio_in_video`` and the file has one.
    """

    text: str | None = None
    audio: object = None
    image: object = None
    video: object = None
    use_audio_in_video: bool = True


@dataclass
class PreparedTurn:
    """A validated turn with decoded media (16 kHz audio chunks, RGB image, frames)."""

    text: str
    audio: list[np.ndarray] = field(default_factory=list)  # ≤ 30 s chunks, 16 kHz mono
    image: object = None  # PIL.Image
    video: object = None  # carellm.media.Video
    use_audio_in_video: bool = False  # True only when the video really has a track

    @property
    def modalities(self) -> set[str]:
        kinds = {"text"} if self.text else set()
        if self.audio:
            kinds.add("audio")
        if self.image is not None:
            kinds.add("image")
        if self.video is not None:
            kinds.add("video")
            if self.use_audio_in_video:
                kinds.add("audio")
        return kinds


def clean_text(text: str | None) -> str:
    """Validated user text: no control characters or special tokens, within the cap."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InputError("text", f"must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            "text",
            f"is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}: shorten or split it",
        )
    text = _SPECIAL.sub(" ", _CONTROL.sub("", text))
    return text.strip()


def prepare(turn: Turn, limits=None) -> PreparedTurn:
    """Validate and decode everything in ``turn`` (raises InputError; no side effects)."""
    from carellm import media

    if not isinstance(turn, Turn):
        raise InputError("turn", f"expected carellm.Turn, got {type(turn).__name__}")
    limits = limits or media.MediaLimits()
    text = clean_text(turn.text)
    prepared = PreparedTurn(text=text)
    if turn.audio is not None:
        prepared.audio = media.split_audio(
            media.load_audio(turn.audio, limits=limits), limits=limits
        )
    if turn.image is not None:
        prepared.image = media.load_image(turn.image, limits=limits)
    if turn.video is not None:
        video = media.load_video(turn.video, limits=limits, with_audio=turn.use_audio_in_video)
        prepared.video = video
        track = video.audio
        if track is not None and track.size > limits.audio_chunk_seconds * media.AUDIO_RATE:
            # Interleaving needs the track as one audio item, which the feature extractor
            # would cut at 30 s: pass a long track as separate ≤ 30 s pieces instead.
            prepared.audio += media.split_audio(track, limits=limits)
            track = None
        prepared.use_audio_in_video = track is not None
    if not text and not prepared.audio and prepared.image is None and prepared.video is None:
        raise InputError("turn", "is empty: type a message or attach audio, an image or a video")
    return prepared
