"""Qwen3-Omni in process, on a tiny random Qwen3-Omni built here (`carellm.qwen3.tiny`)
and loaded through `carellm.load(path)` like a user's Qwen/Qwen3-Omni-30B-A3B-Instruct."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from carellm import Turn
from carellm.errors import CareLLMError, InputError, ModelLoadError
from carellm.reply import EscalationDelta, TextDelta

pytest.importorskip("transformers.models.qwen3_omni_moe")

GREEDY_TALKER = dict(do_sample=False, max_new_tokens=6)  # a few codec frames: fast


@pytest.fixture(scope="module")
def q3_path(tmp_path_factory):
    from carellm.qwen3.tiny import build_tiny_qwen3

    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3") / "model")


@pytest.fixture(scope="module")
def q3(q3_path):
    import carellm

    return carellm.load(str(q3_path), device="cpu")


def _session(engine, **kwargs):
    from carellm.generation import Sampling
    from carellm.qwen3.runtime import TalkerSettings

    kwargs.setdefault("max_new_tokens", 6)
    return engine.session(
        seed=3, sampling=Sampling(temperature=0.0, repetition_penalty=1.0),
        talker=TalkerSettings(**GREEDY_TALKER), **kwargs,
    )  # fmt: skip


@pytest.mark.timeout(120)
def test_loads_through_carellm_load(q3, q3_path):
    from carellm.qwen3 import is_qwen3
    from carellm.qwen3.engine import Qwen3Engine

    assert isinstance(q3, Qwen3Engine) and is_qwen3(str(q3_path))
    assert type(q3.model).__name__ == "Qwen3OmniMoeForConditionalGeneration"
    assert type(q3.processor).__name__ == "Qwen3OmniMoeProcessor"
    assert q3.info.tiny and q3.info.speech and q3.speech
    assert set(q3.voices) == {"Chelsie", "Ethan", "Aiden"}


@pytest.mark.timeout(120)
def test_text_turn_streams_report_text_and_speech(q3):
    session = _session(q3)
    events = list(session.stream(Turn(text="I feel so lonely and sad today.")))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "Assessment" and kinds[-1] == "Final" and "TextDelta" in kinds
    assert kinds.index("AudioChunk") > kinds.index("TextDelta")  # one talker run after the text
    reply = events[-1].reply
    assert reply.emotion is not None and reply.emotion.source == "model"
    assert reply.text == "".join(e.text for e in events if isinstance(e, TextDelta)).strip()
    assert reply.audio.dtype == np.float32 and reply.audio.ndim == 1 and reply.sample_rate == 24000
    assert float(np.sqrt(np.mean(reply.audio**2))) > 0.01  # audible, not silence
    assert reply.notes and "Qwen3-Omni" in reply.notes[0]
    assert len(session.history) == 1 and session.trajectory() == [reply.emotion]


def _scoring_case(engine, turn):
    """(prefill, inputs, a few report questions) of one turn's prompt."""
    from carellm import emotion
    from carellm.assessment import _question_ids
    from carellm.qwen3.engine import build_qwen3_inputs
    from carellm.qwen3.runtime import prefill
    from carellm.turn import prepare

    prepared = prepare(turn)
    inputs = build_qwen3_inputs(engine, "You are a counselor.", [], prepared)
    pre = prefill(engine.thinker, inputs.tensors, use_audio_in_video=False, hidden_layer=None)
    pairs = [_question_ids(engine, q) for q in emotion.questions_for(prepared.modalities)]
    return pre, inputs, [(q, cands[:2] + [max(cands, key=len)]) for q, cands in pairs]


def _uncached(engine, inputs, question, candidate) -> float:
    tensors = dict(inputs.tensors)
    ids = torch.cat([tensors["input_ids"], torch.tensor([question + candidate])], dim=1)
    tensors.update(input_ids=ids, attention_mask=torch.ones_like(ids))
    with torch.inference_mode():
        logp = torch.log_softmax(engine.thinker(**tensors).logits[0].float(), dim=-1)
    start = ids.shape[1] - len(candidate)
    return sum(float(logp[start - 1 + i, t]) for i, t in enumerate(candidate))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", ["text", "image"])
