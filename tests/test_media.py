"""Tests for carellm.media: every file is generated here, in tmp_path, at test time."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from carellm.errors import InputError
from carellm.media import (
    MediaLimits,
    Video,
    fit_to_grid,
    load_audio,
    load_image,
    load_video,
    processor_video_kwargs,
    split_audio,
)

LIMITS = MediaLimits()
RNG_SEED = 0


# ---------------------------------------------------------------- media writers


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.argmax(spectrum) * rate / wave.size)


def encode_audio(fmt: str, codec: str, rate: int, wave: np.ndarray) -> bytes:
    """Encode mono float32 samples with PyAV (as a browser or phone would)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        size = stream.codec_context.frame_size or 1024
        for i in range(0, wave.size, size):
            frame = av.AudioFrame.from_ndarray(
                wave[None, i : i + size], format="flt", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def write_video(
    path: Path,
    seconds: float,
    *,
    fps: int = 10,
    size: tuple[int, int] = (160, 96),
    codec: str = "libx264",
    audio_rate: int | None = None,
) -> Path:
    """A clip of flat grey frames brightening from 0 to 255, with an optional 440 Hz track."""
    import av

    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = out.add_stream("aac", rate=audio_rate, layout="stereo") if audio_rate else None
        count = int(seconds * fps)
        for i in range(count):
            image = np.full((size[1], size[0], 3), round(255 * i / (count - 1)), np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            tone = sine(440, seconds, audio_rate)
            stereo = np.stack([tone, tone])
            for i in range(0, tone.size, 1024):
                chunk = np.ascontiguousarray(stereo[:, i : i + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = audio_rate, i
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width×height but holds no pixel data: decoding it would fail."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def write_text(path: Path) -> Path:
    path.write_text("I am a note, not a recording.\n" * 20)
    return path


def write_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def write_pdf(path: Path) -> Path:
    path.write_bytes(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    return path


def noise(seconds: float, rate: int) -> np.ndarray:
    return (
        np.random.default_rng(RNG_SEED).uniform(-0.5, 0.5, int(seconds * rate)).astype(np.float32)
    )


@pytest.fixture(scope="module")
def clip_with_audio(tmp_path_factory) -> Path:
    """10 s, 10 fps, 160×96 H.264 + 44.1 kHz stereo AAC at 440 Hz."""
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", 10, audio_rate=44100)


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    import transformers

    from carellm.tiny import build_tiny_model

    path = tmp_path_factory.mktemp("tiny")
    build_tiny_model(path)
    return transformers.Qwen2_5OmniProcessor.from_pretrained(path)


# ---------------------------------------------------------------- audio


def test_wav_44k_stereo_is_downmixed_and_resampled(tmp_path):
    left = sine(440, 2.0, 44100)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 44100)  # right channel silent
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1 and wave.size == 32000
    assert abs(peak_hz(wave) - 440) < 1.0
    assert np.sqrt(np.mean(wave**2)) == pytest.approx(0.25 / np.sqrt(2), rel=0.02)  # mean of L, R


def test_wav_8k_int16_bytes(tmp_path):
    buf = io.BytesIO()
    sf.write(
        buf, (sine(440, 1.0, 8000) * 32767).astype(np.int16), 8000, format="WAV", subtype="PCM_16"
    )
    wave = load_audio(buf.getvalue())
    assert wave.shape == (16000,) and np.abs(wave).max() <= 1.0
    assert abs(peak_hz(wave) - 440) < 1.5


@pytest.mark.parametrize(
    ("fmt", "codec", "rate"),
    [
        ("webm", "libopus", 48000),
        ("ogg", "libopus", 48000),
        ("mp3", "libmp3lame", 44100),
        ("mp4", "aac", 44100),
    ],
)
def test_compressed_formats_decode(fmt, codec, rate):
    data = encode_audio(fmt, codec, rate, sine(440, 2.0, rate))
    wave = load_audio(data)
    assert wave.dtype == np.float32 and abs(wave.size / 16000 - 2.0) < 0.05
    assert abs(peak_hz(wave) - 440) < 1.5


@pytest.mark.parametrize(
    "source",
    [
        "gradio",  # (rate, int16 [N, 2])
        "tuple",  # (float [N], rate)
        "dict",  # {"array", "sampling_rate"}
        "channels_first",  # (float [2, N], rate)
    ],
)
def test_array_inputs(source):
    tone = sine(440, 1.0, 22050)
    inputs = {
        "gradio": (22050, (np.stack([tone, tone], axis=1) * 32767).astype(np.int16)),
        "tuple": (tone, 22050),
        "dict": {"array": tone, "sampling_rate": 22050},
        "channels_first": (np.stack([tone, tone]), 22050),
    }
    wave = load_audio(inputs[source])
    assert wave.shape == (16000,) and wave.dtype == np.float32
    assert abs(peak_hz(wave) - 440) < 1.5


def test_split_audio_70s_into_30_30_10():
    chunks = split_audio(np.zeros(70 * 16000, np.float32), limits=LIMITS)
    assert [c.size / 16000 for c in chunks] == [30.0, 30.0, 10.0]


def test_split_audio_drops_a_tail_too_short_to_encode():
    chunks = split_audio(np.zeros(60 * 16000 + 800, np.float32), limits=LIMITS)  # +0.05 s
    assert [c.size / 16000 for c in chunks] == [30.0, 30.0]


BAD_AUDIO = {
    "missing path": (lambda d: d / "nope.wav", "file not found"),
    "zero-byte file": (lambda d: write_empty(d / "empty.wav"), "empty (0 bytes)"),
    "random bytes": (lambda d: np.random.default_rng(1).bytes(5000), "not a readable audio"),
    "text file": (lambda d: write_text(d / "note.txt"), "not a readable audio file (it is text)"),
    "video without audio": (lambda d: write_video(d / "v.mp4", 1), "no audio track"),
    "zero-length": (lambda d: (np.zeros(0, np.float32), 16000), "no samples"),
    "too short": (lambda d: (noise(0.05, 16000), 16000), "too short"),
    "silent": (lambda d: (np.zeros(16000, np.float32), 16000), "silent"),
    "nan": (lambda d: (np.full(16000, np.nan, np.float32), 16000), "NaN or infinite"),
    "inf": (
        lambda d: (np.r_[noise(1, 16000), np.inf].astype(np.float32), 16000),
        "NaN or infinite",
    ),
    "rate too low": (lambda d: (noise(1, 4000), 4000), "implausible sample rate"),
    "rate too high": (lambda d: (noise(1, 400_000), 400_000), "implausible sample rate"),
    "fractional rate": (lambda d: (noise(1, 16000), 16000.5), "whole number"),
    "rate not a number": (lambda d: (noise(1, 16000), "16k"), "number of Hz"),
    "3-D array": (lambda d: (np.zeros((2, 2, 16000), np.float32), 16000), "shape"),
    "too long array": (lambda d: (noise(301, 8000), 8000), "audio too long: 301 s > 300 s"),
    "too long file": (lambda d: write_wav(d / "long.wav", noise(301, 8000), 8000), "too long"),
}


def write_wav(path: Path, wave: np.ndarray, rate: int) -> Path:
    sf.write(path, wave, rate, subtype="PCM_16")
    return path


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
def test_bad_audio_raises_input_error(tmp_path, case):
    make, expected = BAD_AUDIO[case]
    with pytest.raises(InputError) as info:
        load_audio(make(tmp_path), field="voice")
    assert info.value.field == "voice"
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_audio_file_too_big(tmp_path):
    path = write_wav(tmp_path / "a.wav", noise(1, 16000), 16000)
    with pytest.raises(InputError, match="file too large") as info:
        load_audio(path, limits=replace(LIMITS, max_audio_bytes=1000))
    assert info.value.field == "audio"


# ---------------------------------------------------------------- images


def test_png_rgba_becomes_rgb_on_white(tmp_path):
    pixels = np.zeros((40, 60, 4), np.uint8)  # fully transparent black
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.mode == "RGB" and image.size == (60, 40)
    assert np.asarray(image).min() == 255


def test_large_jpeg_is_downscaled_keeping_aspect(tmp_path):
    Image.new("RGB", (3000, 2000), (10, 120, 200)).save(tmp_path / "big.jpg", quality=80)
    image = load_image(tmp_path / "big.jpg")
    w, h = image.size
    assert w * h <= LIMITS.image_max_pixels and w % 28 == 0 and h % 28 == 0
    assert w / h == pytest.approx(1.5, rel=0.03)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    Image.new("RGB", (80, 40)).save(tmp_path / "phone.jpg", exif=exif)
    assert load_image(tmp_path / "phone.jpg").size == (40, 80)


@pytest.mark.parametrize(
    "array",
    [
        np.full((30, 50, 3), 7, np.uint8),
        np.full((30, 50, 3), 7 / 255, np.float32),
        np.full((30, 50), 7, np.uint8),
    ],
    ids=["uint8", "float", "gray"],
)
def test_arrays_become_rgb_images(array):
    image = load_image(array)
    assert image.mode == "RGB" and image.size == (50, 30)
    assert np.asarray(image)[0, 0].tolist() == [7, 7, 7]


def test_bomb_refused_from_header_before_decoding():
    # No pixel data at all: decoding would fail as truncated, so this message proves the
    # size was checked from the header first.
    with pytest.raises(InputError, match=r"too large to decode safely: 12000×10000") as info:
        load_image(png_header_only(12000, 10000))
    assert info.value.field == "image"


def test_pil_bomb_error_is_converted():
    limits = replace(LIMITS, image_bomb_pixels=10**12)  # leave it to PIL's own 179 Mpx check
    with pytest.raises(InputError, match="too large to decode safely"):
        load_image(png_header_only(20000, 20000), limits=limits)


def truncated_jpeg(d: Path) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, "JPEG"
    )
    return buf.getvalue()[: buf.tell() // 2]


BAD_IMAGES = {
    "missing path": (lambda d: d / "nope.png", "file not found"),
    "zero-byte file": (lambda d: write_empty(d / "e.png"), "empty (0 bytes)"),
    "text file": (lambda d: write_text(d / "note.png"), "not an image"),
    "truncated jpeg": (truncated_jpeg, "truncated or corrupt"),
    "empty array": (lambda d: np.zeros((0, 5, 3), np.uint8), "empty"),
    "float out of range": (lambda d: np.full((4, 4, 3), 2.0), "[0, 1]"),
    "4-D array": (lambda d: np.zeros((1, 4, 4, 3), np.uint8), "shape"),
    "too narrow": (lambda d: np.zeros((1, 500, 3), np.uint8), "aspect ratio"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_raises_input_error(tmp_path, case):
    make, expected = BAD_IMAGES[case]
    with pytest.raises(InputError) as info:
        load_image(make(tmp_path), field="photo")
    assert info.value.field == "photo" and expected in str(info.value)


# ---------------------------------------------------------------- video


def test_fit_to_grid_no_upscale_but_56_minimum():
    assert fit_to_grid(720, 1280, 768 * 28 * 28, "video") == (560, 1008)
    assert fit_to_grid(64, 64, 768 * 28 * 28, "video") == (56, 56)
    assert fit_to_grid(20, 30, 768 * 28 * 28, "video") == (56, 56)


def test_10s_clip_at_2fps_with_audio(clip_with_audio):
    video = load_video(clip_with_audio, with_audio=True)
    assert isinstance(video, Video)
    assert video.frames.shape == (20, 84, 168, 3) and video.frames.dtype == np.uint8
    assert video.fps == pytest.approx(2.0) and video.duration == pytest.approx(10.0)
    assert video.source_size == (160, 96)
    levels = video.frames.mean(axis=(1, 2, 3))
    wanted = 255 * ((np.arange(20) + 0.5) * 0.5 * 10) / 99  # level of the frame at each target
    # Non-reference frames are skipped when sampling 1 in 5: ±2 source frames (±5 levels).
    assert np.abs(levels - wanted).max() <= 8
    assert np.all(np.diff(levels) > 0)
    assert video.audio.dtype == np.float32 and abs(video.audio.size / 16000 - 10.0) < 0.1
    assert abs(peak_hz(video.audio) - 440) < 1.0


def test_audio_not_asked_or_absent_is_none(tmp_path, clip_with_audio):
    assert load_video(clip_with_audio).audio is None
    silent_film = write_video(tmp_path / "silent.mp4", 2, codec="mpeg4")
    video = load_video(silent_film, with_audio=True)
    assert video.audio is None and video.frames.shape[0] == 4


def test_long_clip_capped_and_spread(tmp_path):
    path = write_video(tmp_path / "long.mp4", 100, fps=4, size=(64, 64))
    video = load_video(path)
    assert video.frames.shape == (128, 56, 56, 3)  # 200 frames at 2 fps → cap; 64 px not upscaled
    assert video.fps == pytest.approx(1.28)
    levels = video.frames.mean(axis=(1, 2, 3))
    assert np.all(np.diff(levels) >= 0) and levels[0] < 3 and levels[-1] > 248  # whole clip


def test_total_pixel_budget_and_fps_override(clip_with_audio):
    limits = replace(LIMITS, video_total_pixels=40 * 28 * 28 * 4)  # 4 patches/frame at 40 frames
    video = load_video(clip_with_audio, fps=4.0, limits=limits)
    t, h, w, _ = video.frames.shape
    assert t == 40 and t * h * w <= limits.video_total_pixels and h % 28 == 0 and w % 28 == 0


def test_processor_keeps_our_frames(processor, clip_with_audio):
    video = load_video(clip_with_audio, fps=1.0)
    t, h, w, _ = video.frames.shape
    out = processor(
        text=["<|vision_bos|><|VIDEO|><|vision_eos|>"],
        videos=[video.frames],
        return_tensors="pt",
        **processor_video_kwargs(video),
    )
    assert out["video_grid_thw"].tolist() == [[t // 2, h // 14, w // 14]]
    assert float(out["video_second_per_grid"][0]) == pytest.approx(2 / video.fps)


def truncated_mp4(d: Path) -> Path:
    data = write_video(d / "full.mp4", 2).read_bytes()
    (d / "cut.mp4").write_bytes(data[: len(data) // 2])  # moov atom lost
    return d / "cut.mp4"


def undecodable_mp4(d: Path) -> Path:
    data = bytearray(write_video(d / "full.mp4", 2).read_bytes())
    start = data.find(b"mdat") + 4
    data[start : len(data) - 2000] = bytes(len(data) - 2000 - start)  # frames zeroed, moov kept
    (d / "zeros.mp4").write_bytes(bytes(data))
    return d / "zeros.mp4"


def png_file(d: Path) -> Path:
    Image.new("RGB", (64, 64)).save(d / "still.png")
    return d / "still.png"


BAD_VIDEOS = {
    "missing path": (lambda d: d / "nope.mp4", "file not found"),
    "zero-byte file": (lambda d: write_empty(d / "e.mp4"), "empty (0 bytes)"),
    "text file": (lambda d: write_text(d / "note.txt"), "not a readable video file (it is text)"),
    "text named .mp4": (lambda d: write_text(d / "note.mp4"), "not a readable video"),
    "pdf": (lambda d: write_pdf(d / "doc.pdf"), "not a readable video"),
    "audio only": (lambda d: write_wav(d / "a.wav", noise(1, 16000), 16000), "no video track"),
    "random bytes": (lambda d: np.random.default_rng(3).bytes(20000), "not a readable video"),
    "truncated mp4": (truncated_mp4, "not a readable video"),
    "still image": (png_file, "still image"),
    "oversized": (
        lambda d: write_video(d / "300s.mp4", 300, fps=1, size=(32, 32), codec="mpeg4"),
        "oversized video: 300 s > 120 s; trim it or pass a shorter clip",
    ),
    "zero decodable frames": (undecodable_mp4, "no frame could be decoded"),
}


@pytest.mark.parametrize("case", sorted(BAD_VIDEOS))
def test_bad_video_raises_input_error(tmp_path, case):
    make, expected = BAD_VIDEOS[case]
    with pytest.raises(InputError) as info:
        load_video(make(tmp_path), field="clip")
    assert info.value.field == "clip" and expected in str(info.value)


def test_video_file_too_large(clip_with_audio):
    with pytest.raises(InputError, match="file too large") as info:
        load_video(clip_with_audio, limits=replace(LIMITS, max_video_bytes=10_000))
    assert info.value.field == "video"


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink: muxers then cannot go back to write the duration."""

    def __init__(self):
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        self.data += bytes(chunk)
        return len(chunk)


def test_webm_without_duration_like_a_browser_recording():
    import av

    pipe = _Pipe()
    with av.open(pipe, "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(30):
            image = np.full((64, 64, 3), 8 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with av.open(io.BytesIO(bytes(pipe.data))) as probe:
        assert probe.duration is None and probe.streams.video[0].duration is None
    video = load_video(bytes(pipe.data))
    assert video.duration == pytest.approx(3.0) and video.frames.shape == (6, 56, 56, 3)
