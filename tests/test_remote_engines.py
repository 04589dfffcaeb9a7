"""Contract tests: `RemoteEngine` against loopback stubs of real engines' response shapes.

Each stub is a small FastAPI app served over real HTTP on 127.0.0.1 (`carellm.serve.running`)
that answers chat completions the way its engine does; the client under test is the real
one. Shapes reproduced, and where they come from:

- vLLM-Omni (Qwen2.5-Omni, Qwen3-Omni): ``vllm_omni/entrypoints/openai/serving_chat.py``,
  ``protocol/chat_completion.py`` and ``protocol/audio.py`` of vllm-project/vllm-omni at
  commit 00a3619b9b6647378a285e9d135475e2fa085744. Not streamed: a text choice and an
  audio choice, both ``index`` 0, the audio a base64 WAV in ``message.audio.data`` with
  ``transcript: ""``. Streamed: chunks with a top-level ``modality``; an audio chunk's
  ``delta.content`` is a base64 WAV of the newest segment (empty for a silent segment); a
  stop chunk without ``modality``; a usage chunk with ``choices: []``. ``modalities``
  defaults to the engine's and anything else is a 400; ``speaker`` is lower-cased and
  checked against the talker's speakers (Qwen3-Omni: chelsie, ethan, aiden).
- vLLM-Omni 0.12.0rc1 (commit be81443c8a52, 2025-12-28): ``stream: true`` raised
  RuntimeError("Not support streaming output now."), a 500.
- mainline vLLM: the OpenAI text shape; unknown fields (modalities, audio) are ignored.
- OpenAI audio models: ``content`` null, words in ``audio.transcript``; streaming needs
  ``audio.format: "pcm16"`` and sends ``delta.audio.transcript`` / raw PCM16 ``data``.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

import carellm
from carellm.media import wav_bytes
from carellm.remote import RemoteEngine, RemoteError
from carellm.reply import Assessment, AudioChunk, EscalationDelta, Final, TextDelta
from carellm.serve import running
from carellm.turn import Turn

pytestmark = pytest.mark.timeout(60)

QWEN25 = "Qwen/Qwen2.5-Omni-7B"
QWEN3 = "Qwen/Qwen3-Omni-30B-A3B-Instruct"
QWEN3_SPEAKERS = ("chelsie", "ethan", "aiden")  # Qwen3-Omni's talker_config.speaker_id
ANSWER = "I hear how heavy this feels. We can take it one step at a time."
SEGMENT_S = 0.25  # seconds of speech per streamed audio chunk
SEGMENTS = 4  # audio chunks per streamed reply (1 s of speech in all)
TONE_HZ = 220.0


def tone(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


def encoded(wave: np.ndarray, rate: int, fmt: str = "wav") -> str:
    pcm = fmt == "pcm16"
    raw = (wave * 32767).astype("<i2").tobytes() if pcm else wav_bytes(wave, rate)
    return base64.b64encode(raw).decode("ascii")


def error(status: int, message: str, *, old_vllm: bool = False):
    body = {"message": message, "type": "BadRequestError", "param": None, "code": status}
    return JSONResponse({"object": "error", **body} if old_vllm else {"error": body}, status)


def sse(objects):
    def events():
        for obj in objects:
            yield f"data: {json.dumps(obj)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def make_app(model: str, answer):
    """A server with /v1/models and /v1/chat/completions = ``answer(body)``; every request
    body is kept in ``app.state.requests``."""
    app = FastAPI()
    app.state.requests = []

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": model, "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        app.state.requests.append(body)
        if body.get("model") != model:
            return error(404, f"The model `{body.get('model')}` does not exist.")
        return answer(body)

    return app


def words(text: str) -> list[str]:
    return [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]


# ---------------------------------------------------------------- the engines


def vllm_omni_answer(model: str, *, rate=24000, speakers=("chelsie", "ethan"),
                     outputs=("text", "audio"), streams=True, interleave=False):  # fmt: skip
    """vLLM-Omni's chat completions for an omni model (see the module docstring)."""

    def answer(body):
        modalities = body.get("modalities") or list(outputs)
        if set(modalities) - set(outputs):
            return error(400, f"Unsupported output modalities {', '.join(sorted(set(modalities) - set(outputs)))} "
                         f"for this model. Supported modalities: {', '.join(sorted(outputs))}")  # fmt: skip
        speaker = (body.get("speaker") or body.get("voice") or "").lower()
        if speaker and speaker not in speakers:
            return error(
                400, f"Invalid speaker '{speaker}'. Supported: {', '.join(sorted(speakers))}"
            )
        if body.get("stream") and not streams:
            return PlainTextResponse("Internal Server Error", 500)  # 0.12: RuntimeError
        fmt = (body.get("audio") or {}).get("format", "wav")
        segments = [tone(rate, SEGMENT_S) for _ in range(SEGMENTS)]
        head = {"id": "chatcmpl-" + uuid.uuid4().hex, "created": int(time.time()), "model": model}
        if not body.get("stream"):
            choices = [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                        "finish_reason": "stop"}]  # fmt: skip
            if "audio" in modalities:
                audio = {"id": "audio-1", "data": encoded(np.concatenate(segments), rate, fmt),
                         "expires_at": int(time.time()) + 86400, "transcript": ""}  # fmt: skip
                choices.append({"index": 0, "message": {"role": "assistant", "audio": audio},
                                "finish_reason": "stop"})  # fmt: skip
            return {**head, "object": "chat.completion", "choices": choices,
                    "usage": {"prompt_tokens": 9, "completion_tokens": 14, "total_tokens": 23}}  # fmt: skip

        def chunk(modality, delta, finish=None):
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            obj = {**head, "object": "chat.completion.chunk", "choices": [choice]}
            return {**obj, "modality": modality} if modality else obj

        text = [chunk("text", {"role": "assistant", "content": ""})]
        text += [chunk("text", {"content": w}) for w in words(ANSWER)]
        audio = []
        if "audio" in modalities:
            audio = [chunk("audio", {"role": "assistant", "content": encoded(s, rate, fmt)})
                     for s in segments]  # fmt: skip
            audio.insert(1, chunk("audio", {"role": "assistant", "content": ""}))  # silent segment
        if interleave:  # async chunk: speech starts while the thinker still writes
            merged = [c for pair in zip(text, audio) for c in pair]
            merged += text[len(audio) :] + audio[len(text) :]
        else:
            merged = text + audio
        tail = [chunk(None, {}, "stop"), {**head, "object": "chat.completion.chunk", "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": 14, "total_tokens": 23}}]  # fmt: skip
        return sse(merged + tail)

    return answer


