"""The Qwen3-Omni turn's model verbs: prefill once, decode the reply, speak it.

The emotion report runs on the prefill with `carellm.generation.score_candidates`
(the Qwen3 MoE thinker's attention and M-RoPE positions take the same branch scoring;
tests check it against an uncached forward).

Speech follows transformers 5.23's ``Qwen3OmniMoeForConditionalGeneration.generate``
step for step, fed by this turn's own thinker pass instead of a second one: the talker
reads (a) the user turns of the prompt, text as thinker input embeddings and media as
the thinker's states at ``talker_config.accept_hidden_layer`` (kept by the prefill), and
(b) the assistant turn's thinker input embeddings (the reply tokens; Qwen3-Omni's talker
takes no thinker states for text). Both are built with the model's own helpers
(``_get_talker_user_parts``, ``_get_talker_assistant_parts``), then Qwen's talker
``generate`` and ``code2wav.chunked_decode`` run as in Qwen's generate().
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from carellm.generation import MM_KEYS, Prefill, Sampler, positions


@dataclass(frozen=True)
class TalkerSettings:
    """How the talker draws codec frames (defaults: Qwen's generate())."""

    do_sample: bool = True  # False: greedy (the code predictor follows)
    top_k: int = 50
    top_p: float = 1.0
    temperature: float = 0.9
    repetition_penalty: float = 1.05
    max_new_tokens: int = 4096  # codec frames (12.5 per second on the released code2wav)


@torch.inference_mode()
def prefill(
    thinker, inputs: dict, *, use_audio_in_video: bool, hidden_layer: int | None
) -> Prefill:
    """Encode the prompt once; ``pre.hidden`` holds layer ``hidden_layer``'s states
    [1, P, H] (the talker's view of media), or None without speech."""
    from transformers import DynamicCache

    input_ids = inputs["input_ids"]
    mm = {k: inputs[k] for k in MM_KEYS if inputs.get(k) is not None}
    out = thinker.model(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
        past_key_values=DynamicCache(), use_cache=True, use_audio_in_video=use_audio_in_video,
        output_hidden_states=hidden_layer is not None, **mm,
    )  # fmt: skip
    meta = {
        k: mm[k] for k in ("image_grid_thw", "video_grid_thw", "video_second_per_grid") if k in mm
    }
    if "feature_attention_mask" in mm:
        meta["audio_feature_lengths"] = mm["feature_attention_mask"].sum(dim=1)
    return Prefill(
        input_ids=input_ids, cache=out.past_key_values,
        rope_deltas=thinker.model.rope_deltas.clone(),
        hidden=None if hidden_layer is None else out.hidden_states[hidden_layer],
        mm_meta=meta, mrope=True,
    )  # fmt: skip


@torch.inference_mode()
def decode(thinker, pre: Prefill, suffix_ids: list[int], sampler: Sampler, *,
           stop_ids: Sequence[int], max_new_tokens: int) -> Iterator[int]:  # fmt: skip
    """Feed ``suffix_ids`` after the prompt, then yield sampled tokens; a stop token is
    yielded too (last), so the caller knows how the reply ended. Extends ``pre.cache``."""
    device = pre.input_ids.device
    pos = pre.length
    out = thinker.model(
        input_ids=torch.tensor([suffix_ids], device=device), past_key_values=pre.cache,
        position_ids=positions(pre, pos, len(suffix_ids)), use_cache=True,
    )  # fmt: skip
    pos += len(suffix_ids)
    generated: list[int] = []
    for _ in range(max_new_tokens):
        token = sampler(thinker.lm_head(out.last_hidden_state[:, -1:])[0, -1], generated)
        yield token
        if token in stop_ids:
            return
        generated.append(token)
        out = thinker.model(
            input_ids=torch.tensor([[token]], device=device), past_key_values=pre.cache,
            position_ids=positions(pre, pos, 1), use_cache=True,
        )  # fmt: skip
        pos += 1


def _user_parts(model, ids: torch.Tensor, hidden: torch.Tensor, media: set[int]):
    """(embeds, ids) of the prompt's user-turn tokens, as Qwen's generate() builds them."""
    cfg = model.config
    length = ids.shape[1]
    embed = model.thinker.get_input_embeddings()(ids)
    full_hidden = torch.zeros_like(embed)
    full_hidden[:, : hidden.shape[1]] = hidden.to(embed.dtype)
    mm_mask = torch.isin(ids, torch.tensor(sorted(media), device=ids.device))
    where = torch.arange(length, device=ids.device).unsqueeze(0)
    starts = torch.where(ids == cfg.im_start_token_id, where, where.new_full((), -1))
    previous = torch.cummax(starts, dim=-1).values.clamp_min(0)
    roles = ids.gather(1, (previous + 1).clamp_max(length - 1))
    user = (roles == cfg.user_token_id)[0]
    parts = model._get_talker_user_parts(0, length, mm_mask, full_hidden, embed)
    return parts[:, user], ids[:, user], embed


@torch.inference_mode()
def speak(model, pre: Prefill, suffix_ids: list[int], spoken: list[int], voice: str,
          media: set[int], settings: TalkerSettings) -> torch.Tensor:  # fmt: skip
    """The waveform [samples] (float32, 24 kHz) of ``spoken`` (the reply's tokens, without
    its stop token) after the prompt and ``suffix_ids``.

    Qwen's generate() speaks the thinker tokens it fed back: all but the last one
    generated (the stop token, or the last token of a reply cut at max_new_tokens, which
    that path drops and this one speaks)."""
    cfg = model.config
    device = pre.input_ids.device
    prompt = torch.cat([pre.input_ids, torch.tensor([suffix_ids], device=device)], dim=1)
    seq = torch.cat([prompt, torch.tensor([spoken], dtype=torch.long, device=device)], dim=1)
    user_embeds, user_ids, embed = _user_parts(model, seq, pre.hidden, media)
    specials = torch.tensor([[cfg.tts_bos_token_id, cfg.tts_eos_token_id, cfg.tts_pad_token_id]],
                            device=device)  # fmt: skip
    bos, eos, pad = model.talker.text_projection(
        model.thinker.get_input_embeddings()(specials)
    ).chunk(3, dim=1)
    heads = (prompt[0, :-1] == cfg.im_start_token_id) & (prompt[0, 1:] == cfg.assistant_token_id)
    start = int(torch.nonzero(heads).flatten()[-1])
    speaker = cfg.talker_config.speaker_id[voice.lower()]
    a_embeds, a_ids, trailing = model._get_talker_assistant_parts(
        start, seq.shape[1], speaker, embed, pad, bos, eos
    )
    vocab = cfg.talker_config.text_config.vocab_size
    eos_id = cfg.talker_config.codec_eos_token_id
    kwargs = {k: v for k, v in pre.mm_meta.items() if k != "use_audio_in_video"}
    sampling = {}
    if settings.do_sample:
        sampling = dict(
            top_k=settings.top_k, top_p=settings.top_p, temperature=settings.temperature
        )
    result = model.talker.generate(
        inputs_embeds=torch.cat([user_embeds, a_embeds], dim=1), trailing_text_hidden=trailing,
        tts_pad_embed=pad, talker_input_ids=torch.cat([user_ids, a_ids], dim=1),
        attention_mask=torch.ones(1, user_ids.shape[1] + a_ids.shape[1], dtype=torch.long, device=device),
        max_new_tokens=settings.max_new_tokens, do_sample=settings.do_sample,
        eos_token_id=eos_id, repetition_penalty=settings.repetition_penalty,
        suppress_tokens=[i for i in range(vocab - 1024, vocab) if i != eos_id],
        output_hidden_states=True, return_dict_in_generate=True, **sampling, **kwargs,
    )  # fmt: skip
    frames = [h[-1] for h in result.hidden_states if h[-1] is not None]
    if not frames:  # the talker ended at once: nothing to say
        return torch.zeros(0)
    codes = torch.stack(frames, dim=1).transpose(1, 2)
    wav = model.code2wav.chunked_decode(codes, chunk_size=300, left_context_size=25)
    return wav.reshape(-1).float().cpu()
