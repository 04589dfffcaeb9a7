"""Where a turn runs: a worker thread that holds the engine lock from first to last step.

`Session.stream` is a generator that a UI or server may resume, close or drop from any
thread; the lock therefore belongs to a thread of its own (`TurnWorker`), and a closed
or dropped stream cancels the turn at the model's next step (`stop_points`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

POLL_S = 0.05  # s: how often a turn waiting for the engine checks that it is still wanted


class TurnCancelled(Exception):
    """Raised inside the model when a cancelled turn reaches its next step; it ends the
    turn's worker and never reaches a reader (the reader is gone)."""


@dataclass(frozen=True)
class _Failed:
    """The exception that ended a turn in its worker, raised again in the reader."""

    error: BaseException


def stop_points(engine) -> list:
    """The modules whose every call is a step where a cancelled turn stops: the thinker's
    decoder (prefill, one reply token, one report question), the talker (one speech
    code) and token2wav's DiT (one ODE step). None of them runs for long on its own."""
    model = engine.model
    points = [engine.thinker.model]
    if engine.speech:
        points.append(model.talker)
        dit = getattr(getattr(model, "token2wav", None), "code2wav_dit_model", None)
        points += [dit] if dit is not None else []
    return points


class TurnWorker:
    """Runs ``work()``'s events in a new thread that holds ``lock`` from first to last.

    `Session.stream` is a generator that a UI or server may resume, close or drop from
    any thread (Gradio closes it on another worker thread when a tab goes away). A lock
    held across its ``yield`` would be released by whichever thread closes it, and one
    thread cannot release another's lock: every later turn would wait forever. So the
    model work runs here, in a thread that takes and releases the lock itself; the
    generator only reads the queue, and closing or dropping it sets `cancel`.

    Events are queued without waiting for the reader, so a slow reader never keeps the
    model. Setting `cancel` stops the turn at its next step (after the current event, or
    inside the model at the next call of one of ``points``, see `stop_points`) and frees
    the lock; a turn still waiting for the lock gives up within POLL_S.
    """

    def __init__(self, lock, work: Callable[[], Iterator[object]], on_queued: Callable,
                 points: Sequence = (), cancel: threading.Event | None = None):  # fmt: skip
        """``on_queued(since)`` is called with the perf_counter time the wait began, once
        the lock is taken (the session's Stopwatch records it as "queue"). ``cancel``:
        an Event to use as `cancel` (a new one by default)."""
        self.cancel = cancel if cancel is not None else threading.Event()
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(
            target=self._main, args=(lock, work, on_queued, points), name="carellm-turn",
            daemon=True,
        ).start()  # fmt: skip

    def next(self) -> object | None:
        """The next event (None after the last); the turn's exception is raised here."""
        item = self._items.get()
        if isinstance(item, _Failed):
            raise item.error
        return item

    def _main(self, lock, work, on_queued, points) -> None:
        queued = time.perf_counter()
        while not lock.acquire(timeout=POLL_S):
            if self.cancel.is_set():
                self._items.put(None)
                return
        hooks = []
        try:
            on_queued(queued)
            hooks = [m.register_forward_pre_hook(self._check) for m in points]
            if not self.cancel.is_set():
                self._drive(work())
        except TurnCancelled:
            logger.info("turn cancelled inside the model: its reader went away")
        except BaseException as e:  # handed to the reader, which raises it unchanged
            if self.cancel.is_set():
                logger.warning("a cancelled turn failed while stopping", exc_info=e)
            self._items.put(_Failed(e))
        finally:
            for hook in hooks:
                hook.remove()
            lock.release()
            self._items.put(None)

    def _check(self, module, args) -> None:
        if self.cancel.is_set():
            raise TurnCancelled

    def _drive(self, events) -> None:
        try:
            for event in events:
                self._items.put(event)
                if self.cancel.is_set():
                    logger.info("turn cancelled: its reader closed or dropped the stream")
                    break
        finally:
            events.close()


def worker_stream(lock, work: Callable[[], Iterator[object]], on_queued: Callable,
                  points: Sequence = (), cancel: threading.Event | None = None):  # fmt: skip
    """A session's stream whose model work runs in a `TurnWorker`: yields the work's
    events; closing or dropping this generator (from any thread) cancels the turn."""
    worker = TurnWorker(lock, work, on_queued, points, cancel)
    try:
        while (item := worker.next()) is not None:
            yield item
    finally:
        worker.cancel.set()  # a no-op once the turn is over
