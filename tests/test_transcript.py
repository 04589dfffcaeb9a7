"""The transcript stage equals transformers' own greedy generation from the same prompt."""

from __future__ import annotations

import pytest
import torch

from carellm import assessment, generation
from carellm.prompts import build_inputs
from carellm.turn import Turn, prepare

pytestmark = pytest.mark.timeout(120)


def _prefill(engine, turn):
    inputs = build_inputs(engine, "You are Qwen.", [], prepare(turn))
    pre = generation.prefill(
        engine.thinker, inputs.tensors, keep_hidden=False,
        use_audio_in_video=inputs.use_audio_in_video,
    )  # fmt: skip
    return pre, inputs


def _reference(engine, inputs, n: int) -> str:
    """transformers' thinker.generate on prompt + instruction, no cache reuse."""
    tensors = dict(inputs.tensors)
    suffix = torch.tensor([assessment.transcript_suffix(engine)])
    tensors["input_ids"] = torch.cat([tensors["input_ids"], suffix], dim=1)
    tensors["attention_mask"] = torch.ones_like(tensors["input_ids"])
    with torch.inference_mode():
        out = engine.thinker.generate(
            **tensors, use_audio_in_video=inputs.use_audio_in_video, do_sample=False,
            max_new_tokens=n, suppress_tokens=engine.banned_ids,
            eos_token_id=[engine.im_end, engine.endoftext], pad_token_id=engine.endoftext,
        )  # fmt: skip
    new = out[0, tensors["input_ids"].shape[1] :].tolist()
    new = [t for t in new if t not in (engine.im_end, engine.endoftext)]
    return engine.tokenizer.decode(new, skip_special_tokens=True).strip()


def test_transcript_equals_transformers_generate(engine, media_dir):
    pre, inputs = _prefill(engine, Turn(audio=str(media_dir / "voice.wav")))
    text = assessment.transcribe(engine, pre, max_new_tokens=12)
    assert text == _reference(engine, inputs, 12)
    assert text  # the tiny model emits random but non-empty text


def test_transcript_after_a_reply_ignores_the_reply_and_restores_the_prompt(engine, media_dir):
    pre, inputs = _prefill(engine, Turn(text="hi", audio=str(media_dir / "voice.wav")))
    keys = [layer.keys.clone() for layer in pre.cache.layers]
    sampler = generation.Sampler(generation.Sampling(temperature=0.0), engine.banned_ids, None)
    reply = list(
        generation.decode(
            engine.thinker,
            pre,
            engine.encode("<|im_start|>assistant\n"),
            sampler,
            stop_ids=(),
            max_new_tokens=6,
            keep_hidden=False,
        )  # fmt: skip
    )
    assert len(reply) == 6 and pre.cache.get_seq_length() > pre.length
    text = assessment.transcribe(engine, pre, max_new_tokens=10)
    assert text == _reference(engine, inputs, 10)
    assert pre.cache.get_seq_length() == pre.length
    assert all(torch.equal(a, layer.keys) for a, layer in zip(keys, pre.cache.layers))


CRISIS_WORDS = "i will kill myself tonight"


@pytest.fixture(scope="module")
def hearing_engine(tiny_path):
    """A separate tiny model whose thinker was trained (a few hundred real optimiser steps)
    to transcribe assets/voice_stressed_en.flac as a crisis sentence: what it says is then
    truly the model's transcript, read back through the session's own path."""
    import carellm
    from carellm.prompts import get_persona, system_prompt

    engine = carellm.load(str(tiny_path), device="cpu")
    voice = str(transcript_voice())
    inputs = build_inputs(
        engine, system_prompt(get_persona("counselor")), [], prepare(Turn(audio=voice))
    )
    target = engine.encode(CRISIS_WORDS) + [engine.im_end]
    prompt = inputs.tensors["input_ids"]
    suffix = torch.tensor([assessment.transcript_suffix(engine) + target[:-1]])
    tensors = dict(inputs.tensors)
    tensors["input_ids"] = torch.cat([prompt, suffix], dim=1)
    tensors["attention_mask"] = torch.ones_like(tensors["input_ids"])
    labels = torch.tensor(target)
    thinker = engine.thinker
    trained = []
    for name, weight in thinker.named_parameters():  # the text decoder, not the encoders
        weight.requires_grad_("audio" not in name and "visual" not in name)
        if weight.requires_grad:
            trained.append(weight)
    optimiser = torch.optim.Adam(trained, lr=1e-2)
    torch.manual_seed(0)
    for _ in range(200):  # converges in about 65 steps
        logits = thinker(**tensors, use_audio_in_video=False).logits[0, -len(target) :]
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.01, loss.item()
    for weight in trained:
        weight.requires_grad_(False)
    thinker.eval()
    return engine


def transcript_voice():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "assets" / "voice_stressed_en.flac"


@pytest.mark.timeout(900)  # includes training the fixture: ~30 s on a quiet 2-core machine
def test_crisis_heard_only_in_the_voice_escalates_in_the_same_turn(hearing_engine):
    from carellm.reply import Assessment, AudioChunk, EscalationDelta, Final

    session = hearing_engine.session(seed=0, max_new_tokens=8)
    events = list(session.stream(Turn(audio=str(transcript_voice()))))
    reply = events[-1].reply
    assert isinstance(events[-1], Final)
    assert reply.transcript == CRISIS_WORDS  # the model's own greedy transcript
    assessments = [e for e in events if isinstance(e, Assessment)]
    assert len(assessments) == 2  # before the reply, then updated once the voice was heard
    assert assessments[0].safety.signals.get("transcript") is None
    assert assessments[-1].safety.signals["transcript"] in ("high", "imminent")
    assert reply.safety.level in ("high", "imminent") and reply.escalated
    assert "988" in reply.text
    late = [i for i, e in enumerate(events) if isinstance(e, EscalationDelta)]
    assert late and late[-1] > events.index(assessments[-1])
    spoken_after = [e for e in events[late[-1] :] if isinstance(e, AudioChunk)]
    assert spoken_after and spoken_after[0].audio.size > 0  # the escalation is spoken too
    turn, kept = session.history[-1]
    assert kept.transcript == CRISIS_WORDS and kept.escalated


def test_calm_voice_keeps_its_transcript_and_no_escalation(engine):
    session = engine.session(seed=0, max_new_tokens=6, speech=False)
    reply = session.respond(Turn(audio=str(transcript_voice())))
    assert reply.transcript  # random words from the tiny model, but transcribed
    assert reply.safety.signals.get("transcript") == "none" or reply.safety.signals.get(
        "transcript"
    ) in ("low",)
    assert not reply.escalated
    text_only = session.respond(Turn(text="hello"))
    assert text_only.transcript is None  # no speech, no transcript
