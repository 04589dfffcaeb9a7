"""Crisis resources by language and region, and the escalation message that lists them.

The hotlines live in ``carellm/resources/hotlines.json`` (each entry with its source and
review date); the escalation texts in `carellm.safety.rules`.
"""

from __future__ import annotations

import functools
import importlib.resources
import json

from carellm.errors import DataFormatError, InputError
from carellm.safety import rules as safety_rules
from carellm.safety.assess import LANGS, Resource, SafetyAssessment, level_at_least

_DEFAULT_REGION = {"zh": "CN", "en": "US"}
_KNOWN_REGIONS = frozenset({"CN", "US", "CA"})


@functools.lru_cache(maxsize=1)
def _hotlines() -> tuple[dict, ...]:
    """The entries of ``resources/hotlines.json``, read once on first use."""
    path = importlib.resources.files("carellm") / "resources" / "hotlines.json"
    try:
        return tuple(json.loads(path.read_text(encoding="utf-8"))["resources"])
    except (OSError, ValueError, KeyError) as e:
        raise DataFormatError(
            f"{path}: cannot read the hotline list ({e}); reinstall carellm"
        ) from e


def resources_for(lang: str, region: str | None = None) -> tuple[Resource, ...]:
    """Crisis lines, then directories, then emergency numbers for a language and region.

    ``region`` is an ISO country code ("CN", "US", "CA", ...); by default "CN" for zh and
    "US" for en. Regions without their own entries get the international ones.
    """
    if lang not in LANGS:
        raise InputError("lang", f"unknown language {lang!r}; use 'zh' or 'en'")
    region = (region or _DEFAULT_REGION[lang]).upper()
    key = region if region in _KNOWN_REGIONS else "INTL"
    order = {"crisis_line": 0, "directory": 1, "emergency": 2}
    entries = sorted(
        (e for e in _hotlines() if key in e["regions"]), key=lambda e: order[e["kind"]]
    )
    return tuple(
        Resource(
            name=e["name"][lang],
            number=e["number"],
            url=e["url"],
            region=key,
            lang=lang,
            kind=e["kind"],
            source=e["source"],
            reviewed=e["reviewed"],
            notes=e["notes"][lang],
        )
        for e in entries
    )


def escalation_message(assessment: SafetyAssessment, *, region: str | None = None) -> str:
    """A short, warm message in the assessment's language listing the right contacts.

    Returns "" for level "none". ``region`` as in `resources_for`.
    """
    if assessment.level == "none":
        return ""
    texts = safety_rules.ESCALATION_TEXT[assessment.lang]
    resources = resources_for(assessment.lang, region)
    emergency = " / ".join(r.contact for r in resources if r.kind == "emergency")
    lines = []
    if assessment.level == "imminent":
        lines += [texts["imminent"].format(emergency=emergency), texts["contacts"]]
    else:
        lines.append(texts[assessment.level])
    colon = "：" if assessment.lang == "zh" else ": "
    lines += [f"- {r.name}{colon}{r.contact}" for r in resources]
    if level_at_least(assessment.level, "moderate"):
        lines.append(texts["close"])
    return "\n".join(lines)
