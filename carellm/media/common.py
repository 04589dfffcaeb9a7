"""Limits and helpers shared by the media stage's audio, image and video loaders.

`MediaLimits` gathers every limit; `open_source` and `open_av` open what the user passed
(path or bytes) and turn bad files into `InputError`; `fit_to_grid` gives the frame size the
vision encoder takes, for images and video frames alike.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carellm.errors import InputError

AUDIO_RATE = 16000  # Hz, the audio encoder's input rate
MAX_AUDIO_SECONDS = 300.0  # s, longest voice turn accepted
AUDIO_CHUNK_SECONDS = 30.0  # s, the feature extractor cuts longer audio, so we split
MIN_AUDIO_SECONDS = 0.1  # s, shorter clips carry no speech
SILENCE_RMS = 1e-4  # RMS amplitude (full scale 1.0) below which audio counts as silent
MIN_SOURCE_RATE = 8000  # Hz, telephone quality; lower is a mislabelled rate
MAX_SOURCE_RATE = 384000  # Hz, the highest rate studio converters produce
MAX_AUDIO_BYTES = 200 * 2**20  # bytes, 200 MiB
MAX_IMAGE_BYTES = 200 * 2**20  # bytes, 200 MiB
MAX_VIDEO_BYTES = 2**30  # bytes, 1 GiB
PATCH_FACTOR = 28  # px, vision patch 14 × spatial merge 2: frame sides are multiples of this
FRAME_FACTOR = 2  # frames, the vision encoder's temporal patch
MIN_FRAME_SIDE = 56  # px, smallest frame side the processor accepts (its 56×56 minimum)
MAX_ASPECT = 200  # width/height ratio beyond which Qwen's resize refuses an image
IMAGE_MAX_PIXELS = 1280 * 28 * 28  # px per image (1280 vision tokens)
IMAGE_BOMB_PIXELS = 100_000_000  # px in a header above which we refuse to decode
VIDEO_FPS = 2.0  # frames per second sampled, Qwen's default
VIDEO_MAX_FRAMES = 128  # frames per video (even); longer clips are sampled more sparsely
VIDEO_MIN_FRAMES = 2  # frames, one temporal patch
VIDEO_MAX_PIXELS = 768 * 28 * 28  # px per frame (768 vision tokens before temporal merge)
VIDEO_TOTAL_PIXELS = int(128000 * 28 * 28 * 0.9)  # px per video, qwen-omni-utils' budget
MAX_VIDEO_SECONDS = 120.0  # s, longest clip accepted


@dataclass(frozen=True)
class MediaLimits:
    """Every limit the media stage enforces; override with ``dataclasses.replace``."""

    audio_rate: int = AUDIO_RATE  # Hz, output rate of every waveform
    max_audio_seconds: float = MAX_AUDIO_SECONDS  # s, longer audio is refused
    audio_chunk_seconds: float = AUDIO_CHUNK_SECONDS  # s, `split_audio` chunk length
    min_audio_seconds: float = MIN_AUDIO_SECONDS  # s, shorter audio is refused
    silence_rms: float = SILENCE_RMS  # RMS below which audio is refused as silent
    max_audio_bytes: int = MAX_AUDIO_BYTES  # bytes per audio file
    max_image_bytes: int = MAX_IMAGE_BYTES  # bytes per image file
    max_video_bytes: int = MAX_VIDEO_BYTES  # bytes per video file
    image_max_pixels: int = IMAGE_MAX_PIXELS  # px, larger images are downscaled to this
    image_bomb_pixels: int = IMAGE_BOMB_PIXELS  # px, larger headers are refused undecoded
    video_fps: float = VIDEO_FPS  # frames per second sampled when load_video gets no fps
    video_max_frames: int = VIDEO_MAX_FRAMES  # frames, even
    video_min_frames: int = VIDEO_MIN_FRAMES  # frames, even
    video_max_pixels: int = VIDEO_MAX_PIXELS  # px per frame
    video_total_pixels: int = VIDEO_TOTAL_PIXELS  # px summed over all frames of a video
    max_video_seconds: float = MAX_VIDEO_SECONDS  # s, longer clips are refused


# ---------------------------------------------------------------- sources


def open_source(source: Any, max_bytes: int, field: str) -> str | io.BytesIO:
    """Return a path or an in-memory file after checking it exists, is non-empty and small."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        size, opened = len(source), io.BytesIO(bytes(source))
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(field, f"file not found: {path}; check the path and try again")
        size, opened = path.stat().st_size, str(path)
    else:
        raise InputError(field, f"cannot read a {type(source).__name__}; pass a path or bytes")
    if size == 0:
        raise InputError(field, "the file is empty (0 bytes); record or upload it again")
    if size > max_bytes:
        raise InputError(
            field,
            f"file too large: {size / 2**20:.0f} MiB > {max_bytes / 2**20:.0f} MiB; "
            "pass a shorter or smaller file",
        )
    return opened


_FORMATS = {"audio": "WAV, MP3, OGG, M4A or WebM", "video": "MP4, MOV, MKV or WebM"}


def open_av(data: str | io.BytesIO, kind: str, field: str):
    """Open a container with PyAV, turning its errors into `InputError`."""
    import av

    try:
        container = av.open(data, "r")
    except (av.FFmpegError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise InputError(
            field, f"not a readable {kind} file ({reason}); pass {_FORMATS[kind]}"
        ) from e
    if container.format.name == "tty":  # FFmpeg plays any *.txt as ANSI-art video
        container.close()
        raise InputError(field, f"not a readable {kind} file (it is text); pass {_FORMATS[kind]}")
    return container


# ---------------------------------------------------------------- frame geometry


def fit_to_grid(height: int, width: int, max_pixels: float, field: str) -> tuple[int, int]:
    """Qwen's smart_resize without upscaling: sides multiples of 28, ≥ 56, aspect kept.

    Returns ``(height, width)`` with ``height * width <= max_pixels`` (unless that is
    below 56×56). Rounding to the nearest multiple may grow a side by up to 14 px.
    """
    check_aspect(height, width, field)
    f = PATCH_FACTOR
    h, w = max(f, round(height / f) * f), max(f, round(width / f) * f)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h, w = max(f, math.floor(height / beta / f) * f), max(f, math.floor(width / beta / f) * f)
    return max(h, MIN_FRAME_SIDE), max(w, MIN_FRAME_SIDE)


def check_aspect(height: int, width: int, field: str) -> None:
    if max(height, width) / max(min(height, width), 1) > MAX_ASPECT:
        raise InputError(field, f"aspect ratio of {width}×{height} is over {MAX_ASPECT}:1; crop it")
