"""Per-turn emotion report: its schema, how candidate scores become one, and a fallback.

After a turn's shared prefill the engine asks the model the multiple-choice `QUESTIONS`
(emotion and risk always; voice and visual when the turn has audio or an image/video)
and passes, per question, the log-probability of each candidate answer to
`build_report`. When those scores are missing or malformed it logs a warning and
returns `fallback_report`, a transparent keyword estimate from the text. Pure Python:
no model, no torch. Tables (display names, VAD values, lexicon) live in
`carellm.emotion.lexicon`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from carellm.emotion.lexicon import (
    LABEL_INFO,
    QUESTIONS,
    RISK_LEVELS,
    Question,
    check_modalities,
    find_cues,
    keyword_estimate,
    question_probabilities,
    questions_for,
    text_phrases,
)
from carellm.emotion.taxonomy import (
    EKMAN_LABELS,
    GOEMOTIONS_LABELS,
    SENTIMENT_LABELS,
    ekman_group,
    sentiment_group,
)
from carellm.errors import ReportError

__all__ = [
    "LABEL_INFO", "QUESTIONS", "RISK_LEVELS", "EmotionReport", "Evidence", "LabelScore",
    "Question", "build_report", "fallback_report", "questions_for",
    "summarize_for_prompt", "trajectory_rows", "write_trajectory",
]  # fmt: skip

logger = logging.getLogger(__name__)

SECONDARY_MIN_PROB = 0.10  # runner-up labels from this probability are reported as secondary
MAX_SECONDARY = 3  # at most this many secondary labels (never "neutral", never the primary)
INTENSITY_CUTS = (0.4, 0.75)  # strength below the first: low, below the second: medium
MODEL_CONFIDENCE_CAP = 0.95  # prompted log-probs are not calibrated: never claim certainty
NOT_ANALYSED = "not analysed (fallback)"

INTENSITIES = ("low", "medium", "high")
SOURCES = ("model", "fallback")
EVIDENCE_MODALITIES = ("text", "voice", "visual")
REPORT_FIELDS = ("primary", "secondary", "ekman", "sentiment", "valence", "arousal",
                 "intensity", "evidence", "risk", "confidence", "source")  # fmt: skip
TRAJECTORY_COLUMNS = ("turn", "primary", "score", "ekman", "sentiment", "valence", "arousal",
                      "intensity", "risk", "source", "confidence")  # fmt: skip


def _check_choice(value: object, field: str, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise ReportError(field, f"expected a string, got {type(value).__name__}")
    if value not in choices:
        shown = ", ".join(choices) if len(choices) <= 8 else "the GoEmotions labels"
        raise ReportError(field, f"{value!r} is not one of {shown}")


def _check_number(value: object, field: str, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReportError(field, f"expected a number, got {type(value).__name__}")
    if not lo <= value <= hi:  # also rejects NaN
        raise ReportError(field, f"{value!r} is outside [{lo:g}, {hi:g}]")


@dataclass(frozen=True)
class LabelScore:
    label: str  # a GoEmotions label
    score: float  # its probability (model) or lexicon share (fallback), in [0, 1]

    def __post_init__(self):
        _check_choice(self.label, "label", GOEMOTIONS_LABELS)
        _check_number(self.score, "score", 0.0, 1.0)


@dataclass(frozen=True)
class Evidence:
    modality: str  # "text", "voice" or "visual"
    phrases: tuple[str, ...]  # short quotes or descriptions backing the report

    def __post_init__(self):
        _check_choice(self.modality, "modality", EVIDENCE_MODALITIES)
        if not isinstance(self.phrases, tuple) or not all(isinstance(p, str) for p in self.phrases):
            raise ReportError("phrases", "expected a list of strings")


@dataclass(frozen=True)
class EmotionReport:
    primary: LabelScore  # most likely GoEmotions label
    secondary: tuple[LabelScore, ...]  # 0-3 runner-ups, distinct, not primary, not neutral
    ekman: str  # Ekman group of the primary label (taxonomy.EKMAN_MAPPING)
    sentiment: str  # sentiment group of the primary label (taxonomy.SENTIMENT_MAPPING)
    valence: float  # probability-weighted valence, unpleasant -1 .. pleasant +1
    arousal: float  # probability-weighted arousal, calm 0 .. excited 1
    intensity: str  # "low", "medium" or "high"
    evidence: tuple[Evidence, ...]  # one entry per modality present in the turn
    risk: str  # "none", "low", "moderate", "high" or "imminent"
    confidence: float  # how far to trust the report, in [0, 1]
    source: str  # "model" (scored candidates) or "fallback" (keyword estimate)

    def __post_init__(self):
        if not isinstance(self.primary, LabelScore):
            raise ReportError("primary", "expected a LabelScore")
        _check_secondary(self.primary.label, self.secondary)
        _check_choice(self.ekman, "ekman", EKMAN_LABELS)
        if self.ekman != ekman_group(self.primary.label):
            raise ReportError("ekman", f"{self.ekman!r} is not the group of {self.primary.label!r}")
        _check_choice(self.sentiment, "sentiment", SENTIMENT_LABELS)
        if self.sentiment != sentiment_group(self.primary.label):
            raise ReportError(
                "sentiment", f"{self.sentiment!r} is not the group of {self.primary.label!r}"
            )
        _check_number(self.valence, "valence", -1.0, 1.0)
        _check_number(self.arousal, "arousal", 0.0, 1.0)
        _check_choice(self.intensity, "intensity", INTENSITIES)
        _check_evidence(self.evidence)
        _check_choice(self.risk, "risk", RISK_LEVELS)
        _check_number(self.confidence, "confidence", 0.0, 1.0)
        _check_choice(self.source, "source", SOURCES)

    @property
    def label_en(self) -> str:
        """English display name of the primary label."""
        return LABEL_INFO[self.primary.label].en

    @property
    def label_zh(self) -> str:
        """Chinese display name of the primary label."""
        return LABEL_INFO[self.primary.label].zh

    @property
    def emoji(self) -> str:
        """Emoji of the primary label."""
        return LABEL_INFO[self.primary.label].emoji

    def to_dict(self) -> dict:
        """JSON-ready dict; "display" (names, emoji) is derived and ignored by from_dict."""
        return {
            "primary": {"label": self.primary.label, "score": self.primary.score},
            "secondary": [{"label": s.label, "score": s.score} for s in self.secondary],
            "ekman": self.ekman,
            "sentiment": self.sentiment,
            "valence": self.valence,
            "arousal": self.arousal,
            "intensity": self.intensity,
            "evidence": [
                {"modality": e.modality, "phrases": list(e.phrases)} for e in self.evidence
            ],
            "risk": self.risk,
            "confidence": self.confidence,
            "source": self.source,
            "display": {"en": self.label_en, "zh": self.label_zh, "emoji": self.emoji},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> EmotionReport:
        """Parse and validate a dict from `to_dict`; ReportError names the bad field."""
        _check_keys(d, "", REPORT_FIELDS, optional=("display",))
        if "display" in d and not isinstance(d["display"], Mapping):
            raise ReportError("display", "expected an object")
        plain = {k: _plain_number(d[k]) for k in REPORT_FIELDS}
        plain["primary"] = _parse_label_score(d["primary"], "primary")
        plain["secondary"] = tuple(
            _parse_label_score(s, f"secondary[{i}]")
            for i, s in enumerate(_as_list(d["secondary"], "secondary"))
        )
        plain["evidence"] = tuple(
            _parse_evidence(e, f"evidence[{i}]")
            for i, e in enumerate(_as_list(d["evidence"], "evidence"))
        )
        return cls(**plain)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text (UTF-8 characters kept, so Chinese stays readable)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_json(cls, s: str) -> EmotionReport:
        """Parse `to_json` output; malformed JSON raises ReportError("json")."""
        try:
            d = json.loads(s)
        except (TypeError, ValueError) as e:
            raise ReportError("json", f"not valid JSON ({e})") from e
        return cls.from_dict(d)


def _check_secondary(primary: str, secondary: object) -> None:
    if not isinstance(secondary, tuple) or not all(isinstance(s, LabelScore) for s in secondary):
        raise ReportError("secondary", "expected a list of label scores")
    labels = [s.label for s in secondary]
    if len(labels) > MAX_SECONDARY:
        raise ReportError("secondary", f"{len(labels)} labels, at most {MAX_SECONDARY} allowed")
    if primary in labels or len(set(labels)) != len(labels):
        raise ReportError("secondary", "labels must be distinct and differ from the primary")


def _check_evidence(evidence: object) -> None:
    if not isinstance(evidence, tuple) or not all(isinstance(e, Evidence) for e in evidence):
        raise ReportError("evidence", "expected a list of evidence entries")
    modalities = [e.modality for e in evidence]
    if len(set(modalities)) != len(modalities):
        raise ReportError("evidence", "one entry per modality expected")


def _check_keys(d: object, path: str, required: tuple[str, ...], optional=()) -> None:
    if not isinstance(d, Mapping):
        raise ReportError(path or "report", f"expected an object, got {type(d).__name__}")
    for key in required:
        if key not in d:
            raise ReportError(_join(path, key), "missing")
    for key in d:
        if key not in required and key not in optional:
            raise ReportError(_join(path, str(key)), "unknown field")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _as_list(value: object, field: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise ReportError(field, f"expected a list, got {type(value).__name__}")
    return list(value)


def _plain_number(value: object) -> object:
    """JSON ints become floats so a parsed report equals the one that was written."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    return float(value) if is_int else value


