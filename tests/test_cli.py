"""The `carellm` command as a user runs it: a real process, typed input, files out."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
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
    assert "[error]" not in out.stdout
    wavs = sorted((tmp_path / "wavs").glob("*.wav"))
    assert len(wavs) == 2
    audio, rate = sf.read(wavs[0])
    assert rate == 24000 and len(audio) > 0
    exported = json.loads((tmp_path / "export" / "session.json").read_text(encoding="utf-8"))
    turns = exported["turns"]
    assert turns[0]["reply"]["transcript"] is None  # a typed turn has nothing to transcribe
    heard = turns[1]["reply"]["transcript"]
    assert heard and f"[you said: {heard}]" in out.stdout  # the voice turn's transcript


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


class _Keyboard(io.StringIO):
    """stdin for the REPL: typed lines, with ``before[n]`` run just before line n is read."""

    def __init__(self, lines, before=None):
        super().__init__("\n".join(lines) + "\n")
        self.before, self.read_lines = before or {}, 0

    def readline(self, *args):
        action = self.before.get(self.read_lines)
        if action is not None:
            action()
        self.read_lines += 1
        return super().readline(*args)


def chat(tiny_path, tmp_path, monkeypatch, capsys, lines, before=None):
    """Run `carellm chat` in this process on typed lines; (exit code, stdout, turns)."""
    monkeypatch.setattr(sys, "stdin", _Keyboard([*lines, f"/export {tmp_path / 'out'}"], before))
    code = main(["chat", "--model", str(tiny_path), "--device", "cpu", "--no-speech",
                 "--no-report", "--seed", "1", "--max-new-tokens", "4"])  # fmt: skip
    turns = json.loads((tmp_path / "out" / "session.json").read_text())["turns"]
    return code, capsys.readouterr().out, turns


@pytest.mark.timeout(120)
def test_chat_refuses_bad_attachments_and_the_next_message_works(
    tiny_path, media_dir, tmp_path, monkeypatch, capsys
):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really an image" * 10)
    lines = [
        f"/audio {tmp_path / 'missing.wav'}",
        "hello after a missing file",
        f"/image {corrupt}",
        f"/video {media_dir / 'face.png'}",  # a picture is not a video
        "hello after two bad files",
        f"/audio {media_dir / 'voice.wav'}",
        f"/audio {tmp_path / 'missing.wav'}",  # refused: the good file stays attached
        "",
    ]
    code, out, turns = chat(tiny_path, tmp_path, monkeypatch, capsys, lines)
    assert code == 0
    assert "[error] audio: file not found" in out
    assert "[error] image:" in out and "[error] video:" in out
    assert out.count("not attached; your conversation is unchanged") == 3
    assert f"audio not attached; audio {media_dir / 'voice.wav'} stays attached" in out
    assert "nothing was added" not in out  # no turn failed
    assert [t["user"]["text"] for t in turns] == [
        "hello after a missing file", "hello after two bad files", ""
    ]  # fmt: skip
    assert [t["user"]["modalities"] for t in turns] == [["text"], ["text"], ["audio"]]


@pytest.mark.timeout(120)
def test_chat_drops_an_attachment_that_breaks_its_turn(
    tiny_path, media_dir, tmp_path, monkeypatch, capsys
):
    voice = tmp_path / "voice.wav"
    voice.write_bytes((media_dir / "voice.wav").read_bytes())
    lines = [f"/audio {voice}", "this turn fails: the file went away", "this one works"]
    code, out, turns = chat(
        tiny_path, tmp_path, monkeypatch, capsys, lines, before={1: voice.unlink}
    )
    assert code == 0
    assert "[error] audio: file not found" in out and "[audio dropped;" in out
    assert [t["user"]["text"] for t in turns] == ["this one works"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_prints_its_own_share_hint_not_gradios(tiny_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["demo", "--model", str(tiny_path), "--device", "cpu", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "carellm", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines = []
    try:
        for line in proc.stdout:  # until the server is up (the timeout guards a hang)
            lines.append(line)
            if line.startswith("public link:"):
                break
    finally:
        proc.kill()
        proc.wait()
    out = "".join(lines)
    assert f"demo running on http://127.0.0.1:{port}/" in out
    assert "public link: pass --share" in out
    assert "share=True" not in out and "launch()" not in out
