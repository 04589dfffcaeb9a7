"""`carellm eval latency`: how fast a spoken counseling turn comes back.

Runs ``turns`` scripted user turns in one session (speech on when the engine has a
talker) and times `Session.stream` events:

* TTFT: seconds from the call to the first TextDelta;
* TTFA: seconds from the call to the first AudioChunk (time to first audio);
* tokens/s: reply tokens / the session's "decode" seconds;
* speech factor: audio seconds produced / wall seconds of the turn (above 1: speech
  is produced faster than it plays; the usual "real-time factor" is its inverse).

A resumed run skips done turns but starts a fresh session, so later turns then see a
shorter history than in one uninterrupted run.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from carellm import generation
from carellm.evaluation import common as evaluation

logger = logging.getLogger(__name__)

PROMPTS = (
    "I can't sleep before my exams and my heart races at night.",
    "My friend stopped talking to me and I don't know why.",
    "最近工作压力很大，我每天都很焦虑。",
    "I feel like nobody understands me at home.",
    "我和家人吵架了，心里很难受。",
)


@dataclass(frozen=True)
class LatencyOptions:
    model: str  # folder, hub id or "tiny" (ignored when an engine is passed)
    turns: int = 5  # user turns, cycling through PROMPTS
    out: Path | None = None  # items.jsonl and metrics.json
    max_new_tokens: int = 128  # per reply
    seed: int = 0
    device: str | None = None
    progress: bool = True


def time_stream(session, turn) -> tuple[float | None, float | None, float, object]:
    """Stream one turn: (seconds to first text, to first audio, wall seconds, Reply);
    a first time is None when no such event came."""
    from carellm.reply import AudioChunk, Final, TextDelta

    start = time.perf_counter()
    first_text = first_audio = None
    reply = None
    for event in session.stream(turn):
        now = time.perf_counter() - start
        if isinstance(event, TextDelta) and first_text is None:
            first_text = now
        elif isinstance(event, AudioChunk) and first_audio is None:
            first_audio = now
        elif isinstance(event, Final):
            reply = event.reply
    return first_text, first_audio, time.perf_counter() - start, reply


def time_turn(session, text: str) -> dict:
    """Stream one turn and time its events."""
    from carellm.turn import Turn

    first_text, first_audio, wall, reply = time_stream(session, Turn(text=text))
    tokens = len(session.engine.encode(reply.model_text))
    decode = reply.timings.get("decode", 0.0)
    audio = 0.0 if reply.audio is None else reply.audio.size / reply.sample_rate
    return {
        "ttft": first_text, "ttfa": first_audio, "tokens": tokens,
        "tokens_per_s": tokens / decode if decode > 0 else 0.0,
        "audio_seconds": audio, "wall_seconds": wall, "speech_factor": audio / wall,
    }  # fmt: skip


def run_latency(options: LatencyOptions, engine=None) -> dict:
    """Time every turn (resuming from ``out/items.jsonl``); return the summary."""
    from tqdm.auto import tqdm

    generation.seed_everything(options.seed)
    if engine is None:
        import carellm

        engine = carellm.load(options.model, speech=True, device=options.device)
    session = engine.session(seed=options.seed, max_new_tokens=options.max_new_tokens)
    log = evaluation.ResultLog(options.out)
    ids = [f"turn-{i:03d}" for i in range(options.turns)]
    for i, item_id in enumerate(tqdm(ids, desc="latency", disable=not options.progress)):
        if not log.done(item_id):
            text = PROMPTS[i % len(PROMPTS)]
            log.add({"id": item_id, "text": text, **time_turn(session, text)})
    rows = [log.rows[i] for i in ids]
    summary = summarize(rows)
    summary["speech"] = engine.speech
    if options.out is not None:
        evaluation.write_json(Path(options.out) / "metrics.json", {**summary, "turns": rows})
    return {**summary, "turns": rows}


def summarize(rows: list[dict]) -> dict:
    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return statistics.fmean(values) if values else None

    keys = ("ttft", "ttfa", "tokens_per_s", "audio_seconds", "wall_seconds", "speech_factor")
    return {"n": len(rows), **{f"mean_{k}": mean(k) for k in keys}}


def format_latency(result: dict) -> str:
    header = ["turn", "TTFT s", "TTFA s", "tokens", "tok/s", "audio s", "wall s", "audio/wall"]
    rows = [
        [r["id"], r["ttft"] if r["ttft"] is not None else "-",
         r["ttfa"] if r["ttfa"] is not None else "-", r["tokens"], r["tokens_per_s"],
         r["audio_seconds"], r["wall_seconds"], r["speech_factor"]]
        for r in result["turns"]
    ]  # fmt: skip
    means = ["mean"] + [
        result[f"mean_{k}"] if result[f"mean_{k}"] is not None else "-" for k in ("ttft", "ttfa")
    ]
    means += ["", result["mean_tokens_per_s"], result["mean_audio_seconds"],
              result["mean_wall_seconds"], result["mean_speech_factor"]]  # fmt: skip
    return evaluation.format_table(rows + [means], header)
