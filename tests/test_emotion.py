"""Tests of carellm.emotion: report schema (golden files), scoring, fallback, trajectory."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import pytest

from carellm.emotion import (
    LABEL_INFO,
    QUESTIONS,
    RISK_LEVELS,
    EmotionReport,
    Evidence,
    LabelScore,
    ReportError,
    build_report,
    fallback_report,
    questions_for,
    summarize_for_prompt,
    trajectory_rows,
    write_trajectory,
)
from carellm.emotion.lexicon import LEXICON, find_cues
from carellm.emotion.taxonomy import GOEMOTIONS_LABELS
from carellm.errors import CareLLMError, InputError

REPORTS = Path(__file__).parent / "assets" / "reports"
VALID = sorted(REPORTS.glob("valid_*.json"))
INVALID_FIELD = {  # golden file -> field the error must name
    "invalid_unknown_label.json": "primary.label",
    "invalid_score_range.json": "secondary[0].score",
    "invalid_bad_risk.json": "risk",
    "invalid_missing_field.json": "confidence",
    "invalid_wrong_type.json": "valence",
    "invalid_ekman_mismatch.json": "ekman",
    "invalid_bad_modality.json": "evidence[1].modality",
}


def _scores(emotion: dict[str, float], risk: str = "none", **extra: dict[str, float]) -> dict:
    """Scores with the given emotion probabilities (others 0) and a clear risk argmax."""
    logp = {label: math.log(emotion[label]) if label in emotion else -math.inf
            for label in GOEMOTIONS_LABELS}  # fmt: skip
    risk_logp = {level: (-0.1 if level == risk else -5.0) for level in RISK_LEVELS}
    return {"emotion": logp, "risk": risk_logp, **extra}


def _descriptors(question: str, top: str) -> dict[str, float]:
    return {c: (-0.2 if c == top else -4.0) for c in QUESTIONS[question].candidates}


# --- tables -------------------------------------------------------------------------


def test_label_info_covers_goemotions_in_order_with_ranges():
    assert tuple(LABEL_INFO) == GOEMOTIONS_LABELS
    for info in LABEL_INFO.values():
        assert -1 <= info.valence <= 1 and 0 <= info.arousal <= 1
        assert info.en and info.zh and info.emoji
    assert LABEL_INFO["sadness"].zh == "悲伤" and LABEL_INFO["grief"].zh == "悲痛"
    assert LABEL_INFO["nervousness"].zh == "紧张"


def test_lexicon_cues_are_unique_bilingual_and_match_themselves():
    seen: dict[str, str] = {}
    for label, cues in LEXICON.items():
        assert label in LABEL_INFO
        if label != "neutral":
            assert any(c.isascii() for c in cues) and any(not c.isascii() for c in cues), label
        for cue in cues:
            assert cue not in seen, f"{cue!r} in {label} and {seen.get(cue)}"
            seen[cue] = label
            assert [(c.label, c.phrase) for c in find_cues(cue)] == [(label, cue)]


@pytest.mark.parametrize(
    ("modalities", "expected"),
    [
        ({"text"}, ("emotion", "risk")),
        (set(), ("emotion", "risk")),
        ({"text", "audio"}, ("emotion", "risk", "voice")),
        ({"image"}, ("emotion", "risk", "visual")),
        ({"text", "audio", "video"}, ("emotion", "risk", "voice", "visual")),
        ({"image", "video"}, ("emotion", "risk", "visual")),
    ],
)
def test_questions_for(modalities, expected):
    questions = questions_for(modalities)
    assert tuple(q.name for q in questions) == expected
    assert all(QUESTIONS[q.name] is q for q in questions)


@pytest.mark.parametrize("bad", [{"text", "smell"}, "text"])
def test_questions_for_rejects_bad_modalities(bad):
    with pytest.raises(InputError, match="modalities"):
        questions_for(bad)


def test_questions_have_expected_candidates():
    assert QUESTIONS["emotion"].candidates == GOEMOTIONS_LABELS
    assert QUESTIONS["risk"].candidates == ("none", "low", "moderate", "high", "imminent")
    assert len(QUESTIONS["voice"].candidates) == len(QUESTIONS["visual"].candidates) == 8
    assert QUESTIONS["emotion"].prompt.endswith(":")


# --- golden files -------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_golden_report_parses_and_round_trips(path):
    text = path.read_text(encoding="utf-8")
    report = EmotionReport.from_json(text)
    assert EmotionReport.from_json(report.to_json()) == report
    assert EmotionReport.from_dict(report.to_dict()) == report
    d = json.loads(text)
    d.pop("display", None)
    expected = report.to_dict()
    expected.pop("display")
    assert expected == d


def test_golden_files_present():
    names = {p.name for p in REPORTS.glob("*.json")}
    assert len(VALID) >= 3 and set(INVALID_FIELD) <= names


@pytest.mark.parametrize(("name", "field"), sorted(INVALID_FIELD.items()))
def test_invalid_golden_report_names_field(name, field):
    with pytest.raises(ReportError) as info:
        EmotionReport.from_json((REPORTS / name).read_text(encoding="utf-8"))
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ") and "\n" not in str(info.value)
    assert isinstance(info.value, CareLLMError)


@pytest.mark.parametrize(
    ("payload", "field"),
    [("not json", "json"), ("[1, 2]", "report"), ('{"primary": 1}', "secondary")],
)
def test_from_json_rejects_non_reports(payload, field):
    with pytest.raises(ReportError) as info:
        EmotionReport.from_json(payload)
    assert info.value.field == field


def test_from_dict_rejects_unknown_field():
    d = EmotionReport.from_json((REPORTS / "valid_minimal.json").read_text()).to_dict()
    d["mood"] = "meh"
    with pytest.raises(ReportError, match="^mood: unknown field"):
        EmotionReport.from_dict(d)


def _minimal(**changes) -> dict:
    d = json.loads((REPORTS / "valid_minimal.json").read_text())
    d.update(changes)
    return d


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"secondary": [{"label": "neutral", "score": 0.2}]}, "secondary"),
        ({"secondary": [{"label": f, "score": 0.1} for f in ("joy", "fear", "love", "pride")]},
         "secondary"),
        ({"evidence": [{"modality": "text", "phrases": []}] * 2}, "evidence"),
        ({"evidence": [{"modality": "text", "phrases": [3]}]}, "evidence[0].phrases"),
        ({"confidence": True}, "confidence"),
        ({"arousal": -0.1}, "arousal"),
        ({"source": "oracle"}, "source"),
        ({"intensity": "extreme"}, "intensity"),
        ({"display": "😐"}, "display"),
    ],
)  # fmt: skip
def test_from_dict_rejects_inconsistent_fields(changes, field):
    with pytest.raises(ReportError) as info:
        EmotionReport.from_dict(_minimal(**changes))
    assert info.value.field == field


def test_display_properties():
    report = EmotionReport.from_json((REPORTS / "valid_fallback_zh.json").read_text("utf-8"))
    assert (report.label_en, report.label_zh, report.emoji) == ("Nervousness", "紧张", "😬")
    assert report.to_dict()["display"] == {"en": "Nervousness", "zh": "紧张", "emoji": "😬"}


# --- build_report -------------------------------------------------------------------


def test_build_report_hand_computed():
    scores = _scores({"sadness": 0.6, "nervousness": 0.3, "neutral": 0.1}, risk="low")
    report = build_report(scores, text="I feel so lonely", modalities={"text"})
    assert report.source == "model"
    assert report.primary == LabelScore("sadness", 0.6)
    assert report.secondary == (LabelScore("nervousness", 0.3),)  # neutral never secondary
    assert (report.ekman, report.sentiment) == ("sadness", "negative")
    # valence 0.6 * -0.8 + 0.3 * -0.6 + 0.1 * 0 ; arousal 0.6 * 0.3 + 0.3 * 0.75 + 0.1 * 0.2
    assert report.valence == pytest.approx(-0.66)
    assert report.arousal == pytest.approx(0.425)
    # strength 0.9 * (0.5 + 0.2125) = 0.64 -> medium
    assert report.intensity == "medium"
    entropy = -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1))
    expected = math.sqrt(0.6 * (1 - entropy / math.log(28)))
    assert report.confidence == pytest.approx(expected, abs=1e-4)
    assert report.risk == "low"
    assert report.evidence == (Evidence("text", ("lonely",)),)


def test_build_report_is_shift_invariant_and_uses_softmax():
    scores = _scores({"joy": 0.7, "relief": 0.2, "neutral": 0.1})
    shifted = {q: {c: v - 12.5 for c, v in s.items()} for q, s in scores.items()}
    kwargs = {"text": "ok", "modalities": {"text"}}
    assert build_report(scores, **kwargs) == build_report(shifted, **kwargs)


def test_secondary_threshold_and_cap():
    probs = {"fear": 0.45, "nervousness": 0.2, "sadness": 0.15, "anger": 0.11,
             "confusion": 0.09}  # fmt: skip
    report = build_report(_scores(probs), text="", modalities={"text"})
    assert report.primary.label == "fear"
    assert [s.label for s in report.secondary] == ["nervousness", "sadness", "anger"]
    probs = {"fear": 0.8, "nervousness": 0.11, "anger": 0.09}
    report = build_report(_scores(probs), text="", modalities={"text"})
    assert [s.label for s in report.secondary] == ["nervousness"]


@pytest.mark.parametrize(
    ("model_risk", "floor", "expected"),
    [("low", "none", "low"), ("low", "high", "high"), ("imminent", "low", "imminent")],
)
def test_risk_is_at_least_floor(model_risk, floor, expected):
    scores = _scores({"sadness": 1.0}, risk=model_risk)
    report = build_report(scores, text="", modalities={"text"}, risk_floor=floor)
    assert report.risk == expected


def test_voice_and_visual_evidence():
    scores = _scores({"sadness": 0.9, "neutral": 0.1},
                     voice=_descriptors("voice", "tearful"),
                     visual=_descriptors("visual", "looking down"))  # fmt: skip
    report = build_report(scores, text="", modalities={"text", "audio", "video"})
    by_modality = {e.modality: e.phrases for e in report.evidence}
    assert set(by_modality) == {"text", "voice", "visual"}
    assert by_modality["voice"][0].startswith("voice sounds tearful (")
    assert by_modality["visual"][0].startswith("looking down (")


def test_text_evidence_quotes_opening_without_cues():
    text = "The bus leaves at nine and then we take the train home"
    report = build_report(_scores({"neutral": 1.0}), text=text, modalities={"text"})
    assert report.evidence == (Evidence("text", ('"The bus leaves at nine and then we…"',)),)


def _nan(scores):
    scores["emotion"]["joy"] = float("nan")


def _no_risk(scores):
    del scores["risk"]


def _missing_candidate(scores):
    del scores["emotion"]["pride"]


def _extra_candidate(scores):
    scores["risk"]["severe"] = -1.0


def _text_value(scores):
    scores["emotion"]["joy"] = "high"


def _bool_value(scores):
    scores["risk"]["none"] = True


def _plus_inf(scores):
    scores["emotion"]["anger"] = math.inf


def _all_zero_probability(scores):
    scores["risk"] = dict.fromkeys(RISK_LEVELS, -math.inf)


def _not_mapping(scores):
    scores["emotion"] = [0.1] * 28


@pytest.mark.parametrize(
    "corrupt",
    [_nan, _no_risk, _missing_candidate, _extra_candidate, _text_value, _bool_value,
     _plus_inf, _all_zero_probability, _not_mapping],
)  # fmt: skip
def test_malformed_scores_fall_back(corrupt, caplog):
    scores = _scores({"joy": 0.9, "neutral": 0.1})
    corrupt(scores)
    with caplog.at_level(logging.WARNING, logger="carellm.emotion"):
        report = build_report(scores, text="I feel so lonely", modalities={"text"})
    assert report.source == "fallback" and report.primary.label == "sadness"
    assert EmotionReport.from_json(report.to_json()) == report
    assert "keyword fallback" in caplog.text


@pytest.mark.parametrize("scores", [{}, None, [], "scores"])
def test_empty_or_wrong_type_scores_fall_back(scores):
    report = build_report(scores, text="", modalities={"text", "audio"})
    assert report.source == "fallback" and report.primary.label == "neutral"
    assert Evidence("voice", ("not analysed (fallback)",)) in report.evidence


def test_missing_voice_scores_fall_back_when_audio_present():
    report = build_report(_scores({"joy": 1.0}), text="", modalities={"text", "audio"})
    assert report.source == "fallback"


def test_build_report_rejects_bad_risk_floor():
    with pytest.raises(ReportError, match="^risk_floor:"):
        build_report(_scores({"joy": 1.0}), text="", modalities={"text"}, risk_floor="severe")


# --- fallback -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I feel so lonely and sad", "sadness"),
        ("我最近很焦虑，晚上睡不着", "nervousness"),
        ("I'm really anxious and worried about the exam", "nervousness"),
        ("I'm so angry at him, I'm furious", "anger"),
        ("我太生气了", "anger"),
        ("Thank you so much", "gratitude"),
        ("谢谢你听我说", "gratitude"),
        ("I'm scared of what comes next", "fear"),
        ("我好害怕", "fear"),
        ("I am so happy today", "joy"),
        ("今天很开心", "joy"),
        ("My grandmother passed away last week", "grief"),
        ("我很孤独，也很难过", "sadness"),
        ("I'm not happy with how things are", "sadness"),
        ("我不开心", "sadness"),
        ("我不快乐", "sadness"),
        ("I'm not sad, just tired", "neutral"),
        ("别担心", "neutral"),
        ("No thanks", "neutral"),
        ("The bus leaves at nine", "neutral"),
        ("", "neutral"),
    ],
)
def test_fallback_labels(text, label):
    report = fallback_report(text, modalities={"text"})
    assert report.primary.label == label
    assert report.source == "fallback" and report.confidence <= 0.5
    assert EmotionReport.from_json(report.to_json()) == report


def test_fallback_negation_evidence_and_neutral_confidence():
    negated = fallback_report("I am not happy", modalities={"text"})
    assert negated.evidence == (Evidence("text", ("not happy",)),)
    neutral = fallback_report("The bus leaves at nine", modalities={"text"})
    assert neutral.confidence < negated.confidence
    assert neutral.intensity == "low" and neutral.secondary == ()


def test_fallback_confidence_grows_with_agreeing_cues():
    one = fallback_report("I feel sad", modalities={"text"}).confidence
    three = fallback_report("I feel sad, lonely and miserable", modalities={"text"}).confidence
    mixed = fallback_report("I feel sad but also happy", modalities={"text"}).confidence
    assert mixed < one < three <= 0.5


def test_fallback_marks_media_not_analysed_and_keeps_risk_floor():
    report = fallback_report("我很难过", modalities={"text", "audio", "image"}, risk_floor="high")
    assert report.risk == "high"
    assert [e.modality for e in report.evidence] == ["text", "voice", "visual"]
    assert report.evidence[0].phrases == ("难过",)
    assert report.evidence[2].phrases == ("not analysed (fallback)",)


# --- prompt note and trajectory -----------------------------------------------------


def test_summarize_for_prompt():
    report = EmotionReport.from_json((REPORTS / "valid_model_voice.json").read_text("utf-8"))
    note = summarize_for_prompt(report)
    assert note == (
        "Emotion check: sadness (0.60), also nervousness; valence -0.7, arousal 0.4; risk low."
    )
    fallback = summarize_for_prompt(fallback_report("", modalities={"text"}))
    assert fallback.startswith("Emotion check (keyword estimate): neutral (1.00)")
    assert "-0.0" not in fallback


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _read_json(path: Path) -> list[dict]:
    return [{k: str(v) for k, v in row.items()} for row in json.loads(path.read_text("utf-8"))]


@pytest.mark.parametrize(("suffix", "read"), [(".csv", _read_csv), (".json", _read_json)])
def test_write_trajectory_round_trip(tmp_path, suffix, read):
    reports = [EmotionReport.from_json(p.read_text("utf-8")) for p in VALID]
    path = write_trajectory(reports, tmp_path / "sub" / f"trajectory{suffix}")
    rows = read(path)
    expected = [{k: str(v) for k, v in row.items()} for row in trajectory_rows(reports)]
    assert rows == expected
    assert [row["turn"] for row in rows] == [str(i) for i in range(1, len(reports) + 1)]
    assert list(rows[0]) == ["turn", "primary", "score", "ekman", "sentiment", "valence",
                             "arousal", "intensity", "risk", "source", "confidence"]  # fmt: skip


def test_write_trajectory_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ReportError, match="^path:"):
        write_trajectory([], tmp_path / "trajectory.xlsx")
