"""`carellm.remote.RemoteEngine` against a real `carellm serve` app on loopback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from carellm.emotion import EmotionReport
from carellm.remote import RemoteEngine, RemoteError
from carellm.reply import Assessment, AudioChunk, Final, Reply, TextDelta
from carellm.serve import create_app, running
from carellm.turn import Turn

SHORT = {"max_new_tokens": 12}  # reply tokens: keeps the tiny talker quick


@pytest.fixture(scope="module")
def remote(engine):
    with running(create_app(engine, session_kwargs=SHORT)) as url:
        remote = RemoteEngine(url, timeout=300)
        yield remote
        remote.close()


@pytest.fixture(scope="module")
def text_only_remote(text_engine):
    with running(create_app(text_engine, session_kwargs=SHORT)) as url:
        remote = RemoteEngine(url + "/v1", model="any-name", timeout=300)
        yield remote
        remote.close()


def test_multimodal_turn_with_speech(remote, media_dir, engine):
    assert remote.model == engine.info.model  # from GET /v1/models
    session = remote.session(persona="listener", voice="Ethan", seed=0)
    turn = Turn(text="This is me.", audio=str(media_dir / "voice.wav"),
                image=str(media_dir / "face.png"), video=str(media_dir / "clip.mp4"))  # fmt: skip
    reply = session.respond(turn)
    assert isinstance(reply, Reply) and reply.text
    assert reply.audio is not None and reply.audio.dtype == np.float32 and reply.audio.size > 0
    assert reply.sample_rate == 24000 and reply.notes == ()
    assert isinstance(reply.emotion, EmotionReport) and reply.emotion.source == "model"
    assert {e.modality for e in reply.emotion.evidence} == {"text", "voice", "visual"}
    assert reply.safety.signals["text"] == "none" and "server_prefill" in reply.timings


def test_stream_events_in_order(remote):
    session = remote.session(seed=1)
    events = list(session.stream(Turn(text="Hello. I feel nervous about tomorrow.")))
    kinds = [type(e) for e in events]
    assert kinds[0] is Assessment and kinds[-1] is Final
    assert TextDelta in kinds and AudioChunk in kinds
    final = events[-1].reply
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip() == final.text
    assert final.emotion == events[0].emotion  # the server's report, parsed


def test_history_is_kept_client_side(remote, tmp_path):
    session = remote.session(speech=False, seed=2)
    session.respond(Turn(text="I failed my exam."))
    reply = session.respond(Turn(text="And my parents are angry."))
    assert [t.text for t, _ in session.history] == [
        "I failed my exam.",
        "And my parents are angry.",
    ]
    assert reply.audio is None and len(session.trajectory()) == 2
    body = session._request_body([{"type": "text", "text": "next"}], report=True)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    exported = session.export(tmp_path / "export")
    assert len(json.loads(exported.read_text())["turns"]) == 2
    session.reset()
    assert session.history == []


def test_crisis_is_escalated_once(remote):
    from carellm.assessment import escalation_for

    reply = remote.session(speech=False).respond(Turn(text="I want to kill myself tonight."))
    assert reply.escalated and reply.safety.level in ("high", "imminent") and "988" in reply.text
    assert reply.text.count(escalation_for(reply.safety)) == 1  # the server's is not repeated


def test_no_speech_server_says_so(text_only_remote):
    session = text_only_remote.session(seed=0)  # asks for speech; the server has none
    reply = session.respond(Turn(text="Hello there."))
    assert reply.audio is None and reply.text
    assert any("no speech" in note for note in reply.notes)


def test_fallback_report_without_extension(remote):
    """A plain OpenAI server sends no `carellm` object: the report is the fallback."""
    from carellm.remote.client import _RemoteTurn
    from carellm.turn import prepare

    session = remote.session()  # asks for speech
    run = _RemoteTurn(session, prepare(Turn(text="I feel so lonely.")), True, 0.0)
    chunks = [{"choices": [{"delta": {"content": "I hear you."}}]}]
    events = list(run.events(iter(chunks)))
    assert isinstance(events[0], Assessment) and events[0].emotion.source == "fallback"
    assert run.reply.text == "I hear you." and any("no speech" in n for n in run.reply.notes)


def test_bad_input_fails_before_sending(remote):
    from carellm import InputError

    with pytest.raises(InputError):
        remote.session().respond(Turn())


def test_unreachable_server_is_a_clear_error():
    engine = RemoteEngine("http://127.0.0.1:9", model="x", timeout=2)
    with pytest.raises(RemoteError, match="cannot reach"):
        engine.session(speech=False).respond(Turn(text="hi"))
