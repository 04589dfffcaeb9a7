"""The transcript stage equals transformers' own greedy generation from the same prompt."""

from __future__ import annotations

import pytest
import torch

from carellm import generation, transcript
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
    suffix = torch.tensor([transcript.transcript_suffix(engine)])
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
    text = transcript.transcribe(engine, pre, max_new_tokens=12)
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
    text = transcript.transcribe(engine, pre, max_new_tokens=10)
    assert text == _reference(engine, inputs, 10)
    assert pre.cache.get_seq_length() == pre.length
    assert all(torch.equal(a, layer.keys) for a, layer in zip(keys, pre.cache.layers))
