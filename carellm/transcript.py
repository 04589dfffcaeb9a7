"""What the person said: a transcript of the turn's speech, decoded from the shared prefill.

The audio was already encoded once by `generation.prefill`; the transcript is a short
greedy continuation of that same cache after an instruction, so no audio is encoded
twice. It runs after the reply has been decoded (the reply's first text and audio never
wait for it): `rewind` takes the cache back to the prompt first and again afterwards, so
the transcript sees only what the user sent, not the reply. The crisis rules then read
the transcript too (`carellm.assessment.transcript_safety`).
"""

from __future__ import annotations

from carellm import generation

MAX_TRANSCRIPT_TOKENS = 160  # tokens; about 30-60 s of speech
INSTRUCTION = (
    "Transcribe exactly what the user said aloud in their latest audio message, in the "
    "language they spoke (Chinese in Chinese characters). Output only the words."
)


def transcript_suffix(engine) -> list[int]:
    """Token ids of the instruction and the assistant opening that follow the prompt."""
    text = f"<|im_start|>system\n{INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"
    return engine.encode(text)


def rewind(pre: generation.Prefill) -> None:
    """Drop every cached position after the prompt (views only: nothing is copied)."""
    extra = pre.cache.get_seq_length() - pre.length
    if extra > 0:
        pre.cache.crop(-extra)


def transcribe(engine, pre: generation.Prefill, *, max_new_tokens=MAX_TRANSCRIPT_TOKENS) -> str:
    """Greedy transcript of the prompt's latest audio; leaves ``pre.cache`` at the prompt."""
    rewind(pre)
    greedy = generation.Sampler(
        generation.Sampling(temperature=0.0, repetition_penalty=1.0), engine.banned_ids, None
    )
    try:
        steps = generation.decode(
            engine.thinker, pre, transcript_suffix(engine), greedy,
            stop_ids=(engine.im_end, engine.endoftext), max_new_tokens=max_new_tokens,
            keep_hidden=False,
        )  # fmt: skip
        tokens = [step.token for step in steps]
    finally:
        rewind(pre)
    return engine.tokenizer.decode(tokens, skip_special_tokens=True).strip()
