"""The demo's handlers on the tiny random model, without a browser."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from carellm.demo import views
from carellm.demo.examples import EXAMPLES, assets_dir, example_rows
from carellm.demo.handlers import (
    OUTPUTS,
    ChatState,
    Handlers,
    Pending,
    collect_media,
    kind_of,
)
from carellm.demo.spaces import ZERO_GPU_ENV, on_gpu, on_zero_gpu, turn_seconds
from carellm.errors import InputError
from carellm.turn import Turn

SHORT = {"max_new_tokens": 12, "seed": 0}  # reply tokens: keeps the tiny model quick


def send(handlers, state=None, text=None, files=(), video=None, image=None,
         persona="counselor", voice="Chelsie", speech=False) -> list[dict]:  # fmt: skip
    """Every update `respond` yields, as dicts keyed by OUTPUTS. ``files`` go in the
    message box (its microphone recordings and attachments), like the page sends them."""
    message = {"text": text or "", "files": [str(f) for f in files]}
    steps = handlers.respond(message, video, image, persona, voice, speech, state)
    return [dict(zip(OUTPUTS, step)) for step in steps]


@pytest.fixture
def handlers(text_engine):
    return Handlers(text_engine, SHORT)


def test_text_turn_updates_chat_emotion_and_trajectory(handlers):
    steps = send(handlers, text="I feel so lonely and sad today.")
    last = steps[-1]
    state = last["state"]
    assert isinstance(state, ChatState) and len(state.session.history) == 1
    user, reply, report = last["chat"]
    assert user == {"role": "user", "content": "I feel so lonely and sad today."}
    assert reply["role"] == "assistant" and reply["content"].strip()
    emotion = state.session.trajectory()[0]
    # the one-line summary is the collapsed message's title; details are inside
    summary = report["metadata"]["title"]
    assert report["metadata"]["status"] == "done" and "\n" not in summary
    for part in (emotion.emoji, emotion.label_en, emotion.label_zh, emotion.intensity):
        assert part in summary
    assert f"risk {emotion.risk}" in summary
    assert f"valence {emotion.valence:+.2f}" in report["content"]
    assert emotion.emoji in last["emotion"] and "valence" in last["emotion"]
    assert last["emotion"] != views.NO_REPORT
    frame = last["trajectory"]
    assert list(frame["turn"]) == [1, 1] and list(frame["series"]) == ["valence", "arousal"]
    assert list(frame["value"]) == pytest.approx([emotion.valence, emotion.arousal])
    assert frame["value"].dtype.kind == "f"  # numeric: a line, not categories
    assert "1 " + emotion.emoji in last["trajectory_caption"]
    assert last["banner"]["visible"] is False and last["message"] == {"text": "", "files": []}
    # the reply streamed: the assistant bubble grew over several updates before Final
    partial = [s["chat"][-1]["content"] for s in steps[:-1] if s["chat"]]
    assert len(partial) >= 2 and steps[0]["emotion"] != views.NO_REPORT


def test_second_turn_extends_trajectory(handlers):
    state = send(handlers, text="Exams tomorrow.")[-1]["state"]
    last = send(handlers, state, text="I am nervous.")[-1]
    assert len(last["chat"]) == 6 and list(last["trajectory"]["turn"]) == [1, 1, 2, 2]
    reports = last["state"].session.trajectory()
    valence = last["trajectory"].query("series == 'valence'")["value"]
    assert list(valence) == pytest.approx([r.valence for r in reports])


@pytest.mark.parametrize(
    "text", ["I want to kill myself tonight", "我今晚就想结束自己的生命"], ids=["en", "zh"]
)
def test_crisis_text_shows_banner_with_hotline(handlers, text):
    last = send(handlers, text=text)[-1]
    banner = last["banner"]
    assert banner["visible"] is True
    hotline = "988" if text.isascii() else "12356"
    assert hotline in banner["value"] and "findahelpline.com" in banner["value"]
    assert hotline in last["chat"][1]["content"]  # the reply carries the escalation too
    # the banner stays until Reset, even after a calmer turn
    calmer = send(handlers, last["state"], text="Thanks, ok.")[-1]
    assert calmer["banner"]["visible"] is True
    assert handlers.reset(calmer["state"])[OUTPUTS.index("banner")]["visible"] is False


def _bad_upload(tmp_path, kind: str) -> tuple[str, str]:
    """(field, path) of a bad file, attached in the message box."""
    if kind == "corrupt_audio":
        path = tmp_path / "voice.wav"
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 8)
        return "audio", str(path)
    if kind == "pdf_as_video":
        path = tmp_path / "clip.mp4"
        path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
        return "video", str(path)
    path = tmp_path / "huge.wav"  # sparse: 201 MiB on paper, nothing on disk
    with path.open("wb") as f:
        f.truncate(201 * 2**20)
    return "audio", str(path)


@pytest.mark.parametrize("kind", ["corrupt_audio", "pdf_as_video", "oversized_audio"])
def test_bad_upload_shows_error_and_keeps_history(handlers, tmp_path, media_dir, kind):
    state = send(handlers, text="Hello.")[-1]["state"]
    before = list(state.messages)
    slot, path = _bad_upload(tmp_path, kind)
    photo = str(media_dir / "face.png")
    with pytest.warns(UserWarning):  # gr.Warning outside a request
        steps = send(handlers, state, text="Listen to this", files=[path, photo])
    assert len(steps) == 1
    out = steps[0]
    assert out["status"].startswith("⚠️") and slot in out["status"]
    if kind == "oversized_audio":
        assert "MiB" in out["status"] or "limit" in out["status"]
    assert out["chat"] == before and len(state.session.history) == 1
    # the bad file is removed; the text and the good photo stay in the box
    assert out["message"] == {"text": "Listen to this", "files": [photo]}
    after = send(handlers, state, text="Can you hear me now?")[-1]
    assert len(state.session.history) == 2 and after["status"] == ""
    assert after["chat"][:3] == before


def test_empty_turn_is_refused(handlers):
    with pytest.warns(UserWarning):
        out = send(handlers, text="   ")[0]
    assert "empty" in out["status"] and out["chat"] == []


def test_two_states_stay_separate(handlers):
    alice = send(handlers, text="Alice here, I feel anxious.")[-1]["state"]
    bob = send(handlers, text="Bob here.")[-1]["state"]
    send(handlers, alice, text="Still anxious.")
    assert alice.session is not bob.session
    assert [t.text for t, _ in alice.session.history] == ["Alice here, I feel anxious.", "Still anxious."]  # fmt: skip
    assert [t.text for t, _ in bob.session.history] == ["Bob here."]
    assert all("Alice" not in m["content"] for m in bob.messages)


def test_settings_apply_to_the_next_turn(handlers):
    state = send(handlers, text="Hi.")[-1]["state"]
    send(handlers, state, text="Hi again.", persona="cbt", voice="Ethan")
    assert state.session.options.persona.name == "cbt" and state.session.options.voice == "Ethan"
    assert len(state.session.history) == 2


def test_export_zip_has_session_json_and_wavs(handlers, media_dir):
    with pytest.warns(UserWarning):
        assert handlers.export(ChatState()) is None  # nothing to export yet
    state = send(handlers, text="This is my voice.", files=[media_dir / "voice.wav"])[-1]["state"]
    send(handlers, state, text="And a second turn.")
    path = handlers.export(state)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {"session.json", "trajectory.csv", "turn_01_user_0.wav"} <= names
        record = json.loads(archive.read("session.json"))
    assert record["session_id"] == state.id and len(state.id) == 32
    assert [t["user"]["text"] for t in record["turns"]] == [
        "This is my voice.",
        "And a second turn.",
    ]
    times = [(t["sent_at"], t["replied_at"]) for t in record["turns"]]
    parsed = [datetime.fromisoformat(x) for pair in times for x in pair]
    assert all(x.tzinfo is not None for x in parsed) and parsed == sorted(parsed)
    # a Reset starts a new conversation: a new id, no old times
    handlers.reset(state)
    assert state.id != record["session_id"] and state.times == []


def test_reset_clears_everything(handlers):
    state = send(handlers, text="I want to kill myself tonight")[-1]["state"]
    out = dict(zip(OUTPUTS, handlers.reset(state)))
    assert out["chat"] == [] and state.session.history == [] and state.crisis is None
    assert out["emotion"] == views.NO_REPORT and out["trajectory"]["value"].isna().all()
    assert out["banner"]["visible"] is False and out["status"] == "Conversation cleared."
    assert out["state"] is state  # the tab keeps its session and settings


def test_spoken_reply_streams_before_the_reply_ends(engine):
    handlers = Handlers(engine, {"max_new_tokens": 4, "seed": 0})
    steps = send(handlers, text="Hello.", speech=True)
    chunks = [i for i, s in enumerate(steps) if isinstance(s["speech"], bytes)]
    assert chunks and chunks[0] < len(steps) - 1
    assert steps[chunks[0]]["speech"][:4] == b"RIFF"
    assert steps[-1]["state"].session.history[0][1].audio.size > 0


def test_build_app_queues_one_turn_at_a_time(text_engine):
    import gradio as gr

    from carellm.demo import build_app

    plan = {"estimated_peak_gb": 20.5, "margin_gb": 2.0, "budget_gb": 79.0, "fits": True,
            "reasons": ["7B fits in 79 GiB"], "warnings": []}  # fmt: skip
    demo = build_app(text_engine, plan=plan)
    assert isinstance(demo, gr.Blocks)
    assert demo._queue.default_concurrency_limit == 1 and demo._queue.max_size == 32
    assert "20.5 GiB" in views.plan_panel(text_engine.info, plan)


def test_views_without_a_report():
    assert views.emotion_panel(None) == views.NO_REPORT
    empty = views.trajectory_frame([])
    # no values, but both series named: Gradio's plot takes its colours from first data
    assert empty["value"].isna().all() and list(empty["series"]) == ["valence", "arousal"]
    assert views.trajectory_caption([]) == ""
    assert views.crisis_banner(None) == "" and not views.crisis_visible(None)


def test_zero_gpu_wrapper_is_a_no_op_off_spaces(monkeypatch):
    def fn(session, turn):
        return "ran"

    monkeypatch.delenv(ZERO_GPU_ENV, raising=False)
    assert not on_zero_gpu() and on_gpu(fn) is fn
    monkeypatch.setenv(ZERO_GPU_ENV, "true")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # no `spaces` package
    assert not on_zero_gpu() and on_gpu(fn) is fn


def test_zero_gpu_duration_grows_with_media(text_engine, media_dir):
    session = text_engine.session(max_new_tokens=64)
    text_only = turn_seconds(session, Turn(text="Hi."))
    with_video = turn_seconds(session, Turn(video=str(media_dir / "clip.mp4")))
    assert 0 < text_only < with_video <= 300
    assert turn_seconds(session, Turn(audio=str(media_dir / "missing.wav"))) == text_only


def test_demo_command_parses_flags():
    from carellm.cli import build_parser

    args = build_parser().parse_args(["demo", "--model", "tiny", "--no-speech", "--port", "7999"])
    assert (args.model, args.speech, args.port, args.host) == ("tiny", False, 7999, "127.0.0.1")
    assert args.func.__module__ == "carellm.cli.demo"


def test_wav_bytes_round_trip():
    import io

    import soundfile as sf

    from carellm.media import wav_bytes

    data, rate = sf.read(io.BytesIO(wav_bytes(np.zeros(2400, np.float32), 24000)))
    assert rate == 24000 and data.shape == (2400,)


def test_user_bubble_shows_the_transcript_when_there_is_one():
    assert views.user_message("Hi", ["🎤 a.wav"], "I can't sleep ") == (
        "Hi\n\n📎 🎤 a.wav\n\n🎤 I can't sleep"
    )
    assert views.user_message("", ["🎤 a.wav"], "没睡好") == "📎 🎤 a.wav\n\n🎤 没睡好"
    assert views.user_message("Hi", ["🎤 a.wav"], None) == "Hi\n\n📎 🎤 a.wav"
    assert views.user_message("Hi", [], "  ") == "Hi"  # a blank transcript shows nothing


def test_finished_turn_puts_the_transcript_under_the_attachment(handlers, media_dir):
    state = send(handlers, files=[media_dir / "voice.wav"])[-1]["state"]
    reply = state.session.history[-1][1]
    assert reply.transcript  # a voice turn is transcribed (random words on the tiny model)
    assert state.messages[-3]["content"] == f"📎 🎤 voice.wav\n\n🎤 {reply.transcript}"
    pending = Pending("", ["🎤 voice.wav"], "2026-01-01T00:00:00+00:00")
    Handlers._finish(state, replace(reply, transcript="I can't sleep."), pending)
    assert state.messages[-3]["content"] == "📎 🎤 voice.wav\n\n🎤 I can't sleep."


def test_message_box_files_are_sorted_by_kind(media_dir, tmp_path):
    voice, photo, clip = (str(media_dir / n) for n in ("voice.wav", "face.png", "clip.mp4"))
    assert collect_media([voice, photo, clip]) == {"audio": voice, "image": photo, "video": clip}
    recording = str(tmp_path / "audio.wav")  # what the box's microphone uploads
    assert collect_media([recording], video=clip) == {"audio": recording, "video": clip, "image": None}  # fmt: skip
    with pytest.raises(InputError, match="at most one audio"):
        collect_media([voice, recording])
    with pytest.raises(InputError, match="at most one image"):
        collect_media([photo], image=photo)
    with pytest.raises(InputError, match="notes.pdf is not audio"):
        collect_media([str(tmp_path / "notes.pdf")])


def test_unknown_attachment_is_refused_and_removed(handlers, media_dir, tmp_path):
    notes = tmp_path / "notes.pdf"
    notes.write_bytes(b"%PDF-1.4\n%%EOF\n")
    voice = str(media_dir / "voice.wav")
    with pytest.warns(UserWarning):
        out = send(handlers, text="Read this", files=[notes, voice])[0]
    assert "notes.pdf is not audio, an image or a video" in out["status"]
    assert out["message"] == {"text": "Read this", "files": [voice]} and out["chat"] == []


def test_examples_come_from_the_repository_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows, labels = example_rows()
    files = [Path(row[0]["files"][0]) for row in rows]
    assert [f.name for f in files] == [e.file for e in EXAMPLES] and len(labels) == 6
    assert all(f.is_absolute() and f.is_file() for f in files)
    assert {kind_of(f) for f in files} == {"audio", "image", "video"}
    # a folder without the files (an install without assets/) shows no examples
    assert example_rows(tmp_path) == ([], [])


@pytest.mark.timeout(240)
def test_api_respond_from_gradio_client(engine, tmp_path):
    """The one API endpoint, /respond, on loopback: the call doc/demo.md shows."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from carellm.demo import build_app, launch

    demo = build_app(engine, session_kwargs={"max_new_tokens": 4, "seed": 0})
    _, url, _ = launch(demo, port=None, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path))
        api = client.view_api(return_format="dict", print_info=False)
        assert list(api["named_endpoints"]) == ["/respond"] and not api["unnamed_endpoints"]
        params = api["named_endpoints"]["/respond"]["parameters"]
        assert [p["parameter_name"] for p in params if not p["parameter_has_default"]] == []
        returns = [r["label"] for r in api["named_endpoints"]["/respond"]["returns"]]
        assert returns == ["reply", "spoken_reply", "emotion_report", "safety", "transcript"]

        reply, wav, emotion, safety, transcript = client.predict("I can't sleep.", api_name="/respond")  # fmt: skip
        assert reply.strip() and emotion["primary"]["label"] and safety["signals"]["text"] == "none"
        assert wav.endswith(".wav")
        audio, rate = sf.read(wav)
        assert rate == 24000 and audio.size > 0
        # voice only, no speech: the file parameter alone is enough
        voice = handle_file(str(assets_dir() / "voice_stressed_en.flac"))
        out = client.predict(audio=voice, speech=False, api_name="/respond")
        assert out[1] is None and "voice" in [e["modality"] for e in out[2]["evidence"]]
        clip = handle_file(str(assets_dir() / "video_stressed_en.mp4"))
        out = client.predict(video=clip, speech=False, api_name="/respond")
        assert "visual" in [e["modality"] for e in out[2]["evidence"]]
        bad = tmp_path / "broken.wav"
        bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 8)
        with pytest.raises(AppError, match="audio: .*pass WAV"):
            client.predict("Listen", audio=handle_file(str(bad)), api_name="/respond")
        # one Client is one conversation: its three turns, not the refused one
        states = [v for s in demo.state_holder.session_data.values()
                  for v in s.state_data.values() if isinstance(v, ChatState)]  # fmt: skip
        assert [len(s.session.history) for s in states] == [3]
    finally:
        demo.close()


def test_spaces_app_ships_the_examples():
    """app.py (the Space's entry point) points build_app at the assets beside it."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "app.py"
    spec = importlib.util.spec_from_file_location("space_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines main() and ASSETS; loads no model
    rows, labels = example_rows(module.ASSETS)
    assert module.ASSETS == path.parent / "assets" and len(rows) == len(EXAMPLES)
