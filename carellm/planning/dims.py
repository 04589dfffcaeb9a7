"""Model dimensions, read from a checkpoint's config.json, and the parameters they imply.

A plan for a Qwen2.5-Omni checkpoint starts from its ``config.json``: a local folder's own
file (fine-tunes, other sizes), or for the hub ids a copy shipped in ``carellm/resources``
(the published 3B and 7B layouts; see their ``_carellm_source`` field). The formulas here
count parameters exactly as transformers 5.23 builds the modules (tests/test_planning.py
checks them against the modules built on the meta device).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from carellm.errors import ModelLoadError

TOKEN2WAV_PARAMS = 449_051_264  # DiT + BigVGAN as transformers 5.23 builds them; always fp32
AUDIO_TOKENS_PER_SECOND = 25  # 16 kHz mel at 100 frames/s, conv stride 2, pooled by 2
# Hub ids whose config.json ships with CareLLM, and the quantized checkpoints that share
# their layout: id -> (shipped file, quantization of the thinker's decoder layers).
SHIPPED = {
    "Qwen/Qwen2.5-Omni-7B": ("qwen2.5-omni-7b.config.json", None),
    "Qwen/Qwen2.5-Omni-3B": ("qwen2.5-omni-3b.config.json", None),
    "Qwen/Qwen2.5-Omni-7B-GPTQ-Int4": ("qwen2.5-omni-7b.config.json", "gptq-int4"),
    "Qwen/Qwen2.5-Omni-7B-AWQ": ("qwen2.5-omni-7b.config.json", "awq"),
}
QUANT_METHODS = {"gptq": "gptq-int4", "awq": "awq"}  # config quant_method -> our name
# Packages transformers 5.23 + CareLLM need to load each quantization (carellm/loading.py).
QUANT_REQUIRES = {"gptq-int4": ("gptqmodel",), "awq": ("gptqmodel",)}


@dataclass(frozen=True)
class TextDims:
    """A Qwen2-style decoder (the thinker's LLM, the talker, or a lite text model)."""

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
        mlp += (2 if self.gated_mlp else 1) * self.intermediate + self.hidden  # biases
        block = 4 * self.hidden**2 + 4 * self.hidden + mlp + 2 * self.hidden  # qkv+proj, norms
        merged = self.hidden * self.spatial_merge**2
        merger = merged * merged + merged + merged * self.out_hidden + self.out_hidden
        merger += self.hidden  # its RMSNorm
        positions = self.position_embeddings * self.hidden
        return patch_embed + self.depth * block + self.mergers * merger + positions

    def activation_bytes_per_patch(self, dtype_bytes: int) -> float:
        """One block's working set per patch: hidden state + the MLP's gate/up outputs."""
        return (self.hidden + 2 * self.intermediate) * dtype_bytes


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
        convs = 3 * self.n_mels * self.d_model + 3 * self.d_model**2 + 2 * self.d_model
        layer = 4 * self.d_model**2 + 3 * self.d_model  # q, k, v, out (k has no bias)
        layer += 2 * self.d_model * self.ffn + self.ffn + self.d_model + 4 * self.d_model
        head = 2 * self.d_model + self.d_model * self.output_dim + self.output_dim  # norm, proj
        head += 2 * self.output_dim  # audio_bos_eos_token embedding
        return convs + self.layers * layer + head

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
    quantization: str | None = None  # "gptq-int4" or "awq": thinker decoder layers in 4 bit
    requires: tuple[str, ...] = ()  # importable packages loading it needs
    talker_extra_params: int = 0  # beside the talker's decoder: projections, code predictor
    token2wav_params: int = TOKEN2WAV_PARAMS  # the waveform decoder after the talker
    token2wav_fp32: bool = True  # Qwen2.5-Omni keeps token2wav in fp32; Qwen3 runs the dtype
    served: bool = False  # too large for CareLLM's in-process tiers: run behind vLLM-Omni
    source: str = ""  # where the dims come from (a config.json path or "built in")

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


def _text(cfg: dict, tied_default: bool = False) -> TextDims:
    heads = cfg["num_attention_heads"]
    return TextDims(
        hidden=cfg["hidden_size"],
        layers=cfg["num_hidden_layers"],
        heads=heads,
        kv_heads=cfg.get("num_key_value_heads", heads),
        intermediate=cfg["intermediate_size"],
        vocab=cfg["vocab_size"],
        head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
        tied_embeddings=cfg.get("tie_word_embeddings", tied_default),
    )


def spec_from_config(config: dict, model_id: str, source: str = "") -> ModelSpec:
    """The ModelSpec of a Qwen2.5-Omni (``model_type`` qwen2_5_omni) or Qwen2 text config.

    Raises ModelLoadError naming the missing field when the config lacks one.
    """
    try:
        quant = (config.get("quantization_config") or {}).get("quant_method")
        quantization = QUANT_METHODS.get(quant) if quant else None
        requires = QUANT_REQUIRES.get(quantization, ())
        if config.get("model_type") != "qwen2_5_omni":
            return ModelSpec(model_id, "lite", _text(config),
                             quantization=quantization, requires=requires, source=source)  # fmt: skip
        thinker = config["thinker_config"]
        text = _text(thinker.get("text_config", thinker))
        # transformers 5.23 ties the thinker's lm_head by the thinker-level flag when set
        tied = thinker.get("tie_word_embeddings", text.tied_embeddings)
        text = replace(text, tied_embeddings=tied)
        v, a, t = thinker["vision_config"], thinker["audio_config"], config["talker_config"]
        vision = VisionDims(
            text.hidden, depth=v["depth"], hidden=v["hidden_size"], heads=v["num_heads"],
            intermediate=v["intermediate_size"], patch=v.get("patch_size", 14),
            spatial_merge=v.get("spatial_merge_size", 2),
            temporal_patch=v.get("temporal_patch_size", 2),
        )  # fmt: skip
        audio = AudioDims(
            text.hidden, layers=a["encoder_layers"], d_model=a["d_model"],
            ffn=a["encoder_ffn_dim"], n_mels=a.get("num_mel_bins", 128),
        )  # fmt: skip
        talker = _text(t)
        # thinker_to_talker_proj (thinker width -> talker width, with bias); the codec
        # embedding is as wide as the thinker (embedding_size), the codec head as the talker
        width = t.get("embedding_size", text.hidden)
        extra = width * talker.hidden + talker.hidden + talker.vocab * (width - talker.hidden)
    except KeyError as e:
        raise ModelLoadError(
            f"{source or model_id}: config.json lacks {e.args[0]!r}; pass a Qwen2.5-Omni or "
            "Qwen2 checkpoint folder with its original config.json"
        ) from e
    return ModelSpec(
        model_id, "omni", text, vision, audio, talker, quantization=quantization,
        requires=requires, talker_extra_params=extra, source=source,
    )  # fmt: skip


@functools.lru_cache(maxsize=8)
def shipped_spec(model_id: str) -> ModelSpec:
    """The spec of a hub id whose published config.json ships with CareLLM."""
    name, quantization = SHIPPED[model_id]
    text = resources.files("carellm").joinpath("resources", name).read_text()
    spec = spec_from_config(json.loads(text), model_id, source=f"carellm/resources/{name}")
    if quantization is None:
        return spec
    return replace(spec, quantization=quantization, requires=QUANT_REQUIRES[quantization])


def folder_spec(folder: str | Path) -> ModelSpec:
    """The spec of a local checkpoint folder, from its own config.json."""
    path = Path(folder).expanduser() / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ModelLoadError(f"{path} does not exist; pass a checkpoint folder") from e
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path} is not readable JSON ({e}); restore the original") from e
    return spec_from_config(config, str(folder), source=str(path))