def _parse_label_score(d: object, path: str) -> LabelScore:
    _check_keys(d, path, ("label", "score"))
    try:
        return LabelScore(d["label"], _plain_number(d["score"]))
    except ReportError as e:
        raise ReportError(_join(path, e.field), e.detail) from e


def _parse_evidence(d: object, path: str) -> Evidence:
    _check_keys(d, path, ("modality", "phrases"))
    try:
        phrases = _as_list(d["phrases"], "phrases")
        return Evidence(d["modality"], tuple(phrases))
    except ReportError as e:
        raise ReportError(_join(path, e.field), e.detail) from e


def build_report(
    scores: Mapping[str, Mapping[str, float]],
    *,
    text: str,
    modalities: Iterable[str],
    risk_floor: str = "none",
) -> EmotionReport:
    """Emotion report from the engine's candidate log-probabilities.

    ``scores[question][candidate]`` is the log-probability of each candidate of each
    question in ``questions_for(modalities)``. Probabilities are a softmax per question;
    the primary label is the argmax, valence/arousal the probability-weighted averages
    of LABEL_INFO, risk the argmax raised to ``risk_floor`` (the safety check's).
    confidence = sqrt(p_primary * (1 - H / ln 28)), H the entropy of the emotion
    distribution, capped at MODEL_CONFIDENCE_CAP. Unusable scores (missing question,
    NaN, +inf, wrong candidate set) log a warning and give `fallback_report` instead.
    """
    text = text or ""
    mods = check_modalities(modalities)
    questions = questions_for(mods)
    _check_choice(risk_floor, "risk_floor", RISK_LEVELS)
    try:
        probs = {q.name: question_probabilities(scores, q) for q in questions}
    except ValueError as e:  # question_probabilities says what is wrong
        logger.warning("Emotion scores unusable (%s); using the keyword fallback.", e)
        return fallback_report(text, modalities=mods, risk_floor=risk_floor)
    emotion = probs["emotion"]
    primary = _argmax(emotion)
    entropy = -sum(p * math.log(p) for p in emotion.values() if p > 0)
    spread = min(1.0, entropy / math.log(len(emotion)))
    confidence = min(MODEL_CONFIDENCE_CAP, math.sqrt(emotion[primary] * (1 - spread)))
    risk = max(_argmax(probs["risk"]), risk_floor, key=RISK_LEVELS.index)
    evidence = [Evidence("text", text_phrases(text, find_cues(text)))]
    if "voice" in probs:
        tone = _argmax(probs["voice"])
        evidence.append(Evidence("voice", (f"voice sounds {tone} ({probs['voice'][tone]:.2f})",)))
    if "visual" in probs:
        cue = _argmax(probs["visual"])
        evidence.append(Evidence("visual", (f"{cue} ({probs['visual'][cue]:.2f})",)))
    return _assemble(emotion, primary, evidence, risk, confidence, "model")


