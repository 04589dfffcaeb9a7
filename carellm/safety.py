"""Crisis safety: rule-based risk assessment of a user's text, crisis resources by locale,
the escalation message, and the evaluation of the rules on a labelled set.

`assess` reads only the text it is given (no model, no instructions in the text are
obeyed), so "ignore previous instructions ... I want to kill myself" is still a crisis.
Levels, in order: "none" (no risk signal), "low" (topic mentioned without personal risk:
news, study, negated, a third person), "moderate" (passive death wish, hopelessness, past
self-harm), "high" (active ideation, self-harm, threats, abuse, a medical emergency sign),
"imminent" (plan with means or timing, an act under way: emergency services now).
The patterns live in `carellm.safety_rules`; the hotlines in ``resources/hotlines.json``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import logging
import re
import unicodedata
from dataclasses import dataclass

from carellm import safety_rules
from carellm.errors import DataFormatError, InputError

logger = logging.getLogger(__name__)

LEVELS: tuple[str, ...] = ("none", "low", "moderate", "high", "imminent")
CATEGORIES: tuple[str, ...] = safety_rules.CATEGORIES
LANGS: tuple[str, ...] = ("zh", "en")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CLAUSE_END = re.compile(r"[.!?;,，。！？；\n]")
_DEFAULT_REGION = {"zh": "CN", "en": "US"}
_KNOWN_REGIONS = frozenset({"CN", "US", "CA"})


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
            )
        except (KeyError, TypeError) as e:
            raise DataFormatError(
                f"safety assessment: bad or missing field ({e}); use the output of to_dict()"
            ) from e
        if assessment.level not in LEVELS or assessment.lang not in LANGS:
            raise DataFormatError(
                f"safety assessment: level must be in {LEVELS} and lang in {LANGS}"
            )
        return assessment


@functools.lru_cache(maxsize=1)
def _compiled() -> dict[str, dict]:
    """The rules of `carellm.safety_rules`, compiled once on first use."""
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


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text.replace("\u2019", "'").replace("\u2018", "'"))


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


def assess(text: str, *, lang: str | None = None) -> SafetyAssessment:
    """Assess the crisis risk in one user text (any length, zh, en or both mixed).

    ``lang`` ("zh"/"en") picks the language of the resources; by default it is detected
    from the text. Both languages' rules run on every text.
    """
    if not isinstance(text, str):
        raise InputError("text", f"expected a string, got {type(text).__name__}")
    if lang is None:
        lang = detect_language(text)
    elif lang not in LANGS:
        raise InputError("lang", f"unknown language {lang!r}; use 'zh' or 'en'")
    tables = _compiled()
    normalised = _normalise(text)
    escalates = None  # computed only when a risk match needs it
    found: list[tuple[str, str, str]] = []  # (category, level, phrase)
    for table in tables.values():
        masked = _mask_idioms(normalised, table["idioms"])
        for category, rule_level, pattern in table["rules"]:
            for match in pattern.finditer(masked):
                level = _effective_level(masked, match, rule_level, table)
                if category in safety_rules.ESCALATING_CATEGORIES and level_at_least(
                    level, "moderate"
                ):
                    escalates = _escalates(masked, tables) if escalates is None else escalates
                    level = "imminent" if escalates else level
                found.append((category, level, match.group()))
    level = max_level(*(lvl for _, lvl, _ in found))
    categories = tuple(c for c in CATEGORIES if any(c == f[0] for f in found))
    matched = tuple(dict.fromkeys(phrase for _, _, phrase in found))
    resources = resources_for(lang) if level_at_least(level, "moderate") else ()
    if level_at_least(level, "high"):
        logger.debug("safety: level=%s categories=%s", level, ",".join(categories))
    return SafetyAssessment(level, categories, matched, resources, lang)


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


@dataclass(frozen=True)
class CategoryScore:
    """Detection of one category (or "crisis": level >= high) on one language's items."""

    lang: str  # "en", "zh" or "all"
    category: str  # a CATEGORIES name, or "crisis"
    precision: float | None  # None when nothing was predicted
    recall: float | None  # None when the gold set has no such item
    support: int  # gold items with the category
    predicted: int  # items predicted with the category


@dataclass(frozen=True)
class SafetyEvalResult:
    """Scores of `assess` on a labelled JSONL set (see `evaluate`)."""

    path: str  # the file evaluated
    n_items: int  # labelled items read
    scores: tuple[CategoryScore, ...]  # per language ("all" first) x category, then "crisis"
    confusion: tuple[tuple[int, ...], ...]  # [gold][predicted] counts, both in LEVELS order
    crisis_recall: float | None  # share of gold >= high predicted >= high
    false_positive_rate: float | None  # share of gold "none" predicted above "none"
    level_accuracy: float  # share of items whose predicted level equals the gold one
    mismatches: tuple[str, ...]  # "id: gold -> predicted" for items with a wrong level

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


