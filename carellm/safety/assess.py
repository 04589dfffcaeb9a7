"""Crisis safety: rule-based risk assessment of a user's text (no model, no torch).

`assess` reads only the text it is given (no model, no instructions in the text are
obeyed), so "ignore previous instructions ... I want to kill myself" is still a crisis.
Levels, in order: "none" (no risk signal), "low" (topic mentioned without personal risk:
news, study, negated, a third person), "moderate" (passive death wish, hopelessness, past
self-harm), "high" (active ideation, self-harm, threats, abuse, a medical emergency sign),
"imminent" (plan with means or timing, an act under way: emergency services now).
The patterns live in `carellm.safety.rules`; the hotlines in ``resources/hotlines.json``.

Two model-free signals, both in `SafetyAssessment.signals`:
* ``"classifier"``: the crisis classifier (`carellm.safety.classifier`) on the same
  normalised text, for wording no rule names. It says "moderate" when P(crisis) passes
  its threshold and "high" when P(high or imminent) passes its own, capped at "low" when
  a rules frame (fiction, news, a professional question, a game, ...) holds for its
  category; "high" becomes "imminent" with prepared means or timing + intent, as for
  the rules. A finding adds its most probable category and
  ``[classifier:<category> p=<P(crisis)>]`` to ``matched`` (no category when the
  rules named one).
* ``"text"``: the rules (patterns and concepts, with negation, history and frames),
  except that a rules "moderate" or "high" drops to "low" when the classifier's
  P(crisis) is under its veto threshold (``[classifier:veto p=...]`` in ``matched``):
  surface words without a crisis ("so hungover I want to die"). "imminent" (means,
  timing, an act under way) is never lowered. The other way, when the rules' own level
  is "low" (negated, reported, third person) the classifier is capped at "low" too, if
  the training chose so (``rules_low_caps``).
The three thresholds are chosen on cross-validated predictions (``scripts/train_safety.py``).
The level is the most severe signal. If the weights file cannot be read the rules
decide alone and ``signals`` has no "classifier" key (logged as an error).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from carellm.errors import DataFormatError, InputError
from carellm.safety import classifier, concepts
from carellm.safety import rules as safety_rules
from carellm.safety.normalize import normalise

logger = logging.getLogger(__name__)

LEVELS: tuple[str, ...] = ("none", "low", "moderate", "high", "imminent")
CATEGORIES: tuple[str, ...] = safety_rules.CATEGORIES
LANGS: tuple[str, ...] = ("zh", "en")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[a-z]")
_CLAUSE_END = re.compile(r"[.!?;,，。！？；\n]")


def max_level(*levels: str) -> str:
    """The most severe of ``levels`` ("none" when none are given)."""
    return LEVELS[max((_level_index(level) for level in levels), default=0)]


def level_at_least(level: str, threshold: str) -> bool:
    """True when ``level`` is as severe as ``threshold`` or more."""
    return _level_index(level) >= _level_index(threshold)


def _level_index(level: str) -> int:
    try:
        return LEVELS.index(level)
    except ValueError:
        raise InputError("level", f"unknown safety level {level!r}; use one of {LEVELS}") from None


def detect_language(text: str) -> str:
    """ "zh" when the text holds any CJK ideograph, else "en"."""
    return "zh" if _CJK.search(text) else "en"


@dataclass(frozen=True)
class Resource:
    """One crisis or emergency contact, as listed in ``resources/hotlines.json``."""

    name: str  # display name in `lang`
    number: str | None  # what to dial or text; None for web-only resources
    url: str | None  # web page or chat, if any
    region: str  # ISO country code served ("CN", "US", "CA") or "INTL"
    lang: str  # language of `name` and `notes` ("zh" or "en")
    kind: str  # "crisis_line", "emergency" or "directory"
    source: str  # official page the entry was checked against
    reviewed: str  # ISO date of the last review of this entry
    notes: str = ""  # hours, who answers, limits

    @property
    def contact(self) -> str:
        """The number to dial, or the address to open."""
        return self.number or self.url or ""


@dataclass(frozen=True)
class SafetyAssessment:
    """What `assess` found in one text."""

    level: str  # one of LEVELS
    categories: tuple[str, ...]  # subset of CATEGORIES, in CATEGORIES order
    matched: tuple[str, ...]  # the phrases that matched (normalised text)
    resources: tuple[Resource, ...]  # contacts for `lang`; filled from "moderate" up
    lang: str  # "zh" or "en": the language of the user's text
    # The level from each signal: "text" (rules on the typed text), "classifier" (the crisis
    # classifier on it), "transcript" (both on what was said), "model" (the model's scored
    # risk); `level` is their maximum.
    signals: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict; `from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SafetyAssessment:
        """Inverse of `to_dict` (lists become tuples)."""
        try:
            assessment = cls(
                level=data["level"],
                categories=tuple(data["categories"]),
                matched=tuple(data["matched"]),
                resources=tuple(Resource(**r) for r in data["resources"]),
                lang=data["lang"],
                signals=dict(data.get("signals") or {"text": data["level"]}),
            )
        except (KeyError, TypeError) as e:
            raise DataFormatError(
                f"safety assessment: bad or missing field ({e}); use the output of to_dict()"
            ) from e
        if (
            assessment.level not in LEVELS
            or assessment.lang not in LANGS
            or not set(assessment.signals.values()) <= set(LEVELS)
        ):
            raise DataFormatError(
                f"safety assessment: level and signals must be in {LEVELS} and lang in {LANGS}"
            )
        return assessment


@functools.lru_cache(maxsize=1)
def _compiled() -> dict[str, dict]:
    """The rules of `carellm.safety.rules`, compiled once on first use."""
    tables = {}
    for lang in ("en", "zh"):
        rules = [
            (category, level, re.compile(pattern))
            for category, entries in safety_rules.RULES[lang].items()
            for level, pattern in entries
        ]
        tables[lang] = {
            "rules": rules,
            "idioms": [re.compile(p) for p in safety_rules.IDIOMS[lang]],
            **{
                key: re.compile(getattr(safety_rules, key.upper())[lang])
                for key in ("negation", "past", "ongoing", "means", "timing", "intent")
            },
        }
    return tables


def _mask_idioms(text: str, idioms: list[re.Pattern]) -> str:
    # Blank with "_" (same length) so no word can straddle the gap and offsets hold.
    for idiom in idioms:
        text = idiom.sub(lambda m: "_" * len(m.group()), text)
    return text


def _effective_level(text: str, match: re.Match, level: str, table: dict) -> str:
    """The rule's level after negation, history and escalation are applied."""
    clause_start = max((m.end() for m in _CLAUSE_END.finditer(text, 0, match.start())), default=0)
    if level != "imminent" and table["negation"].search(text[clause_start : match.start()]):
        return "low"
    if level == "high" and table["past"].search(text) and not table["ongoing"].search(text):
        return "moderate"
    return level


