"""Write assets/: example media that let anyone try every input modality in one click.

    .venv/bin/python scripts/make_assets.py            write every file, then check it
    .venv/bin/python scripts/make_assets.py --check    only decode and check what is there

Needs espeak-ng on PATH (Debian: apt-get install espeak-ng) and the project's venv
(numpy, PyAV, soundfile, Pillow). Everything is synthetic: the speech comes from espeak-ng,
the photo, video and logo are drawn with numpy and Pillow from a fixed seed, so a second run
on the same machine writes the same bytes (containers and encoders run in bit-exact mode).
No file shows or voices a real person, and no file contains crisis language by design.

Files (see assets/README.md for transcripts and licence):
    voice_calm_en.wav       PCM16 WAV, 16 kHz mono, English, calm
    voice_stressed_en.flac  FLAC, 16 kHz mono, English, stressed (no crisis)
    voice_calm_zh.mp3       MP3 (libmp3lame), 16 kHz mono, Mandarin, calm
    voice_stressed_zh.ogg   Ogg Opus (libopus, 16 kHz input), mono, Mandarin, stressed (no crisis)
    photo_tired.jpg         640×480 JPEG, a person slumped at a desk under a lamp at night
    video_stressed_en.mp4   320×240 H.264 + AAC, the same scene animated, stressed English voice
    logo.png                256×256 RGBA, speech bubble with a heart, indigo→pink
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"

SPEECH_RATE = 16000  # Hz, the rate CareLLM's audio encoder reads
SPEECH_PEAK = 0.7  # full-scale peak after normalising (about -3 dBFS, headroom for codecs)
EDGE_SILENCE = 0.2  # s of silence kept before and after the speech
AAC_RATE = 44100  # Hz, the video soundtrack's rate (the most widely played AAC rate)
SEED = 20240611  # every random draw (grain, books) comes from this seed

# name: (espeak-ng voice, speed in words/min, pitch 0-99, transcript, what espeak-ng reads).
# Mandarin is read from tone-numbered pinyin with the `cmn-latn-pinyin` voice: Debian's
# espeak-ng is built without the extended Mandarin dictionary, so the `cmn` voice reads most
# Hanzi as pinyin with English digits ("jin one tian one"). The pinyin spells the tones as
# spoken (不 before a 4th tone is bu2, 一 before a 3rd tone is yi4, 朋友/得/了 are neutral).
SPEECH = {
    "calm_en": (
        "en-us",
        140,
        40,
        "Hi. Today was actually a good day. I went for a walk and I feel calm and rested.",
        None,
    ),
    "stressed_en": (
        "en-us",
        205,
        62,
        "I'm so stressed about my exams. I can't sleep and I keep worrying that I will fail "
        "and disappoint everyone.",
        None,
    ),
    "calm_zh": (
        "cmn-latn-pinyin",
        150,
        40,
        "今天心情不错，和朋友一起吃了饭，感觉很放松。",
        "jin1 tian1 xin1 qing2 bu2 cuo4, he2 peng2 you5 yi4 qi3 chi1 le5 fan4, "
        "gan3 jue2 hen3 fang4 song1.",
    ),
    "stressed_zh": (
        "cmn-latn-pinyin",
        175,
        60,
        "最近工作压力很大，每天都睡不好，总觉得自己做得不够好。",
        "zui4 jin4 gong1 zuo4 ya1 li4 hen3 da4, mei3 tian1 dou1 shui4 bu4 hao3, "
        "zong3 jue2 de5 zi4 ji3 zuo4 de5 bu2 gou4 hao3.",
    ),
}

# ---------------------------------------------------------------- speech


def speak(name: str) -> np.ndarray:
    """Synthesise one transcript with espeak-ng: float32 mono at SPEECH_RATE, peak SPEECH_PEAK."""
    voice, speed, pitch, transcript, spoken = SPEECH[name]
    text = spoken or transcript
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav)]
        subprocess.run([*cmd, "--", text], check=True, capture_output=True)
        data, rate = sf.read(wav, dtype="float32", always_2d=True)
    wave = resample(data.mean(axis=1), rate, SPEECH_RATE)
    loud = np.flatnonzero(np.abs(wave) > 0.02 * np.abs(wave).max())
    pad = int(EDGE_SILENCE * SPEECH_RATE)
    head = np.zeros(max(pad - loud[0], 0), np.float32)
    tail = np.zeros(max(loud[-1] + pad - len(wave), 0), np.float32)
    wave = np.concatenate([head, wave[max(loud[0] - pad, 0) : loud[-1] + pad], tail])
    return (wave * (SPEECH_PEAK / np.abs(wave).max())).astype(np.float32)


def resample(wave: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Resample mono float32 audio with FFmpeg's swresample (through PyAV)."""
    if rate == new_rate:
        return wave.astype(np.float32)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=new_rate)
    frame = av.AudioFrame.from_ndarray(
        wave.astype(np.float32)[None, :], format="flt", layout="mono"
    )
    frame.sample_rate = rate
    frame.pts = 0
    frame.time_base = Fraction(1, rate)
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32)


