"""Peak-memory model of one counseling turn, from the checkpoint's own dimensions.

Every size here is in bytes unless a name ends in ``_gib``; "GB" in user-facing text means
GiB (2**30 bytes), which is how GPU makers size cards (a "24 GB" card has 24 GiB) and how
we read Qwen's published table (see doc/memory.md).

The estimate is overhead + resident weights + the larger of two phases:

- weights: parameters per component (thinker LLM, vision and audio encoders, talker,
  token2wav) counted from the config.json (`carellm.planning.dims`) x dtype bytes;
  token2wav always fp32; GPTQ/AWQ decoder-layer linears at 4 bits plus group scales;
- encoder phase: the vision encoder's working set per patch (all windows of the turn's
  frames and images run as one batch) or the audio encoder's per frame (its 2-s chunks
  likewise), whichever is larger: they run one after the other;
- decoder phase: the thinker's KV cache, one decoder layer's MLP working set over the
  prompt (the prefill's largest transient) and, with speech, the per-layer hidden states
  `generate` keeps for the talker and the talker's own prefill over the prompt.

Only three numbers are fitted (`Calibration`): the overhead and the factors on the two
speech terms, by least squares on four of Qwen's six BF16 figures; the other two are held
out (`FIT_POINTS`, `HELD_OUT`; tests/test_planning.py checks them through `carellm plan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from carellm.planning.dims import (  # noqa: F401 (MODELS, QWEN3_OMNI, *Dims re-exported)
    AUDIO_TOKENS_PER_SECOND,
    MODELS,
    QWEN3_OMNI,
    AudioDims,
    ModelSpec,
    TextDims,
    VisionDims,
    folder_spec,
)

GIB = 2**30  # bytes

# Qwen's published minimum GPU memory, read as GiB: (model, dtype, video s, figure).
# bfloat16 rows with flash-attention 2, float32 rows without; GPTQ/AWQ in low-VRAM mode.
PUBLISHED = [
    ("Qwen/Qwen2.5-Omni-3B", "bfloat16", 15, 18.38),
    ("Qwen/Qwen2.5-Omni-3B", "bfloat16", 30, 22.43),
    ("Qwen/Qwen2.5-Omni-3B", "bfloat16", 60, 28.22),
    ("Qwen/Qwen2.5-Omni-7B", "bfloat16", 15, 31.11),
    ("Qwen/Qwen2.5-Omni-7B", "bfloat16", 30, 41.85),
    ("Qwen/Qwen2.5-Omni-7B", "bfloat16", 60, 60.19),
    ("Qwen/Qwen2.5-Omni-7B-GPTQ-Int4", "float16", 15, 11.64),
    ("Qwen/Qwen2.5-Omni-7B-GPTQ-Int4", "float16", 30, 17.43),
    ("Qwen/Qwen2.5-Omni-7B-GPTQ-Int4", "float16", 60, 29.51),
    ("Qwen/Qwen2.5-Omni-7B-AWQ", "float16", 15, 11.77),
    ("Qwen/Qwen2.5-Omni-7B-AWQ", "float16", 30, 17.84),
    ("Qwen/Qwen2.5-Omni-7B-AWQ", "float16", 60, 30.31),
    ("Qwen/Qwen2.5-Omni-3B", "float32", 15, 89.10),
    ("Qwen/Qwen2.5-Omni-7B", "float32", 15, 93.56),
    # Qwen3-Omni's "minimum GPU memory" table (QwenLM/Qwen3-Omni README and the
    # Qwen/Qwen3-Omni-30B-A3B-Instruct model card: transformers, BF16, flash-attention 2);
    # the Thinking model, which has no talker, needs about 10 GB less.
    ("Qwen/Qwen3-Omni-30B-A3B-Instruct", "bfloat16", 15, 78.85),
    ("Qwen/Qwen3-Omni-30B-A3B-Instruct", "bfloat16", 30, 88.52),
    ("Qwen/Qwen3-Omni-30B-A3B-Instruct", "bfloat16", 60, 107.74),
    ("Qwen/Qwen3-Omni-30B-A3B-Instruct", "bfloat16", 120, 144.81),
]
# MNN exports for phones (QwenLM/Qwen2.5-Omni README, "Deployment with MNN": Snapdragon
# 8 Gen 1 and 8 Elite, same peak on both): (model, peak memory GB as published, thinker
# decode tokens/s on the 8 Elite). Speech (talker, code2wav) runs in MNN's C++ demo only.
MNN_PUBLISHED = [
    ("taobao-mnn/Qwen2.5-Omni-7B-MNN", 5.8, 11.52),
    ("taobao-mnn/Qwen2.5-Omni-3B-MNN", 3.6, 23.31),
]
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
QUANT_BYTES_PER_PARAM = 0.52  # 4-bit weights + an fp16 scale and a packed zero per 128
MERGED_PATCH_PIXELS = 28 * 28  # one LLM token = 2x2 merged 14-px patches (per 2 frames for video)
AUDIO_ENCODER_FRAMES_PER_TOKEN = 2  # encoder runs at 50 frames/s before the pooling
PREFILL_MLP_ARRAYS = 3  # gate and up projections and their product, one layer at a time
# Qwen's BF16 rows the calibration is fitted on, and those it is checked against only.
FIT_POINTS = (
    ("Qwen/Qwen2.5-Omni-3B", 15), ("Qwen/Qwen2.5-Omni-3B", 60),
    ("Qwen/Qwen2.5-Omni-7B", 15), ("Qwen/Qwen2.5-Omni-7B", 60),
)  # fmt: skip
HELD_OUT = (("Qwen/Qwen2.5-Omni-3B", 30), ("Qwen/Qwen2.5-Omni-7B", 30))


@dataclass(frozen=True)
class Calibration:
    """The three fitted numbers (`fit_calibration()` reproduces them from FIT_POINTS)."""

    overhead_gib: float = 0.0  # CUDA context, workspaces, allocator slack, GiB
    hidden_factor: float = 0.0  # x the per-layer hidden states kept for the talker
    talker_factor: float = 0.0  # x the talker's prefill working set (KV + one MLP)


CALIBRATION = Calibration(
    overhead_gib=2.071, hidden_factor=0.809, talker_factor=2.535
)  # fit_calibration()


@dataclass(frozen=True)
class Workload:
    """What one turn feeds the model, with the caps the processor applies.

    Video defaults follow qwen-omni-utils: 2 frames/s, at most 768 merged tokens per frame
    pair (VIDEO_MAX_PIXELS = 768*28*28) and a whole-video budget of 128000*28*28*0.9 pixels.
    """

    video_seconds: float = 0.0
    audio_seconds: float = 30.0  # voice input, s
    images: int = 1
    text_tokens: int = 600  # system prompt + history + the reply being generated
    video_audio: bool = True  # the video's sound track is fed too (use_audio_in_video)
    video_fps: float = 2.0  # frames sampled per second
    video_max_frames: int = 768
    video_max_pixels: int = 768 * MERGED_PATCH_PIXELS  # per frame
    video_total_pixels: float = 128000 * MERGED_PATCH_PIXELS * 0.9
    image_max_pixels: int = 1280 * MERGED_PATCH_PIXELS
    speech: bool = True  # run the talker + token2wav

    @property
    def video_frames(self) -> int:
        if self.video_seconds <= 0:
            return 0
        frames = min(max(self.video_seconds * self.video_fps, 4), self.video_max_frames)
        return max(2, math.floor(frames / 2) * 2)

    @property
    def video_frame_pixels(self) -> float:
        frames = self.video_frames
        if frames == 0:
            return 0.0
        return min(self.video_max_pixels, self.video_total_pixels / frames * 2)

    @property
    def video_tokens(self) -> int:
        return (self.video_frames // 2) * int(self.video_frame_pixels // MERGED_PATCH_PIXELS)

    @property
    def image_tokens(self) -> int:
        return self.images * (self.image_max_pixels // MERGED_PATCH_PIXELS)

    @property
    def audio_tokens(self) -> int:
        seconds = self.audio_seconds + (self.video_seconds if self.video_audio else 0.0)
        return math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)

    @property
    def tokens(self) -> int:
        return self.video_tokens + self.image_tokens + self.audio_tokens + self.text_tokens


@dataclass(frozen=True)
class Estimate:
    """Estimated peak memory of one turn, in bytes, by term."""

    weights: float  # parameters resident for the whole turn
    encoders: float  # encoder phase: vision or audio encoder working set
    kv_cache: float  # thinker KV cache of the prompt + reply
    prefill: float  # one decoder layer's MLP working set over the prompt
    hidden_states: float  # per-layer thinker states kept for the talker (x hidden_factor)
    talker: float  # the talker's prefill over the prompt (x talker_factor)
    overhead: float
    tokens: int  # thinker prompt + reply length
    components: dict[str, float] = field(default_factory=dict)  # resident weights by part
    # Served models only: what Qwen's published figure (interpolated over video length)
    # holds beyond the terms above; the plan never promises less than Qwen measured.
    unmodelled: float = 0.0

    @property
    def decoder_phase(self) -> float:
        return self.kv_cache + self.prefill + self.hidden_states + self.talker

    @property
    def peak(self) -> float:
        phases = max(self.encoders, self.decoder_phase)
        return self.overhead + self.weights + phases + self.unmodelled

    def as_gib(self) -> dict[str, float]:
        terms = {
            "weights": self.weights,
            "encoders": self.encoders,
            "kv_cache": self.kv_cache,
            "prefill": self.prefill,
            "hidden_states": self.hidden_states,
            "talker": self.talker,
            "overhead": self.overhead,
        }
        if self.unmodelled:
            terms["unmodelled"] = self.unmodelled
        return {name: round(value / GIB, 2) for name, value in terms.items()}


def media_tokens(spec: ModelSpec, work: Workload) -> tuple[int, int, int]:
    """(video, image, audio) thinker tokens of `work` for this model's encoders.

    The pixel caps are the reader's (qwen-omni-utils); how many pixels make one token and
    how many tokens a second of audio makes depend on the model (28x28 px and 25/s for
    Qwen2.5-Omni, 32x32 px and 13/s for Qwen3-Omni).
    """
    if spec.vision is None or spec.audio is None:
        return 0, 0, 0
    token_pixels = spec.vision.token_pixels
    video = (work.video_frames // 2) * int(work.video_frame_pixels // token_pixels)
    image = work.images * int(work.image_max_pixels // token_pixels)
    seconds = work.audio_seconds + (work.video_seconds if work.video_audio else 0.0)
    return video, image, math.ceil(seconds * spec.audio.tokens_per_second)


def spec_for(model: str) -> ModelSpec:
    """The ModelSpec of a known id (shipped or built-in config) or of a checkpoint folder."""
    if model in MODELS:
        return MODELS[model]
    return folder_spec(model)


def _weights(spec: ModelSpec, nbytes: int, speech: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, params in spec.component_params.items():
        if name in ("talker", "token2wav") and not speech:
            continue
        if name == "token2wav" and spec.token2wav_fp32:
            out[name] = params * 4.0
        elif name == "thinker" and spec.quantization:
            embeds = spec.text.embedding_params
            out[name] = (params - embeds) * QUANT_BYTES_PER_PARAM + embeds * nbytes
        else:
            out[name] = float(params * nbytes)
    return out


def _encoder_phase(spec: ModelSpec, work: Workload, nbytes: int) -> tuple[float, int]:
    """(encoder working set, thinker tokens) of `work`."""
    if spec.vision is None or spec.audio is None:  # a lite model sees the text only
        return 0.0, work.text_tokens
    video, image, audio = media_tokens(spec, work)
    patches = (video + image) * spec.vision.spatial_merge**2
    vision = patches * spec.vision.activation_bytes_per_patch(nbytes)
    frames = audio * AUDIO_ENCODER_FRAMES_PER_TOKEN
    audio_act = frames * spec.audio.activation_bytes_per_frame(nbytes)
    return max(vision, audio_act), video + image + audio + work.text_tokens


def estimate(
    spec: ModelSpec,
    work: Workload,
    dtype: str = "bfloat16",
    calibration: Calibration | None = None,
) -> Estimate:
    """Peak memory of `spec` running `work` in `dtype` (flash-attention or SDPA's
    memory-efficient kernel: no tokens x tokens score buffer)."""
    calibration = calibration or CALIBRATION
    nbytes = DTYPE_BYTES[dtype]
    speech = work.speech and spec.talker is not None
    components = _weights(spec, nbytes, speech)
    encoders, tokens = _encoder_phase(spec, work, nbytes)
    text = spec.text
    width = text.expert_intermediate * text.active_experts if text.experts else text.intermediate
    hidden = talker = 0.0
    if speech:
        hidden = calibration.hidden_factor * tokens * (text.layers + 1) * text.hidden * nbytes
        t = spec.talker
        t_width = t.expert_intermediate * t.active_experts if t.experts else t.intermediate
        per_token = t.kv_bytes_per_token(nbytes) + PREFILL_MLP_ARRAYS * t_width * nbytes
        talker = calibration.talker_factor * tokens * per_token
    est = Estimate(
        weights=sum(components.values()),
        encoders=encoders,
        kv_cache=tokens * text.kv_bytes_per_token(nbytes),
        prefill=tokens * PREFILL_MLP_ARRAYS * width * nbytes,
        hidden_states=hidden,
        talker=talker,
        overhead=calibration.overhead_gib * GIB,
        tokens=tokens,
        components=components,
    )
    published = published_at(spec.model_id, dtype, work.video_seconds) if spec.served else None
    if published is None:
        return est
    # Qwen measured with the talker: the gap is taken at speech on and added either way.
    with_speech = est if speech else estimate(spec, replace(work, speech=True), dtype, calibration)
    modelled = with_speech.peak - with_speech.unmodelled
    return replace(est, unmodelled=max(0.0, published * GIB - modelled))


def published_at(model_id: str, dtype: str, seconds: float) -> float | None:
    """Qwen's published figure for `model_id` in `dtype` at `seconds` of video, GiB,
    interpolated linearly between published lengths (extrapolated from the nearest two);
    None without at least two published lengths."""
    series = sorted((s, p) for m, d, s, p in PUBLISHED if (m, d) == (model_id, dtype))
    if len(series) < 2:
        return None
    i = next((i for i, (s, _) in enumerate(series[1:-1], 1) if seconds < s), len(series) - 1)
    (s0, p0), (s1, p1) = series[i - 1], series[i]
    return p0 + (p1 - p0) * (seconds - s0) / (s1 - s0)


def published_bf16(model_id: str, seconds: float) -> float:
    """Qwen's published BF16 minimum for `model_id` at `seconds` of video, GiB."""
    return next(p for m, d, s, p in PUBLISHED if (m, d, s) == (model_id, "bfloat16", seconds))


def fit_calibration(points=FIT_POINTS) -> Calibration:
    """Least squares on the relative error at `points` ((model, video s) of the BF16 rows),
    each planned as `carellm plan --model M --video-seconds S` plans it (speech on, the
    CLI's default voice, image and text). The estimate is linear in the three numbers."""
    import numpy as np

    basis = [Calibration(), Calibration(1.0, 0, 0), Calibration(0, 1.0, 0), Calibration(0, 0, 1.0)]
    rows, targets = [], []
    for model_id, seconds in points:
        work, published = Workload(video_seconds=seconds), published_bf16(model_id, seconds) * GIB
        base, *unit = (estimate(spec_for(model_id), work, "bfloat16", c).peak for c in basis)
        rows.append([(u - base) / published for u in unit])
        targets.append(1.0 - base / published)
    (overhead, hidden, talker), *_ = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)
    return Calibration(round(float(overhead), 3), round(float(hidden), 3), round(float(talker), 3))
