"""`carellm plan` on a machine without a usable GPU: which Qwen2.5 GGUF fits the RAM.

With llama-cpp-python installed, a CPU machine gets the lite tier on llama.cpp (a text
turn in seconds) instead of the transformers paths (minutes per turn for the Omni 3B).
The model is the largest Qwen2.5 instruct GGUF (Q4_K_M) whose weights, KV cache and
buffers fit the available RAM with the planner's margin, among those this many cores
run at a conversational pace.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from carellm.planning.hardware import Hardware
from carellm.planning.memory_model import GIB, MODELS, TextDims

QUANT = "q4_k_m"  # what Qwen's GGUF repositories and most users run
MATRIX_BYTES_PER_PARAM = 0.62  # Q4_K_M: ~4.9 bits per weight with its block scales
EMBEDDING_BYTES_PER_PARAM = 1.07  # the tied embedding/output matrix stays near Q8_0 (8.5 bits)
KV_BYTES = 2  # f16 K and V cache
CONTEXT = 8192  # tokens: `RuntimeOptions.n_ctx`
BUFFERS_GIB = 0.6  # compute buffers (a 512-token batch), logits, the Python process
LLAMA_HINT = (
    "llama.cpp lite tier unavailable (a text turn in seconds on a CPU, Qwen2.5 GGUF): "
    "pip install 'carellm[cpu]' to allow it"
)


@dataclass(frozen=True)
class GGUFModel:
    """One Qwen2.5 instruct GGUF repository the planner may choose."""

    repo: str  # hub id, loadable by `carellm.load`
    dims: TextDims
    min_cores: int  # below this many cores a reply takes too long to feel like a chat


_DIMS_7B = TextDims(3584, 28, 28, 4, 18944, 152064)
_DIMS_3B = TextDims(2048, 36, 16, 2, 11008, 151936, tied_embeddings=True)
CHOICES = (
    GGUFModel("Qwen/Qwen2.5-7B-Instruct-GGUF", _DIMS_7B, 12),
    GGUFModel("Qwen/Qwen2.5-3B-Instruct-GGUF", _DIMS_3B, 6),
    GGUFModel("Qwen/Qwen2.5-1.5B-Instruct-GGUF", MODELS["Qwen/Qwen2.5-1.5B-Instruct"].text, 4),
    GGUFModel("Qwen/Qwen2.5-0.5B-Instruct-GGUF", MODELS["Qwen/Qwen2.5-0.5B-Instruct"].text, 1),
)


def footprint(dims: TextDims) -> dict[str, float]:
    """Bytes by term of one llama.cpp lite session: weights, KV cache, buffers."""
    embed = dims.vocab * dims.hidden
    weights = (dims.params - embed) * MATRIX_BYTES_PER_PARAM + embed * EMBEDDING_BYTES_PER_PARAM
    if not dims.tied_embeddings:
        weights += embed * (MATRIX_BYTES_PER_PARAM - EMBEDDING_BYTES_PER_PARAM)  # output head
    return {
        "weights": weights,
        "kv_cache": CONTEXT * dims.kv_bytes_per_token(KV_BYTES),
        "overhead": BUFFERS_GIB * GIB,
    }


def llama_plan(needs, hw: Hardware, device_reason: str):
    """The llama.cpp lite `Plan` for this CPU machine, or None when llama-cpp-python is
    not installed or no GGUF fits."""
    from carellm.planning.selection import _budget, _margin, _plan, _Try

    if not hw.has("llama_cpp"):
        return None
    budget = _budget(hw, "cpu")
    template = _plan(needs, hw, "cpu", _Try("Qwen/Qwen2.5-0.5B-Instruct", "float32", False), [])
    for choice in CHOICES:
        terms = footprint(choice.dims)
        peak = sum(terms.values())
        if choice.min_cores > hw.cpu_cores or peak + _margin(peak) > budget:
            continue
        why = (f"llama.cpp lite tier ({QUANT}): the largest Qwen2.5 GGUF for "
               f"{hw.cpu_cores} cores that fits the RAM; a text turn in seconds")  # fmt: skip
        warnings = tuple(w for w in template.warnings if "text only" in w)
        return replace(
            template, model=choice.repo, dtype=QUANT, attn_implementation="llama.cpp",
            tokens=needs.text_tokens, breakdown={k: round(v / GIB, 2) for k, v in terms.items()},
            estimated_peak_gb=round(peak / GIB, 2), margin_gb=round(_margin(peak) / GIB, 2),
            fits=True, reasons=(device_reason, why), warnings=warnings,
        )  # fmt: skip
    return None