def write_soundfile(path: Path, wave: np.ndarray, fmt: str) -> None:
    sf.write(path, wave, SPEECH_RATE, format=fmt, subtype="PCM_16")


def write_av_audio(path: Path, wave: np.ndarray, fmt: str, codec: str, bit_rate: int) -> None:
    """Encode mono audio at SPEECH_RATE into a container with PyAV, bit-exact."""
    with av.open(str(path), "w", format=fmt, container_options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=SPEECH_RATE, options={"flags": "+bitexact"})
        stream.layout = "mono"
        stream.bit_rate = bit_rate
        _encode_audio(out, stream, wave, SPEECH_RATE, 0, len(wave))
        for packet in stream.encode(None):
            out.mux(packet)


def _encode_audio(out, stream, wave: np.ndarray, rate: int, start: int, stop: int) -> None:
    """Encode samples [start, stop) of `wave`, in the encoder's frame size, with exact pts."""
    size = stream.codec_context.frame_size or 1024
    pcm = (np.clip(wave, -1, 1) * 32767).round().astype(np.int16)
    for at in range(start, stop, size):
        chunk = pcm[at : min(at + size, stop)]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = at
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)


# ---------------------------------------------------------------- image helpers


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float [H, W] or [H, W, C] array (edges extended), via FFT."""
    if sigma <= 0:
        return a
    pad = int(math.ceil(3 * sigma))
    widths = [(pad, pad), (pad, pad)] + [(0, 0)] * (a.ndim - 2)
    p = np.pad(a, widths, mode="edge")
    h, w = p.shape[:2]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    kernel = np.exp(-2 * (math.pi * sigma) ** 2 * (fy**2 + fx**2))
    if a.ndim == 3:
        kernel = kernel[..., None]
    out = np.fft.irfft2(np.fft.rfft2(p, axes=(0, 1)) * kernel, s=(h, w), axes=(0, 1))
    return out[pad:-pad, pad:-pad]


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


def _hex(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], np.float32) / 255


# ---------------------------------------------------------------- the scene


def render_scene(
    width: int,
    height: int,
    t: float = 0.0,
    *,
    grain: float = 0.02,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A dim room at night: a person slumped at a desk, head on hand, under a desk lamp.

    Coordinates are fractions of the frame (u across, v down) for a 4:3 frame. `t` (s)
    animates breathing, a slow nod of the head, lamp flicker and a slow push-in, for video.
    Returns uint8 RGB [height, width, 3].
    """
    rng = rng or np.random.default_rng(SEED)
    ss = 2  # supersampling for clean edges
    W, H = width * ss, height * ss

    def P(u: float, v: float) -> tuple[float, float]:
        return (u * W, v * H)

    breath = 0.004 * math.sin(2 * math.pi * t / 3.6)
    nod = 0.012 * (1 - math.cos(2 * math.pi * min(t, 6.0) / 12.0)) + breath

    albedo = Image.new("RGB", (W, H), (0, 0, 0))
    d = ImageDraw.Draw(albedo)
    # wall: a warm grey plaster; floor below v=0.70
    d.rectangle([0, 0, W, 0.70 * H], fill=(150, 140, 128))
    d.rectangle([0, 0.70 * H, W, H], fill=(92, 70, 52))
    d.rectangle([0, 0.695 * H, W, 0.705 * H], fill=(120, 108, 96))  # skirting board
    # window frame; the glass is emissive and drawn later
    d.rectangle([*P(0.05, 0.09), *P(0.31, 0.47)], fill=(70, 66, 60))
    # shelf with books
    d.rectangle([*P(0.60, 0.205), *P(0.95, 0.222)], fill=(98, 74, 54))
    book_rng = np.random.default_rng(SEED + 1)
    u = 0.615
    while u < 0.92:
        bw = float(book_rng.uniform(0.012, 0.026))
        bh = float(book_rng.uniform(0.055, 0.095))
        col = tuple(int(c) for c in book_rng.integers(50, 170, 3))
        if book_rng.random() < 0.12:
            u += bw  # a gap
            continue
        d.rectangle([*P(u, 0.205 - bh), *P(u + bw - 0.002, 0.205)], fill=col)
        u += bw
    # desk: top, front edge, legs
    d.polygon([P(0.36, 0.60), P(1.01, 0.60), P(1.01, 0.665), P(0.30, 0.665)], fill=(128, 88, 58))
    d.rectangle([*P(0.30, 0.665), *P(1.01, 0.695)], fill=(92, 62, 40))
    d.rectangle([*P(0.32, 0.695), *P(0.345, 0.97)], fill=(80, 54, 36))
    d.rectangle([*P(0.93, 0.695), *P(0.955, 0.97)], fill=(80, 54, 36))
    # papers and a mug on the desk
    d.polygon(
        [P(0.60, 0.628), P(0.70, 0.622), P(0.715, 0.648), P(0.61, 0.655)], fill=(235, 232, 222)
    )
    d.polygon(
        [P(0.63, 0.640), P(0.74, 0.636), P(0.745, 0.66), P(0.635, 0.662)], fill=(225, 222, 210)
    )
    d.rectangle([*P(0.90, 0.548), *P(0.935, 0.615)], fill=(176, 74, 64))
    d.ellipse([*P(0.928, 0.562), *P(0.952, 0.598)], outline=(176, 74, 64), width=max(2, W // 320))
    # laptop: base and the back of its lid (the screen faces the person)
    d.polygon(
        [P(0.50, 0.628), P(0.60, 0.626), P(0.61, 0.640), P(0.505, 0.643)], fill=(110, 112, 118)
    )
    d.polygon(
        [P(0.585, 0.628), P(0.605, 0.626), P(0.64, 0.49), P(0.62, 0.49)], fill=(130, 132, 140)
    )
    # lamp: base, two-part arm, shade
    d.ellipse([*P(0.83, 0.59), *P(0.91, 0.615)], fill=(40, 40, 44))
    arm = max(3, W // 160)
    d.line(
        [P(0.87, 0.60), P(0.905, 0.40), P(0.80, 0.315)], fill=(46, 46, 50), width=arm, joint="curve"
    )
    d.polygon([P(0.775, 0.30), P(0.82, 0.305), P(0.825, 0.36), P(0.735, 0.365)], fill=(52, 62, 58))

    # chair, mostly hidden by the person
    d.rectangle([*P(0.345, 0.44), *P(0.365, 0.93)], fill=(58, 46, 38))
    d.rectangle([*P(0.345, 0.70), *P(0.50, 0.725)], fill=(58, 46, 38))
    d.rectangle([*P(0.48, 0.72), *P(0.495, 0.93)], fill=(58, 46, 38))

    # the person: a separate mask so they can breathe, nod and catch a rim light
    person = Image.new("L", (W, H), 0)
    pd = ImageDraw.Draw(person)
    b, n = breath, nod
    # legs under the desk
    pd.line(
        [P(0.44, 0.705), P(0.57, 0.715), P(0.56, 0.93)],
        fill=255,
        width=int(0.05 * H),
        joint="curve",
    )
    # torso, leaning forward
    pd.polygon(
        [
            P(0.37, 0.72),
            P(0.39, 0.56 + b),
            P(0.44, 0.475 + b),
            P(0.50, 0.46 + b),
            P(0.545, 0.50 + b),
            P(0.52, 0.62),
            P(0.50, 0.72),
        ],
        fill=255,
    )
    # neck and head, head lowered onto the hand
    pd.line([P(0.50, 0.48 + b), P(0.54, 0.44 + n)], fill=255, width=int(0.045 * H))
    hr = 0.052 * H
    hx, hy = P(0.555, 0.415 + n)
    pd.ellipse([hx - hr * 0.95, hy - hr, hx + hr * 0.95, hy + hr], fill=255)
    # arm: shoulder -> elbow on the desk -> hand under the chin
    limb = int(0.034 * H)
    pd.line(
        [P(0.50, 0.49 + b), P(0.575, 0.615), P(0.585, 0.465 + n)],
        fill=255,
        width=limb,
        joint="curve",
    )
    pd.ellipse([*P(0.565, 0.445 + n), *P(0.605, 0.49 + n)], fill=255)
    # other arm resting on the desk
    pd.line(
        [P(0.47, 0.50 + b), P(0.52, 0.60), P(0.585, 0.612)], fill=255, width=limb, joint="curve"
    )

    a = np.asarray(albedo, np.float32) / 255
    m = np.asarray(person, np.float32) / 255
    clothes = _hex("#2b3140")
    a = a * (1 - m[..., None]) + clothes * m[..., None]

    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    u_, v_ = xx / W, yy / H
    aspect = W / H
    # lamp: warm, shaded from above, falling off with distance
    lu, lv = 0.775, 0.37
    flicker = 1.0 + 0.03 * math.sin(2 * math.pi * 0.9 * t) + 0.015 * math.sin(2 * math.pi * 2.3 * t)
    dist2 = ((u_ - lu) * aspect) ** 2 + (v_ - lv) ** 2
    cone = 0.25 + 0.75 * smoothstep(-0.02, 0.06, v_ - lv + 0.18 * np.abs(u_ - lu))
    lamp = flicker * 1.6 * cone / (1 + dist2 / 0.025)
    # the desk top shades everything under it from the lamp
    under = smoothstep(0.655, 0.69, v_) * smoothstep(0.28, 0.34, u_)
    lamp = lamp * (1 - 0.8 * under)
    # the person's soft shadow on the wall and desk: their mask pushed away from the lamp
    scale = 1.22
    shadow_img = person.transform(
        (W, H),
        Image.AFFINE,
        (1 / scale, 0, lu * W * (1 - 1 / scale), 0, 1 / scale, lv * H * (1 - 1 / scale)),
        resample=Image.BILINEAR,
    )
    shadow = blur(np.asarray(shadow_img, np.float32) / 255, 0.02 * H)
    lamp = lamp * (1 - 0.75 * shadow * (1 - m))
    # window: cool, weak; ambient: bluish
    wdist2 = ((u_ - 0.18) * aspect) ** 2 + (v_ - 0.30) ** 2
    window = 0.22 / (1 + wdist2 / 0.05)
    warm, cool = _hex("#ffcf8a"), _hex("#7f9bd6")
    light = 0.10 * cool + lamp[..., None] * warm + window[..., None] * cool
    # laptop screen glow on the person's face and the desk
    sdist2 = ((u_ - 0.59) * aspect) ** 2 + (v_ - 0.52) ** 2
    light = light + (0.35 / (1 + sdist2 / 0.004))[..., None] * _hex("#b9d3ff")
    img = a * light

    # rim light on the edges of the person that face the lamp
    shift = int(0.006 * W)
    m_toward = np.zeros_like(m)
    m_toward[:, :-shift] = m[:, shift:]
    rim = blur(m * (1 - m_toward), 0.002 * W) * lamp * 0.9
    img = img + rim[..., None] * warm

    # emissive: window glass with a moon glow, lamp bulb
    glass = Image.new("L", (W, H), 0)
    gd = ImageDraw.Draw(glass)
    for x0, y0, x1, y1 in (
        (0.06, 0.10, 0.175, 0.275),
        (0.185, 0.10, 0.30, 0.275),
        (0.06, 0.285, 0.175, 0.46),
        (0.185, 0.285, 0.30, 0.46),
    ):
        gd.rectangle([*P(x0, y0), *P(x1, y1)], fill=255)
    g = np.asarray(glass, np.float32)[..., None] / 255
    sky = _hex("#16223d") * (1 - v_[..., None]) + _hex("#32456e") * v_[..., None]
    moon = np.exp(-(((u_ - 0.12) * aspect) ** 2 + (v_ - 0.17) ** 2) / 0.0012)[..., None]
    img = img * (1 - g) + g * (sky + 0.5 * moon * _hex("#dfe6ff"))
    bulb = np.exp(-(((u_ - 0.78) * aspect) ** 2 + ((v_ - 0.355) * 2.5) ** 2) / 0.0004)
    img = img + (flicker * 3.0 * bulb)[..., None] * _hex("#fff1d6")
    # laptop screen edge, seen almost side-on
    scr = Image.new("L", (W, H), 0)
    ImageDraw.Draw(scr).line([P(0.583, 0.626), P(0.617, 0.492)], fill=255, width=max(2, W // 400))
    img = img + (np.asarray(scr, np.float32) / 255 * 0.8)[..., None] * _hex("#cfe0ff")

    # lens: bloom around bright spots, slight softness, vignette
    bright = np.clip(img - 0.8, 0, None)
    img = img + 0.6 * blur(bright, 0.03 * H) + 0.3 * blur(bright, 0.008 * H)
    img = blur(img, 0.0015 * H)
    vign = 1 - 0.45 * (((u_ - 0.5) * aspect) ** 2 + (v_ - 0.5) ** 2) / (0.25 * aspect**2 + 0.25)
    img = img * vign[..., None]
    # filmic tone curve, slightly lifted blacks, downsample
    img = 1 - np.exp(-1.6 * img)
    img = 0.025 + 0.975 * img ** (1 / 1.15)
    small = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    # slow push-in for video (Ken Burns): crop a slightly smaller window
    zoom = 1.0 + 0.012 * t
    cw, ch = W / zoom, H / zoom
    box = ((W - cw) * 0.55, (H - ch) * 0.5, (W - cw) * 0.55 + cw, (H - ch) * 0.5 + ch)
    small = small.resize((width, height), Image.LANCZOS, box=box)
    out = np.asarray(small, np.float32) / 255
    # film grain: luminance-weighted, stronger in the shadows, softened a little
    if grain > 0:
        noise = blur(rng.standard_normal((height, width)).astype(np.float32), 0.6)
        lum = out.mean(axis=2, keepdims=True)
        out = out + grain * noise[..., None] * (1.2 - lum)
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def write_photo(path: Path) -> None:
    frame = render_scene(640, 480, 0.0, grain=0.022, rng=np.random.default_rng(SEED))
    Image.fromarray(frame).save(path, "JPEG", quality=85, optimize=True, progressive=False)


# ---------------------------------------------------------------- video


def write_video(path: Path, speech: np.ndarray, *, size=(320, 240), fps: int = 12) -> None:
    """H.264 + AAC MP4: the scene animated, with `speech` (at SPEECH_RATE) as soundtrack."""
    audio = resample(speech, SPEECH_RATE, AAC_RATE)  # already has EDGE_SILENCE at both ends
    frames = math.ceil(len(audio) / AAC_RATE * fps)
    rng = np.random.default_rng(SEED + 2)
    opts = {"fflags": "+bitexact", "movflags": "+faststart"}
    with av.open(str(path), "w", format="mp4", container_options=opts) as out:
        v = out.add_stream(
            "libx264",
            rate=fps,
            options={"crf": "23", "preset": "slow", "tune": "film", "flags": "+bitexact"},
        )
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        v.codec_context.thread_count = 1  # x264's slices follow the thread count: fix it
        a = out.add_stream("aac", rate=AAC_RATE, options={"flags": "+bitexact"})
        a.layout = "mono"
        a.bit_rate = 48000
        done = 0
        for i in range(frames):
            upto = min(len(audio), int((i + 1) * AAC_RATE / fps))
            size_a = a.codec_context.frame_size or 1024
            upto = min(len(audio), -(-upto // size_a) * size_a)
            if upto > done:
                _encode_audio(out, a, audio, AAC_RATE, done, upto)
                done = upto
            img = render_scene(size[0], size[1], i / fps, grain=0.012, rng=rng)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode(None):
            out.mux(packet)
        if done < len(audio):
            _encode_audio(out, a, audio, AAC_RATE, done, len(audio))
        for packet in a.encode(None):
            out.mux(packet)


# ---------------------------------------------------------------- logo


def write_logo(path: Path, size: int = 256) -> None:
    """A rounded speech bubble with a white heart, indigo→pink, transparent background."""
    s = 4 * size  # draw large, then downsample for smooth edges
    mask = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(mask)
    d.rounded_rectangle([0.08 * s, 0.10 * s, 0.92 * s, 0.76 * s], radius=0.17 * s, fill=255)
    d.polygon([(0.24 * s, 0.70 * s), (0.46 * s, 0.70 * s), (0.20 * s, 0.93 * s)], fill=255)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    tgrad = np.clip((xx + yy) / 2 * 1.15 - 0.05, 0, 1)[..., None]
    rgb = _hex("#4f46e5") * (1 - tgrad) + _hex("#ec4899") * tgrad
    # the heart: the classic parametric curve, white
    th = np.linspace(0, 2 * math.pi, 720)
    hx = 16 * np.sin(th) ** 3
    hy = -(13 * np.cos(th) - 5 * np.cos(2 * th) - 2 * np.cos(3 * th) - np.cos(4 * th))
    k = 0.0135 * s
    heart = Image.new("L", (s, s), 0)
    ImageDraw.Draw(heart).polygon(
        [(0.5 * s + k * x, 0.435 * s + k * y) for x, y in zip(hx, hy)], fill=255
    )
    h = np.asarray(heart, np.float32)[..., None] / 255
    rgb = rgb * (1 - h) + h
    rgba = np.dstack([rgb * 255, np.asarray(mask, np.float32)]).round().astype(np.uint8)
    logo = Image.fromarray(rgba, "RGBA").resize((size, size), Image.LANCZOS)
    logo.save(path, "PNG", optimize=True)


# ---------------------------------------------------------------- check


def check(path: Path) -> list[str]:
    """Decode one asset back; return printable lines, exit if it is silent or too big."""
    lines = []
    size_kib = path.stat().st_size / 1024
    if size_kib > MAX_KIB.get(path.name, 600):
        raise SystemExit(f"{path.name}: {size_kib:.1f} KiB > {MAX_KIB[path.name]} KiB")
    if path.suffix in (".wav", ".flac"):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        lines.append(
            f"  soundfile: {len(data) / rate:.2f} s, {rate} Hz, {data.shape[1]} ch, "
            f"peak {np.abs(data).max():.3f}"
        )
    if path.suffix in (".jpg", ".png"):
        with Image.open(path) as im:
            lines.append(f"  Pillow: {im.format} {im.size[0]}×{im.size[1]} {im.mode}")
        return lines
    with av.open(str(path)) as c:
        for s in c.streams:
            c.seek(0)
            if s.type == "audio":
                frames = list(c.decode(s))
                wave = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
                if wave.dtype.kind == "i":
                    wave = wave / np.iinfo(wave.dtype).max
                peak = float(np.abs(wave).max())
                seconds = sum(f.samples for f in frames) / s.rate
                lines.append(
                    f"  PyAV audio: {s.codec_context.name}, {seconds:.2f} s, {s.rate} Hz, "
                    f"{s.codec_context.channels} ch, peak {peak:.3f}"
                )
                if peak <= 0.05:
                    raise SystemExit(f"{path.name}: audio is silent (peak {peak:.3f})")
            elif s.type == "video":
                frames = list(c.decode(s))
                seconds = float(s.duration * s.time_base)
                lines.append(
                    f"  PyAV video: {s.codec_context.name}, {len(frames)} frames, "
                    f"{frames[0].width}×{frames[0].height}, {float(s.average_rate):.0f} fps, "
                    f"{seconds:.2f} s"
                )
    return lines


# ---------------------------------------------------------------- main


def build() -> None:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not on PATH; install it (Debian: apt-get install espeak-ng)")
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True)
    print(version.stdout.split("Data at")[0].strip())
    ASSETS.mkdir(exist_ok=True)
    speech = {name: speak(name) for name in SPEECH}
    for name, wave in speech.items():
        seconds = len(wave) / SPEECH_RATE
        if not 3.0 <= seconds <= 8.0:
            raise SystemExit(f"speech '{name}' is {seconds:.2f} s; adjust its speed to fit 3–8 s")
    write_soundfile(ASSETS / "voice_calm_en.wav", speech["calm_en"], "WAV")
    write_soundfile(ASSETS / "voice_stressed_en.flac", speech["stressed_en"], "FLAC")
    write_av_audio(ASSETS / "voice_calm_zh.mp3", speech["calm_zh"], "mp3", "libmp3lame", 32000)
    write_av_audio(ASSETS / "voice_stressed_zh.ogg", speech["stressed_zh"], "ogg", "libopus", 24000)
    write_photo(ASSETS / "photo_tired.jpg")
    write_video(ASSETS / "video_stressed_en.mp4", speech["stressed_en"])
    write_logo(ASSETS / "logo.png")


MAX_KIB = {"photo_tired.jpg": 80, "video_stressed_en.mp4": 300, "logo.png": 40}
TOTAL_MAX_KIB = 600

FILES = [
    "voice_calm_en.wav",
    "voice_stressed_en.flac",
    "voice_calm_zh.mp3",
    "voice_stressed_zh.ogg",
    "photo_tired.jpg",
    "video_stressed_en.mp4",
    "logo.png",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only decode and check assets/")
    args = parser.parse_args(argv)
    if not args.check:
        build()
    total = 0
    for name in FILES:
        path = ASSETS / name
        if not path.is_file():
            raise SystemExit(f"missing: {path}")
        data = path.read_bytes()
        total += len(data)
        digest = hashlib.sha256(data).hexdigest()[:12]
        print(
            f"{'wrote' if not args.check else 'found'} assets/{name}: {len(data) / 1024:.1f} KiB "
            f"(sha256 {digest})"
        )
        for line in check(path):
            print(line)
    print(f"total: {total / 1024:.1f} KiB in {len(FILES)} files")
    if total / 1024 > TOTAL_MAX_KIB:
        raise SystemExit(f"assets/ is {total / 1024:.1f} KiB > {TOTAL_MAX_KIB} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
