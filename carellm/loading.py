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
    """(model, processor) through the real transformers Qwen2.5-Omni classes."""
    from transformers import Qwen2_5OmniForConditionalGeneration, Qwen2_5OmniProcessor

    with quiet_talker_id_warnings():
        model, processor = _from_pretrained(
            resolved, Qwen2_5OmniProcessor, Qwen2_5OmniForConditionalGeneration,
            device=device, dtype=dtype, attn=attn, enable_audio_output=speech,
        )  # fmt: skip
    check_talker_ids(model.config)
    return model, processor


def load_lite(resolved: Resolved, *, device: str, dtype, attn: str | None):
    """(model, tokenizer) of a text-only chat model (the lite tier) via the Auto classes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = _from_pretrained(
        resolved, AutoTokenizer, AutoModelForCausalLM, device=device, dtype=dtype, attn=attn
    )
    if tokenizer.chat_template is None:
        raise ModelLoadError(f"{resolved.name} has no chat template; use an -Instruct/chat model")
    return model, tokenizer
