"""What else could run here when a plan does not fit, or beside it.

`suggestions` lists concrete changes that make a failed plan fit (speech off, a shorter
video, another model, more memory), each checked with the same estimate as the plan;
`other_tiers` lists the served (vLLM-Omni) and edge (MNN) ways to run CareLLM that
`carellm plan` prints after the plan.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from carellm.planning.hardware import Hardware, probe
from carellm.planning.memory_model import GIB, MODELS, estimate
from carellm.planning.selection import (
    LITE,
    OMNI_3B,
    OMNI_7B,
    QUANTIZED,
    Needs,
    Plan,
    _margin,
    _missing,
    _plan,
    _Try,
    _workload,
    select,
)


def _needed(plan: Plan) -> str:
    return f"needs {plan.estimated_peak_gb + plan.margin_gb:.1f} GB"


def _shorter_video(needs: Needs, hw: Hardware, device: str, attempt: _Try) -> float | None:
    """The longest video (halving from the request, whole seconds) that fits, or None."""
    seconds = needs.video_seconds
    while seconds >= 1:
        seconds = math.floor(seconds / 2)
        if _plan(dataclasses.replace(needs, video_seconds=seconds), hw, device, attempt, []).fits:
            return seconds
    return None


_LABELS = {OMNI_7B: "the 7B", OMNI_3B: "the 3B"}
_LABELS |= {m: "the 7B in 4 bits" for m in QUANTIZED} | {m: "the text-only lite tier" for m in LITE}


def _other_models(needs: Needs, hw: Hardware, device: str, attempt: _Try) -> list[str]:
    """Each other model that fits this machine (with speech if it can), as CLI flags."""
    extra = QUANTIZED if device == "cuda" else LITE if device == "cpu" else ()
    dtype = attempt.dtype  # a forced quantized model's float16 is not the GPU's best dtype
    if MODELS.get(attempt.model) and MODELS[attempt.model].quantization:
        dtype = "bfloat16" if all(g.bf16 for g in hw.gpus) else "float16"
    out = []
    for model_id in (m for m in (OMNI_7B, OMNI_3B, *extra) if m != attempt.model):
        spec = MODELS[model_id]
        q = spec.quantization is not None
        for speech in (True, False) if needs.speech and spec.talker is not None else (False,):
            try_ = _Try(model_id, "float16" if q else dtype, speech)
            alt = _plan(needs, hw, device, try_, [])
            if alt.fits:
                missing = _missing(spec, hw)
                install = f"pip install {' '.join(missing)}, then " if missing else ""
                no_speech = " --no-speech" if needs.speech and not speech and spec.talker else ""
                flags = f"{install}--model {model_id}{no_speech}"
                out.append(f"{_LABELS[model_id]}: {flags} ({_needed(alt)})")
                break
    return out


def suggestions(needs: Needs, hw: Hardware, device: str, attempt: _Try) -> tuple[str, ...]:
    """Concrete changes that make a plan fit, each with its estimate, best first: speech
    off, a shorter video, another model; last, how much memory the plan itself needs."""
    out = []
    if attempt.speech:
        alt = _plan(needs, hw, device, dataclasses.replace(attempt, speech=False), [])
        if alt.fits:
            out.append(f"speech off: --no-speech ({_needed(alt)})")
    if needs.video_seconds:
        seconds = _shorter_video(needs, hw, device, attempt)
        if seconds is not None:
            out.append(f"a shorter video: --video-seconds {seconds:g}")
    out += _other_models(needs, hw, device, attempt)
    if needs.model:
        auto = select(dataclasses.replace(needs, model=None), hw)
        if auto.fits and not any(auto.model in line for line in out):
            what = [f"{auto.model} on {auto.device}", f"speech {'on' if auto.speech else 'off'}"]
            what += [w for w in auto.warnings if w.startswith("video reduced")]
            out.append(f"let the plan choose (drop --model): {', '.join(what)} ({_needed(auto)})")
    plan = _plan(needs, hw, device, attempt, [])
    out.append(f"more memory: {_needed(plan)} on {device}")
    return tuple(out)


# ------------------------------------------------------------------ served and edge tiers


@dataclass(frozen=True)
class Tier:
    """A way to run CareLLM beside the in-process plan: a served engine or an edge export."""

    model: str
    kind: str  # "served" (vLLM-Omni, backend="openai") or "edge" (MNN, backend="mnn")
    peak_gb: float  # GiB: our estimate (served) or the published phone peak (edge)
    fits: bool  # this machine (GPUs for served, RAM for edge) holds it
    how: str  # the command and the carellm.load line to use
    source: str  # where the figure comes from


def other_tiers(needs: Needs | None = None, hardware: Hardware | None = None) -> tuple[Tier, ...]:
    """Qwen3-Omni served by vLLM-Omni (fits when the GPUs together hold its estimate) and
    the published MNN exports for phones; `carellm plan` prints them after the plan."""
    from carellm.planning.memory_model import MNN_PUBLISHED, QWEN3_OMNI

    needs = needs or Needs()
    hw = hardware if hardware is not None else probe()
    attempt = _Try(QWEN3_OMNI, "bfloat16", needs.speech)
    peak = estimate(MODELS[QWEN3_OMNI], _workload(needs, attempt)).peak
    need = peak + _margin(peak)
    free = sorted((g.free_bytes for g in hw.gpus), reverse=True)
    gpus = next((n for n in range(1, len(free) + 1) if sum(free[:n]) >= need), 0)
    serve = f"vllm serve {QWEN3_OMNI} --omni --port 8091"
    if gpus > 1:
        serve += f"  # over {gpus} GPUs: see doc/deploy.md (deploy config)"
    tiers = [
        Tier(
            QWEN3_OMNI,
            "served",
            round(peak / GIB, 2),
            gpus > 0,
            f'{serve}; carellm.load("{QWEN3_OMNI}", backend="openai", '
            'base_url="http://HOST:8091/v1")',
            "Qwen's BF16 transformers minimum (published, interpolated; doc/memory.md) as a floor",
        )  # fmt: skip
    ]
    for model_id, peak_gb, decode in MNN_PUBLISHED:
        folder = model_id.split("/")[-1]
        tiers.append(Tier(
            model_id, "edge", peak_gb, hw.ram_total_bytes >= peak_gb * GIB,
            f'carellm.load("{folder}/config.json", backend="mnn")  # text out, no speech',
            f"QwenLM/Qwen2.5-Omni README, Deployment with MNN ({decode} tok/s, Snapdragon 8 Elite)",
        ))  # fmt: skip
    return tuple(tiers)
