"""Speech: the talker turns reply tokens into codec codes, token2wav into a waveform.

The reply is spoken sentence by sentence so the first audio is ready before the reply
is finished. Each sentence's talker input is assembled the way transformers'
`Qwen2_5OmniForConditionalGeneration.generate` assembles it for a whole reply — prompt
states (thinker last-layer state + token embedding, media rows zeroed), the speaker's
text-bos row, then the sentence's tokens — but from the states the shared prefill and
the decode loop already computed, so the prompt is never encoded a second time and the
talker still sees the full multimodal context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from carellm.reply import OUTPUT_RATE  # noqa: F401  (re-exported: Hz of every waveform here)

CODES_PER_SECOND = 50  # talker codec frame rate of the released model (mel 100 Hz / 2)

# A sentence ends at terminal punctuation (ASCII or CJK) or a line break.
_SENTENCE_END = re.compile(r"[.!?。！？…\n]+[\"'”’)）]*\s*$")
MIN_SENTENCE_CHARS = 6  # shorter fragments wait for more text (e.g. "Dr." or "1.")


def sentence_complete(text: str) -> bool:
    """Whether `text` (the reply since the last spoken chunk) ends a speakable sentence."""
    return len(text.strip()) >= MIN_SENTENCE_CHARS and bool(_SENTENCE_END.search(text))


@dataclass(frozen=True)
class SpeechSettings:
    voice: str = "Chelsie"  # key of the model's speaker map
    temperature: float = 0.9  # talker sampling, as in Qwen's defaults
    top_k: int = 40
    top_p: float = 0.8
    repetition_penalty: float = 1.05
    eos_token_ids: tuple[int, ...] = (8292, 8294)  # released codec's stop codes
    max_codes: int = 4096  # hard cap per sentence (about 80 s)


def _media_mask(model, input_ids: torch.Tensor) -> torch.Tensor:
    cfg = model.config.thinker_config
    ids = (cfg.audio_token_index, cfg.image_token_index, cfg.video_token_index)
    return torch.isin(input_ids, torch.tensor(ids, device=input_ids.device))


@torch.inference_mode()
def speak(
    model,
    prompt_ids: torch.Tensor,
    prompt_hidden: torch.Tensor,
    reply_ids: list[int],
    reply_hidden: torch.Tensor,
    mm_meta: dict,
    settings: SpeechSettings,
    generator_seed: int | None = None,
) -> np.ndarray:
    """Waveform (float32 mono, 24 kHz) for ``reply_ids`` spoken after the prompt.

    Shapes: prompt_ids [1, P], prompt_hidden [1, P, H], reply_hidden [1, R, H] with
    R = len(reply_ids) >= 1.
    """
    thinker, talker = model.thinker, model.talker
    device = prompt_ids.device
    embed = thinker.get_input_embeddings()
    speaker = model.speaker_map[settings.voice]
    dtype = prompt_hidden.dtype

    prompt_embeds = embed(prompt_ids).to(dtype)
    prompt_embeds = prompt_embeds.masked_fill(_media_mask(model, prompt_ids).unsqueeze(-1), 0)
    reply = torch.tensor([reply_ids], device=device)
    reply_part = reply_hidden.to(dtype) + embed(reply).to(dtype)

    def row(token: int) -> torch.Tensor:
        return embed(torch.tensor([[token]], device=device)).to(dtype)

    bos = speaker["bos_token"]
    inputs_embeds = torch.cat([prompt_hidden + prompt_embeds, row(bos), reply_part[:, :1]], dim=1)
    stream = torch.cat(
        [reply_part[:, 1:], row(talker.text_eos_token), row(talker.text_pad_token)], dim=1
    )
    text_ids = torch.cat([prompt_ids, torch.tensor([[bos, reply_ids[0]]], device=device)], dim=1)
    n = prompt_ids.shape[1]
    codec_ids = torch.cat(
        [
            torch.full((1, n), talker.codec_mask_token, device=device),
            torch.tensor([[talker.codec_pad_token, talker.codec_bos_token]], device=device),
        ],
        dim=1,
    )
    if generator_seed is not None:
        torch.manual_seed(generator_seed)
    budget = min(settings.max_codes, 2 * CODES_PER_SECOND + 25 * len(reply_ids))
    codes = talker.generate(
        input_ids=codec_ids,
        input_text_ids=text_ids,
        thinker_reply_part=stream,
        inputs_embeds=inputs_embeds,
        attention_mask=torch.ones_like(codec_ids),
        suppress_tokens=[talker.codec_bos_token],
        max_new_tokens=budget,
        do_sample=settings.temperature > 0,
        top_k=settings.top_k,
        top_p=settings.top_p,
        temperature=settings.temperature if settings.temperature > 0 else None,
        repetition_penalty=settings.repetition_penalty,
        eos_token_id=list(settings.eos_token_ids),
        pad_token_id=talker.codec_pad_token,
        **mm_meta,
    )[:, codec_ids.shape[1] :]
    stop = torch.isin(codes[0], torch.tensor(settings.eos_token_ids, device=device))
    length = int(stop.nonzero()[0, 0]) if stop.any() else codes.shape[1]
    if length == 0:
        return np.zeros(0, dtype=np.float32)
    wav = model.token2wav(
        codes[:, :length],
        conditioning=speaker["cond"].to(device).float().unsqueeze(0),
        reference_mel=speaker["ref_mel"].to(device).float(),
    )
    return wav.reshape(-1).float().cpu().numpy().astype(np.float32)


def speak_span(engine, pre, suffix_ids: list[int], suffix_hidden: torch.Tensor,
               tokens: list[int], hidden: list[torch.Tensor], start: int, voice: str,
               seed: int | None) -> np.ndarray:  # fmt: skip
    """Speak reply tokens ``tokens[start:]`` (float32 mono, 24 kHz) from the turn's states.

    The talker's prompt is the prefill's prompt plus the reply suffix (``suffix_ids``,
    their states ``suffix_hidden`` [1, S, H]); ``hidden[i]`` is token i's state [1, 1, H]
    from the decode loop. Nothing is encoded again.
    """
    device = pre.input_ids.device
    prompt_ids = torch.cat([pre.input_ids, torch.tensor([suffix_ids], device=device)], dim=1)
    settings = SpeechSettings(voice=voice)
    if engine.talker_eos:
        settings = SpeechSettings(voice=voice, eos_token_ids=engine.talker_eos)
    return speak(
        engine.model, prompt_ids, torch.cat([pre.hidden, suffix_hidden], dim=1),
        tokens[start:], torch.cat(hidden[start:], dim=1), pre.mm_meta, settings, seed,
    )  # fmt: skip
