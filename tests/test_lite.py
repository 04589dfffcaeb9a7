"""The lite tier: a text-only Qwen2 chat model through AutoModelForCausalLM, same features."""

from __future__ import annotations

import numpy as np
import pytest

import carellm
from carellm import InputError
from carellm.turn import Turn


@pytest.fixture(scope="module")
def lite_engine(tmp_path_factory):
    from carellm.tiny import build_tiny_text_model

    folder = build_tiny_text_model(tmp_path_factory.mktemp("lite") / "model")
    return carellm.load(str(folder), device="cpu")


def test_lite_loads_through_auto_classes(lite_engine):
    from transformers import Qwen2ForCausalLM

    assert isinstance(lite_engine.model, Qwen2ForCausalLM)
    assert lite_engine.lite and not lite_engine.speech and lite_engine.info.tiny


def test_lite_turn_has_report_safety_and_no_audio(lite_engine):
    session = lite_engine.session(seed=0, max_new_tokens=10)
    reply = session.respond(Turn(text="I feel lonely these days."))
    assert reply.text and reply.audio is None
    assert reply.emotion is not None and reply.emotion.source == "model"
    second = session.respond(Turn(text="I want to kill myself"))
    assert second.escalated and "988" in second.text
    assert len(session.history) == 2


def test_lite_refuses_media_and_keeps_history(lite_engine):
    session = lite_engine.session(seed=0, max_new_tokens=6)
    session.respond(Turn(text="hello"))
    with pytest.raises(InputError, match="text-only") as err:
        session.respond(Turn(text="look", image=np.zeros((64, 64, 3), np.uint8)))
    assert err.value.field == "turn"
    assert len(session.history) == 1


def test_lite_refuses_speech_sessions(lite_engine):
    with pytest.raises(InputError, match="talker"):
        lite_engine.session(speech=True)


def test_model_tiny_lite_name(monkeypatch, tmp_path):
    from carellm.loading import resolve

    monkeypatch.setenv("CARELLM_CACHE", str(tmp_path))
    resolved = resolve("tiny-lite")
    assert resolved.tier == "lite" and resolved.tiny
    assert resolve("Qwen/Qwen2.5-1.5B-Instruct").tier == "lite"
    assert resolve("Qwen/Qwen2.5-Omni-3B").tier == "omni"