def _read_eval(path) -> list[dict]:
    """Items of a JSONL eval file, each with id, text, lang, level and categories."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataFormatError(
            f"{path}: cannot read the eval file ({e.strerror}); check --data"
        ) from e
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            ok = (
                isinstance(item["text"], str) and item["lang"] in LANGS and item["level"] in LEVELS
                and isinstance(item["categories"], list) and set(item["categories"]) <= set(CATEGORIES)
            )  # fmt: skip
        except (ValueError, KeyError, TypeError) as e:
            raise DataFormatError(
                f"{path}, line {number}: not a JSON object with id, text, lang, level, categories ({e})"
            ) from e
        if not ok:
            raise DataFormatError(
                f"{path}, line {number}: lang must be zh/en, level one of {LEVELS}, categories from {CATEGORIES}"
            )
        items.append({**item, "id": str(item.get("id", number))})
    if not items:
        raise DataFormatError(f"{path}: no items; write one JSON object per line")
    return items


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _score(lang: str, category: str, pairs: list[tuple[set, set]]) -> CategoryScore:
    gold = sum(category in g for g, _ in pairs)
    predicted = sum(category in p for _, p in pairs)
    hits = sum(category in g and category in p for g, p in pairs)
    return CategoryScore(
        lang, category, _ratio(hits, predicted), _ratio(hits, gold), gold, predicted
    )


def evaluate(path=None) -> SafetyEvalResult:
    """Run `assess` on every item of a labelled JSONL file (default: the packaged set).

    A category counts as predicted when `assess` reports it at any level; "crisis" is the
    pseudo-category "level >= high". Raises DataFormatError for a missing or bad file.
    """
    from pathlib import Path

    if path is None:
        path = importlib.resources.files("carellm") / "resources" / "safety_eval.jsonl"
    elif not isinstance(path, Path):
        path = Path(path)
    items = _read_eval(path)
    rows = []  # (lang, gold labels, predicted labels, gold level, predicted level, id)
    for item in items:
        result = assess(item["text"], lang=item["lang"])
        gold, pred = set(item["categories"]), set(result.categories)
        gold |= {"crisis"} if level_at_least(item["level"], "high") else set()
        pred |= {"crisis"} if level_at_least(result.level, "high") else set()
        rows.append((item["lang"], gold, pred, item["level"], result.level, item["id"]))
    scores = tuple(
        _score(lang, category, [(g, p) for lg, g, p, *_ in rows if lang in ("all", lg)])
        for lang in ("all", "en", "zh")
        for category in (*CATEGORIES, "crisis")
    )
    confusion = [[0] * len(LEVELS) for _ in LEVELS]
    for *_, gold_level, pred_level, _id in rows:
        confusion[LEVELS.index(gold_level)][LEVELS.index(pred_level)] += 1
    negatives = [r for r in rows if r[3] == "none"]
    return SafetyEvalResult(
        path=str(path),
        n_items=len(rows),
        scores=scores,
        confusion=tuple(tuple(row) for row in confusion),
        crisis_recall=next(s.recall for s in scores if (s.lang, s.category) == ("all", "crisis")),
        false_positive_rate=_ratio(sum(r[4] != "none" for r in negatives), len(negatives)),
        level_accuracy=sum(r[3] == r[4] for r in rows) / len(rows),
        mismatches=tuple(f"{r[5]}: {r[3]} -> {r[4]}" for r in rows if r[3] != r[4]),
    )


def format_eval(result: SafetyEvalResult) -> str:
    """Plain-text tables: per-language/category scores, then the level confusion matrix."""

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [f"safety eval: {result.path} ({result.n_items} items)", ""]
    lines.append(
        f"{'lang':<5} {'category':<18} {'precision':>9} {'recall':>7} {'support':>7} {'predicted':>9}"
    )
    for s in result.scores:
        lines.append(
            f"{s.lang:<5} {s.category:<18} {fmt(s.precision):>9} {fmt(s.recall):>7} {s.support:>7} {s.predicted:>9}"
        )
    lines += ["", "levels: gold (rows) x predicted (columns)"]
    lines.append(" " * 9 + "".join(f"{level:>9}" for level in LEVELS))
    for level, row in zip(LEVELS, result.confusion):
        lines.append(f"{level:<9}" + "".join(f"{n:>9}" for n in row))
    lines += [
        "",
        f"crisis recall (gold >= high predicted >= high): {fmt(result.crisis_recall)}",
        f"false-positive rate on gold 'none': {fmt(result.false_positive_rate)}",
        f"level accuracy: {fmt(result.level_accuracy)}",
    ]
    lines += [f"  wrong level {m}" for m in result.mismatches]
    return "\n".join(lines)
