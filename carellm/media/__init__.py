"""Media preparation: turn a turn's audio, image and video into what Qwen2.5-Omni reads.

- `load_audio` → float32 mono 16 kHz waveform in [-1, 1]; `split_audio` cuts it into
  ≤ 30 s chunks because the feature extractor silently drops everything after 30 s.
- `load_image` → RGB ``PIL.Image`` no larger than `MediaLimits.image_max_pixels`.
- `load_video` → `Video` with uint8 frames ``[T, H, W, 3]`` already sampled and resized for
  the vision encoder (T even, H and W multiples of 28), plus the soundtrack at 16 kHz;
  `processor_video_kwargs` tells the processor not to sample or resize them again.

Decoding uses soundfile, Pillow and PyAV only: no ffmpeg binary, no decord, no librosa
(its first call compiles for ~25 s). Every input a user can get wrong raises `InputError`
naming the field and saying what to do.

The stage is split into peers: `carellm.media.common` (limits, constants, opening files),
`carellm.media.audio`, `carellm.media.image` and `carellm.media.video`. Import from here.
"""

from carellm.media.audio import load_audio, split_audio, wav_bytes, write_wav
from carellm.media.common import (
    AUDIO_CHUNK_SECONDS,
    AUDIO_RATE,
    FRAME_FACTOR,
    IMAGE_BOMB_PIXELS,
    IMAGE_MAX_PIXELS,
    MAX_ASPECT,
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    MAX_IMAGE_BYTES,
    MAX_SOURCE_RATE,
    MAX_VIDEO_BYTES,
    MAX_VIDEO_SECONDS,
    MIN_AUDIO_SECONDS,
    MIN_FRAME_SIDE,
    MIN_SOURCE_RATE,
    PATCH_FACTOR,
    SILENCE_RMS,
    VIDEO_FPS,
    VIDEO_MAX_FRAMES,
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_FRAMES,
    VIDEO_TOTAL_PIXELS,
    MediaLimits,
    fit_to_grid,
)
from carellm.media.image import load_image
from carellm.media.video import Video, load_video, processor_video_kwargs

__all__ = [
    "AUDIO_RATE",
    "MAX_AUDIO_SECONDS",
    "AUDIO_CHUNK_SECONDS",
    "MIN_AUDIO_SECONDS",
    "SILENCE_RMS",
    "MIN_SOURCE_RATE",
    "MAX_SOURCE_RATE",
    "MAX_AUDIO_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_VIDEO_BYTES",
    "PATCH_FACTOR",
    "FRAME_FACTOR",
    "MIN_FRAME_SIDE",
    "MAX_ASPECT",
    "IMAGE_MAX_PIXELS",
    "IMAGE_BOMB_PIXELS",
    "VIDEO_FPS",
    "VIDEO_MAX_FRAMES",
    "VIDEO_MIN_FRAMES",
    "VIDEO_MAX_PIXELS",
    "VIDEO_TOTAL_PIXELS",
    "MAX_VIDEO_SECONDS",
    "MediaLimits",
    "Video",
    "fit_to_grid",
    "load_audio",
    "wav_bytes",
    "write_wav",
    "load_image",
    "load_video",
    "processor_video_kwargs",
    "split_audio",
]