def test_report_scores_on_the_prefill_equal_an_uncached_forward(q3, media_dir, kind):
    from carellm.generation import score_candidates

    image = str(media_dir / "face.png") if kind == "image" else None
    pre, inputs, questions = _scoring_case(q3, Turn(text="I am tired", image=image))
    if kind == "image":
        assert int(pre.rope_deltas) != 0  # M-RoPE offset after the image is exercised
    scores = score_candidates(q3.thinker, pre, questions)
    for (question, cands), got in zip(questions, scores):
        want = [_uncached(q3, inputs, question, c) for c in cands]
        assert max(abs(a - b) for a, b in zip(got, want)) < 1e-3


@pytest.mark.timeout(120)
def test_crisis_text_escalates_with_a_real_hotline(q3):
    session = _session(q3)
    events = list(session.stream(Turn(text="I want to end my life tonight.")))
    reply = events[-1].reply
    assert reply.escalated and reply.safety.level in ("high", "imminent")
    assert "988" in reply.text  # the US Suicide & Crisis Lifeline
    escalation = next(e for e in events if isinstance(e, EscalationDelta))
    assert reply.text.endswith(escalation.text.strip())
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("AudioChunk") > kinds.index("EscalationDelta") and reply.audio.size


@pytest.mark.timeout(180)
def test_audio_image_and_video_turns_run(q3, media_dir):
    session = _session(q3, speech=False, max_new_tokens=3)
    voice = session.respond(Turn(text="listen", audio=str(media_dir / "voice.wav")))
    assert {e.modality for e in voice.emotion.evidence} >= {"text", "voice"}
    seen = session.respond(Turn(text="look", image=str(media_dir / "face.png")))
    assert "visual" in {e.modality for e in seen.emotion.evidence}
    clip = session.respond(Turn(text="watch", video=str(media_dir / "clip.mp4")))
    assert {"voice", "visual"} <= {e.modality for e in clip.emotion.evidence}
    assert len(session.history) == 3 and session.history[0][0].audio  # media kept in history


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["text", "audio"])
def test_speech_equals_qwen3s_own_generate(q3, media_dir, kind):
    """The reply's audio is what Qwen's official generate() (thinker + talker + code2wav,
    greedy) gives for the same prompt: same thinker tokens, same waveform. generate()
    speaks the tokens it fed back to the thinker, i.e. all but its last one, so it is
    given one token more than the session (whose reply is cut at max_new_tokens). The
    audio turn checks the talker's view of media (the prefill's accept_hidden_layer)."""
    from carellm.qwen3.engine import build_qwen3_inputs
    from carellm.qwen3.session import qwen3_system_prompt
    from carellm.turn import prepare

    session = _session(q3)
    audio = str(media_dir / "voice.wav") if kind == "audio" else None
    prepared = prepare(Turn(text="My exams are making me anxious.", audio=audio))
    reply = session.respond(prepared, report=False)
    ids = torch.tensor([session.last_prompt_ids])
    system = qwen3_system_prompt(session.options.persona)
    media = build_qwen3_inputs(q3, system, [], prepared).tensors  # the same processor run
    assert media["input_ids"][0].tolist() == session.last_prompt_ids[: media["input_ids"].shape[1]]
    features = {k: media[k] for k in ("input_features", "feature_attention_mask") if k in media}
    assert bool(features) == (kind == "audio")
    seq, wav = q3.model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), speaker=session.options.voice,
        thinker_max_new_tokens=7, thinker_do_sample=False, thinker_suppress_tokens=q3.banned_ids,
        thinker_eos_token_id=[q3.im_end, q3.endoftext], talker_do_sample=False,
        talker_max_new_tokens=GREEDY_TALKER["max_new_tokens"], **features,
    )  # fmt: skip
    ours = session.last_reply_ids
    assert len(ours) == 6 and seq[0, ids.shape[1] :].tolist()[:6] == ours  # same thinker tokens
    official = wav.reshape(-1).numpy()
    assert official.shape == reply.audio.shape and official.size > 0
    assert np.abs(official - reply.audio).max() < 1e-5


