"""Finding and loading a Qwen2.5-Omni checkpoint: hub id, local folder or "tiny".

Everything goes through the real ``Qwen2_5OmniForConditionalGeneration`` and
``Qwen2_5OmniProcessor.from_pretrained``; failures become `ModelLoadError` with one
line that says what is missing and how to fix it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from carellm.errors import ModelLoadError

logger = logging.getLogger(__name__)

MODEL_7B = "Qwen/Qwen2.5-Omni-7B"
MODEL_3B = "Qwen/Qwen2.5-Omni-3B"
ALIASES = {"7b": MODEL_7B, "3b": MODEL_3B}
KNOWN = (
    "auto",
    "tiny",
    "tiny-lite",
    MODEL_7B,
    MODEL_3B,
    "Qwen/Qwen2.5-Omni-7B-GPTQ-Int4",
    "Qwen/Qwen2.5-Omni-7B-AWQ",
)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Resolved:
    """Where weights come from: a local folder or a hub id."""

    name: str  # what from_pretrained receives
    local: bool  # True for a folder on disk
    tiny: bool  # the random tiny model: replies are noise
    tier: str = "omni"  # "omni" (Qwen2.5-Omni) or "lite" (a text-only Qwen2 chat model)


def tiny_dir(lite: bool = False) -> Path:
    """Cache folder of the tiny model (under ``$CARELLM_CACHE`` or ``~/.cache/carellm``),
    named ``tiny[-lite]-v<builder version>-seed<seed>`` so a stale build is never reused."""
    from carellm.tiny import TINY_SEED, TINY_VERSION

    base = os.environ.get("CARELLM_CACHE") or Path.home() / ".cache" / "carellm"
    kind = "tiny-lite" if lite else "tiny"
    return Path(base) / f"{kind}-v{TINY_VERSION}-seed{TINY_SEED}"


def _ensure_tiny(lite: bool = False) -> Path:
    from carellm.tiny import TINY_MARKER, build_tiny_model, build_tiny_text_model

    folder = tiny_dir(lite)
    if not (folder / TINY_MARKER).exists() or not (folder / "model.safetensors").exists():
        logger.info("building the tiny random model in %s", folder)
        with quiet_talker_id_warnings():
            (build_tiny_text_model if lite else build_tiny_model)(folder)
    return folder


# transformers 5.23 checks every "*_token_id" of a config against that config's own
# vocabulary. Qwen2.5-Omni's talker config holds thinker-vocabulary ids (the text
# pad/bos/eod it embeds with the thinker, the media bounds of the thinker's prompt) beside
# a codec vocabulary of 8448, so every Qwen2.5-Omni config, Qwen's own and its default
# (built whenever transformers formats a config, even for an unlogged message), fails
# that check: seven false warnings per config at each load. We drop those and check the
# same ids against the vocabulary they index (`check_talker_ids`); any other id outside
# a vocabulary still warns.
TALKER_THINKER_IDS = (
    "tts_text_start_token_id", "tts_text_end_token_id", "tts_text_pad_token_id",
    "vision_start_token_id", "vision_end_token_id", "audio_start_token_id",
    "audio_end_token_id",
)  # fmt: skip
_VOCAB_WARNING = re.compile(
    r"Model config: (?P<name>\w+) must be `None` or an integer within the vocabulary"
)


def _not_a_talker_thinker_id(record: logging.LogRecord) -> bool:
    match = _VOCAB_WARNING.match(record.getMessage())
    return match is None or match["name"] not in TALKER_THINKER_IDS


@contextlib.contextmanager
def quiet_talker_id_warnings():
    """Drop transformers' false warnings about the talker's thinker-vocabulary ids."""
    config_logger = logging.getLogger("transformers.configuration_utils")
    config_logger.addFilter(_not_a_talker_thinker_id)
    try:
        yield
    finally:
        config_logger.removeFilter(_not_a_talker_thinker_id)


def check_talker_ids(config) -> list[str]:
    """The talker's thinker-vocabulary ids outside the thinker's vocabulary, each logged
    as a warning (a real inconsistency: the talker would embed a row that does not exist)."""
    vocab = config.thinker_config.text_config.vocab_size
    bad = []
    for name in TALKER_THINKER_IDS:
        value = getattr(config.talker_config, name, None)
        if isinstance(value, int) and not 0 <= value < vocab:
            bad.append(name)
            logger.warning(
                "talker config: %s = %d is not a row of the thinker's vocabulary (0..%d)",
                name, value, vocab - 1,
            )  # fmt: skip
    return bad


def _folder_tier(folder: Path) -> str:
    """ "omni" for a Qwen2.5-Omni checkpoint, "lite" for any other (text) model."""
    import json

    try:
        kind = json.loads((folder / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError):
        return "omni"  # check_folder names what is missing
    return "omni" if kind == "qwen2_5_omni" else "lite"


def check_folder(folder: Path, *, lite: bool = False) -> None:
    """Raise ModelLoadError naming the files a model folder lacks."""
    missing = [name for name in ("config.json",) if not (folder / name).exists()]
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        missing.append("*.safetensors weights")
    if not (folder / "tokenizer.json").exists() and not (folder / "vocab.json").exists():
        missing.append("tokenizer.json (or vocab.json + merges.txt)")
    if not lite and not any(
        (folder / n).exists() for n in ("preprocessor_config.json", "processor_config.json")
    ):
        missing.append("preprocessor_config.json")
    if not lite and not (folder / "spk_dict.pt").exists():
        missing.append("spk_dict.pt (voices)")
    if missing:
        repo = "Qwen/Qwen2.5-1.5B-Instruct" if lite else MODEL_7B
        other = "" if lite else f" (or {MODEL_3B})"
        raise ModelLoadError(
            f"model folder {folder} lacks {', '.join(missing)}; download the full checkpoint "
            f"with `hf download {repo} --local-dir {folder}`{other} "
            "and pass --model to that folder"
        )


def resolve(model: str) -> Resolved:
    """Turn the user's ``model`` argument into something from_pretrained can load."""
    if not isinstance(model, str) or not model.strip():
        raise ModelLoadError(f"model must be a name or a folder; choose one of: {', '.join(KNOWN)}")
    model = ALIASES.get(model.lower(), model)
    if model in ("tiny", "tiny-lite"):
        lite = model == "tiny-lite"
        return Resolved(
            str(_ensure_tiny(lite)), local=True, tiny=True, tier="lite" if lite else "omni"
        )
    path = Path(model).expanduser()
    if path.is_dir():
        tier = _folder_tier(path)
        check_folder(path, lite=tier == "lite")
        from carellm.tiny import TINY_MARKER

        return Resolved(str(path), local=True, tiny=(path / TINY_MARKER).exists(), tier=tier)
    if path.exists():
        raise ModelLoadError(
            f"{path} is a file; pass the folder that holds config.json and the weights"
        )
    if HUB_ID.match(model) and not model.startswith((".", "/", "~")):
        tier = "omni" if "omni" in model.lower() else "lite"
        return Resolved(model, local=False, tiny=False, tier=tier)
    raise ModelLoadError(
        f"model folder {model} does not exist; pass an existing folder or one of: {', '.join(KNOWN)}"
    )