def _escalates(text: str, tables: dict) -> bool:
    """Prepared means, or timing together with intent, anywhere in the text."""
    for table in tables.values():
        if table["means"].search(text):
            return True
        if table["timing"].search(text) and table["intent"].search(text):
            return True
    return False


def assess(
    text: str, *, lang: str | None = None, classifier_model: classifier.Weights | None = None
) -> SafetyAssessment:
    """Assess the crisis risk in one user text (any length, zh, en or both mixed).

    ``lang`` ("zh"/"en") picks the language of the resources; by default it is detected
    from the text. Both languages' rules run on every text, then the classifier
    (``classifier_model``: other weights, for training and tests; default the packaged).
    """
    if not isinstance(text, str):
        raise InputError("text", f"expected a string, got {type(text).__name__}")
    if lang is None:
        lang = detect_language(text)
    elif lang not in LANGS:
        raise InputError("lang", f"unknown language {lang!r}; use 'zh' or 'en'")
    tables = _compiled()
    normalised = normalise(text)
    frames = concepts.active_frames(normalised)
    found: list[tuple[str, str, str]] = []  # (category, level, phrase)
    escalates: list[bool] = []  # computed once, when a risk match needs it
    for lang_key, table in tables.items():
        if not (_CJK if lang_key == "zh" else _LATIN).search(normalised):
            continue  # no word in this script: its rules cannot match
        masked = _mask_idioms(normalised, table["idioms"])
        hits = [(c, lvl, m) for c, lvl, p in table["rules"] for m in p.finditer(masked)]
        for category, rule_level, patterns in concepts.compiled()[lang_key]["rules"]:
            match = concepts.matches(patterns, masked)
            if match is not None:
                hits.append((category, rule_level, match))
        for category, rule_level, match in hits:
            level = _effective_level(masked, match, rule_level, table)
            if category in safety_rules.ESCALATING_CATEGORIES and level_at_least(level, "moderate"):
                if not escalates:
                    escalates.append(_escalates(masked, tables))
                level = "imminent" if escalates[0] else level
            if (
                frames
                and concepts.frame_cap(frames, category)
                and level_at_least(level, "moderate")
            ):
                level = "low"
            found.append((category, level, match.group()))
    rules_level = max_level(*(lvl for _, lvl, _ in found))
    matched = tuple(dict.fromkeys(phrase for _, _, phrase in found))
    matched += tuple(f"[frame:{name}]" for name in frames if found)
    found_categories = {c for c, _, _ in found}
    signals = {"text": rules_level}
    clf = _classify(normalised, classifier_model, not found_categories)
    if clf is not None:

        def escalated() -> bool:  # only asked when the classifier says "high"
            return escalates[0] if escalates else _escalates(normalised, tables)

        model = classifier_model or classifier.load()
        signals, notes = _with_classifier(
            clf, model, rules_level, frames, found_categories, escalated
        )
        matched += notes
    level = max_level(*signals.values())
    categories = tuple(c for c in CATEGORIES if c in found_categories)
    from carellm.safety.resources import resources_for  # resources imports this module

    resources = resources_for(lang) if level_at_least(level, "moderate") else ()
    if level_at_least(level, "high"):
        logger.debug("safety: level=%s categories=%s", level, ",".join(categories))
    return SafetyAssessment(level, categories, matched, resources, lang, signals)


