"""Shared fixtures: the tiny random Qwen2.5-Omni (built once per test session through
`carellm.tiny.build_tiny_model`, then loaded through `carellm.load` like a user's
model) and media files generated on the fly."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config):
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:
        pass


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory) -> Path:
    from carellm.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def engine(tiny_path):
    import carellm

    return carellm.load(str(tiny_path), device="cpu")


@pytest.fixture(scope="session")
def text_engine(tiny_path):
    import carellm

    return carellm.load(str(tiny_path), device="cpu", speech=False)


def sine(seconds: float, rate: int = 16000, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """A WAV (44.1 kHz stereo), a PNG, an mp4 with audio and one without."""
    import soundfile as sf
    from PIL import Image

    folder = tmp_path_factory.mktemp("media")
    sf.write(folder / "voice.wav", sine(2.0, 44100, channels=2), 44100)
    img = np.zeros((120, 160, 3), np.uint8)
    img[:, :80] = (200, 120, 40)
    Image.fromarray(img).save(folder / "face.png")
    write_video(folder / "clip.mp4", seconds=2.0, with_audio=True)
    write_video(folder / "silent.mp4", seconds=2.0, with_audio=False)
    return folder


def write_video(
    path: Path, *, seconds: float, with_audio: bool, size=(96, 64), fps: int = 10
) -> Path:
    """An mp4 (mpeg4 video, optional AAC 16 kHz... 44.1 kHz tone) written with PyAV."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        a_s = out.add_stream("aac", rate=44100) if with_audio else None
        for i in range(int(seconds * fps)):
            frame = np.full((h, w, 3), (i * 20) % 255, np.uint8)
            for packet in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if a_s is not None:
            tone = sine(seconds, 44100)
            step = 1024
            for start in range(0, len(tone) - step, step):
                chunk = tone[start : start + step].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate = 44100
                frame.pts = start
                for packet in a_s.encode(frame):
                    out.mux(packet)
            for packet in a_s.encode():
                out.mux(packet)
    return path
