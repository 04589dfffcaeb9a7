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
# Bytes per parameter of the other quantizations Qwen's GGUF repositories publish (llama.cpp
# block sizes: bits per weight / 8, block scales included); the embedding keeps its own.
QUANT_BYTES = {"q4_0": 0.5625, "q4_k_m": 0.62, "q5_0": 0.6875, "q5_k_m": 0.71,
               "q6_k": 0.82, "q8_0": 1.0625, "f16": 2.0, "fp16": 2.0}  # fmt: skip
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


def footprint(dims: TextDims, quant: str = QUANT) -> dict[str, float]:
    """Bytes by term of one llama.cpp lite session: weights, KV cache, buffers."""
    matrix = QUANT_BYTES[quant]
    embedding = max(matrix, EMBEDDING_BYTES_PER_PARAM)
    embed = dims.vocab * dims.hidden
    weights = (dims.params - embed) * matrix + embed * embedding
    if not dims.tied_embeddings:
        weights += embed * (matrix - embedding)  # output head
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


def gguf_plan(model: str, needs, hw: Hardware):
    """The llama.cpp lite `Plan` of a forced GGUF (`carellm plan --model X-GGUF[:quant]` or
    a .gguf path): weights from the file's size (a path) or the repository's dims and
    quantization (a hub id), KV cache and buffers as `footprint`, fits by RAM."""
    from pathlib import Path

    from carellm.errors import ModelLoadError
    from carellm.planning.selection import _budget, _margin, _plan, _Try

    name, _, quant = model.strip().partition(":")
    quant = (quant or QUANT).lower()
    choice = next((c for c in CHOICES if c.repo.lower() == name.lower()), None)
    reasons = [f"llama.cpp lite tier: {model} (forced)"]
    if name.lower().endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {path} does not exist; pass the path of a .gguf file")
        stem = path.name.lower()
        choice = next((c for c in CHOICES if c.repo.split("/")[1][:-5].lower() in stem), None)
        dims = (choice or CHOICES[0]).dims  # unknown: KV as the 7B's (the largest)
        terms = footprint(dims, QUANT)
        terms["weights"] = float(path.stat().st_size)
        reasons.append(
            f"weights: the file's size; KV cache: {(choice or CHOICES[0]).repo}'s dims"
            + ("" if choice else " (the largest known: the name matches none)")
        )
    elif choice is None or quant not in QUANT_BYTES:
        known = ", ".join(c.repo for c in CHOICES)
        raise ModelLoadError(
            f"no plan for {model}: known GGUF repositories are {known} "
            f"(quantizations {', '.join(QUANT_BYTES)}), or pass a .gguf path"
        )
    else:
        terms = footprint(choice.dims, quant)
    peak = sum(terms.values())
    template = _plan(needs, hw, "cpu", _Try("Qwen/Qwen2.5-0.5B-Instruct", "float32", False), [])
    warnings = [w for w in template.warnings if "text only" in w]
    if not hw.has("llama_cpp"):
        warnings.append(LLAMA_HINT)
    return replace(
        template, model=model, dtype=quant, attn_implementation="llama.cpp", device="cpu",
        tokens=needs.text_tokens, breakdown={k: round(v / GIB, 2) for k, v in terms.items()},
        estimated_peak_gb=round(peak / GIB, 2), margin_gb=round(_margin(peak) / GIB, 2),
        budget_gb=round(_budget(hw, "cpu") / GIB, 2),
        fits=peak + _margin(peak) <= _budget(hw, "cpu"), reasons=tuple(reasons),
        warnings=tuple(warnings),
    )  # fmt: skip