def _hub_error(name: str, error: Exception) -> ModelLoadError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    why = (
        "HF_HUB_OFFLINE=1 is set and it is not in the local cache"
        if offline
        else ("the Hugging Face Hub is unreachable or the id is wrong")
    )
    return ModelLoadError(
        f"cannot load {name}: {why}; on a machine with network run `hf download "
        f"{name} --local-dir DIR`, then pass --model DIR (or set HF_HUB_OFFLINE=1 to use the "
        f"local cache) [{type(error).__name__}]"
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host accepts a TCP connection (``HF_ENDPOINT`` respected)."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _offline_kwargs(resolved: Resolved) -> dict:
    """Use the local cache when the Hub cannot be reached; fail fast when not cached.

    Without this, transformers retries an unreachable Hub for minutes.
    """
    if resolved.local:
        return {}
    from huggingface_hub import try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(resolved.name, "config.json"), str)
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or not hub_reachable()
    if offline and not cached:
        raise _hub_error(resolved.name, ConnectionError("offline and not in the local cache"))
    return {"local_files_only": True} if offline else {}


def _from_pretrained(
    resolved: Resolved, preprocessor_cls, model_cls, *, device: str, dtype, attn, **extra
):
    """(model, processor or tokenizer) with every failure turned into a ModelLoadError."""
    kwargs = {"dtype": dtype, **extra, **_offline_kwargs(resolved)}
    if attn:
        kwargs["attn_implementation"] = attn
    if device == "auto":
        kwargs["device_map"] = "auto"  # split over several GPUs
    local_only = {k: v for k, v in kwargs.items() if k == "local_files_only"}
    try:
        preprocessor = preprocessor_cls.from_pretrained(resolved.name, **local_only)
        model = model_cls.from_pretrained(resolved.name, **kwargs)
    except Exception as e:  # OSError, ValueError, huggingface_hub's connection errors
        if resolved.local:
            first = f"cannot load the model in {resolved.name}: {e}".splitlines()[0]
            raise ModelLoadError(first) from e
        raise _hub_error(resolved.name, e) from e
    if device != "auto":
        model = model.to(device)
    return model.eval(), preprocessor


