"""Choose the model, dtype, device and media caps that fit this machine's memory.

`select(needs, hardware)` walks a fixed preference order (doc/memory.md) and returns a
frozen `Plan` explaining each choice; `require_fit(plan)` raises when nothing fits.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

from carellm.errors import CareLLMError, InputError, MemoryPlanError, ModelLoadError
from carellm.media.common import VIDEO_MAX_FRAMES
from carellm.planning.hardware import Hardware, probe
from carellm.planning.memory_model import (
    GIB,
    MERGED_PATCH_PIXELS,
    MODELS,
    Estimate,
    ModelSpec,
    Workload,
    estimate,
    spec_for,
)

logger = logging.getLogger(__name__)
OMNI_7B, OMNI_3B = "Qwen/Qwen2.5-Omni-7B", "Qwen/Qwen2.5-Omni-3B"
QUANTIZED = ("Qwen/Qwen2.5-Omni-7B-GPTQ-Int4", "Qwen/Qwen2.5-Omni-7B-AWQ")
LITE = ("Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct")
MARGIN_FRACTION = 0.10  # of the estimate: allocator fragmentation, estimate error
MARGIN_MIN_GIB = 1.5  # floor of the margin
MPS_USABLE_FRACTION = 0.66  # macOS lets Metal wire about 2/3 of unified memory by default
# Video caps tried in order when the requested video does not fit: (frames/s, merged
# tokens per frame pair, max frames). Frames never exceed what `carellm.media` samples.
VIDEO_LADDER = (
    (2.0, 768, VIDEO_MAX_FRAMES),
    (2.0, 384, VIDEO_MAX_FRAMES),
    (1.0, 384, VIDEO_MAX_FRAMES),
    (1.0, 256, VIDEO_MAX_FRAMES),
    (0.5, 256, VIDEO_MAX_FRAMES),
    (0.5, 128, VIDEO_MAX_FRAMES),
    (0.5, 128, 32),
    (0.5, 64, 16),
)
QUANT_UNTESTED = (
    "4-bit loading is untested here: no GPU and no published GPTQ/AWQ Omni checkpoint on "
    "the machine it was written on (doc/memory.md)"
)
CPU_WARNING = (
    "CPU only: a turn takes minutes (2 cores measured: 228 s prefill for a 465-token "
    "prompt, 2.3 tokens/s decode); use a GPU for interactive sessions"
)
CPU_SPEECH_WARNING = (
    "speech is off: a CPU is too slow for speech (the talker and token2wav add tens of "
    "seconds to every reply); use a GPU for spoken replies"
)


@dataclass(frozen=True)
class Needs:
    """What the sessions will ask of the model; every field maps to one CLI flag."""

    speech: bool = True  # spoken replies (talker + token2wav)
    video_seconds: float = 0.0  # longest video clip per turn, s
    audio_seconds: float = 30.0  # longest voice input per turn, s
    images_per_turn: int = 1
    text_tokens: int = 600  # system prompt + history + reply, tokens
    model: str | None = None  # force this model id; the plan says whether it fits
    dtype: str | None = None  # force "bfloat16" / "float16" / "float32"
    device: str | None = None  # force "cuda" / "mps" / "cpu"

    def __post_init__(self):
        for name in ("video_seconds", "audio_seconds", "images_per_turn", "text_tokens"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(name, f"must be a finite number >= 0, got {value!r}")
        if self.model is not None and not _known(self.model):
            raise ModelLoadError(
                f"unknown model {self.model!r}; known: {', '.join(MODELS)}, a checkpoint "
                "folder with its config.json, or a GGUF (a .gguf path or a hub …-GGUF id)"
            )
        if self.dtype not in (None, "bfloat16", "float16", "float32"):
            raise InputError("dtype", f"use bfloat16, float16 or float32, not {self.dtype!r}")
        if self.device not in (None, "cuda", "mps", "cpu"):
            raise InputError("device", f"use cuda, mps or cpu, not {self.device!r}")


@dataclass(frozen=True)
class Plan:
    """The chosen configuration, its memory estimate and why (all sizes in GiB)."""

    model: str
    tier: str  # "omni" or "lite" (text only)
    dtype: str
    attn_implementation: str  # "flash_attention_2" or "sdpa"
    device: str  # "cuda", "mps" or "cpu"
    device_map: str | None  # "auto" (accelerate's split of free memory) over several GPUs
    speech: bool
    video_fps: float
    video_max_frames: int
    video_max_pixels: int  # per frame
    image_max_pixels: int
    tokens: int  # thinker prompt + reply, tokens
    breakdown: dict[str, float]  # GiB per term of the estimate
    estimated_peak_gb: float  # without margin
    margin_gb: float
    budget_gb: float  # memory the plan may use on its device(s)
    fits: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()  # what would fit, when `fits` is False

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for key in ("reasons", "warnings", "suggestions"):
            out[key] = list(out[key])
        return out


@dataclass(frozen=True)
class _Try:
    model: str
    dtype: str
    speech: bool
    caps: tuple[float, int, int] = VIDEO_LADDER[0]


def _known(model: str) -> bool:
    """A planned id, a checkpoint folder with config.json, or a GGUF (the lite tier)."""
    from pathlib import Path

    from carellm.lite.engine import is_gguf

    return model in MODELS or is_gguf(model) or (Path(model).expanduser() / "config.json").is_file()


def _missing(spec: ModelSpec, hw: Hardware) -> tuple[str, ...]:
    """The packages loading `spec` needs that this machine lacks."""
    return tuple(p for p in spec.requires if not hw.has(p))


def _is_gguf(model: str) -> bool:
    from carellm.lite.engine import is_gguf

    return is_gguf(model)


def _margin(peak: float) -> float:
    return max(MARGIN_FRACTION * peak, MARGIN_MIN_GIB * GIB)


def _workload(needs: Needs, attempt: _Try) -> Workload:
    fps, tokens_per_pair, max_frames = attempt.caps
    return Workload(
        video_seconds=needs.video_seconds,
        audio_seconds=needs.audio_seconds,
        images=needs.images_per_turn,
        text_tokens=needs.text_tokens,
        video_fps=fps,
        video_max_frames=max_frames,
        video_max_pixels=tokens_per_pair * MERGED_PATCH_PIXELS,
        speech=attempt.speech,
    )


def _attention(hw: Hardware, device: str, dtype: str) -> tuple[str, str]:
    if device != "cuda":
        return "sdpa", f"attention: sdpa (flash-attention needs CUDA, device is {device})"
    if dtype == "float32":
        return "sdpa", "attention: sdpa (flash-attention does not run in float32)"
    if not hw.has("flash_attn"):
        return "sdpa", "attention: sdpa (flash_attn is not installed; it lowers video memory)"
    if any(g.capability < (8, 0) for g in hw.gpus):
        return "sdpa", "attention: sdpa (flash-attention 2 needs compute capability >= 8.0)"
    return "flash_attention_2", "attention: flash_attention_2 (installed, GPU supports it)"


def _budget(hw: Hardware, device: str) -> float:
    if device == "cuda":
        return float(sum(g.free_bytes for g in hw.gpus))
    if device == "mps":
        return MPS_USABLE_FRACTION * hw.ram_total_bytes
    return float(hw.ram_available_bytes)


def _fits(hw: Hardware, device: str, est: Estimate) -> bool:
    peak = est.peak
    if peak + _margin(peak) > _budget(hw, device):
        return False
    if device == "cuda" and len(hw.gpus) > 1:
        # Activations land beside the last layers; talker + token2wav are never split.
        unsplit = est.peak - est.weights + est.components.get("talker", 0.0)
        unsplit += est.components.get("token2wav", 0.0)
        return unsplit + _margin(unsplit) <= max(g.free_bytes for g in hw.gpus)
    return True


def _plan(needs: Needs, hw: Hardware, device: str, attempt: _Try, reasons: list[str]) -> Plan:
    spec = spec_for(attempt.model)
    attn, attn_reason = _attention(hw, device, attempt.dtype)
    work = _workload(needs, attempt)
    est = estimate(spec, work, attempt.dtype)
    warnings: list[str] = []
    device_map = None
    if device == "cuda" and len(hw.gpus) > 1:
        device_map = "auto"
        reasons = [
            *reasons,
            f"device_map=auto: accelerate splits the layers over {len(hw.gpus)} GPUs",
        ]
    if spec.quantization:
        warnings.append(QUANT_UNTESTED)
        if _missing(spec, hw):
            warnings.append(
                f"{spec.quantization} does not load here: pip install {' '.join(_missing(spec, hw))}"
            )
    if needs.speech and not attempt.speech and spec.tier == "omni":
        warnings.append(
            CPU_SPEECH_WARNING
            if device == "cpu"
            else "speech is off: replies are text only (the talker did not fit)"
        )
    if spec.tier == "lite" and (
        needs.video_seconds or needs.audio_seconds or needs.images_per_turn
    ):
        warnings.append("lite tier is text only: audio, images and video are not seen")
    if attempt.caps != VIDEO_LADDER[0] and needs.video_seconds:
        warnings.append(
            f"video reduced to {attempt.caps[0]:g} frames/s, {attempt.caps[1]} tokens per "
            f"frame pair, at most {attempt.caps[2]} frames"
        )
    if device == "cpu" and spec.tier == "omni":
        warnings.append(CPU_WARNING)
    if attn == "sdpa" and device == "cuda" and needs.video_seconds:
        warnings.append("estimate assumes PyTorch's memory-efficient SDPA kernel for video")
    peak = est.peak
    return Plan(
        model=spec.model_id,
        tier=spec.tier,
        dtype=attempt.dtype,
        attn_implementation=attn,
        device=device,
        device_map=device_map,
        speech=attempt.speech and spec.talker is not None,
        video_fps=work.video_fps,
        video_max_frames=work.video_max_frames,
        video_max_pixels=work.video_max_pixels,
        image_max_pixels=work.image_max_pixels,
        tokens=est.tokens,
        breakdown=est.as_gib(),
        estimated_peak_gb=round(peak / GIB, 2),
        margin_gb=round(_margin(peak) / GIB, 2),
        budget_gb=round(_budget(hw, device) / GIB, 2),
        fits=_fits(hw, device, est),
        reasons=(*reasons, attn_reason),
        warnings=tuple(warnings),
    )


def _device(needs: Needs, hw: Hardware) -> tuple[str, str]:
    if needs.device:
        return needs.device, f"device: {needs.device} (forced)"
    if hw.gpus:
        return (
            "cuda",
            f"device: cuda ({len(hw.gpus)} GPU(s), {_budget(hw, 'cuda') / GIB:.1f} GB free)",
        )
    if hw.mps:
        return "mps", f"device: mps (Apple GPU, ~{MPS_USABLE_FRACTION:.0%} of RAM usable)"
    return "cpu", f"device: cpu (no GPU; {hw.ram_available_bytes / GIB:.1f} GB RAM available)"


def _gpu_attempts(needs: Needs, hw: Hardware, dtype: str) -> list[tuple[_Try, str]]:
    speech = needs.speech
    out = [
        (_Try(OMNI_7B, dtype, speech), "7B in full precision: best quality"),
        (_Try(OMNI_3B, dtype, speech), "3B: the 7B does not fit"),
    ]
    for model_id in QUANTIZED:
        if not _missing(MODELS[model_id], hw):
            out.append((_Try(model_id, "float16", speech), f"{model_id}: 4-bit 7B"))
    if speech:
        out.append((_Try(OMNI_3B, dtype, False), "3B without speech: the talker does not fit"))
    for caps in VIDEO_LADDER[1:] if needs.video_seconds else ():
        out.append((_Try(OMNI_3B, dtype, False, caps), "3B, no speech, reduced video caps"))
    return out


def _cpu_attempts(needs: Needs, hw: Hardware, device: str) -> list[tuple[_Try, str]]:
    if device == "mps":
        omni_dtypes = ["float16"]
        why = "3B in float16: MPS runs float16 well; 7B is too slow there"
    else:
        omni_dtypes = ["bfloat16"] if hw.cpu_bf16 else ["float32", "bfloat16"]
        why = "3B without speech: the talker and token2wav are too slow on a CPU"
    if needs.dtype:
        omni_dtypes = [needs.dtype]
    speech = needs.speech and device == "mps"
    out = [(_Try(OMNI_3B, d, speech), why) for d in omni_dtypes]
    if speech:
        out += [(_Try(OMNI_3B, d, False), "3B without speech") for d in omni_dtypes]
    for caps in VIDEO_LADDER[1:] if needs.video_seconds else ():
        out.append((_Try(OMNI_3B, omni_dtypes[-1], False, caps), "3B, reduced video caps"))
    lite = "lite text tier: not enough memory for the Omni 3B"
    for model_id in LITE:
        out += [(_Try(model_id, d, False), lite) for d in ("float32", "bfloat16")]
    return out


def select(needs: Needs | None = None, hardware: Hardware | None = None) -> Plan:
    """The best plan for `needs` on `hardware` (probed when None); see doc/memory.md."""
    needs = needs or Needs()
    hw = hardware if hardware is not None else probe()
    device, device_reason = _device(needs, hw)
    if device == "cuda" and not hw.gpus:
        raise InputError("device", "cuda was forced but no CUDA GPU was found")
    gpu_dtype = needs.dtype or ("bfloat16" if all(g.bf16 for g in hw.gpus) else "float16")
    dtype_reason = f"dtype: {gpu_dtype}" + (
        " (forced)"
        if needs.dtype
        else " (GPU has native bf16)"
        if gpu_dtype == "bfloat16"
        else " (GPU lacks bf16)"
    )
    if needs.model and _is_gguf(needs.model):  # the llama.cpp lite tier
        from carellm.lite.plan import gguf_plan

        return gguf_plan(needs.model, needs, hw)
    if needs.model:
        spec = spec_for(needs.model)
        dtype = needs.dtype or (
            gpu_dtype if device == "cuda" else "float16" if device == "mps" else "float32"
        )
        if spec.quantization:
            dtype = "float16"
        attempt = _Try(spec.model_id, dtype, needs.speech and spec.talker is not None)
        attempts = [(attempt, f"model: {spec.model_id} (forced)")]
    elif device == "cuda":
        attempts = _gpu_attempts(needs, hw, gpu_dtype)
    else:
        attempts = _cpu_attempts(needs, hw, device)

    notes = []
    if device == "cuda" and not needs.model:
        missing = sorted({p for m in QUANTIZED for p in _missing(MODELS[m], hw)})
        if missing:
            notes.append(f"quantized 7B unavailable: pip install {' '.join(missing)} to allow it")
    if device == "cpu" and not needs.model:  # no usable GPU: the llama.cpp lite tier first
        from carellm.lite.plan import LLAMA_HINT, llama_plan

        lite = llama_plan(needs, hw, device_reason)
        if lite is not None:
            return lite
        notes.append(LLAMA_HINT)
    for attempt, why in attempts:
        plan = _plan(
            needs,
            hw,
            device,
            attempt,
            [device_reason, why, *notes, _dtype_reason(attempt, dtype_reason, device)],
        )
        if plan.fits:
            return plan
    if device == "cuda" and not needs.device and not needs.model:
        cpu = select(dataclasses.replace(needs, device="cpu"), hw)
        if cpu.fits:
            return dataclasses.replace(
                cpu,
                reasons=(
                    f"no plan fits the GPU ({_budget(hw, 'cuda') / GIB:.1f} GB)",
                    *notes,
                    *cpu.reasons,
                ),
            )
    attempt = attempts[0][0] if needs.model else attempts[-1][0]
    if not needs.model and device == "cuda":
        attempt = _Try(OMNI_3B, gpu_dtype, needs.speech)
    plan = _plan(needs, hw, device, attempt, [device_reason, "nothing fits", *notes])
    from carellm.planning.alternatives import suggestions  # it plans alternatives with _plan

    return dataclasses.replace(plan, suggestions=suggestions(needs, hw, device, attempt))


def _dtype_reason(attempt: _Try, gpu_reason: str, device: str) -> str:
    if MODELS.get(attempt.model) and MODELS[attempt.model].quantization:
        return "dtype: float16 (the GPTQ/AWQ kernels' activation dtype)"
    if attempt.dtype == "float32":
        return "dtype: float32 (fastest on a CPU without native bf16)"
    if device == "cuda" and attempt.dtype != "float16":
        return gpu_reason
    return f"dtype: {attempt.dtype}"


def require_fit(plan: Plan) -> Plan:
    """Return `plan` if it fits, else raise MemoryPlanError naming what would fit."""
    if plan.fits:
        return plan
    hint = "; ".join(plan.suggestions) or "use a machine with more memory"
    raise MemoryPlanError(
        f"{plan.model} needs {plan.estimated_peak_gb + plan.margin_gb:.1f} GB with margin but "
        f"{plan.budget_gb:.1f} GB is available; try: {hint}"
    )


def plan_for_model(model: str, speech: bool) -> Plan | None:
    """The memory plan for a hub model or "auto"; None for tiny models, local folders, or
    when no plan can be made (it is informative only: the reason is logged)."""
    from carellm.loading import ALIASES, HUB_ID

    model = ALIASES.get(model.lower(), model)
    if model != "auto" and (not HUB_ID.match(model) or model.startswith((".", "/", "~"))):
        return None
    try:
        return select(Needs(speech=speech, model=None if model == "auto" else model))
    except (CareLLMError, ValueError, OSError) as e:
        logger.warning("no memory plan: %s", e)
        return None
