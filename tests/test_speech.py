"""Speech against transformers' own paths on the tiny model: the streaming talker's codes
equal `Qwen2_5OmniForConditionalGeneration.generate`'s for a multi-sentence reply, and
chunked token2wav matches a whole-reply `model.token2wav` within a stated tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from carellm import speech
from carellm.tiny import TALKER_EOS_IDS
from carellm.vocoder import ChunkedToken2Wav

REPLY_TOKENS = 24  # thinker tokens fed to the talker
CHUNK_TOLERANCE = 1e-4  # max |chunked - whole| sample difference (peak is ~0.4)


def prompt_inputs(engine):
    text = engine.processor.apply_chat_template(
        [{"role": "user", "content": "I feel so lonely and sad today. Can you help?"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    return engine.processor(text=text, return_tensors="pt")


def official_codes(engine, inputs, settings, seed):
    """Codes of transformers' generate() (thinker greedy; the talker as ``settings``)."""
    model, captured = engine.model, {}
    original = model.talker.generate

    def spy(*args, **kwargs):  # observe the official talker's output, change nothing
        captured["out"] = out = original(*args, **kwargs)
        captured["n"] = kwargs["input_ids"].shape[1]
        return out

    model.talker.generate = spy
    try:
        torch.manual_seed(seed)
        sequences, _ = model.generate(
            **inputs, speaker=settings.voice, thinker_do_sample=False,
            thinker_max_new_tokens=REPLY_TOKENS + 1,  # the official path never feeds its last token
            talker_do_sample=settings.temperature > 0, talker_temperature=settings.temperature,
            talker_eos_token_id=list(TALKER_EOS_IDS),
            talker_max_new_tokens=speech.code_budget(settings, REPLY_TOKENS),
        )  # fmt: skip
    finally:
        model.talker.generate = original
    codes = captured["out"][0, captured["n"] :].tolist()
    stops = [i for i, c in enumerate(codes) if c in TALKER_EOS_IDS]
    return sequences, codes[: stops[0]] if stops else codes


def streamed_codes(engine, inputs, settings, seed):
    """The streaming talker fed token by token, interleaved with the thinker's decode."""
    model = engine.model
    result = model.thinker.generate(
        **inputs, do_sample=False, max_new_tokens=REPLY_TOKENS + 1,
        output_hidden_states=True, return_dict_in_generate=True,
    )  # fmt: skip
    states = result.hidden_states  # [0]: the prompt; [k]: feeding reply token k - 1
    tokens = result.sequences[0, inputs["input_ids"].shape[1] :].tolist()
    gen = torch.Generator().manual_seed(seed)
    run = speech.TalkerRun(model, inputs["input_ids"], states[0][-1], settings, gen)
    for k in range(1, len(states)):
        run.push(tokens[k - 1], states[k][-1])
        while run.ready():  # as far as the text allows, then wait for the next token
            run.step()
        assert len(run.codes) <= k  # never ahead of the text
    run.close()
    while not run.done:
        run.step()
    return tokens, run.codes


@pytest.mark.timeout(240)
@pytest.mark.parametrize("temperature", [0.0, 0.9], ids=["greedy", "sampled"])
def test_streaming_talker_equals_official_generate(engine, temperature):
    inputs = prompt_inputs(engine)
    settings = speech.settings_for(engine, "Chelsie", temperature=temperature, max_codes=160)
    sequences, expected = official_codes(engine, inputs, settings, seed=11)
    tokens, codes = streamed_codes(engine, inputs, settings, seed=11)
    reply = engine.tokenizer.decode(tokens[:REPLY_TOKENS])
    assert sum(reply.count(c) for c in ".!?。！？\n") >= 2, reply  # a multi-sentence reply
    assert tokens == sequences[0, inputs["input_ids"].shape[1] :].tolist()
    assert len(expected) > REPLY_TOKENS + 2  # the talker read every text row, eos and pads
    assert codes == expected


def test_talker_waits_for_text_and_stops(engine):
    inputs = prompt_inputs(engine)
    settings = speech.settings_for(engine, "Chelsie", temperature=0.0, max_codes=30)
    hidden = torch.zeros(1, inputs["input_ids"].shape[1], 64)
    run = speech.TalkerRun(engine.model, inputs["input_ids"], hidden, settings)
    assert not run.ready() and run.step() is None  # no reply token yet
    run.push(5, torch.zeros(1, 1, 64))
    run.step()
    assert (len(run.codes) == 1 or run.done) and not run.ready()  # one code per text row
    run.close()
    while not run.done:
        run.step()
    assert 1 <= len(run.codes) <= 30 and not set(run.codes) & set(TALKER_EOS_IDS)


@pytest.mark.timeout(240)
def test_chunked_token2wav_matches_whole_reply_synthesis(engine):
    model = engine.model
    voice = model.speaker_map["Chelsie"]
    cond, ref = voice["cond"].float().unsqueeze(0), voice["ref_mel"].float()
    codes = torch.randint(0, 92, (1, 70), generator=torch.Generator().manual_seed(5))
    torch.manual_seed(3)
    with torch.inference_mode():
        whole = model.token2wav(codes, conditioning=cond, reference_mel=ref).numpy()
    chunker = ChunkedToken2Wav(model.token2wav, cond, ref, torch.Generator().manual_seed(3))
    pieces, known = [], codes[0].tolist()
    for n in range(1, len(known) + 1):  # codes arrive one by one, as from the talker
        piece = chunker.feed(known[:n], final=n == len(known))
        if piece.size:
            pieces.append((n, piece))
    assert pieces[0][0] <= 24  # first audio after 24 codes (one block + look-ahead)
    assert len(pieces) >= 3
    streamed = np.concatenate([p for _, p in pieces])
    assert streamed.shape == whole.shape
    assert np.abs(whole).max() >= 0.05 and whole.std() > 0.01  # audible, not constant
    assert np.abs(streamed - whole).max() <= CHUNK_TOLERANCE
