"""Peak-memory model of one counseling turn, computed from the released architectures' dims.

Every size here is in bytes unless a name ends in ``_gib``; "GB" in user-facing text means
GiB (2**30 bytes), which is how GPU makers size cards (a "24 GB" card has 24 GiB) and how
we read Qwen's published table (see doc/memory.md).

The estimate is the sum of

- resident weights: parameters by component x dtype bytes (token2wav always fp32;
  GPTQ/AWQ linear layers at ~4.25 bits including group scales);
- the larger of two phases: the encoder phase (vision/audio encoder activations, plus the
  encoder weights when they are loaded on demand) and the decoder phase (KV cache, the
  full-vocabulary prefill logits that transformers' thinker materialises, the per-layer
  hidden states kept for the talker, and the talker/token2wav when they are loaded on
  demand);
- a fixed overhead (CUDA context, allocator slack).

Four coefficients (`CALIBRATION`) were fitted once against Qwen's published minimum-memory
table; tests/test_selection.py checks every published figure is reproduced within 10 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
QUANT_BYTES_PER_PARAM = 0.53  # 4-bit weights + fp16 scales and packed zeros per group of 128
MERGED_PATCH_PIXELS = 28 * 28  # one LLM token = 2x2 merged 14-px patches (per 2 frames for video)
AUDIO_TOKENS_PER_SECOND = 25  # 16 kHz mel at 100 frames/s, conv stride 2, pooled by 2
AUDIO_ENCODER_FRAMES_PER_TOKEN = 2  # encoder runs at 50 frames/s before the pooling
TOKEN2WAV_PARAMS = 450_000_000  # DiT + BigVGAN; same in 3B and 7B, always run in fp32


@dataclass(frozen=True)
class Calibration:
    """Dimensionless factors on the physical terms, fitted to Qwen's published table."""

    overhead_gib: float = 1.75  # CUDA context, cuBLAS workspace, allocator slack
    kv_factor: float = 3.1  # the cache, its torch.cat copies, and per-token prefill transients
    hidden_factor: float = 1.75  # thinker hidden states of every layer kept for the talker
    logits_factor: float = 1.0  # prefill logits for every position, in the model dtype
    encoder_factor: float = 1.0  # encoder activations per patch/frame (hidden + MLP width)
    # Without flash-attention in fp32 (Qwen's FP32 row) a T x T score buffer per decoder
    # layer; fitted to the only two non-flash figures published, so loosely constrained.
    eager_attention_factor: float = 2.7


CALIBRATION = Calibration()


@dataclass(frozen=True)
class TextDims:
    """A Qwen2-style decoder (the thinker's LLM, or a lite text model)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    head_dim: int = 128
    tied_embeddings: bool = False  # lm_head shares the embedding matrix
    # Mixture of experts (Qwen3-MoE style): `experts` SwiGLU experts of width
    # `expert_intermediate` replace the dense MLP, `active_experts` of them run per token;
    # `shared_intermediate` > 0 adds an always-on shared expert. 0 experts: dense MLP.
    experts: int = 0
    active_experts: int = 0
    expert_intermediate: int = 0
    shared_intermediate: int = 0
    qkv_bias: bool = True  # Qwen2 has q/k/v biases; Qwen3 has none (and q/k RMSNorms)

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def _layer_params(self, experts: int) -> int:
        q_out = self.heads * self.head_dim
        kv_out = self.kv_heads * self.head_dim
        attention = self.hidden * (q_out + 2 * kv_out) + q_out * self.hidden
        attention += (q_out + 2 * kv_out) if self.qkv_bias else 2 * self.head_dim
        if self.experts:
            mlp = experts * 3 * self.hidden * self.expert_intermediate + self.hidden * self.experts
            if self.shared_intermediate:
                mlp += 3 * self.hidden * self.shared_intermediate + self.hidden
        else:
            mlp = 3 * self.hidden * self.intermediate  # gate, up, down
        return attention + mlp + 2 * self.hidden  # two RMSNorms

    @property
    def layer_params(self) -> int:
        return self._layer_params(self.experts)

    @property
    def params(self) -> int:
        return self.embedding_params + self.layers * self.layer_params + self.hidden

    @property
    def active_params(self) -> int:
        """Parameters one token runs through (all of them for a dense model)."""
        layer = self._layer_params(self.active_experts)
        return self.embedding_params + self.layers * layer + self.hidden

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


@dataclass(frozen=True)
class VisionDims:
    """Qwen2.5-Omni's ViT: 14-px patches, 2x2 spatial merge, 2-frame temporal patches."""

    out_hidden: int  # equals the thinker's hidden size
    depth: int = 32
    hidden: int = 1280
    heads: int = 16
    intermediate: int = 3420
    patch: int = 14
    spatial_merge: int = 2
    temporal_patch: int = 2
    gated_mlp: bool = True  # SwiGLU (3 matrices); Qwen3-Omni's ViT has fc1/fc2 (2)
    mergers: int = 1  # patch mergers; Qwen3-Omni adds 3 "deepstack" ones
    position_embeddings: int = 0  # learned absolute positions (Qwen3-Omni: 2304)

    @property
    def token_pixels(self) -> int:
        """Pixels behind one LLM token: a merged (patch x merge)^2 square."""
        return (self.patch * self.spatial_merge) ** 2

    @property
    def params(self) -> int:
        patch_embed = 3 * self.temporal_patch * self.patch**2 * self.hidden
        mlp = (3 if self.gated_mlp else 2) * self.hidden * self.intermediate
        block = 4 * self.hidden**2 + mlp + 2 * self.hidden
        merged = self.hidden * self.spatial_merge**2
        merger = merged * merged + merged * self.out_hidden
        positions = self.position_embeddings * self.hidden
        return patch_embed + self.depth * block + self.mergers * merger + positions

    def activation_bytes_per_patch(self, dtype_bytes: int) -> float:
        return (self.hidden + self.intermediate) * dtype_bytes


