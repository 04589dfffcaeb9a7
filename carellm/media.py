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
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from carellm.errors import InputError

logger = logging.getLogger(__name__)

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

# Demuxers that are single still images, not videos.
_IMAGE_DEMUXERS = ("image2", "_pipe")


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


@dataclass(frozen=True, eq=False)
class Video:
    """A video sampled and resized for the vision encoder."""

    frames: np.ndarray  # uint8 [T, H, W, 3] RGB; T even, H and W multiples of 28
    fps: float  # frames per second actually sampled: T / duration
    duration: float  # s, length of the source video stream
    audio: np.ndarray | None  # float32 mono 16 kHz soundtrack; None if not asked or no track
    source_size: tuple[int, int]  # (width, height) of the stream before resizing


# ---------------------------------------------------------------- sources


def _open_source(source: Any, max_bytes: int, field: str) -> str | io.BytesIO:
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


def _open_av(data: str | io.BytesIO, kind: str, field: str):
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


# ---------------------------------------------------------------- audio


def load_audio(
    source: Any, *, limits: MediaLimits = MediaLimits(), field: str = "audio"
) -> np.ndarray:
    """Load audio as float32 mono at ``limits.audio_rate`` (16 kHz) in [-1, 1], shape ``[N]``.

    ``source`` is a path, the file's bytes, ``(array, rate)``, Gradio's ``(rate, array)``
    or a datasets-style ``{"array", "sampling_rate"}`` dict. Arrays may be ``[N]``,
    ``[N, C]`` or ``[C, N]`` (C ≤ 8), float or integer PCM.
    """
    if isinstance(source, dict):
        if "array" not in source or "sampling_rate" not in source:
            raise InputError(field, "an audio dict needs 'array' and 'sampling_rate' keys")
        wave, rate = source["array"], source["sampling_rate"]
    elif isinstance(source, (tuple, list)):
        if len(source) != 2:
            raise InputError(field, "pass audio as (array, sample_rate) or (sample_rate, array)")
        first, second = source
        # Gradio gives (rate, int16 array); everyone else (array, rate).
        is_rate = isinstance(first, (int, np.integer)) and not isinstance(first, bool)
        wave, rate = (second, first) if is_rate and isinstance(second, np.ndarray) else source
    else:
        wave, rate = _decode_audio(
            _open_source(source, limits.max_audio_bytes, field), limits, field
        )
    return _finish_audio(np.asarray(wave), rate, limits, field)


def _decode_audio(data: str | io.BytesIO, limits: MediaLimits, field: str):
    """Decode with soundfile (wav/flac/ogg/mp3), else PyAV (m4a/webm/opus...)."""
    import soundfile as sf

    try:
        with sf.SoundFile(data) as f:
            _check_audio_length(f.frames / f.samplerate, limits, field)
            return f.read(dtype="float32", always_2d=True), f.samplerate
    except sf.LibsndfileError:
        if isinstance(data, io.BytesIO):
            data.seek(0)
    return _decode_audio_av(data, limits, field), limits.audio_rate


def _decode_audio_av(data: str | io.BytesIO, limits: MediaLimits, field: str) -> np.ndarray:
    import av

    with _open_av(data, "audio", field) as container:
        if not container.streams.audio:
            raise InputError(field, "the file has no audio track; pass a sound recording")
        if container.duration is not None:
            _check_audio_length(container.duration / av.time_base, limits, field)
        stream = container.streams.audio[0]
        try:
            return _decode_av_track(container, stream, limits, field)
        except av.FFmpegError as e:
            raise InputError(field, f"the audio is corrupt ({e}); record it again") from e


