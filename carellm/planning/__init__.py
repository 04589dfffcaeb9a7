"""Which model and settings fit this machine (`carellm plan`, `load("auto")`).

``hardware`` probes GPUs/RAM, ``memory_model`` estimates peak memory from a model's
dimensions, ``selection`` picks the model, dtype, speech and video caps that fit.
"""

from carellm.planning.hardware import GPU, Hardware, probe
from carellm.planning.memory_model import MODELS, Estimate, ModelSpec, Workload, estimate
from carellm.planning.selection import Needs, Plan, plan_for_model, require_fit, select

__all__ = [
    "GPU", "MODELS", "Estimate", "Hardware", "ModelSpec", "Needs", "Plan", "Workload",
    "estimate", "plan_for_model", "probe", "require_fit", "select",
]  # fmt: skip