@dataclass(frozen=True)
class AudioDims:
    """Qwen2.5-Omni's Whisper-style audio encoder (128 mel bins, 30-s windows)."""

    output_dim: int  # equals the thinker's hidden size
    layers: int = 32
    d_model: int = 1280
    ffn: int = 5120
    n_mels: int = 128
    tokens_per_second: float = AUDIO_TOKENS_PER_SECOND  # LLM tokens per second of audio

    @property
    def params(self) -> int:
        convs = 3 * self.n_mels * self.d_model + 3 * self.d_model**2
        layer = 4 * self.d_model**2 + 2 * self.d_model * self.ffn
        return convs + self.layers * layer + self.d_model * self.output_dim

    def activation_bytes_per_frame(self, dtype_bytes: int) -> float:
        return (self.d_model + self.ffn) * dtype_bytes


@dataclass(frozen=True)
class ModelSpec:
    """One loadable model: its id, tier and the dims its memory is computed from."""

    model_id: str
    tier: str  # "omni" (audio/vision in, speech out) or "lite" (text only)
    text: TextDims
    vision: VisionDims | None = None
    audio: AudioDims | None = None
    talker: TextDims | None = None  # speech-token decoder; None for lite models
    quantization: str | None = None  # "gptq-int4" or "awq": thinker linears in 4 bit
    requires: str | None = None  # importable package the quantized kernels need
    full_prefill_logits: bool = True  # thinker.forward has no logits_to_keep (5.23)
    talker_extra_params: int = 0  # beside the talker's decoder: projections, code predictor
    token2wav_params: int = TOKEN2WAV_PARAMS  # the waveform decoder after the talker
    token2wav_fp32: bool = True  # Qwen2.5-Omni keeps token2wav in fp32; Qwen3 runs the dtype
    served: bool = False  # too large for CareLLM's in-process tiers: run behind vLLM-Omni

    @property
    def component_params(self) -> dict[str, int]:
        parts = {"thinker": self.text.params}
        if self.vision is not None:
            parts["vision"] = self.vision.params
        if self.audio is not None:
            parts["audio"] = self.audio.params
        if self.talker is not None:
            parts["talker"] = self.talker.params + self.talker_extra_params
            parts["token2wav"] = self.token2wav_params
        return parts


_TEXT_7B = TextDims(3584, 28, 28, 4, 18944, 152064)
_TEXT_3B = TextDims(2048, 36, 16, 2, 11008, 151936)
# Talker: 24 layers, 896 wide, codec vocabulary 8448, input projection from the thinker
# width. The 3B talker's MLP width is inferred from its ~0.39 B parameter count.
_TALKER_7B = TextDims(896, 24, 12, 4, 18944, 8448 + 3584)
_TALKER_3B = TextDims(896, 24, 12, 4, 4864, 8448 + 2048)