def fallback_report(
    text: str, *, modalities: Iterable[str], risk_floor: str = "none"
) -> EmotionReport:
    """Transparent keyword estimate from the text (see `keyword_estimate`), same schema.

    source is "fallback", confidence at most 0.5, risk is ``risk_floor`` (the safety
    check's), and voice/visual evidence reads "not analysed (fallback)".
    """
    text = text or ""
    mods = check_modalities(modalities)
    _check_choice(risk_floor, "risk_floor", RISK_LEVELS)
    estimate = keyword_estimate(text)
    evidence = [Evidence("text", text_phrases(text, estimate.cues))]
    if "audio" in mods:
        evidence.append(Evidence("voice", (NOT_ANALYSED,)))
    if mods & {"image", "video"}:
        evidence.append(Evidence("visual", (NOT_ANALYSED,)))
    return _assemble(
        estimate.probs, estimate.primary, evidence, risk_floor, estimate.confidence, "fallback"
    )


def _argmax(probs: Mapping[str, float]) -> str:
    return max(probs, key=probs.__getitem__)  # first in candidate order on ties


def _assemble(
    probs: Mapping[str, float],
    primary: str,
    evidence: list[Evidence],
    risk: str,
    confidence: float,
    source: str,
) -> EmotionReport:
    """The fields shared by model and fallback reports, from a label distribution.

    Secondary: up to 3 other non-neutral labels with p >= 0.10, most likely first.
    strength = (1 - p_neutral) * (0.5 + 0.5 * arousal); intensity is low below 0.4,
    medium below 0.75, high from 0.75 (INTENSITY_CUTS). Numbers rounded to 4 places.
    """
    runners = sorted(
        (label for label in GOEMOTIONS_LABELS if label not in (primary, "neutral")),
        key=lambda label: -probs[label],
    )
    secondary = tuple(
        LabelScore(label, round(probs[label], 4))
        for label in runners[:MAX_SECONDARY]
        if probs[label] >= SECONDARY_MIN_PROB
    )
    valence = sum(p * LABEL_INFO[label].valence for label, p in probs.items())
    arousal = min(1.0, max(0.0, sum(p * LABEL_INFO[label].arousal for label, p in probs.items())))
    strength = (1 - probs["neutral"]) * (0.5 + 0.5 * arousal)
    return EmotionReport(
        primary=LabelScore(primary, round(probs[primary], 4)),
        secondary=secondary,
        ekman=ekman_group(primary),
        sentiment=sentiment_group(primary),
        valence=round(min(1.0, max(-1.0, valence)), 4) + 0.0,  # + 0.0: no -0.0
        arousal=round(arousal, 4),
        intensity=INTENSITIES[sum(strength >= cut for cut in INTENSITY_CUTS)],
        evidence=tuple(evidence),
        risk=risk,
        confidence=round(confidence, 4),
        source=source,
    )


