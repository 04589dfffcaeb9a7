"""Benchmark: where the time of one counseling turn goes, per stage.

Runs turns on a model (default: the tiny random Qwen2.5-Omni, built in a temporary
folder) and prints a table of median seconds per stage — media, prefill, report, decode,
speech, platform overhead (total minus the stages) — for a text turn and a voice+image
turn, then the cost of the emotion report:

    ratio = (report + reply) / (reply alone)

measured as the median turn time with ``report=True`` over ``report=False`` on the
same inputs and seeds (speech off, so the comparison is about the text path the report
shares; two independent generations would make it about 2).

With speech, a last table streams spoken turns and prints time to first audio (TTFA:
seconds from the call until the first AudioChunk), the turn's wall time, the seconds of
audio, the real-time factor (RTF = wall / audio seconds) and TTFA / wall, for a reply of
``--speech-tokens`` tokens (about 100) and for a one-sentence reply.

First, a ``--session-turns`` voice session (a 2 s voice message each turn, speech on when
the model has a talker) prints per turn the tokens the thinker prefilled (the rest of the
prompt came from the previous turn's cache, `carellm.context`), the prompt's length, the
media seconds (decoding + the processor, which re-runs on the past media it keeps), the
prefill seconds, TTFA and the turn's wall time (which includes the transcript).

    python bench/turn.py [--model tiny|PATH|ID] [--repeats 5] [--max-new-tokens 48]
                         [--speech-tokens 100] [--session-turns 10] [--only-speech]
                         [--only-session]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

import carellm
from carellm.evaluation.latency import time_stream
from carellm.turn import Turn

ONE_SENTENCE = 16  # reply tokens of the one-sentence case (one clause of the tiny model)
STAGES = ("queue", "media", "prefill", "report", "decode", "speech")
console = Console(width=110)


def sample_inputs(folder: Path) -> dict[str, Turn]:
    """A text turn and a 5 s voice + 448×448 image turn, written to ``folder``."""
    import soundfile as sf
    from PIL import Image

    t = np.arange(5 * 16000) / 16000
    voice = (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    sf.write(folder / "voice.wav", voice, 16000)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (448, 448, 3), dtype=np.uint8)).save(folder / "face.png")
    text = "I have exams next week and I can't sleep. I keep thinking I will fail."
    return {
        "text": Turn(text=text),
        "voice+image": Turn(text="This is me today.", audio=str(folder / "voice.wav"), image=str(folder / "face.png")),
    }  # fmt: skip


def run_turns(
    engine, turn: Turn, *, report: bool, speech: bool, repeats: int, tokens: int
) -> list[dict]:
    rows = []
    for i in track(range(repeats), description=f"report={report} speech={speech}", console=console):
        session = engine.session(seed=i, speech=speech, max_new_tokens=tokens)
        start = time.perf_counter()
        reply = session.respond(turn, report=report)
        wall = time.perf_counter() - start
        timings = dict(reply.timings)
        timings["wall"] = wall
        timings["overhead"] = wall - sum(timings.get(s, 0.0) for s in STAGES)
        rows.append(timings)
    return rows


def stream_turns(engine, turn: Turn, *, repeats: int, tokens: int) -> list[dict]:
    """Stream spoken turns; per turn: TTFA, wall, audio seconds, sentences in the reply."""
    rows = []
    for i in track(range(repeats), description=f"streamed, {tokens} tokens", console=console):
        session = engine.session(seed=i, speech=True, max_new_tokens=tokens)
        first_text, first_audio, wall, reply = time_stream(session, turn)
        seconds = reply.audio.size / reply.sample_rate
        rows.append({
            "ttft": first_text or wall, "ttfa": first_audio or wall, "wall": wall,
            "audio_s": seconds, "rtf": wall / seconds if seconds else float("nan"),
            "ratio": (first_audio or wall) / wall, "tokens": len(engine.encode(reply.text)),
            "sentences": len(re.findall(r"[.!?。！？…\n]+", reply.text.strip())) or 1,
        })  # fmt: skip
    return rows


def voice_message(i: int, seconds: float = 2.0) -> Turn:
    """Turn i of the session: a short synthetic voice message (pitch differs per turn)."""
    t = np.arange(int(seconds * 16000)) / 16000
    f = 160 + 15 * (i % 7)
    wave = 0.2 * np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return Turn(audio=(wave.astype(np.float32), 16000))


def session_table(engine, turns: int, tokens: int) -> Table:
    """One voice session of ``turns`` turns, streamed; a row per turn."""
    session = engine.session(seed=0, max_new_tokens=tokens)
    table = Table(title=f"A {turns}-turn voice session (2 s voice message per turn)")
    names = ("turn", "prefill tokens", "prompt tokens", "media s", "prefill s", "TTFA s", "wall s")
    for name in names:
        table.add_column(name, justify="right")
    for i in track(range(turns), description="session", console=console):
        _, first_audio, wall, reply = time_stream(session, voice_message(i))
        ttfa = "-" if first_audio is None else f"{first_audio:.3f}"
        table.add_row(
            str(i + 1), str(reply.timings["prefill_tokens"]), str(reply.prompt_tokens),
            f"{reply.timings['media']:.3f}", f"{reply.timings['prefill']:.3f}", ttfa, f"{wall:.3f}",
        )  # fmt: skip
    return table


def ttfa_table(results: dict[str, list[dict]]) -> Table:
    table = Table(title="Streamed speech (median): time to first audio vs the whole turn")
    keys = ("tokens", "sentences", "ttft", "ttfa", "wall", "audio_s", "rtf", "ratio")
    table.add_column("reply")
    for key in keys:
        table.add_column({"ratio": "TTFA/wall", "ttft": "TTFT s", "ttfa": "TTFA s",
                          "wall": "wall s", "audio_s": "audio s", "rtf": "RTF"}.get(key, key),
                         justify="right")  # fmt: skip
    for name, rows in results.items():
        table.add_row(name, *(f"{median(rows, k):.3g}" for k in keys))
    return table


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r.get(key, 0.0) for r in rows)


def stage_table(results: dict[str, list[dict]]) -> Table:
    table = Table(title="Seconds per stage (median)")
    table.add_column("turn")
    for stage in (*STAGES[1:], "overhead", "wall"):
        table.add_column(stage, justify="right")
    for name, rows in results.items():
        table.add_row(name, *(f"{median(rows, s):.3f}" for s in (*STAGES[1:], "overhead", "wall")))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, a folder, or a hub id")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--speech-tokens", type=int, default=100, help="reply length for TTFA")
    parser.add_argument("--session-turns", type=int, default=10, help="0: no session table")
    parser.add_argument("--only-speech", action="store_true", help="only the TTFA table")
    parser.add_argument("--only-session", action="store_true", help="only the session table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model
        if model == "tiny":
            from carellm.tiny import build_tiny_model

            model = str(build_tiny_model(folder / "tiny"))
        engine = carellm.load(model)
        turns = sample_inputs(folder)
        engine.session().respond(turns["text"])  # warm-up (lazy imports, allocator)
        if args.session_turns:
            console.print(session_table(engine, args.session_turns, args.max_new_tokens))
        if args.only_session:
            return
        if engine.speech:
            streamed = {
                f"~{args.speech_tokens} tokens": stream_turns(
                    engine, turns["text"], repeats=args.repeats, tokens=args.speech_tokens
                ),
                "one sentence": stream_turns(
                    engine, Turn(text="Say one short sentence."), repeats=args.repeats,
                    tokens=ONE_SENTENCE,
                ),
            }  # fmt: skip
            console.print(ttfa_table(streamed))
        if args.only_speech:
            return
        results = {}
        for name, turn in turns.items():
            kw = {"repeats": args.repeats, "tokens": args.max_new_tokens}
            results[f"{name} + speech"] = run_turns(
                engine, turn, report=True, speech=engine.speech, **kw
            )
            with_report = run_turns(engine, turn, report=True, speech=False, **kw)
            without = run_turns(engine, turn, report=False, speech=False, **kw)
            results[f"{name}, text only"] = with_report
            results[f"{name}, text only, no report"] = without
        console.print(f"model: {engine.info.model} ({engine.info.device}, {engine.info.dtype})")
        console.print(stage_table(results))
        ratio = Table(title="Emotion report cost: (report + reply) / (reply alone), speech off")
        ratio.add_column("turn")
        ratio.add_column("with report s", justify="right")
        ratio.add_column("reply alone s", justify="right")
        ratio.add_column("ratio", justify="right")
        for name in turns:
            a = median(results[f"{name}, text only"], "wall")
            b = median(results[f"{name}, text only, no report"], "wall")
            ratio.add_row(name, f"{a:.3f}", f"{b:.3f}", f"{a / b:.2f}")
        console.print(ratio)


if __name__ == "__main__":
    main()
