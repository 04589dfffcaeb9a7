"""The example media in assets/ decode through CareLLM's own loaders (real containers and
codecs: WAV, FLAC, MP3, Ogg Opus, JPEG, MP4 with H.264 + AAC) and each one runs a turn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from carellm import media
from carellm.safety import assess
from carellm.turn import Turn

ASSETS = Path(__file__).resolve().parent.parent / "assets"
VOICES = {  # file -> (seconds, transcript)
    "voice_calm_en.wav": (6.97, "Hi. Today was actually a good day."),
    "voice_stressed_en.flac": (5.84, "I'm so stressed about my exams."),
    "voice_calm_zh.mp3": (7.05, "今天心情不错"),
    "voice_stressed_zh.ogg": (6.80, "最近工作压力很大"),
}
pytestmark = pytest.mark.timeout(180)


def test_assets_folder_lists_every_file_and_a_licence():
    readme = (ASSETS / "README.md").read_text(encoding="utf-8")
    assert "Apache-2.0" in readme
    files = sorted(p.name for p in ASSETS.iterdir() if p.is_file() and p.name != "README.md")
    assert files == sorted([*VOICES, "photo_tired.jpg", "video_stressed_en.mp4", "logo.png"])
    for name in files:
        assert f"`{name}`" in readme, name
    assert sum((ASSETS / f).stat().st_size for f in files) < 800 * 1024  # a few hundred KB


@pytest.mark.parametrize("name", sorted(VOICES))
def test_voice_assets_decode_to_16khz_speech(name):
    wave = media.load_audio(ASSETS / name)
    seconds = wave.size / media.AUDIO_RATE
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(seconds - VOICES[name][0]) < 0.15, seconds
    assert 0.3 < np.abs(wave).max() <= 1.0  # audible, not clipped silence
    assert np.std(wave) > 0.02


def test_image_and_video_assets_decode():
    image = media.load_image(ASSETS / "photo_tired.jpg")
    assert image.size == (640, 480) and image.mode == "RGB"
    assert np.asarray(image).std() > 10  # a picture, not a flat colour
    video = media.load_video(ASSETS / "video_stressed_en.mp4", with_audio=True)
    frames = np.asarray(video.frames)
    assert frames.shape[0] >= 2 and frames.shape[0] % 2 == 0 and frames.shape[-1] == 3
    assert abs(video.audio.size / media.AUDIO_RATE - 5.85) < 0.15
    assert np.abs(video.audio).max() > 0.3


def test_no_crisis_language_in_the_examples():
    readme = (ASSETS / "README.md").read_text(encoding="utf-8")
    for _, transcript in VOICES.values():
        assert transcript in readme
        assert assess(transcript).level == "none"


@pytest.mark.parametrize(
    "turn",
    [
        Turn(audio=str(ASSETS / "voice_stressed_en.flac")),
        Turn(audio=str(ASSETS / "voice_calm_zh.mp3")),
        Turn(audio=str(ASSETS / "voice_stressed_zh.ogg"), text="最近好累"),
        Turn(text="This is me tonight.", image=str(ASSETS / "photo_tired.jpg")),
        Turn(video=str(ASSETS / "video_stressed_en.mp4")),
    ],
    ids=["flac", "mp3", "opus", "jpeg", "mp4"],
)
def test_each_asset_runs_a_turn(engine, turn):
    session = engine.session(seed=0, max_new_tokens=8, speech=False)
    reply = session.respond(turn)
    assert reply.text.strip()
    assert reply.emotion is not None and reply.emotion.source == "model"
    kinds = set(session.history[0][0].modalities)
    expected = {"audio"} if turn.audio else {"image"} if turn.image else {"video", "audio"}
    assert expected <= kinds


def test_chat_help_points_at_the_example_media(capsys):
    from carellm.cli import main

    with pytest.raises(SystemExit):
        main(["chat", "--help"])
    out = capsys.readouterr().out
    for name in ("voice_stressed_en.flac", "photo_tired.jpg", "video_stressed_en.mp4"):
        assert f"assets/{name}" in out and (ASSETS / name).exists()