# Qwen3-Omni-30B-A3B (Instruct): dims from the released config.json (thinker_config /
# talker_config / code2wav_config of Qwen/Qwen3-Omni-30B-A3B-Instruct, as printed by
# transformers' Qwen3OmniMoeConfig; class defaults in transformers 5.23's
# configuration_qwen3_omni_moe.py differ and are not used). Released checkpoint:
# 35,259,818,545 parameters (65.68 GiB in bf16); tests check we land within 1 %.
QWEN3_OMNI = "Qwen/Qwen3-Omni-30B-A3B-Instruct"
# thinker text_config: 48 layers, 2048 wide, 32 q / 4 kv heads of 128, no qkv bias,
# 128 experts of width 768 with 8 active per token, vocabulary 152064, untied lm_head.
_TEXT_QWEN3_OMNI = TextDims(
    2048, 48, 32, 4, 768, 152064, experts=128, active_experts=8, expert_intermediate=768,
    qkv_bias=False,
)  # fmt: skip
# talker text_config: 20 layers, 1024 wide, 16 q / 2 kv heads, 128 experts of width 384
# (6 active) plus a shared expert of 768, codec vocabulary 3072.
_TALKER_QWEN3_OMNI = TextDims(
    1024, 20, 16, 2, 2048, 3072, experts=128, active_experts=6, expert_intermediate=384,
    shared_intermediate=768, qkv_bias=False,
)  # fmt: skip
# vision_config: 27 blocks of 1152 (MLP 4304, fc1/fc2), 16-px patches, a merger plus 3
# "deepstack" mergers, 2304 learned positions; out 2048.
_VISION_QWEN3_OMNI = VisionDims(2048, depth=27, hidden=1152, intermediate=4304, patch=16,
                                gated_mlp=False, mergers=4, position_embeddings=2304)  # fmt: skip
# Beside the talker's decoder: text/hidden projections (2 x [2048->2048->1024] MLPs,
# 12.6 M) and the code predictor (5 layers of 1024 with MLP 3072, 15 codebook embeddings
# and 15 heads of 2048 x 1024: 141.6 M).
_QWEN3_TALKER_EXTRA = 12_600_000 + 141_600_000
# code2wav: 8-layer 1024-wide transformer (109 M), code embedding 32768 x 1024 (33.5 M),
# 2 ConvNeXt upsamplers (21 M), causal conv decoder 1536 -> 96 channels (52 M).
_QWEN3_CODE2WAV = 216_000_000


def _omni(model_id: str, text: TextDims, talker: TextDims, **kw) -> ModelSpec:
    return ModelSpec(
        model_id, "omni", text, VisionDims(text.hidden), AudioDims(text.hidden), talker, **kw
    )


MODELS: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        _omni("Qwen/Qwen2.5-Omni-7B", _TEXT_7B, _TALKER_7B),
        _omni("Qwen/Qwen2.5-Omni-3B", _TEXT_3B, _TALKER_3B),
        _omni(
            "Qwen/Qwen2.5-Omni-7B-GPTQ-Int4",
            _TEXT_7B,
            _TALKER_7B,
            quantization="gptq-int4",
            requires="gptqmodel",
        ),
        _omni("Qwen/Qwen2.5-Omni-7B-AWQ", _TEXT_7B, _TALKER_7B, quantization="awq", requires="awq"),
        ModelSpec(
            QWEN3_OMNI,
            "omni",
            _TEXT_QWEN3_OMNI,
            _VISION_QWEN3_OMNI,
            # audio_config (AuT): 32 layers of 1280, FFN 5120, output 2048; 13 tokens per
            # second of 16 kHz audio (_get_feat_extract_output_lengths: 13 per 100 frames).
            AudioDims(2048, tokens_per_second=13),
            _TALKER_QWEN3_OMNI,
            talker_extra_params=_QWEN3_TALKER_EXTRA,
            token2wav_params=_QWEN3_CODE2WAV,
            token2wav_fp32=False,
            served=True,
        ),
        ModelSpec(
            "Qwen/Qwen2.5-1.5B-Instruct",
            "lite",
            TextDims(1536, 28, 12, 2, 8960, 151936, tied_embeddings=True),
            full_prefill_logits=False,
        ),
        ModelSpec(
            "Qwen/Qwen2.5-0.5B-Instruct",
            "lite",
            TextDims(896, 24, 14, 2, 4864, 151936, head_dim=64, tied_embeddings=True),
            full_prefill_logits=False,
        ),
    )
}


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
    full_prefill_logits: bool | None = None  # None: as the model's forward does

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
    encoders: float  # encoder phase: activations (+ encoder weights loaded on demand)
    kv_cache: float  # thinker KV cache (x calibration factor)
    activations: float  # prefill logits + hidden states kept for the talker
    speech: float  # talker + token2wav loaded on demand (0 when resident or off)
    overhead: float
    tokens: int  # thinker prompt + reply length
    components: dict[str, float] = field(default_factory=dict)  # resident weights by part

    @property
    def decoder_phase(self) -> float:
        return self.kv_cache + self.activations + self.speech

    @property
    def peak(self) -> float:
        return self.overhead + self.weights + max(self.encoders, self.decoder_phase)

    def as_gib(self) -> dict[str, float]:
        terms = {
            "weights": self.weights,
            "encoders": self.encoders,
            "kv_cache": self.kv_cache,
            "activations": self.activations,
            "speech": self.speech,
            "overhead": self.overhead,
        }
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


