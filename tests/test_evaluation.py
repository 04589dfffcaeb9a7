"""Evaluation metrics on hand-computed cases, and the three evaluations on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carellm import generation
from carellm.data import read_records
from carellm.errors import InputError
from carellm.evaluation import common as evaluation
from carellm.evaluation.emotion import EmotionEvalOptions, format_emotion, run_emotion
from carellm.evaluation.replies import RepliesEvalOptions, run_replies, split_dialogue

ASSETS = Path(__file__).parent / "assets" / "eval"


def test_distinct_n_on_a_three_sentence_corpus():
    corpus = ["The cat sat", "the cat ran", "a dog"]
    # unigrams: 8 in all, 6 unique; bigrams: 5 in all, (the, cat) twice -> 4 unique
    assert evaluation.distinct_n(corpus, 1) == pytest.approx(100 * 6 / 8)
    assert evaluation.distinct_n(corpus, 2) == pytest.approx(100 * 4 / 5)
    assert evaluation.distinct_n([], 2) == 0.0


def test_tokens_split_cjk_characters_and_punctuation():
    assert evaluation.tokens("我很好。OK, fine") == ["我", "很", "好", "。", "ok", ",", "fine"]


def test_classification_metrics_on_a_hand_made_confusion():
    gold = ["a", "a", "b", "b", "c"]
    pred = ["a", "b", "b", "b", "a"]
    m = evaluation.classification_metrics(gold, pred, order=["c", "b", "a"])
    # a: P 1/2 R 1/2 F1 .5; b: P 2/3 R 1 F1 .8; c: F1 0
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["per_class_f1"] == pytest.approx({"c": 0.0, "b": 0.8, "a": 0.5})
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    assert m["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 0) / 5)
    assert m["labels"] == ["c", "b", "a"]
    assert m["confusion"] == [[0, 0, 1], [0, 2, 0], [0, 1, 1]]


@pytest.mark.parametrize(
    ("texts", "tokenize"),
    [(["the cat sat on the mat today", "you are not alone"], "13a"),
     (["我今天很难过，睡不着。", "我在这里陪着你。"], "zh")],
)  # fmt: skip
def test_bleu_and_chrf_of_identical_strings_are_100(texts, tokenize):
    scores = evaluation.bleu_chrf(texts, texts)
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["chrf"] == pytest.approx(100.0)
    assert scores["bleu_tokenize"] == tokenize


def test_split_dialogue_uses_the_last_assistant_turn_as_reference():
    first = next(iter(read_records(ASSETS / "dialogues.jsonl")))
    history, user, reference = split_dialogue(first)
    assert history == [
        ("I feel so lonely and sad today.", "You are not alone. I am here with you.")
    ]
    assert user.startswith("My exams")
    assert reference == "Let's take one slow breath together."


def test_eval_emotion_end_to_end_writes_files(text_engine, tmp_path):
    options = EmotionEvalOptions(
        model="tiny", data=ASSETS / "emotion.jsonl", format="records", labels="ekman",
        out=tmp_path, progress=False,
    )  # fmt: skip
    metrics = run_emotion(options, engine=text_engine)
    assert metrics["n"] == 4
    assert set(metrics["candidates"]) == {"anger", "disgust", "fear", "joy", "sadness",
                                          "surprise", "neutral"}  # fmt: skip
    for name in ("metrics.json", "confusion.png", "items.jsonl"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["accuracy"] == metrics["accuracy"]
    assert "macro-F1" in format_emotion(metrics)


def test_multilabel_prediction_counts_when_in_the_gold_set(tmp_path):
    log = evaluation.ResultLog(tmp_path)
    log.add({"id": "e1", "gold": ["gratitude", "joy"], "pred": "joy", "correct": True})
    log.add({"id": "e2", "gold": ["anger"], "pred": "joy", "correct": False})
    from carellm.evaluation.emotion import summarize

    items = list(read_records(ASSETS / "emotion.jsonl"))[:2]
    options = EmotionEvalOptions(model="tiny", data=ASSETS, format="records", out=None)
    metrics = summarize(log, items, ("anger", "gratitude", "joy"), "goemotions", options)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["confusion"] == [[0, 1], [0, 1]]  # rows: gold anger, joy (best match)


def test_eval_emotion_resume_skips_done_items(text_engine, tmp_path, monkeypatch):
    calls = []
    real = generation.prefill
    monkeypatch.setattr(generation, "prefill", lambda *a, **k: calls.append(1) or real(*a, **k))
    base = dict(model="tiny", data=ASSETS / "emotion.jsonl", format="records",
                labels="ekman", out=tmp_path, progress=False)  # fmt: skip
    run_emotion(EmotionEvalOptions(**base, limit=2), engine=text_engine)
    assert len(calls) == 2
    metrics = run_emotion(EmotionEvalOptions(**base, limit=3), engine=text_engine)
    assert len(calls) == 3  # only the new item ran
    assert metrics["n"] == 3
    assert len((tmp_path / "items.jsonl").read_text().splitlines()) == 3


def test_eval_emotion_rejects_an_unknown_mode(text_engine):
    with pytest.raises(InputError, match="mode"):
        run_emotion(
            EmotionEvalOptions(model="tiny", data=ASSETS / "emotion.jsonl", format="records",
                               mode="smell", progress=False),
            engine=text_engine,
        )  # fmt: skip


def test_eval_replies_on_tiny_reports_metrics_and_safety(text_engine, tmp_path):
    options = RepliesEvalOptions(
        model="tiny", data=ASSETS / "dialogues.jsonl", out=tmp_path, max_new_tokens=6,
        progress=False,
    )  # fmt: skip
    metrics = run_replies(options, engine=text_engine)
    assert metrics["n"] == 4
    assert metrics["escalation_gold"] == 1  # "I want to kill myself tonight."
    assert metrics["escalation_missed"] == 0  # escalation is added in code
    assert 0 <= metrics["distinct_1"] <= 100
    for name in ("report.md", "metrics.json", "replies.png", "items.jsonl"):
        assert (tmp_path / name).stat().st_size > 0


def test_eval_latency_times_a_spoken_turn(engine, tmp_path):
    from carellm.evaluation.latency import LatencyOptions, format_latency, run_latency

    result = run_latency(
        LatencyOptions(model="tiny", turns=1, out=tmp_path, max_new_tokens=8, progress=False),
        engine=engine,
    )
    row = result["turns"][0]
    assert row["wall_seconds"] > 0 and row["tokens"] >= 0
    assert row["speech_factor"] == pytest.approx(row["audio_seconds"] / row["wall_seconds"])
    assert "TTFA" in format_latency(result)
    assert (tmp_path / "metrics.json").is_file()
