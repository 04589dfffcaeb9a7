"""Qwen3-Omni in process: `carellm.load` hands a Qwen3-Omni checkpoint (a folder whose
config.json says ``qwen3_omni_moe``, a ``Qwen/Qwen3-Omni-*`` hub id, or ``"tiny-qwen3"``)
to `carellm.qwen3.engine.load_qwen3`, which returns an engine whose sessions
(`carellm.qwen3.session.Qwen3Session`) offer the same API as the Qwen2.5-Omni ones.

Torch-free on import: `is_qwen3` only reads a config.json.
"""

from __future__ import annotations

import json
from pathlib import Path

QWEN3_HUB_PREFIX = "Qwen/Qwen3-Omni"
QWEN3_MODEL = "Qwen/Qwen3-Omni-30B-A3B-Instruct"
QWEN3_TINY = "tiny-qwen3"  # the random tiny Qwen3-Omni built locally (carellm.qwen3.tiny)
MODEL_TYPE = "qwen3_omni_moe"


def is_qwen3(model) -> bool:
    """Whether ``model`` (what the user passed to `carellm.load`) is a Qwen3-Omni."""
    if not isinstance(model, str):
        return False
    if model == QWEN3_TINY or model.startswith(QWEN3_HUB_PREFIX):
        return True
    config = Path(model).expanduser() / "config.json"
    try:
        return json.loads(config.read_text()).get("model_type") == MODEL_TYPE
    except (OSError, ValueError):
        return False


def load_qwen3(model: str, **kwargs):
    """See `carellm.qwen3.engine.load_qwen3` (imported lazily: it needs torch)."""
    from carellm.qwen3.engine import load_qwen3 as load

    return load(model, **kwargs)


__all__ = ["QWEN3_MODEL", "QWEN3_TINY", "is_qwen3", "load_qwen3"]