def estimate(
    spec: ModelSpec,
    work: Workload,
    dtype: str = "bfloat16",
    offload: bool = False,
    attention: str = "flash_attention_2",
    calibration: Calibration = CALIBRATION,
) -> Estimate:
    """Peak memory of `spec` running `work` in `dtype` with `attention` implementation.

    ``offload`` models Qwen's low-VRAM mode: only the thinker LLM stays resident; encoders,
    talker and token2wav are loaded for their phase and then moved back to the CPU.
    """
    nbytes = DTYPE_BYTES[dtype]
    speech = work.speech and spec.talker is not None
    components: dict[str, float] = {}
    for name, params in spec.component_params.items():
        if name in ("talker", "token2wav") and not speech:
            continue
        if name == "token2wav" and spec.token2wav_fp32:
            components[name] = params * 4.0
        elif name == "thinker" and spec.quantization:
            embeds = spec.text.embedding_params
            components[name] = (params - embeds) * QUANT_BYTES_PER_PARAM + embeds * nbytes
        else:
            components[name] = float(params * nbytes)

    on_demand = {n: b for n, b in components.items() if offload and n != "thinker"}
    resident = {n: b for n, b in components.items() if n not in on_demand}

    encoder_act = 0.0
    if spec.vision is not None:
        video_tokens, image_tokens, audio_tokens = media_tokens(spec, work)
        patches = (video_tokens + image_tokens) * spec.vision.spatial_merge**2
        vision_act = patches * spec.vision.activation_bytes_per_patch(nbytes)
        vision_act += on_demand.get("vision", 0.0)
        audio_frames = audio_tokens * AUDIO_ENCODER_FRAMES_PER_TOKEN
        audio_act = audio_frames * spec.audio.activation_bytes_per_frame(nbytes)
        audio_act += on_demand.get("audio", 0.0)
        encoder_act = calibration.encoder_factor * max(vision_act, audio_act)
        tokens = video_tokens + image_tokens + audio_tokens + work.text_tokens
    else:  # a lite model sees the text only
        tokens = work.text_tokens

    text = spec.text
    kv = calibration.kv_factor * tokens * text.kv_bytes_per_token(nbytes)
    full_logits = (
        spec.full_prefill_logits if work.full_prefill_logits is None else work.full_prefill_logits
    )
    logits = calibration.logits_factor * tokens * text.vocab * nbytes if full_logits else 0.0
    hidden = 0.0
    if speech:
        hidden = calibration.hidden_factor * tokens * (text.layers + 1) * text.hidden * nbytes
    scores = 0.0
    if attention != "flash_attention_2" and dtype == "float32":
        scores = calibration.eager_attention_factor * text.layers * tokens**2 * nbytes
    talker_on_demand = on_demand.get("talker", 0.0) + on_demand.get("token2wav", 0.0)
    return Estimate(
        weights=sum(resident.values()),
        encoders=encoder_act,
        kv_cache=kv,
        activations=logits + hidden + scores,
        speech=talker_on_demand,
        overhead=calibration.overhead_gib * GIB,
        tokens=tokens,
        components=resident,
    )
