"""Audio loading: any voice input → float32 mono 16 kHz waveform ``[N]`` in [-1, 1].

`load_audio` decodes with soundfile (wav/flac/ogg/mp3), else PyAV (m4a/webm/opus...), and
resamples with scipy; `split_audio` cuts the wave into ≤ 30 s chunks because the feature
extractor silently drops everything after 30 s.
"""

from __future__ import annotations

import io
import logging
import math
from fractions import Fraction
from typing import Any

import numpy as np

from carellm.errors import InputError
from carellm.media.common import (
    MAX_SOURCE_RATE,
    MIN_SOURCE_RATE,
    MediaLimits,
    open_av,
    open_source,
)

logger = logging.getLogger(__name__)


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
            open_source(source, limits.max_audio_bytes, field), limits, field
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

    with open_av(data, "audio", field) as container:
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


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    """float32 mono samples in [-1, 1] as a complete 16-bit PCM WAV file in memory.
    CareLLM's one WAV writer (exports, the demo, the server, the remote backend)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(audio, np.float32), int(rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_wav(path, audio: np.ndarray, rate: int) -> None:
    """`wav_bytes` written to ``path``."""
    from pathlib import Path

    Path(path).write_bytes(wav_bytes(audio, rate))
