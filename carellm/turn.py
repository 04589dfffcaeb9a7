"""One counseling turn, stage by stage.

inputs → `prepare` (validate text, decode media) → `build_inputs` (chat template +
processor) → `generation.prefill` (once) → `assess_turn` (emotion report on a branch +
crisis rules) → `reply_stream` (decode, speak sentence by sentence). `Session.stream`
calls these in order; none of them touches the session's history.
"""

from __future__ import annotations

import logging
import re
import time
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


def user_content(turn: PreparedTurn, *, with_media: bool) -> list[dict]:
    """Chat-template parts for a user message: media first, then the text."""
    parts: list[dict] = []
    if with_media:
        parts += [{"type": "audio"} for _ in turn.audio]
        if turn.image is not None:
            parts.append({"type": "image"})
        if turn.video is not None:
            parts.append({"type": "video"})
    else:
        sent = sorted(turn.modalities - {"text"})
        if sent:
            parts.append(
                {"type": "text", "text": f"(The user sent {' and '.join(sent)}, not shown again.) "}
            )
    if turn.text:
        parts.append({"type": "text", "text": turn.text})
    return parts


@dataclass
class ModelInputs:
    """Processor output plus what later stages need to know about it."""

    tensors: dict
    use_audio_in_video: bool
    media_tokens: int  # placeholder tokens of the *current* user message


def build_inputs(engine, system: str, history: list, current: PreparedTurn) -> ModelInputs:
    """Render the conversation and run the processor (one call for all media).

    ``history`` holds (PreparedTurn, reply_text, keep_media) triples, oldest first.
    """
    from carellm.media import processor_video_kwargs

    if engine.lite:
        return _build_text_inputs(engine, system, history, current)
    messages = [{"role": "system", "content": system}]
    shown = [(t, r, keep) for t, r, keep in history] + [(current, None, True)]
    audio, audio_src, images, videos = [], [], [], []
    for turn, reply, keep in shown:
        messages.append({"role": "user", "content": user_content(turn, with_media=keep)})
        if keep:
            audio += turn.audio
            audio_src += [None] * len(turn.audio)
            if turn.image is not None:
                images.append(turn.image)
            if turn.video is not None:
                if turn.use_audio_in_video:
                    audio.append(turn.video.audio)
                    audio_src.append(len(videos))
                videos.append(turn.video)
        if reply is not None:
            messages.append({"role": "assistant", "content": reply})
    text = engine.processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=False
    )
    # One flag for the whole prompt (processor, thinker and talker must agree):
    # on only when every video in it carries its audio track.
    in_video = bool(videos) and all(any(s == i for s in audio_src) for i in range(len(videos)))
    kwargs = {}
    if videos:
        kwargs["videos_kwargs"] = processor_video_kwargs(videos[-1])
        kwargs["videos"] = [v.frames for v in videos]
        if in_video:
            kwargs["load_audio_from_video"] = True
            kwargs["audio_from_video_indices"] = audio_src
        elif any(s is not None for s in audio_src):
            audio = [a for a, s in zip(audio, audio_src) if s is None]
    tensors = engine.processor(
        text=[text], audio=audio or None, images=images or None, return_tensors="pt", **kwargs
    )
    tensors = {k: v.to(engine.device) if hasattr(v, "to") else v for k, v in tensors.items()}
    return ModelInputs(tensors, in_video, _current_media_tokens(engine, tensors["input_ids"]))


def _build_text_inputs(engine, system: str, history: list, current: PreparedTurn) -> ModelInputs:
    """The lite tier: a text-only chat model sees the text alone."""
    if current.modalities - {"text"}:
        kinds = ", ".join(sorted(current.modalities - {"text"}))
        raise InputError(
            "turn",
            f"this text-only (lite) model cannot take {kinds}; send text, or load an Omni model",
        )
    messages = [{"role": "system", "content": system}]
    for turn, reply, _ in history:
        messages += [
            {"role": "user", "content": turn.text},
            {"role": "assistant", "content": reply},
        ]
    messages.append({"role": "user", "content": current.text})
    text = engine.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=False
    )
    ids = engine.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    return ModelInputs({"input_ids": ids.to(engine.device)}, False, 0)


def _current_media_tokens(engine, input_ids) -> int:
    cfg = engine.thinker.config
    ids = input_ids[0].tolist()
    user_start = engine.tokenizer.convert_tokens_to_ids("<|im_start|>")
    last = max(i for i, t in enumerate(ids) if t == user_start)
    media = {cfg.audio_token_index, cfg.image_token_index, cfg.video_token_index}
    return sum(1 for t in ids[last:] if t in media)


class Stopwatch:
    """Accumulates seconds per stage name."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now