def load_checkpoint(resolved: Resolved, *, device: str, dtype, speech: bool, attn: str | None):
    """(model, processor) through the real transformers Qwen2.5-Omni classes; a GPTQ or
    AWQ checkpoint goes through `load_quantized` (what each needs is explained there)."""
    from transformers import Qwen2_5OmniForConditionalGeneration, Qwen2_5OmniProcessor

    method = quantization_of(resolved.name, local=resolved.local)
    with quiet_talker_id_warnings():
        if method is not None:
            model, processor = load_quantized(
                resolved, method, device=device, speech=speech, attn=attn,
                processor_cls=Qwen2_5OmniProcessor, offline=_offline_kwargs(resolved),
            )  # fmt: skip
        else:
            model, processor = _from_pretrained(
                resolved, Qwen2_5OmniProcessor, Qwen2_5OmniForConditionalGeneration,
                device=device, dtype=dtype, attn=attn, enable_audio_output=speech,
            )  # fmt: skip
    check_talker_ids(model.config)
    return model, processor


# ------------------------------------------------------------------ GPTQ / AWQ checkpoints
# transformers 5.23 cannot load Qwen's Omni GPTQ checkpoint through from_pretrained: its
# GPTQ quantizer (quantizers/quantizer_gptq.py, _process_model_before_weight_loading)
# raises "We can only quantize pure text model." for any model whose main_input_name is
# not input_ids, and Qwen2_5OmniForConditionalGeneration's is input_features. Qwen's
# low-VRAM-mode demo loads it with gptqmodel's own loader instead (`GPTQModel.load`), with
# only the thinker's decoder layers quantized; gptqmodel ships that mapping for
# qwen2_5_omni (module tree thinker.model.layers). AWQ goes through from_pretrained (its
# quantizer needs gptqmodel and accelerate, not autoawq), but it turns every nn.Linear it
# is not told to skip into a 4-bit layer: Qwen's AWQ checkpoint quantizes only the
# thinker's decoder layers, so the encoders, talker, token2wav and lm_head are skipped.
QUANT_PACKAGES = {"gptq": ("gptqmodel",), "awq": ("gptqmodel", "accelerate")}
AWQ_NOT_CONVERTED = ["lm_head", "audio_tower", "visual", "talker", "token2wav"]


def quantization_of(name: str, *, local: bool) -> str | None:
    """ "gptq" / "awq" for a quantized checkpoint (its config's quant_method, or a hub id
    ending in -GPTQ-Int4 / -AWQ), else None."""
    import json

    if local:
        try:
            config = json.loads((Path(name) / "config.json").read_text())
        except (OSError, ValueError):
            return None
        method = (config.get("quantization_config") or {}).get("quant_method")
        return method if method in QUANT_PACKAGES else None
    upper = name.upper()
    return "gptq" if "GPTQ" in upper else "awq" if upper.endswith("-AWQ") else None


