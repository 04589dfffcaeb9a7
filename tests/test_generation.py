"""The shared prefill: branches must equal what a model without any cache computes."""

from __future__ import annotations

import copy

import pytest
import torch

from carellm import emotion, generation
from carellm.assessment import _question_ids
from carellm.prompts import build_inputs
from carellm.turn import Turn, prepare


def _prefill(engine, turn, keep_hidden=False):
    prepared = prepare(turn)
    inputs = build_inputs(engine, "You are Qwen.", [], prepared)
    pre = generation.prefill(
        engine.thinker,
        inputs.tensors,
        keep_hidden=keep_hidden,
        use_audio_in_video=inputs.use_audio_in_video,
    )
    return pre, inputs


def _naive_logprob(engine, inputs, continuation: list[int], scored: int | None = None) -> float:
    """log P(continuation | prompt) from one uncached forward over prompt + continuation;
    with ``scored``, only the continuation's last ``scored`` tokens count."""
    tensors = dict(inputs.tensors)
    ids = torch.cat([tensors["input_ids"], torch.tensor([continuation])], dim=1)
    tensors["input_ids"] = ids
    tensors["attention_mask"] = torch.ones_like(ids)
    if not engine.lite:
        tensors["use_audio_in_video"] = inputs.use_audio_in_video
    with torch.inference_mode():
        logits = engine.thinker(**tensors).logits
    logp = torch.log_softmax(logits[0].float(), dim=-1)
    start = ids.shape[1] - len(continuation)
    picked = [float(logp[start - 1 + t, tok]) for t, tok in enumerate(continuation)]
    return sum(picked[-(scored or len(picked)) :])


def _naive_candidate(engine, inputs, question, candidate) -> float:
    """log P(candidate | prompt, question), uncached."""
    return _naive_logprob(engine, inputs, question + candidate, scored=len(candidate))


def _report_questions(engine, modalities=("text", "audio", "image"), per_question=None):
    """The report's real questions and candidates, encoded as the assessment stage does;
    ``per_question`` keeps the first few candidates and the longest one."""
    pairs = [_question_ids(engine, q) for q in emotion.questions_for(set(modalities))]
    if per_question is None:
        return pairs
    return [(q, cands[:per_question] + [max(cands, key=len)]) for q, cands in pairs]


def _uncached_scores(engine, inputs, questions) -> list[list[float]]:
    return [[_naive_candidate(engine, inputs, q, c) for c in cands] for q, cands in questions]


def _assert_close(scores, expected, tol=1e-5):
    assert [len(s) for s in scores] == [len(e) for e in expected]
    for got, want in zip(scores, expected):
        assert max(abs(a - b) for a, b in zip(got, want)) < tol


@pytest.fixture(scope="module")
def image_case(engine, media_dir):
    """An image turn's prefill, report questions and their uncached scores."""
    pre, inputs = _prefill(engine, Turn(text="I am tired", image=str(media_dir / "face.png")))
    assert int(pre.rope_deltas) != 0  # image positions: candidates need the M-RoPE offset
    questions = _report_questions(engine, per_question=3)
    assert len({len(c) for _, cands in questions for c in cands}) > 1  # uneven lengths
    return pre, questions, _uncached_scores(engine, inputs, questions)


@pytest.mark.parametrize(
    "kernel, max_tokens", [("fused", 1024), ("math", 1024), ("fused", 60), ("math", 60)]
)
def test_scores_on_the_shared_cache_equal_uncached_scores(
    engine, image_case, monkeypatch, kernel, max_tokens
):
    """Every question and candidate packed in one forward (or, past max_tokens, split
    over several) scores what an uncached forward over the prompt computes."""
    if kernel == "math":  # the exact chunked path other devices take
        monkeypatch.setattr(generation, "FUSED_ATTENTION_DEVICES", ())
    pre, questions, expected = image_case
    scores = generation.score_candidates(engine.thinker, pre, questions, max_tokens=max_tokens)
    _assert_close(scores, expected)


@pytest.fixture(scope="module")
def eager_engine(tiny_path):
    import carellm

    return carellm.load(str(tiny_path), device="cpu", attn_implementation="eager", speech=False)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_scoring_matches_and_restores_the_models_attention(request, media_dir, attn):
    """Scoring swaps the decoder's attention function only while it runs."""
    engine = request.getfixturevalue("engine" if attn == "sdpa" else "eager_engine")
    config = engine.thinker.model.language_model.config
    assert config._attn_implementation == attn
    pre, inputs = _prefill(engine, Turn(text="hello", audio=str(media_dir / "voice.wav")))
    questions = _report_questions(engine, ("text", "audio"), per_question=2)
    scores = generation.score_candidates(engine.thinker, pre, questions)
    _assert_close(scores, _uncached_scores(engine, inputs, questions))
    assert config._attn_implementation == attn


