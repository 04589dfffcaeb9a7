"""The shared prefill: branches must equal what a model without any cache computes."""

from __future__ import annotations

import torch

from carellm import generation
from carellm.prompts import build_inputs
from carellm.turn import Turn, prepare


def _prefill(engine, turn, keep_hidden=False):
    prepared = prepare(turn)
    inputs = build_inputs(engine, "You are Qwen.", [], prepared)
    pre = generation.prefill(
        engine.model.thinker,
        inputs.tensors,
        keep_hidden=keep_hidden,
        use_audio_in_video=inputs.use_audio_in_video,
    )
    return pre, inputs


def _naive_logprob(engine, inputs, continuation: list[int]) -> float:
    """log P(continuation | prompt) from one uncached forward over prompt + continuation."""
    tensors = dict(inputs.tensors)
    ids = torch.cat([tensors["input_ids"], torch.tensor([continuation])], dim=1)
    tensors["input_ids"] = ids
    tensors["attention_mask"] = torch.ones_like(ids)
    with torch.inference_mode():
        logits = engine.model.thinker(
            **tensors, use_audio_in_video=inputs.use_audio_in_video
        ).logits
    logp = torch.log_softmax(logits[0].float(), dim=-1)
    start = ids.shape[1] - len(continuation)
    return float(sum(logp[start - 1 + t, tok] for t, tok in enumerate(continuation)))


def test_scores_on_the_shared_cache_equal_uncached_scores(engine, media_dir):
    pre, inputs = _prefill(engine, Turn(text="I am tired", image=str(media_dir / "face.png")))
    question = engine.encode("<|im_start|>assistant\nThe feeling is:")
    candidates = [engine.encode(" sadness"), engine.encode(" joy"), engine.encode(" neutral face")]
    scores = generation.score_candidates(engine.model.thinker, pre, [(question, candidates)])[0]
    for cand, score in zip(candidates, scores):
        naive = _naive_logprob(engine, inputs, question + cand) - _naive_logprob(
            engine, inputs, question
        )
        assert abs(score - naive) < 1e-3


def test_scoring_leaves_the_prefix_cache_untouched(engine, media_dir):
    pre, _ = _prefill(engine, Turn(text="hello", audio=str(media_dir / "voice.wav")))
    before = [layer.keys.clone() for layer in pre.cache.layers]
    length = pre.cache.get_seq_length()
    q = engine.encode("Emotion:")
    generation.score_candidates(
        engine.model.thinker, pre, [(q, [engine.encode(" joy")] * 40)], chunk=16
    )
    assert pre.cache.get_seq_length() == length
    assert all(torch.equal(a, layer.keys) for a, layer in zip(before, pre.cache.layers))


def _greedy_reply(engine, pre, n=12):
    sampler = generation.Sampler(generation.Sampling(temperature=0), engine.banned_ids, None)
    steps = generation.decode(
        engine.model.thinker,
        pre,
        engine.encode("<|im_start|>assistant\n"),
        sampler,
        stop_ids=(engine.im_end,),
        max_new_tokens=n,
        keep_hidden=False,
    )
    return [s.token for s in steps]


def test_reply_after_report_equals_reply_alone(engine, media_dir):
    """Scoring a report on a branch must not change the reply (cache or RoPE state)."""
    turn = Turn(text="hi", video=str(media_dir / "clip.mp4"))
    alone = _greedy_reply(engine, _prefill(engine, turn)[0])
    pre, _ = _prefill(engine, turn)
    generation.score_candidates(
        engine.model.thinker, pre, [(engine.encode("x"), [engine.encode(" y")])]
    )
    # another model call in between overwrites the thinker's module-level rope_deltas
    _prefill(engine, Turn(text="something else entirely, longer than before"))
    assert _greedy_reply(engine, pre) == alone


def test_decode_matches_uncached_greedy(engine, media_dir):
    pre, inputs = _prefill(engine, Turn(text="hello", audio=str(media_dir / "voice.wav")))
    suffix = engine.encode("<|im_start|>assistant\n")
    tokens = _greedy_reply(engine, pre, n=6)
    # the uncached model's argmax after prompt + suffix + tokens[:k] is tokens[k]
    tensors = dict(inputs.tensors)
    ids = torch.cat([tensors["input_ids"], torch.tensor([suffix + tokens])], dim=1)
    tensors["input_ids"], tensors["attention_mask"] = ids, torch.ones_like(ids)
    with torch.no_grad():
        logits = engine.model.thinker(**tensors).logits[0]
    banned = torch.tensor(engine.banned_ids)
    logits[:, banned] = -float("inf")
    start = ids.shape[1] - len(tokens)
    assert [int(logits[start - 1 + k].argmax()) for k in range(len(tokens))] == tokens


def test_sampler_respects_banned_tokens_and_top_k():
    logits = torch.tensor([5.0, 4.0, 3.0, -1.0])
    gen = torch.Generator().manual_seed(0)
    sampler = generation.Sampler(generation.Sampling(temperature=1.0, top_k=2, top_p=1.0), [0], gen)
    draws = {sampler(logits, []) for _ in range(50)}
    assert draws <= {1, 2} and 0 not in draws
    greedy = generation.Sampler(generation.Sampling(temperature=0), [], None)
    assert greedy(logits, []) == 0