def _with_classifier(
    clf: classifier.ClassifierResult,
    model: classifier.Weights,
    rules_level: str,
    frames: tuple[str, ...],
    categories: set[str],
    escalated: Callable[[], bool],
) -> tuple[dict[str, str], tuple[str, ...]]:
    """(signals, notes for ``matched``) with the classifier; adds to ``categories``."""
    text, signal = combine_with_rules(
        clf, rules_level, frames, categories, model.veto_threshold, model.rules_low_caps
    )
    if signal == "high" and escalated():  # prepared means, or timing + intent
        signal = "imminent"
    notes = (f"[classifier:veto p={clf.p_crisis:.2f}]",) if text != rules_level else ()
    if level_at_least(signal, "moderate"):
        categories.add(clf.category or min(categories, key=CATEGORIES.index))
        named = f":{clf.category}" if clf.category else ""
        notes += (f"[classifier{named} p={clf.p_crisis:.2f}]",)
    return {"text": text, "classifier": signal}, notes


def combine_with_rules(
    clf: classifier.ClassifierResult,
    rules_level: str,
    frames: tuple[str, ...],
    rule_categories: set[str],
    veto: float,
    rules_low_caps: bool = False,
) -> tuple[str, str]:
    """(rules level, classifier level) after the policy of the module docstring.

    The rules' "moderate"/"high" drops to "low" when P(crisis) < ``veto``; the
    classifier's level is capped at "low" when a frame covers its category (or, when it
    named none, one of the rules' categories), and with ``rules_low_caps`` when the
    rules' own level is "low" (a negated, reported or third-person mention).
    """
    low = rules_low_caps and rules_level == "low"  # before the veto: the rules' own "low"
    if rules_level in ("moderate", "high") and clf.p_crisis < veto:
        rules_level = "low"
    signal = "low" if low and level_at_least(clf.level, "moderate") else clf.level
    categories = {clf.category} if clf.category else rule_categories
    if frames and level_at_least(signal, "moderate"):
        if any(concepts.frame_cap(frames, c) for c in categories or {""}):
            signal = "low"
    return rules_level, signal


def _classify(normalised: str, model, name_category: bool) -> classifier.ClassifierResult | None:
    """The classifier's result, or None (logged) when its weights cannot be read."""
    try:
        return classifier.classify(normalised, model, name_category=name_category)
    except DataFormatError:
        logger.exception("crisis classifier unavailable; the rules decide alone")
        return None