@pytest.fixture(scope="module")
def lite_engine(tmp_path_factory):
    import carellm
    from carellm.tiny import build_tiny_text_model

    return carellm.load(str(build_tiny_text_model(tmp_path_factory.mktemp("lite"))), device="cpu")


def test_scores_on_a_lite_model_use_plain_positions(lite_engine):
    pre, inputs = _prefill(lite_engine, Turn(text="I can't sleep before my exams"))
    assert not pre.mrope
    questions = _report_questions(lite_engine, ("text",), per_question=3)
    scores = generation.score_candidates(lite_engine.thinker, pre, questions, max_tokens=80)
    _assert_close(scores, _uncached_scores(lite_engine, inputs, questions))


def test_scoring_leaves_the_prefix_cache_untouched(engine, media_dir):
    pre, _ = _prefill(engine, Turn(text="hello", audio=str(media_dir / "voice.wav")))
    layers = pre.cache.layers
    before = [(layer.keys.clone(), layer.values.clone()) for layer in layers]
    pointers = [(layer.keys.data_ptr(), layer.values.data_ptr()) for layer in layers]
    length = pre.cache.get_seq_length()
    q = engine.encode("Emotion:")
    generation.score_candidates(
        engine.thinker, pre, [(q, [engine.encode(" joy")] * 40)], max_tokens=16
    )
    assert pre.cache.get_seq_length() == length
    assert [(layer.keys.data_ptr(), layer.values.data_ptr()) for layer in layers] == pointers
    for (keys, values), layer in zip(before, layers):
        assert torch.equal(keys, layer.keys) and torch.equal(values, layer.values)


def _peak_new_bytes(fn) -> int:
    """Peak CPU bytes that ``fn`` allocates and holds at one time.

    torch.profiler with ``profile_memory=True`` reports every allocation and free made
    through torch's CPU allocator (tensor storages and kernel scratch alike) with its
    exact size; frees of blocks allocated before the window are not reported. The
    running sum of those sizes in time order is what ``fn`` holds on top of what already
    existed; its maximum is the peak. Unlike RSS this is exact and repeatable, and
    unlike tracemalloc it sees torch's allocator.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    ]
    live = peak = 0
    for _, size in sorted(events, key=lambda e: e[0]):
        live += size
        peak = max(peak, live)
    return peak


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_scoring_memory_does_not_grow_with_the_prompt(engine, monkeypatch, kernel):
    """Fails if the prefix KV is copied: the report's peak memory on a 2600-token prompt
    may exceed that on a 600-token prompt by at most 10 % of the extra prompt KV. (Both
    are above 512 tokens, the key block of the fused CPU kernel, whose scratch grows
    with the prompt up to one block.) A copy of even one layer of two is 50 %."""
    if kernel == "math":
        monkeypatch.setattr(generation, "FUSED_ATTENTION_DEVICES", ())
    questions = _report_questions(engine)
    peaks, kv = [], []

    def score(pre):
        return lambda: generation.score_candidates(engine.thinker, pre, questions)

    for length in (600, 2600):
        ids = torch.randint(20, 500, (1, length), generator=torch.Generator().manual_seed(length))
        pre = generation.prefill(
            engine.thinker, {"input_ids": ids}, keep_hidden=False, use_audio_in_video=False
        )
        kv.append(sum(layer.keys.nbytes + layer.values.nbytes for layer in pre.cache.layers))
        peaks.append(_peak_new_bytes(score(pre)))
    # the instrument sees a copy: duplicating the cache registers at least its size
    assert _peak_new_bytes(lambda: copy.deepcopy(pre.cache)) >= kv[1]
    assert peaks[1] - peaks[0] <= 0.1 * (kv[1] - kv[0])


def test_scoring_rejects_empty_questions_and_candidates(engine):
    pre, _ = _prefill(engine, Turn(text="hi"))
    with pytest.raises(ValueError, match="question"):
        generation.score_candidates(engine.thinker, pre, [([], [[5]])])
    with pytest.raises(ValueError, match="candidate 1 has no tokens"):
        generation.score_candidates(engine.thinker, pre, [([5], [[6], []])])


def _greedy_reply(engine, pre, n=12):
    sampler = generation.Sampler(generation.Sampling(temperature=0), engine.banned_ids, None)
    steps = generation.decode(
        engine.thinker,
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
    generation.score_candidates(engine.thinker, pre, [(engine.encode("x"), [engine.encode(" y")])])
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
        logits = engine.thinker(**tensors).logits[0]
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