def summarize_for_prompt(report: EmotionReport) -> str:
    """One line the engine puts before the reply, e.g. "Emotion check: sadness (0.62) ..."."""
    head = "Emotion check" if report.source == "model" else "Emotion check (keyword estimate)"
    emotions = f"{report.primary.label} ({report.primary.score:.2f})"
    if report.secondary:
        emotions += ", also " + ", ".join(s.label for s in report.secondary[:2])
    valence = round(report.valence, 1) + 0.0  # no "-0.0"
    return (
        f"{head}: {emotions}; valence {valence:.1f}, arousal {report.arousal:.1f}; "
        f"risk {report.risk}."
    )


def trajectory_rows(reports: Iterable[EmotionReport]) -> list[dict]:
    """One flat row per turn (turns counted from 1), keys TRAJECTORY_COLUMNS in order."""
    return [
        {"turn": turn, "primary": r.primary.label, "score": r.primary.score}
        | {column: getattr(r, column) for column in TRAJECTORY_COLUMNS[3:]}
        for turn, r in enumerate(reports, start=1)
    ]


def write_trajectory(reports: Iterable[EmotionReport], path: str | Path) -> Path:
    """Write `trajectory_rows` as .json (a list of objects) or .csv (header + rows)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise ReportError("path", f"unknown suffix {path.suffix!r} of {path}; use .json or .csv")
    rows = trajectory_rows(reports)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".json":
            path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            with path.open("w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=TRAJECTORY_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
    except OSError as e:
        raise ReportError("path", f"cannot write {path}: {e.strerror or e}") from e
    return path
