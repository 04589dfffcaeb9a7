"""Cross-turn cache reuse: a turn prefills only what is new, and equals a full re-prefill."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from carellm import context, generation
from carellm.prompts import build_inputs, get_persona, system_prompt
from carellm.turn import Turn, prepare

pytestmark = pytest.mark.timeout(240)
RATE = 16000


def voice(i: int, seconds: float = 1.0) -> tuple[np.ndarray, int]:
    """A short synthetic voice message (a tone whose pitch differs per turn)."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * (180 + 25 * i) * t)).astype(np.float32), RATE


def _logits(engine, pre):
    with torch.inference_mode():
        return engine.thinker.lm_head(pre.hidden[:, -1]).float()


def _prompts(engine, media_dir, turns):
    """(inputs, PreparedTurn) of each turn of a conversation whose replies are fixed."""
    system, history, out = system_prompt(get_persona("counselor")), [], []
    for i, turn in enumerate(turns):
        prepared = prepare(turn)
        out.append(build_inputs(engine, system, history, prepared))
        history.append((prepared, f"I hear you ({i}). What happened next?", True))
    return out


def test_reused_prefill_equals_a_full_prefill_with_media_in_history(engine, media_dir):
    turns = [
        Turn(text="I could not sleep.", audio=voice(0)),
        Turn(text="This is my desk.", image=str(media_dir / "face.png")),
        Turn(text="And this is how I sound now.", audio=voice(1)),
        Turn(text="A clip of my day.", video=str(media_dir / "clip.mp4")),  # audio in video
    ]
    ctx = None
    for i, inputs in enumerate(_prompts(engine, media_dir, turns)):
        assert inputs.use_audio_in_video == (i == 3)
        kw = dict(keep_hidden=True, use_audio_in_video=inputs.use_audio_in_video)
        pre, positions, media, ran = context.prefill(engine.thinker, inputs.tensors, ctx, **kw)
        full = generation.prefill(engine.thinker, inputs.tensors, **kw)
        if i:  # only the previous reply and the new user message ran
            assert 0 < ran < pre.length / 2
        assert torch.equal(pre.rope_deltas.cpu(), full.rope_deltas.cpu())
        assert (_logits(engine, pre) - _logits(engine, full)).abs().max() < 1e-4
        assert (pre.hidden - full.hidden).abs().max() < 1e-4  # the talker's conditioning
        ctx = context.keep(pre, positions, media, [], None)


def test_a_changed_media_item_with_the_same_length_runs_again(engine, media_dir):
    """Token ids alone cannot tell two audios of one length apart: fingerprints do."""
    first, changed = (
        _prompts(engine, media_dir, [Turn(text="hi", audio=voice(k)), Turn(text="more")])
        for k in (0, 5)
    )
    pre, positions, media, _ = context.prefill(
        engine.thinker, first[1].tensors, None, keep_hidden=True, use_audio_in_video=False
    )
    ids = changed[1].tensors["input_ids"][0].tolist()
    assert ids == first[1].tensors["input_ids"][0].tolist()  # same tokens, other sound
    ctx = context.keep(pre, positions, media, [], None)
    pre2, *_, ran = context.prefill(
        engine.thinker, changed[1].tensors, ctx, keep_hidden=True, use_audio_in_video=False
    )
    audio_start = ids.index(engine.thinker.model.config.audio_token_id)
    assert ran == len(ids) - audio_start  # from the changed audio on
    full = generation.prefill(
        engine.thinker, changed[1].tensors, keep_hidden=True, use_audio_in_video=False
    )
    assert (_logits(engine, pre2) - _logits(engine, full)).abs().max() < 1e-4


def _prompt_length(session, turn) -> int:
    """Tokens of the prompt ``turn`` gets in ``session`` now (what a full prefill runs)."""
    prepared = prepare(turn)
    system = system_prompt(session.options.persona, session.options.language)
    inputs = build_inputs(session.engine, system, session._history_view(prepared), prepared)
    return inputs.tensors["input_ids"].shape[1]


def _run(session, n, seconds=1.0):
    return [session.respond(Turn(text=f"Turn {i}.", audio=voice(i, seconds))) for i in range(n)]


def test_session_replies_equal_those_of_full_prefills(engine):
    """Same seed, one session reusing its cache and one rebuilding every turn: the
    replies (text and speech) are the same."""
    kw = dict(seed=3, max_new_tokens=12, speech=True)
    reusing, rebuilding = engine.session(**kw), engine.session(**kw)
    a = _run(reusing, 3)
    b = []
    for i in range(3):
        rebuilding._context = None  # forces a full prefill
        b.append(rebuilding.respond(Turn(text=f"Turn {i}.", audio=voice(i))))
    assert [r.text for r in a] == [r.text for r in b]
    assert a[2].timings["prefill_tokens"] < b[2].timings["prefill_tokens"] / 2
    for x, y in zip(a, b):
        assert x.audio.shape == y.audio.shape and np.abs(x.audio - y.audio).max() < 1e-3


@pytest.mark.timeout(300)
def test_prefill_tokens_stay_flat_over_a_long_voice_session(engine):
    session = engine.session(seed=0, max_new_tokens=16, speech=False)
    ran = [r.timings["prefill_tokens"] for r in _run(session, 8, seconds=0.5)]
    assert len(session._history_view(prepare(Turn(text="next")))) == 8  # nothing trimmed…
    assert ran[7] <= 1.5 * ran[1]  # …but turn 8 ran about what turn 2 did
    assert ran[0] > 2 * ran[1]


def test_trimming_rebuilds_rarely_and_bounds_the_held_cache(engine):
    session = engine.session(seed=0, max_new_tokens=8, speech=False, context_budget=1200)
    ran, held, full = [], [], []  # per turn: tokens run, context kept, prompt length
    for i in range(10):
        turn = Turn(text=f"Turn {i}: work is stressful " * 4, audio=voice(i))
        full.append(_prompt_length(session, turn))
        ran.append(session.respond(turn, report=False).timings["prefill_tokens"])
        held.append(session._context.length if session._context else 0)
    assert 0 < max(held) <= session.held_limit()
    assert len(session._history_view(session.history[-1][0])) < 9  # the budget trimmed
    rebuilt = [r > 2 * ran[1] for r in ran[1:]]  # far more than a reply + message ran
    assert 1 <= sum(rebuilt) <= 2  # the cut moves in blocks:
    assert not any(a and b for a, b in zip(rebuilt, rebuilt[1:]))  # never twice in a row
    assert all(r < f for r, f in zip(ran[1:], full[1:]))  # the system prompt always serves


def test_a_cancelled_turn_drops_the_cache_and_the_next_turn_rebuilds(engine):
    session = engine.session(seed=0, max_new_tokens=40, speech=False)
    session.respond(Turn(text="Hello.", audio=voice(0)))
    assert session._context is not None
    events = session.stream(Turn(text="Tell me a long story.", audio=voice(1)))
    next(events)  # the assessment: the prefill ran on the held cache
    events.close()  # cancelled mid-reply
    assert session._context is None and len(session.history) == 1
    turn = Turn(text="Are you there?", audio=voice(2))
    full = _prompt_length(session, turn)
    reply = session.respond(turn)
    assert reply.timings["prefill_tokens"] == full  # a full prefill
    again = session.respond(Turn(text="Good.", audio=voice(3)))
    assert again.timings["prefill_tokens"] < reply.timings["prefill_tokens"] / 2
