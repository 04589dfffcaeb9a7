"""The `carellm` command as a user runs it: a real process, typed input, files out."""

from __future__ import annotations

import subprocess
import sys

import soundfile as sf

from carellm.cli import main


def run_cli(args, stdin="", timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "carellm", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_tiny_then_chat_saves_spoken_replies(tmp_path, media_dir):
    model = tmp_path / "tiny"
    out = run_cli(["tiny", str(model)])
    assert out.returncode == 0 and "RANDOM" in out.stdout
    script = "\n".join(
        [
            "I have been feeling low all week.",
            f"/audio {tmp_path / 'missing.wav'}",
            "this turn fails: the audio file is missing",
            f"/audio {media_dir / 'voice.wav'}",
            "",
            "/export " + str(tmp_path / "export"),
            "/quit",
        ]
    )
    out = run_cli(
        [
            "chat",
            "--model",
            str(model),
            "--save-audio",
            str(tmp_path / "wavs"),
            "--seed",
            "1",
            "--max-new-tokens",
            "16",
        ],
        script,
    )
    assert out.returncode == 0, out.stderr
    assert "TINY RANDOM MODEL" in out.stdout and "not a therapist" in out.stdout
    assert "[error] audio:" in out.stdout and "nothing was added" in out.stdout
    wavs = sorted((tmp_path / "wavs").glob("*.wav"))
    assert len(wavs) == 2  # the failed turn produced nothing
    audio, rate = sf.read(wavs[0])
    assert rate == 24000 and len(audio) > 0
    assert (tmp_path / "export" / "session.json").exists()


def test_chat_with_missing_model_is_one_line_error(tmp_path):
    out = run_cli(["chat", "--model", str(tmp_path / "nope")], "")
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: model folder") and out.stderr.count("\n") == 1


def test_help_lists_the_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    text = capsys.readouterr().out
    for command in ("chat", "tiny", "plan", "data", "eval"):
        assert command in text
