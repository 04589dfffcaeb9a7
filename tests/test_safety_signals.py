"""Safety signals: the round trip, the transcript, the model's scored risk, and the rules
deciding alone when the model fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from carellm.cli import main
from carellm.errors import DataFormatError, InputError
from carellm.safety import (
    SafetyAssessment,
    assess,
    level_at_least,
    max_level,
)


def test_signals_round_trip_and_bad_signal_is_rejected():
    result = assess("I want to kill myself")
    assert result.signals == {"text": "high", "classifier": "high"}
    assert SafetyAssessment.from_dict(result.to_dict()) == result
    data = result.to_dict()
    data["signals"] = {"text": "severe"}
    with pytest.raises(DataFormatError, match="signals"):
        SafetyAssessment.from_dict(data)


def test_assess_transcript_adds_its_signal_and_raises_the_level():
    from carellm.assessment import assess_transcript

    typed = assess("", lang="en")
    heard = assess_transcript(typed, "I took a whole bottle of pills an hour ago")
    assert heard.signals == {"text": "none", "classifier": "none", "transcript": "imminent"}
    assert heard.level == "imminent" and "medical_emergency" in heard.categories
    assert any(r.number == "988" for r in heard.resources)
    assert assess_transcript(typed, None) is typed


@pytest.mark.parametrize(
    ("probs", "threshold", "level"),
    [
        ({"none": 0.5, "low": 0.1, "moderate": 0.1, "high": 0.2, "imminent": 0.1}, 0.5, "none"),
        ({"none": 0.2, "low": 0.1, "moderate": 0.2, "high": 0.3, "imminent": 0.2}, 0.5, "high"),
        ({"none": 0.2, "low": 0.1, "moderate": 0.2, "high": 0.1, "imminent": 0.4}, 0.5, "imminent"),
        ({"none": 0.2, "low": 0.1, "moderate": 0.3, "high": 0.3, "imminent": 0.1}, 0.5, "moderate"),
        ({"none": 0.2, "low": 0.1, "moderate": 0.3, "high": 0.3, "imminent": 0.1}, 0.4, "high"),
    ],
)
def test_model_level_escalates_from_the_threshold(probs, threshold, level):
    from carellm.assessment import model_level

    assert model_level(probs, threshold) == level


def test_risk_probabilities_use_mean_log_prob_and_reject_nan():
    from carellm.assessment import risk_probabilities

    zh = {"无": -2.0, "低": -2.0, "中等": -2.0, "高": -0.5, "紧急": -2.0}
    probs = risk_probabilities(zh, "zh")
    assert max(probs, key=probs.get) == "high" and abs(sum(probs.values()) - 1) < 1e-9
    with pytest.raises(ValueError, match="unusable"):
        risk_probabilities({**zh, "高": float("nan")}, "zh")


def _prefilled(engine, text):
    from carellm import generation
    from carellm.prompts import build_inputs, get_persona, system_prompt
    from carellm.turn import Turn, prepare

    prepared = prepare(Turn(text=text), engine.media_limits)
    inputs = build_inputs(engine, system_prompt(get_persona("counselor")), [], prepared)
    pre = generation.prefill(
        engine.thinker, inputs.tensors, keep_hidden=False, use_audio_in_video=False
    )
    return pre, prepared


@pytest.mark.timeout(120)
def test_model_risk_is_scored_every_turn_in_the_users_language(text_engine):
    from carellm.assessment import assess_turn

    pre, prepared = _prefilled(text_engine, "我今天有点累")
    for key in ("risk_zh", "risk_en"):  # the engine is shared: forget earlier turns' questions
        text_engine.report_ids.pop(key, None)
    report, result, _ = assess_turn(text_engine, pre, prepared, report=False)
    assert report is None and set(result.signals) == {"text", "classifier", "model"}
    assert result.level == max_level(*result.signals.values())
    assert "risk_zh" in text_engine.report_ids and "risk_en" not in text_engine.report_ids
    with pytest.raises(InputError, match="threshold"):
        assess_turn(text_engine, pre, prepared, report=False, threshold=0.0)


class _BrokenThinker:
    """A thinker whose forward pass fails, as a model out of memory would."""

    def model(self, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    def lm_head(self, hidden):
        raise RuntimeError("CUDA out of memory (simulated)")


@pytest.mark.timeout(120)
def test_rules_decide_alone_when_model_scoring_fails(text_engine):
    import copy

    from carellm.assessment import assess_turn, escalation_for

    pre, prepared = _prefilled(text_engine, "I'm going to kill myself tonight")
    broken = copy.copy(text_engine)
    broken.thinker, broken.report_ids = _BrokenThinker(), {}
    report, result, note = assess_turn(broken, pre, prepared, report=True)
    assert result.signals == {"text": "imminent", "classifier": "imminent"}
    assert result.level == "imminent"
    assert report.source == "fallback" and report.risk == "imminent"
    assert "crisis" in note and "988" in escalation_for(result)


@pytest.mark.timeout(240)
def test_cli_eval_safety_with_model_compares_rules_model_and_combined(capsys, tmp_path, tiny_path):
    fixture = Path(__file__).parent / "assets" / "safety" / "model_fixture.jsonl"
    out = tmp_path / "model_eval"
    args = ["eval", "safety", "--model", str(tiny_path), "--data", str(fixture), "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "meaningless" in printed and "rules only" in printed and "model only" in printed
    lines = (out / "items.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    assert header[5:9] == ["classifier", "combined", "model", "text"] and len(lines) == 7
    rows = {line.split("\t")[0]: dict(zip(header, line.split("\t"))) for line in lines[1:]}
    # the rules alone already decide these items; the combination never goes below them
    assert rows["fx-en-1"]["text"] == "imminent" and rows["fx-en-1"]["combined"] == "imminent"
    assert rows["fx-zh-2"]["text"] == "none" and rows["fx-zh-3"]["text"] == "low"
    assert all(
        level_at_least(r["combined"], r["text"]) and level_at_least(r["combined"], r["model"])
        for r in rows.values()
    )
    assert "combined: per language and kind" in (out / "summary.txt").read_text(encoding="utf-8")
