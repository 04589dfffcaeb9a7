"""Benchmark: carellm.media.load_video against qwen_omni_utils.process_mm_info.

Writes a synthetic 1280×720, 30 fps clip with a 44.1 kHz stereo AAC track (H.264, PyAV),
then reads it both ways at the same sampling rate (2 fps → 120 frames for 60 s) and the
same per-frame pixel cap (768·28·28 → 1008×560 frames), soundtrack included, and prints
the median of the warm runs. The first call of each is reported apart: qwen-omni-utils'
first librosa call compiles numba code (~25 s on a small machine).

The comparison needs `decord` (qwen-omni-utils' video reader: torchvision ≥ 0.22 has no
``read_video``), installed by ``pip install -e .[bench]``; without it only carellm's own
timing is printed. qwen-omni-utils' audio-from-video path also needs the `ffmpeg` binary;
without it only video is compared.

    python bench/media.py [--seconds 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from carellm.media import VIDEO_FPS, VIDEO_MAX_FRAMES, VIDEO_MAX_PIXELS, load_video

WIDTH, HEIGHT, SOURCE_FPS = 1280, 720, 30  # px, px, frames per second of the test clip
AUDIO_RATE = 44100  # Hz, the clip's soundtrack

console = Console(width=110)


def write_clip(path: Path, seconds: int) -> Path:
    """A moving colour pattern (not trivially compressible) plus a 440 Hz stereo tone."""
    import av

    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([(x * 255 // WIDTH), (y * 255 // HEIGHT), ((x + y) % 256)], axis=-1)
    base = base.astype(np.uint8)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=SOURCE_FPS, options={"preset": "veryfast"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        for i in track(range(seconds * SOURCE_FPS), description="writing 720p test clip"):
            image = np.roll(base, shift=(4 * i, 7 * i), axis=(0, 1))
            image[100:300, (10 * i) % (WIDTH - 200) :][:, :200] = 255  # a white square moving
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        t = np.arange(seconds * AUDIO_RATE) / AUDIO_RATE
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        stereo = np.stack([tone, tone])
        for i in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(stereo[:, i : i + 1024]), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = AUDIO_RATE, i
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
    return path


def run_carellm(path: Path, with_audio: bool) -> tuple[int, str, float | None]:
    video = load_video(path, with_audio=with_audio)
    t, h, w, _ = video.frames.shape
    seconds = None if video.audio is None else video.audio.size / 16000
    return t, f"{w}×{h}", seconds


def run_qwen(path: Path, with_audio: bool) -> tuple[int, str, float | None]:
    from qwen_omni_utils import process_mm_info

    element = {
        "type": "video",
        "video": str(path),
        "fps": VIDEO_FPS,
        "max_frames": VIDEO_MAX_FRAMES,
        "max_pixels": VIDEO_MAX_PIXELS,
    }
    messages = [{"role": "user", "content": [element]}]
    audios, _, videos = process_mm_info(messages, use_audio_in_video=with_audio)
    t, _, h, w = videos[0].shape
    return t, f"{w}×{h}", None if not audios else audios[0].size / 16000


def measure(fn, path: Path, with_audio: bool, repeats: int) -> dict:
    start = time.perf_counter()
    frames, size, audio_s = fn(path, with_audio)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(path, with_audio)
        times.append(time.perf_counter() - start)
    return {
        "first": first,
        "median": statistics.median(times),
        "frames": frames,
        "size": size,
        "audio": audio_s,
    }


def comparison_skipped() -> str | None:
    """Why qwen-omni-utils cannot be run here, or None when it can."""
    import importlib.util

    for module in ("qwen_omni_utils", "decord"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the test clip (s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the first")
    args = parser.parse_args()

    skipped = comparison_skipped()
    if skipped:
        console.print(
            f"[yellow]comparison with qwen-omni-utils skipped: {skipped} (its video reader "
            "needs decord); enable it with `pip install -e .\\[bench]`. Timing carellm only."
        )
    has_ffmpeg = shutil.which("ffmpeg") is not None
    if not has_ffmpeg:
        console.print(
            "[yellow]no ffmpeg binary: qwen-omni-utils cannot read audio from video; timing video only"
        )
    modes = [True, False] if has_ffmpeg else [False]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_clip(Path(tmp) / "clip.mp4", args.seconds)
        console.print(
            f"clip: {args.seconds} s, {WIDTH}×{HEIGHT} @ {SOURCE_FPS} fps, {path.stat().st_size / 2**20:.1f} MiB"
        )
        table = Table(title=f"video loading, median of {args.repeats} warm runs")
        for column in (
            "reader",
            "audio",
            "first call s",
            "median s",
            "frames",
            "frame size",
            "audio s",
            "speed-up",
        ):
            table.add_column(column)
        for with_audio in modes:
            ours = measure(run_carellm, path, with_audio, args.repeats)
            rows = [("carellm", ours, "-")]
            if not skipped:
                theirs = measure(run_qwen, path, with_audio, args.repeats)
                ratio = theirs["median"] / ours["median"]
                rows = [("carellm", ours, f"{ratio:.1f}×"), ("qwen-omni-utils", theirs, "1.0×")]
            for name, row, speedup in rows:
                audio_s = "-" if row["audio"] is None else f"{row['audio']:.2f}"
                table.add_row(
                    name, "yes" if with_audio else "no", f"{row['first']:.2f}", f"{row['median']:.2f}",
                    str(row["frames"]), row["size"], audio_s, speedup,
                )  # fmt: skip
    console.print(table)
    if skipped:
        return
    console.print(
        "Same frame count and frame size. Differences: carellm takes the frame nearest the "
        "centre of each 1/fps slice (skipping non-reference frames when it keeps <= 1 in 4: "
        "up to ~2 source frames off), qwen-omni-utils linspace(0, N-1) indices; carellm returns "
        "uint8 THWC resized by swscale (bicubic), qwen-omni-utils float32 TCHW resized by "
        "torchvision (bicubic, antialiased); audio: PyAV resampler vs ffmpeg subprocess + librosa."
    )


if __name__ == "__main__":
    main()