def _decode_av_track(container, stream, limits: MediaLimits, field: str) -> np.ndarray:
    """Decode one audio stream to float32 mono at ``limits.audio_rate``."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=limits.audio_rate)
    max_samples = limits.max_audio_seconds * limits.audio_rate
    chunks, total = [], 0
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
            total += chunks[-1].size
        if total > max_samples:
            _check_audio_length(total / limits.audio_rate, limits, field)
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def _check_audio_length(seconds: float, limits: MediaLimits, field: str) -> None:
    if seconds > limits.max_audio_seconds:
        raise InputError(
            field,
            f"audio too long: {seconds:.0f} s > {limits.max_audio_seconds:.0f} s; "
            "trim it or send it in parts",
        )


def _check_rate(rate: Any, field: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)):
        raise InputError(field, f"sample rate must be a number of Hz, got {rate!r}")
    if not math.isfinite(rate) or rate != int(rate):
        raise InputError(field, f"sample rate must be a whole number of Hz, got {rate}")
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise InputError(
            field,
            f"implausible sample rate {rate} Hz; expected {MIN_SOURCE_RATE}–"
            f"{MAX_SOURCE_RATE} Hz, check that rate and samples are not swapped",
        )
    return int(rate)


def _to_mono_float(wave: np.ndarray, field: str) -> np.ndarray:
    """[N], [N, C] or [C, N] PCM of any common dtype → float32 [N], channels averaged."""
    if wave.ndim == 2:
        channels_first = wave.shape[0] <= 8 and wave.shape[1] > wave.shape[0]
        wave = wave.mean(axis=0 if channels_first else 1, dtype=np.float64)
    elif wave.ndim != 1:
        raise InputError(
            field, f"audio array must be [samples] or [samples, channels], got shape {wave.shape}"
        )
    if wave.dtype == np.uint8:
        return (wave.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(wave.dtype, np.integer):
        return (wave / float(np.iinfo(wave.dtype).max + 1)).astype(np.float32)
    if not np.issubdtype(wave.dtype, np.floating):
        raise InputError(field, f"audio samples must be numbers, got dtype {wave.dtype}")
    return wave.astype(np.float32)


def _finish_audio(wave: np.ndarray, rate: Any, limits: MediaLimits, field: str) -> np.ndarray:
    """Validate decoded samples and bring them to float32 mono at ``limits.audio_rate``."""
    from scipy.signal import resample_poly

    rate = _check_rate(rate, field)
    if wave.size == 0:
        raise InputError(field, "the audio has no samples; record it again")
    wave = _to_mono_float(wave, field)
    if not np.isfinite(wave).all():
        raise InputError(field, "the audio contains NaN or infinite samples; re-export it")
    seconds = wave.size / rate
    if seconds < limits.min_audio_seconds:
        raise InputError(
            field,
            f"audio too short: {seconds:.3f} s < {limits.min_audio_seconds} s; record a longer clip",
        )
    _check_audio_length(seconds, limits, field)
    peak = float(np.abs(wave).max())
    if peak > 1.0:  # float audio in some other scale (e.g. int16 values cast to float)
        logger.info("audio peak %.3g > 1; scaling to full range", peak)
        wave = wave / peak
    if rate != limits.audio_rate:
        ratio = Fraction(limits.audio_rate, rate)  # exact: 16000/44100 = 160/441
        wave = resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)
    wave = np.clip(wave, -1.0, 1.0)
    if float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) < limits.silence_rms:
        raise InputError(field, "the audio is silent; check the microphone and record again")
    return wave


def split_audio(wave: np.ndarray, *, limits: MediaLimits = MediaLimits()) -> list[np.ndarray]:
    """Cut a 16 kHz waveform ``[N]`` into consecutive chunks of ≤ ``audio_chunk_seconds``.

    The engine passes each chunk as its own audio item. A tail shorter than
    ``min_audio_seconds`` is dropped: it would encode to no audio tokens.
    """
    if wave.ndim != 1:
        raise InputError(
            "audio", f"split_audio needs a mono [samples] wave, got shape {wave.shape}"
        )
    step = int(limits.audio_chunk_seconds * limits.audio_rate)
    min_len = limits.min_audio_seconds * limits.audio_rate
    chunks = [wave[i : i + step] for i in range(0, wave.size, step)]
    return [c for c in chunks if c.size >= min_len or len(chunks) == 1]


# ---------------------------------------------------------------- images


def fit_to_grid(height: int, width: int, max_pixels: float, field: str) -> tuple[int, int]:
    """Qwen's smart_resize without upscaling: sides multiples of 28, ≥ 56, aspect kept.

    Returns ``(height, width)`` with ``height * width <= max_pixels`` (unless that is
    below 56×56). Rounding to the nearest multiple may grow a side by up to 14 px.
    """
    _check_aspect(height, width, field)
    f = PATCH_FACTOR
    h, w = max(f, round(height / f) * f), max(f, round(width / f) * f)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h, w = max(f, math.floor(height / beta / f) * f), max(f, math.floor(width / beta / f) * f)
    return max(h, MIN_FRAME_SIDE), max(w, MIN_FRAME_SIDE)


def _check_aspect(height: int, width: int, field: str) -> None:
    if max(height, width) / max(min(height, width), 1) > MAX_ASPECT:
        raise InputError(field, f"aspect ratio of {width}×{height} is over {MAX_ASPECT}:1; crop it")


def load_image(source: Any, *, limits: MediaLimits = MediaLimits(), field: str = "image"):
    """Load an RGB ``PIL.Image`` with EXIF orientation applied, at most ``image_max_pixels``.

    ``source`` is a path, bytes, a PIL image, or a numpy array ``[H, W]`` / ``[H, W, 3|4]``
    (uint8, or float in [0, 1]). Larger images are downscaled (aspect kept, sides
    multiples of 28); smaller ones are returned at their size.
    """
    from PIL import Image, ImageOps

    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _image_from_array(source, field)
    else:
        image = _decode_image(_open_source(source, limits.max_image_bytes, field), limits, field)
    if image.width < 1 or image.height < 1:
        raise InputError(
            field, f"the image is empty ({image.width}×{image.height}); pass a real picture"
        )
    _check_aspect(image.height, image.width, field)  # the processor's resize refuses these
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGB", image.size, (255, 255, 255))  # transparent → white
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    image = image.convert("RGB")
    if image.width * image.height > limits.image_max_pixels:
        h, w = fit_to_grid(image.height, image.width, limits.image_max_pixels, field)
        image = image.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return image


def _decode_image(data: str | io.BytesIO, limits: MediaLimits, field: str):
    """Open (header only), refuse bombs, then decode."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # Our header check below is the authority; PIL's own warning (89 Mpx) is not.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(data)
        except Image.DecompressionBombError as e:
            raise InputError(
                field, f"image too large to decode safely ({e}); resize it first"
            ) from e
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(field, "not an image file; pass a PNG, JPEG or WebP picture") from e
        pixels = image.width * image.height
        if pixels > limits.image_bomb_pixels:
            raise InputError(
                field,
                f"image too large to decode safely: {image.width}×{image.height} = "
                f"{pixels / 1e6:.0f} Mpx > {limits.image_bomb_pixels / 1e6:.0f} Mpx; resize it first",
            )
        if image.format == "JPEG" and pixels > 4 * limits.image_max_pixels:
            h, w = fit_to_grid(image.height, image.width, limits.image_max_pixels, field)
            image.draft("RGB", (w, h))  # decode at 1/2, 1/4 or 1/8 scale: faster, less memory
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as e:
            raise InputError(
                field, f"the image is truncated or corrupt ({e}); upload it again"
            ) from e
    return image


def _image_from_array(array: np.ndarray, field: str):
    from PIL import Image

    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InputError(field, f"image array must be [H, W] or [H, W, 3], got shape {array.shape}")
    if array.size == 0:
        raise InputError(field, f"the image is empty (shape {array.shape}); pass a real picture")
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
            raise InputError(field, "float image values must lie in [0, 1]; scale it or pass uint8")
        array = np.round(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(field, f"image array must be uint8 or float in [0, 1], got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(array))


# ---------------------------------------------------------------- video


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

    data = _open_source(source, limits.max_video_bytes, field)
    with _open_av(data, "video", field) as container:
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