def vllm_answer(model: str):
    """Mainline ``vllm serve``: text only, whatever modalities are asked for."""

    def answer(body):
        head = {"id": "chatcmpl-1", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            message = {"role": "assistant", "content": ANSWER, "tool_calls": []}
            return {**head, "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
        deltas = [{"role": "assistant", "content": ""}] + [{"content": w} for w in words(ANSWER)]
        chunks = [{**head, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]  # fmt: skip
        chunks.append({**head, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})  # fmt: skip
        return sse(chunks)

    return answer


def openai_answer(model: str):
    """OpenAI's audio models: words in audio.transcript, content null; pcm16 to stream."""

    def answer(body):
        fmt = (body.get("audio") or {}).get("format")
        head = {"id": "chatcmpl-1", "created": int(time.time()), "model": model}
        speech = tone(24000, SEGMENT_S * SEGMENTS)
        if not body.get("stream"):
            audio = {"id": "audio_1", "data": encoded(speech, 24000, fmt), "expires_at": 0,
                     "transcript": ANSWER}  # fmt: skip
            message = {"role": "assistant", "content": None, "audio": audio}
            return {**head, "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
        if fmt != "pcm16":
            return error(400, "Audio output with stream=true requires audio.format 'pcm16'.")
        deltas = [{"role": "assistant", "content": None}]
        deltas += [{"audio": {"id": "audio_1", "transcript": w}} for w in words(ANSWER)]
        deltas += [{"audio": {"id": "audio_1", "data": encoded(s, 24000, "pcm16")}}
                   for s in np.split(speech, SEGMENTS)]  # fmt: skip
        return sse([{**head, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas])  # fmt: skip

    return answer


ENGINES = {  # name: (served model, answer); the audio rate of each is in its answer
    "vllm-omni-qwen2.5": (QWEN25, vllm_omni_answer(QWEN25)),
    "vllm-omni-qwen3": (QWEN3, vllm_omni_answer(QWEN3, speakers=QWEN3_SPEAKERS, interleave=True)),
    "vllm-omni-44k": (QWEN25, vllm_omni_answer(QWEN25, rate=44100)),  # e.g. Ming-flash-omni
    "vllm-omni-0.12": (QWEN25, vllm_omni_answer(QWEN25, streams=False)),
    "vllm-omni-thinker-only": (QWEN25, vllm_omni_answer(QWEN25, outputs=("text",))),
    "vllm": (QWEN25, vllm_answer(QWEN25)),
    "openai": ("gpt-4o-audio-preview", openai_answer("gpt-4o-audio-preview")),
}
SPEAKING = ["vllm-omni-qwen2.5", "vllm-omni-qwen3", "vllm-omni-44k", "vllm-omni-0.12", "openai"]


@pytest.fixture(scope="module")
def servers():
    """Every stub, running: name -> (base URL, app)."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        apps = {name: make_app(model, answer) for name, (model, answer) in ENGINES.items()}
        yield {name: (stack.enter_context(running(app)), app) for name, app in apps.items()}


def connect(servers, name, **kwargs) -> RemoteEngine:
    url, app = servers[name]
    app.state.requests.clear()
    return RemoteEngine(url, model=ENGINES[name][0], timeout=30, **kwargs)


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("name", SPEAKING)
def test_text_and_24khz_speech_from_every_speaking_engine(servers, name, stream):
    engine = connect(servers, name, stream=stream)
    reply = engine.session(seed=3).respond(Turn(text="I can't sleep before my exams."))
    assert reply.text == ANSWER and reply.model_text == ANSWER and not reply.escalated
    assert reply.sample_rate == 24000 and reply.audio.dtype == np.float32
    assert reply.audio.size == round(24000 * SEGMENT_S * SEGMENTS)  # resampled from 44.1 kHz too
    expected = tone(24000, SEGMENT_S * SEGMENTS)  # the stub's tone, as heard at 24 kHz
    assert np.abs(reply.audio - expected).max() < 0.01  # PCM16 and resampling error only
    assert reply.notes == () and reply.emotion.source == "fallback"
    body = servers[name][1].state.requests[-1]
    assert body["messages"][0]["role"] == "system" and body["speaker"] == "Chelsie"
    assert body["modalities"] == ["text", "audio"]


@pytest.mark.parametrize("name", ["vllm-omni-qwen2.5", "vllm-omni-qwen3"])
def test_streamed_events_keep_speech_out_of_the_text(servers, name):
    events = list(connect(servers, name).session().stream(Turn(text="Hello, I feel tense.")))
    assert type(events[0]) is Assessment and type(events[-1]) is Final
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    chunks = [e for e in events if isinstance(e, AudioChunk)]
    assert "".join(texts) == ANSWER  # no base64 audio leaked into the text
    assert len(chunks) == SEGMENTS and {c.sample_rate for c in chunks} == {24000}
    assert sum(c.audio.size for c in chunks) == events[-1].reply.audio.size


def test_qwen3_omni_through_load(servers):
    url, app = servers["vllm-omni-qwen3"]
    app.state.requests.clear()
    engine = carellm.load(QWEN3, backend="openai", base_url=url + "/v1")
    assert engine.info.model == QWEN3
    session = engine.session(persona="cbt", voice="Ethan")
    first = session.respond(Turn(text="I keep thinking I will fail."))
    second = session.respond(Turn(text="And then I can't focus."))
    assert first.text == second.text == ANSWER and second.audio.size == 24000
    body = app.state.requests[-1]
    assert body["model"] == QWEN3 and body["speaker"] == "Ethan"
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert [t.text for t, _ in session.history] == ["I keep thinking I will fail.",
                                                    "And then I can't focus."]  # fmt: skip


@pytest.mark.parametrize("name", ["vllm-omni-qwen2.5", "vllm-omni-qwen3", "vllm"])
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_crisis_is_escalated_on_the_client(servers, name, stream):
    session = connect(servers, name, stream=stream).session()
    events = list(session.stream(Turn(text="I want to kill myself tonight")))
    reply = events[-1].reply
    assert reply.escalated and reply.safety.level in ("high", "imminent") and "988" in reply.text
    assert reply.text.startswith(ANSWER) and reply.model_text == ANSWER
    assert sum(isinstance(e, EscalationDelta) for e in events) == 1
    assert reply.emotion.source == "fallback" and reply.emotion.risk in ("high", "imminent")


def test_mainline_vllm_is_text_only_and_says_so(servers):
    engine = connect(servers, "vllm")
    reply = engine.session().respond(Turn(text="Hello."))
    assert reply.text == ANSWER and reply.audio is None
    assert any("no speech" in note for note in reply.notes)
    reply = engine.session(speech=False).respond(Turn(text="Hello."))
    assert reply.notes == () and servers["vllm"][1].state.requests[-1]["modalities"] == ["text"]


def test_thinker_only_omni_server_falls_back_to_text(servers):
    engine = connect(servers, "vllm-omni-thinker-only")
    reply = engine.session().respond(Turn(text="Hello."))
    assert reply.text == ANSWER and reply.audio is None
    assert any("cannot produce audio" in note for note in reply.notes)
    asked = [b["modalities"] for b in servers["vllm-omni-thinker-only"][1].state.requests]
    assert asked == [["text", "audio"], ["text"]]


def test_server_that_cannot_stream_is_asked_whole_and_remembered(servers):
    engine = connect(servers, "vllm-omni-0.12")
    session = engine.session()
    session.respond(Turn(text="Hello."))
    session.respond(Turn(text="Still here."))
    assert [b["stream"] for b in servers["vllm-omni-0.12"][1].state.requests] == [
        True,
        False,
        False,
    ]
    assert engine.stream is False


def test_openai_streams_pcm16_after_refusing_wav(servers):
    reply = connect(servers, "openai").session().respond(Turn(text="Hello."))
    assert reply.text == ANSWER and reply.audio.size == 24000
    asked = [(b["stream"], b["audio"]["format"]) for b in servers["openai"][1].state.requests]
    assert asked == [(True, "wav"), (True, "pcm16")]


def test_server_error_is_a_clear_error_and_keeps_history(servers):
    engine = connect(servers, "vllm-omni-qwen2.5")
    session = engine.session()
    session.respond(Turn(text="Hello."))
    engine._model = "Qwen/not-served"
    with pytest.raises(
        RemoteError, match=r"answered 404: The model `Qwen/not-served` does not exist.*model="
    ):
        session.respond(Turn(text="Are you there?"))
    assert [t.text for t, _ in session.history] == ["Hello."]


def test_mid_stream_failure_is_a_clear_error(servers):
    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat():
        first = {"choices": [{"index": 0, "delta": {"content": "I hear"}}], "modality": "text"}
        return sse([first, {"error": {"message": "EngineDeadError: CUDA error", "code": 500}}])

    with running(app) as url:
        session = RemoteEngine(url, model="m", timeout=30).session()
        with pytest.raises(RemoteError, match="failed mid-reply: EngineDeadError"):
            session.respond(Turn(text="Hello."))
        assert session.history == []


def test_server_failure_status_is_a_clear_error():
    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat():
        return error(500, "CUDA out of memory", old_vllm=True)

    with running(app) as url:
        engine = RemoteEngine(url, model="m", timeout=30)
        with pytest.raises(
            RemoteError, match=r"answered 500: CUDA out of memory; see the server's log"
        ):
            engine.session().respond(Turn(text="Hello."))
    assert engine.stream is True  # the whole request failed too: streaming is not blamed


def test_unreachable_server_is_a_clear_error():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = RemoteEngine(f"http://127.0.0.1:{port}", model=QWEN3, timeout=5)
    with pytest.raises(
        RemoteError, match=rf"cannot reach http://127.0.0.1:{port}/v1 .*is it running"
    ):
        engine.session().respond(Turn(text="hi"))
    with pytest.raises(RemoteError, match="cannot list models"):
        _ = RemoteEngine(f"http://127.0.0.1:{port}", timeout=5).model


def test_undecodable_speech_is_dropped_with_a_note():
    app = FastAPI()
    bad = base64.b64encode(b"not audio").decode()

    @app.post("/v1/chat/completions")
    def chat():
        text = {"choices": [{"index": 0, "delta": {"content": "I hear you."}}], "modality": "text"}
        return sse(
            [text, {"choices": [{"index": 0, "delta": {"content": bad}}], "modality": "audio"}]
        )

    with running(app) as url:
        reply = RemoteEngine(url, model="m", timeout=30).session().respond(Turn(text="Hello."))
    assert reply.text == "I hear you." and reply.audio is None
    assert any("could not be decoded" in note for note in reply.notes)
