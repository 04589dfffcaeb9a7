"""Video loading: a video file → `Video`, frames sampled and resized for the vision encoder.

`load_video` decodes with PyAV only, converting and resizing just the kept frames in
swscale, and can return the soundtrack at 16 kHz; `processor_video_kwargs` tells the
processor not to sample or resize the frames again.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from carellm.errors import InputError
from carellm.media.common import (
    FRAME_FACTOR,
    MediaLimits,
    fit_to_grid,
    open_av,
    open_source,
)

logger = logging.getLogger(__name__)

# Demuxers that are single still images, not videos.
_IMAGE_DEMUXERS = ("image2", "_pipe")


@dataclass(frozen=True, eq=False)
class Video:
    """A video sampled and resized for the vision encoder."""

    frames: np.ndarray  # uint8 [T, H, W, 3] RGB; T even, H and W multiples of 28
    fps: float  # frames per second actually sampled: T / duration
    duration: float  # s, length of the source video stream
    audio: np.ndarray | None  # float32 mono 16 kHz soundtrack; None if not asked or no track
    source_size: tuple[int, int]  # (width, height) of the stream before resizing


def load_video(
    source: Any,
    *,
    limits: MediaLimits = MediaLimits(),
    fps: float | None = None,
    with_audio: bool = False,
    field: str = "video",
) -> Video:
    """Sample ``fps`` frames per second (default ``limits.video_fps``) from a video file.

    Frames come out uint8 ``[T, H, W, 3]``: T even, between ``video_min_frames`` and
    ``video_max_frames`` (past the cap, frames spread evenly over the clip); H and W
    multiples of 28 within ``video_max_pixels`` and ``video_total_pixels / T``, never
    upscaled except to the 56 px minimum. Only the kept frames are converted, resized by
    swscale. With ``with_audio`` the soundtrack comes back as float32 mono 16 kHz, or
    ``None`` if the file has no audio track.
    """
    import av

    data = open_source(source, limits.max_video_bytes, field)
    with open_av(data, "video", field) as container:
        if any(name in container.format.name for name in _IMAGE_DEMUXERS):
            raise InputError(field, "this is a still image, not a video; pass it as an image")
        if not container.streams.video:
            raise InputError(field, "the file has no video track (audio only?); pass it as audio")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decoding is the hot loop
        audio = container.streams.audio[0] if with_audio and container.streams.audio else None
        try:
            duration = _video_duration(container, stream)
            if duration > limits.max_video_seconds:
                raise InputError(
                    field,
                    f"oversized video: {duration:.0f} s > {limits.max_video_seconds:.0f} s; "
                    "trim it or pass a shorter clip",
                )
            if duration <= 0:
                raise InputError(field, "the video has no frames; re-export or re-record it")
            times = _sample_times(duration, fps or limits.video_fps, limits)
            width, height = stream.codec_context.width, stream.codec_context.height
            size = fit_to_grid(height, width, _frame_pixel_cap(len(times), limits), field)
            frames, wave, error = _decode_sampled(container, stream, audio, times, size, limits)
        except av.FFmpegError as e:  # demuxing failed: a broken container
            raise InputError(field, f"the video is corrupt ({e}); re-export or re-record it") from e
    if not frames:
        raise InputError(
            field, f"no frame could be decoded ({error}); re-export the video, e.g. as H.264 MP4"
        ) from error
    if error is not None:
        logger.warning("video: damaged packets skipped (%s)", error)
    frames += [frames[-1]] * (len(times) - len(frames))  # targets past the last frame
    wave = wave if wave is not None and wave.size else None
    return Video(np.stack(frames), len(times) / duration, duration, wave, (width, height))


def _video_duration(container, stream) -> float:
    """Seconds of the video stream, from its header or, failing that, its packets."""
    import av

    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    # Browser recordings (MediaRecorder webm) carry no duration: read packet times only.
    last = max(
        (float(p.pts * p.time_base) for p in container.demux(stream) if p.pts is not None),
        default=0.0,
    )
    container.seek(0)
    return last + (1.0 / float(stream.average_rate) if stream.average_rate else 0.0)


def _sample_times(duration: float, fps: float, limits: MediaLimits) -> np.ndarray:
    """Target timestamps (s): the centres of T equal slices of the clip, T even."""
    count = math.floor(duration * fps / FRAME_FACTOR) * FRAME_FACTOR
    count = int(min(max(count, limits.video_min_frames), limits.video_max_frames))
    return (np.arange(count) + 0.5) * (duration / count)


def _frame_pixel_cap(count: int, limits: MediaLimits) -> float:
    """Per-frame pixels so that count × pixels stays within the per-video budget."""
    return min(limits.video_max_pixels, limits.video_total_pixels / count)


def _decode_sampled(container, stream, audio, times: np.ndarray, size, limits: MediaLimits):
    """Decode, skipping frames no other frame references when we keep ≤ 1 in 4 of them.

    Non-reference frames (mostly B-frames) are about half of a typical H.264 stream and
    nearly free to drop; the nearest decoded frame is then at most a few source frames
    from each target. If that leaves gaps wider than half a sampling step (a stream whose
    P-frames are all non-reference), everything is decoded again without skipping.
    """
    step = float(times[1] - times[0]) if len(times) > 1 else math.inf  # s between targets
    rate = float(stream.average_rate) if stream.average_rate else 0.0  # source frames / s
    if rate * step >= 4:
        stream.codec_context.skip_frame = "NONREF"
        frames, wave, error, gap = _decode_video(container, stream, audio, times, size, limits)
        if gap <= step / 2 or not frames:
            return frames, wave, error
        logger.info("video: %.2f s between reference frames; decoding every frame", gap)
        container.seek(0)
        stream.codec_context.skip_frame = "DEFAULT"
    return _decode_video(container, stream, audio, times, size, limits)[:3]


def _decode_video(container, stream, audio, times: np.ndarray, size, limits: MediaLimits):
    """One demux pass: keep the frame nearest each target time; decode the audio track.

    Returns (frames, wave or None, first decoding error or None, largest gap in seconds
    between consecutive decoded frames). A damaged packet is
    skipped, not fatal: phone recordings often end in a broken packet.
    """
    import av

    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    step = 1.0 / float(stream.average_rate) if stream.average_rate else 1.0 / 30  # s per frame
    resampler = (
        av.AudioResampler(format="flt", layout="mono", rate=limits.audio_rate) if audio else None
    )
    frames: list[np.ndarray] = []
    chunks: list[np.ndarray] = []
    prev, prev_t, error, gap = None, -math.inf, None, 0.0
    for packet in container.demux(*[s for s in (stream, audio) if s is not None]):
        try:
            decoded = packet.decode()
        except av.InvalidDataError as e:
            error = error or e
            continue
        if packet.stream is audio:
            for frame in decoded:
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
            continue
        for frame in decoded:
            t = frame.time - start if frame.time is not None else prev_t + step
            while len(frames) < len(times) and t >= times[len(frames)]:
                target = times[len(frames)]
                nearest = prev if prev is not None and target - prev_t < t - target else frame
                frames.append(_to_rgb(nearest, size))
            gap = max(gap, t - prev_t) if prev is not None else gap
            prev, prev_t = frame, t
        if len(frames) == len(times) and audio is None:
            break  # every frame taken and no soundtrack wanted: skip the rest of the file
    if prev is not None and len(frames) < len(times):
        frames.append(_to_rgb(prev, size))
    if resampler is not None:
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    wave = np.clip(np.concatenate(chunks), -1.0, 1.0) if chunks else None
    return frames, wave, error, gap


def _to_rgb(frame, size: tuple[int, int]) -> np.ndarray:
    """Convert and resize one decoded frame in swscale: uint8 [H, W, 3]."""
    height, width = size
    return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BICUBIC")


def processor_video_kwargs(video: Video) -> dict[str, Any]:
    """Keyword arguments for ``Qwen2_5OmniProcessor(...)`` so it keeps our frames as they are.

    ``do_sample_frames=False`` and ``do_resize=False`` stop a second sampling/resize (the
    grid becomes ``(T/2, H/14, W/14)``); ``fps`` makes ``video_second_per_grid`` = 2 / fps,
    the real seconds per temporal patch, which drives M-RoPE time positions. The processor
    takes one fps for all videos of a call: process videos of different fps separately.
    """
    return {
        "do_sample_frames": False,
        "do_resize": False,
        "cap_pixels_per_frame": False,  # our budget is applied already; also silences a warning
        "fps": video.fps,
    }