# ------------------------------------------------------------------ built-in dims

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


def _built_in() -> dict[str, ModelSpec]:
    """Specs without a shipped config.json: the served Qwen3-Omni and the lite text models."""
    qwen3 = ModelSpec(
        QWEN3_OMNI, "omni", _TEXT_QWEN3_OMNI, _VISION_QWEN3_OMNI,
        # audio_config (AuT): 32 layers of 1280, FFN 5120, output 2048; 13 tokens per
        # second of 16 kHz audio (_get_feat_extract_output_lengths: 13 per 100 frames).
        AudioDims(2048, tokens_per_second=13), _TALKER_QWEN3_OMNI,
        talker_extra_params=_QWEN3_TALKER_EXTRA, token2wav_params=_QWEN3_CODE2WAV,
        token2wav_fp32=False, served=True, source="built in (released config.json)",
    )  # fmt: skip
    lite = {
        # Qwen2.5-1.5B/0.5B-Instruct's config.json: tied embeddings, 151936 tokens
        "Qwen/Qwen2.5-1.5B-Instruct": TextDims(1536, 28, 12, 2, 8960, 151936, tied_embeddings=True),
        "Qwen/Qwen2.5-0.5B-Instruct": TextDims(
            896, 24, 14, 2, 4864, 151936, head_dim=64, tied_embeddings=True
        ),
    }
    specs = {QWEN3_OMNI: qwen3}
    for model_id, dims in lite.items():
        specs[model_id] = ModelSpec(model_id, "lite", dims,
                                    source="built in (released config.json)")  # fmt: skip
    return specs


class _Models(Mapping):
    """Every model id the planner knows, read lazily (nothing is read at import time):
    the Qwen2.5-Omni ids from their shipped config.json, the others built in."""

    _built: dict[str, ModelSpec] | None = None

    def _others(self) -> dict[str, ModelSpec]:
        if _Models._built is None:
            _Models._built = _built_in()
        return _Models._built

    def __getitem__(self, model_id: str) -> ModelSpec:
        if model_id in SHIPPED:
            return shipped_spec(model_id)
        return self._others()[model_id]

    def __iter__(self) -> Iterator[str]:
        yield from SHIPPED
        yield from (QWEN3_OMNI, "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct")

    def __len__(self) -> int:
        return sum(1 for _ in self)


MODELS: Mapping[str, ModelSpec] = _Models()