@pytest.mark.timeout(120)
def test_cancel_stops_the_turn_and_keeps_the_history(q3):
    import threading

    session = _session(q3, speech=False, max_new_tokens=4)
    stop = threading.Event()
    kinds = []
    for event in session.stream(Turn(text="hello there"), cancel=stop):
        kinds.append(type(event).__name__)
        if kinds[-1] == "TextDelta":
            stop.set()
    assert "Final" not in kinds and "TextDelta" in kinds and session.history == []
    assert session.respond(Turn(text="hello again")).text is not None
    assert len(session.history) == 1


@pytest.mark.timeout(120)
def test_speech_off(q3_path):
    import carellm

    engine = carellm.load(str(q3_path), device="cpu", speech=False)
    assert not engine.speech and not hasattr(engine.model, "talker")
    session = _session(engine, max_new_tokens=2)
    assert session.respond(Turn(text="hi")).audio is None
    with pytest.raises(InputError, match="speech"):
        session.configure(speech=True)


@pytest.mark.timeout(60)
def test_persona_is_the_system_prompt(q3):
    from carellm.prompts import PERSONAS, QWEN_SPEECH_SENTENCE
    from carellm.qwen3.session import qwen3_system_prompt

    prompt = qwen3_system_prompt(PERSONAS["listener"], "zh")
    assert prompt.startswith(PERSONAS["listener"].instructions) and "Chinese" in prompt
    assert QWEN_SPEECH_SENTENCE not in prompt


@pytest.mark.timeout(60)
def test_bad_inputs_give_one_line_errors(q3, tmp_path, monkeypatch):
    import carellm

    with pytest.raises(CareLLMError) as missing:
        carellm.load(str(tmp_path / "nowhere"))
    assert "does not exist" in str(missing.value) and "\n" not in str(missing.value)
    folder = tmp_path / "qwen3"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "qwen3_omni_moe"}')
    with pytest.raises(ModelLoadError, match=r"lacks \*\.safetensors.*hf download Qwen/Qwen3-Omni"):
        carellm.load(str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE=1"):
        carellm.load("Qwen/Qwen3-Omni-30B-A3B-Instruct")
    with pytest.raises(InputError, match="unknown voice 'Nobody'; choose one of: "):
        q3.session(voice="Nobody")
    session = _session(q3, speech=False, max_new_tokens=2)
    session.respond(Turn(text="hello"))
    with pytest.raises(InputError, match="voice"):
        session.configure(voice="Nobody")
    assert len(session.history) == 1 and session.options.voice == "Chelsie"
    with pytest.raises(ModelLoadError, match="LoRA"):
        carellm.load(str(q3.info.model), adapter=str(tmp_path))


@pytest.mark.timeout(60)
def test_tiny_alias_resolves_to_the_cache(q3_path, tmp_path, monkeypatch):
    import shutil

    from carellm.qwen3 import is_qwen3
    from carellm.qwen3.engine import resolve_qwen3
    from carellm.qwen3.tiny import tiny_qwen3_dir

    monkeypatch.setenv("CARELLM_CACHE", str(tmp_path))
    shutil.copytree(q3_path, tiny_qwen3_dir())  # a cache written earlier: not rebuilt
    resolved = resolve_qwen3("tiny-qwen3")
    assert is_qwen3("tiny-qwen3") and resolved.tiny and resolved.local
    assert resolved.name == str(tiny_qwen3_dir()) and resolved.name.startswith(str(tmp_path))


@pytest.mark.timeout(180)
def test_stream_closed_from_another_thread_frees_the_engine(q3):
    """As Gradio does when a tab closes mid-reply: the generator is closed on another
    thread; the engine lock must not stay with the dead turn (it is the worker's)."""
    import threading

    session = _session(q3, speech=False, max_new_tokens=400)
    events = session.stream(Turn(text="Tell me about your week, slowly."))
    assert type(next(events)).__name__ == "Assessment"
    closer = threading.Thread(target=events.close)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), "closing the stream blocked"
    assert q3.lock.acquire(timeout=5), "the engine is still held 5 s after the stream closed"
    q3.lock.release()
    other = _session(q3, speech=False, max_new_tokens=3)
    answer = []
    turn = threading.Thread(target=lambda: answer.append(other.respond(Turn(text="hello?"))))
    turn.start()
    turn.join(120)
    assert answer and answer[0].text and len(other.history) == 1