def require_packages(method: str, name: str) -> None:
    """ModelLoadError naming the pip command when a package `method` needs is missing."""
    import importlib.util

    missing = [p for p in QUANT_PACKAGES[method] if importlib.util.find_spec(p) is None]
    if missing:
        raise ModelLoadError(
            f"{name} is {method.upper()}-quantized and needs {', '.join(missing)}: "
            f"pip install {' '.join(missing)} (then load it again)"
        )


def load_quantized(resolved: Resolved, method: str, *, device: str, speech: bool, attn,
                   processor_cls, offline: dict):  # fmt: skip
    """(model, processor) of a GPTQ/AWQ Omni checkpoint in float16 (the 4-bit kernels'
    activation dtype); the model is the plain transformers Qwen2.5-Omni module."""
    import torch

    require_packages(method, resolved.name)
    kwargs = {"dtype": torch.float16, **offline}
    if attn:
        kwargs["attn_implementation"] = attn
    try:
        processor = processor_cls.from_pretrained(resolved.name, **offline)
        if method == "gptq":
            from gptqmodel import GPTQModel

            _register_gptq_omni_layout()
            where = {"device_map": "auto"} if device == "auto" else {"device": device}
            wrapped = GPTQModel.load(resolved.name, **where, **kwargs)
            model = wrapped.model
        else:
            from transformers import AwqConfig, Qwen2_5OmniForConditionalGeneration

            config = AwqConfig.from_dict(_quant_config(resolved, offline))
            config.modules_to_not_convert = AWQ_NOT_CONVERTED
            device_map = "auto" if device == "auto" else {"": device}
            model = Qwen2_5OmniForConditionalGeneration.from_pretrained(
                resolved.name, quantization_config=config, device_map=device_map, **kwargs
            )
    except ModelLoadError:
        raise
    except Exception as e:  # ImportError of a kernel, OSError, ValueError, hub errors
        first = f"cannot load the {method.upper()} model {resolved.name}: {e}".splitlines()[0]
        raise ModelLoadError(first) from e
    if not speech and hasattr(model, "disable_talker"):
        model.disable_talker()
    return model.eval(), processor


def _register_gptq_omni_layout() -> None:
    """Point gptqmodel's qwen2_5_omni definition at transformers 5.23's module names.

    gptqmodel 7.7 names transformers 4.5x's layout (thinker.model.layers, the mapping of
    Qwen's low-VRAM-mode `Qwen25OmniThiknerGPTQ`: only the thinker's decoder layers are
    4-bit); 5.23 nests that decoder under thinker.model.language_model, where the stock
    definition finds no layers (tried on CPU, doc/memory.md). `return_audio` is gone in
    5.23: text-only generation is `generation_mode="text"`.
    """
    from gptqmodel.models import auto
    from gptqmodel.models.definitions.base_qwen2_5_omni import BaseQwen2_5_OmniGPTQ as Base

    layout = {
        "pre_lm_head_norm_module": "thinker.model.language_model.norm",
        "module_tree": ["thinker", "model", "language_model", "layers", "#", Base.module_tree[-1]],
        "INPUT_EMBEDDING_EXTRA_ARGS": {"generation_mode": "text"},
    }
    auto.MODEL_MAP["qwen2_5_omni"] = type("Qwen2_5OmniGPTQ_T523", (Base,), layout)


def _quant_config(resolved: Resolved, offline: dict) -> dict:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(resolved.name, **offline).quantization_config


def load_lite(resolved: Resolved, *, device: str, dtype, attn: str | None):
    """(model, tokenizer) of a text-only chat model (the lite tier) via the Auto classes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = _from_pretrained(
        resolved, AutoTokenizer, AutoModelForCausalLM, device=device, dtype=dtype, attn=attn
    )
    if tokenizer.chat_template is None:
        raise ModelLoadError(f"{resolved.name} has no chat template; use an -Instruct/chat model")
    return model, tokenizer
