"""An OpenAI-compatible HTTP server on one `Engine`: ``carellm serve``.

    app = carellm.serve.create_app(engine, api_key="...", max_queue=8)

``POST /v1/chat/completions`` takes OpenAI chat messages (text, ``input_audio``, data-URL
``image_url``/``video_url`` parts), answers with text and, when ``modalities`` holds
"audio", speech in OpenAI's audio-output shape; ``stream: true`` answers as server-sent
events. ``GET /v1/models`` and ``GET /health`` (no key needed) complete the API.

Stateless: each request's messages are replayed into a fresh `Session` (earlier
user/assistant messages become its history), so nothing about a conversation is kept
between requests, and nothing is written to disk or logged except timings. The engine
runs one turn at a time; at most ``max_queue`` requests wait or run, later ones get 503
with ``Retry-After``. Turns run in worker threads so ``/health`` answers while the model
works. Request parsing is in `carellm.serve.request`, response shapes in
`carellm.serve.response`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Iterator

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from carellm.errors import CareLLMError, InputError
from carellm.prompts import VOICES
from carellm.serve import response as out
from carellm.serve.request import (
    AUDIO_FORMATS,
    ChatCompletionRequest,
    check_supported,
    media_tokens,
    parse_messages,
    prepare_raw,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 256  # reply tokens when neither the server nor the request sets it
RETRY_AFTER_MAX_S = 120  # s, cap of the Retry-After estimate
_END = object()  # end of a streamed turn


class Gate:
    """Admission: at most ``limit`` requests waiting or running at once.

    Used from the event loop only (no locking needed). ``retry_after`` estimates when a
    slot frees up from the running average of turn durations.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0
        self.mean_turn_s = 1.0  # exponential moving average of turn durations

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self, seconds: float | None = None) -> None:
        self.active -= 1
        if seconds is not None:
            self.mean_turn_s = 0.8 * self.mean_turn_s + 0.2 * seconds

    def retry_after(self) -> int:
        return max(1, min(RETRY_AFTER_MAX_S, math.ceil(self.mean_turn_s * self.active)))


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond this machine without an API key."""
    if api_key:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise CareLLMError(
            f"refusing to serve on {host} without --api-key: anyone on the network could "
            "use it; pass --api-key KEY or bind to 127.0.0.1"
        )


# ------------------------------------------------------------------ one turn


def _new_session(engine, req: ChatCompletionRequest, session_kwargs: dict):
    """A Session for this request, and notes on what it could not do."""
    notes: list[str] = []
    kwargs = dict(session_kwargs)
    cap = kwargs.pop("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    asked = req.max_completion_tokens or req.max_tokens or cap
    want_speech = "audio" in req.modalities and kwargs.pop("speech", True) is not False
    if "audio" in req.modalities and not (want_speech and engine.speech):
        notes.append(out.NO_SPEECH_NOTE)
    voice = req.audio.voice if req.audio else kwargs.pop("voice", "Chelsie")
    if voice not in VOICES:
        raise InputError(
            "audio.voice", f"unknown voice {voice!r}; choose one of: {', '.join(VOICES)}"
        )
    session = engine.session(
        persona=req.persona, voice=voice, language=req.language,
        speech=want_speech and engine.speech, seed=req.seed,
        max_new_tokens=min(asked, cap), region=req.region, **kwargs,
    )  # fmt: skip
    return session, notes


def _seed_history(session, pairs) -> None:
    """Replay earlier exchanges (the client sends text back, no emotion or audio)."""
    for prepared, text in pairs:
        session.add_exchange(prepared, text, media_tokens=media_tokens(prepared))


def prepare_request(engine, req: ChatCompletionRequest, session_kwargs: dict):
    """Parse and decode everything (InputError → 400) before the model is touched."""
    start = time.perf_counter()
    if req.audio is not None and req.audio.format not in AUDIO_FORMATS:
        raise InputError(
            "audio.format", f"unknown format {req.audio.format!r}; use one of {AUDIO_FORMATS}"
        )
    chat = parse_messages(req.messages)
    pairs = [(prepare_raw(turn), text) for turn, text in chat.history]
    prepared = prepare_raw(chat.current)
    session, notes = _new_session(engine, req, session_kwargs)
    _seed_history(session, pairs)
    return session, prepared, notes, time.perf_counter() - start


def served_name(engine) -> str:
    """The model's name for clients: what the user asked for ("tiny", a hub id, a
    folder), not the cache folder the tiny model was built in."""
    from pathlib import Path

    from carellm.loading import tiny_dir

    info = engine.info
    if info.tiny and Path(info.model).parent == tiny_dir().parent:
        return "tiny-lite" if engine.lite else "tiny"
    return info.model


# ------------------------------------------------------------------ the app


def _error(status: int, message: str, param=None, code=None, headers=None):
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 401:
        kind = "authentication_error"
    body = out.error_body(message, param=param, code=code, kind=kind)
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":  # loc is ("body", character offset)
            detail = first.get("ctx", {}).get("error", "decode error")
            at = first.get("loc", ())[-1]
            where = f" (at character {at})" if isinstance(at, int) else ""
            return _error(400, f"request body is not valid JSON: {detail}{where}", None,
                          "invalid_json")  # fmt: skip
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        if not loc:  # the body as a whole: a list, a string, the wrong content type
            message = "request body must be a JSON object with 'messages' (Content-Type: application/json)"
            return _error(400, message, None, "invalid_value")
        param = ".".join(loc) or None
        message = f"{param}: {first.get('msg', 'invalid')}" if param else first.get("msg", "")
        return _error(400, message or "invalid request body", param, "invalid_value")

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(InputError)
    async def bad_input(request, exc):
        return _error(400, str(exc), exc.field, "invalid_value")

    @app.exception_handler(CareLLMError)
    async def refused(request, exc):
        return _error(400, str(exc))


def _collect(events) -> object:
    from carellm.reply import Final

    final = None
    for event in events:
        if isinstance(event, Final):
            final = event.reply
    return final


def _timings(reply, media_s: float) -> dict:
    timings = dict(reply.timings)
    timings["media"] = timings.get("media", 0.0) + media_s  # decoding the request's media
    return timings


class TurnThread:
    """Reads a turn's events in a thread and hands them to the event loop.

    The thread starts at once (not when the response body is first read), so the gate
    slot is always given back, even if the client never reads the stream. ``stop`` is
    the Event passed as the stream's ``cancel``: set when the client goes away, it stops
    the turn at its next step (a reply token, a speech code), or while it is queued.
    """

    def __init__(self, events, gate: Gate, stop: threading.Event):
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stop = stop  # set when the client went away
        self._events, self._gate = events, gate
        self._started = time.perf_counter()
        threading.Thread(target=self._pump, name="carellm-turn", daemon=True).start()

    def _put(self, item) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone (shutdown)
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _pump(self) -> None:
        try:
            for event in self._events:
                self._put(event)
                if self.stop.is_set():
                    break  # stop after this step: nobody is listening
        except Exception as e:  # reported to the client as an error event
            logger.exception("turn failed")
            self._put(e)
        finally:
            self._events.close()  # cancels the turn if it is still running
            seconds = time.perf_counter() - self._started
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._gate.leave, seconds)
            self._put(_END)


class _Trim:
    """Streams text deltas so that they add up to the reply's stripped text: leading
    whitespace is dropped and trailing whitespace held back until more text follows."""

    def __init__(self):
        self.started, self.held = False, ""

    def __call__(self, text: str) -> str:
        text = self.held + (text if self.started else text.lstrip())
        self.started = self.started or bool(text)
        shown = text.rstrip()
        self.held = text[len(shown) :]
        return shown


async def _stream_body(turn: TurnThread, request_id, model, audio_format, notes, media_s,
                       include_usage: bool = False):  # fmt: skip
    """The SSE lines of one turn, ending with ``data: [DONE]``; with ``include_usage``
    a chunk with empty ``choices`` and the token ``usage`` comes before it (OpenAI's
    ``stream_options``)."""
    from carellm.reply import Assessment, AudioChunk, Final, TextDelta

    audio_id, trim = out.new_id("audio"), _Trim()
    try:
        yield out.sse(out.chunk(request_id, model, {"role": "assistant", "content": ""}))
        while (event := await turn.queue.get()) is not _END:
            if isinstance(event, Assessment):
                ext = out.assessment_extension(event.emotion, event.safety)
                yield out.sse(out.chunk(request_id, model, {}, carellm=ext))
            elif isinstance(event, TextDelta) and (text := trim(event.text)):
                yield out.sse(out.chunk(request_id, model, {"content": text}))
            elif isinstance(event, AudioChunk) and audio_format:
                delta = out.audio_delta(audio_id, event.audio, event.sample_rate, audio_format)
                yield out.sse(out.chunk(request_id, model, delta))
            elif isinstance(event, Final):
                ext = out.extension(
                    event.reply, timings=_timings(event.reply, media_s), notes=notes
                )
                yield out.sse(out.chunk(request_id, model, {}, finish_reason="stop", carellm=ext))
                if include_usage:
                    yield out.sse(out.usage_chunk(request_id, model, event.reply))
            elif isinstance(event, Exception):
                message = str(event) if isinstance(event, CareLLMError) else "internal error"
                yield out.sse(out.error_body(message, kind="server_error"))
        yield out.sse("[DONE]")
    finally:
        turn.stop.set()


def create_app(engine, *, api_key: str | None = None, max_queue: int = 8, session_kwargs=None,
               model_name: str | None = None):  # fmt: skip
    """The FastAPI app serving ``engine`` (see the module docstring).

    ``api_key``: when set, ``/v1/*`` needs ``Authorization: Bearer <api_key>``.
    ``max_queue``: requests waiting or running at once before 503. ``session_kwargs``:
    defaults for every request's `Session` (e.g. ``{"max_new_tokens": 64}``; a
    request's ``max_tokens`` can lower ``max_new_tokens``, never raise it).
    ``model_name``: the name ``/v1/models`` and ``/health`` give (default: `served_name`).
    """
    if max_queue < 1:
        raise CareLLMError(f"max_queue must be at least 1, got {max_queue}")
    session_kwargs = dict(session_kwargs or {})
    name = model_name or served_name(engine)
    gate = Gate(max_queue)
    app = FastAPI(title="CareLLM", version=_version(), docs_url=None, redoc_url=None)
    app.state.gate = gate
    _install_error_handlers(app)

    def authorize(request: Request) -> None:
        if not api_key:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), api_key):
            raise HTTPException(401, "invalid or missing API key: send Authorization: Bearer KEY")

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": name, "speech": engine.speech,
                "queue": {"active": gate.active, "max": gate.limit}}  # fmt: skip

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def models():
        card = {"id": name, "object": "model", "created": 0, "owned_by": "carellm"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)])
    async def chat(req: ChatCompletionRequest):
        check_supported(req)  # 400 for what this server does not offer, even when busy
        if not gate.try_enter():
            return _error(503, f"busy: {gate.limit} requests already queued; retry later",
                          code="queue_full", headers={"Retry-After": str(gate.retry_after())})  # fmt: skip
        handed_off, turn_s = False, None
        try:
            session, prepared, notes, media_s = await run_in_threadpool(
                prepare_request, engine, req, session_kwargs
            )
            model = req.model or name
            request_id = out.new_id("chatcmpl")
            fmt = (req.audio.format if req.audio else "wav") if "audio" in req.modalities else None
            stop = threading.Event()  # the client went away (streaming only)
            events = session.stream(prepared, report=req.report, cancel=stop)
            if req.stream:
                turn = TurnThread(events, gate, stop)
                handed_off = True  # the turn's thread leaves the gate
                usage = bool(req.stream_options and req.stream_options.include_usage)
                body = _stream_body(turn, request_id, model, fmt, notes, media_s, usage)
                return StreamingResponse(body, media_type="text/event-stream")
            started = time.perf_counter()
            reply = await run_in_threadpool(_collect, events)
            turn_s = time.perf_counter() - started
            ext = out.extension(reply, timings=_timings(reply, media_s), notes=notes)
            return out.completion(request_id, model, reply, audio_format=fmt, ext=ext)
        finally:
            if not handed_off:
                gate.leave(turn_s)

    return app


def _version() -> str:
    from carellm import __version__

    return __version__


def serve(app, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None) -> None:
    """Run ``app`` with uvicorn until interrupted (after `check_bind`)."""
    import uvicorn

    check_bind(host, api_key)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


@contextlib.contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` in a background thread; yields its base URL (``port=0``: a free one).

    For tests, benchmarks and notebooks; the server stops when the block exits.
    """
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise CareLLMError(f"the server on {host} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
