"""Crisis safety: the rules and the crisis classifier (`assess`), the levels, the resources and
the escalation.

Torch-free: importing it never loads a model.
"""

from carellm.safety.assess import (
    CATEGORIES,
    LANGS,
    LEVELS,
    Resource,
    SafetyAssessment,
    assess,
    detect_language,
    level_at_least,
    max_level,
)
from carellm.safety.resources import escalation_message, resources_for

__all__ = [
    "CATEGORIES", "LANGS", "LEVELS", "Resource", "SafetyAssessment", "assess",
    "detect_language", "escalation_message", "level_at_least", "max_level", "resources_for",
]  # fmt: skip
