"""The thinker's verbs: prefill once, branch the cache, score candidates, decode.

One counseling turn encodes its multimodal prompt exactly once (`prefill`). The
emotion report (`score_candidates`) and the reply (`decode`) then run on branches of
that cache. Two things make branching safe:

* HF caches grow in place, so a branch must not write into the prefix tensors: the
  scoring branch builds a new cache whose layers are *views* of the prefix expanded to
  the batch (the first write concatenates into new tensors); the reply branch, which
  runs last, continues the original cache.
* Multimodal RoPE positions of tokens after the prefix are ``index + rope_deltas``; the
  model keeps ``rope_deltas`` as module state that any other call overwrites, so the
  prefill's value is saved in `Prefill` and every later call passes explicit
  ``position_ids`` built from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

# Multimodal keyword arguments the processor returns and the thinker consumes.
MM_KEYS = (
    "input_features", "feature_attention_mask", "pixel_values", "image_grid_thw",
    "pixel_values_videos", "video_grid_thw", "video_second_per_grid",
)  # fmt: skip


@dataclass
class Prefill:
    """The encoded prompt of one turn, shared by every branch.

    Shapes: ``input_ids`` [1, P]; ``hidden`` [1, P, H] last-layer states (kept only
    when speech is on: the talker is conditioned on them).
    """

    input_ids: torch.Tensor
    cache: object  # transformers DynamicCache holding P positions
    rope_deltas: torch.Tensor  # [1, 1] M-RoPE offset for positions after the prompt
    hidden: torch.Tensor | None
    mrope: bool = True  # Qwen2.5-Omni's 3-D positions; False for a plain text model (lite)
    mm_meta: dict = field(default_factory=dict)  # grids/lengths the talker needs for its RoPE

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[1])


@dataclass(frozen=True)
class Sampling:
    """How reply tokens are drawn. ``temperature == 0`` means greedy."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.05


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (evaluation and fine-tuning runs)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def positions(pre: Prefill, start: int, length: int, batch: int = 1) -> torch.Tensor:
    """Position ids of text tokens at ``start`` onward: M-RoPE [3, batch, length] for
    Qwen2.5-Omni (offset by the prefill's rope_deltas), plain [batch, length] otherwise."""
    deltas = pre.rope_deltas
    pos = torch.arange(start, start + length, device=deltas.device) + deltas.reshape(-1)[0]
    if not pre.mrope:
        return pos.view(1, -1).expand(batch, -1)
    return pos.view(1, 1, -1).expand(3, batch, -1)


@torch.inference_mode()
def prefill(thinker, inputs: dict, *, keep_hidden: bool, use_audio_in_video: bool) -> Prefill:
    """Encode the whole prompt (text + media) once and return its cache."""
    from transformers import DynamicCache

    input_ids = inputs["input_ids"]
    mm = {k: inputs[k] for k in MM_KEYS if inputs.get(k) is not None}
    omni = hasattr(thinker.model, "audio_tower")  # False for a lite text model
    if omni:
        mm["use_audio_in_video"] = use_audio_in_video
    cache = DynamicCache()
    out = thinker.model(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        past_key_values=cache,
        use_cache=True,
        **mm,
    )
    meta = {
        k: mm[k] for k in ("image_grid_thw", "video_grid_thw", "video_second_per_grid") if k in mm
    }
    if "feature_attention_mask" in mm:
        meta["audio_feature_lengths"] = mm["feature_attention_mask"].sum(dim=1)
    meta["use_audio_in_video"] = use_audio_in_video
    deltas = getattr(thinker.model, "rope_deltas", None) if omni else None
    return Prefill(
        input_ids=input_ids,
        cache=out.past_key_values,
        rope_deltas=deltas.clone()
        if deltas is not None
        else torch.zeros(1, 1, dtype=torch.long, device=input_ids.device),
        hidden=out.last_hidden_state if keep_hidden else None,
        mm_meta=meta,
        mrope=omni,
    )


def _expanded_cache(cache, batch: int):
    """A new cache whose layers view ``cache``'s tensors expanded to ``batch`` rows."""
    from transformers import DynamicCache

    branch = DynamicCache()
    for idx, layer in enumerate(cache.layers):
        keys = layer.keys.expand(batch, -1, -1, -1)
        values = layer.values.expand(batch, -1, -1, -1)
        branch.update(keys, values, idx)
    return branch


@torch.inference_mode()
def score_candidates(
    thinker,
    pre: Prefill,
    questions: Sequence[tuple[list[int], list[list[int]]]],
    *,
    chunk: int = 32,
) -> list[list[float]]:
    """Log-probability of each candidate after its question, given the prompt.

    ``questions`` holds (question_ids, [candidate_ids, ...]) pairs. Each question runs
    once on a view of the prefix cache; its candidates then run as one right-padded
    batch on that question's cache (padding never affects real positions under the
    causal mask). ``chunk`` candidates at a time bound the extra KV memory to
    chunk × (prompt + question) positions. The prefix cache is never written.
    """
    results: list[list[float]] = []
    for question, candidates in questions:
        out = thinker.model(
            input_ids=torch.tensor([question], device=pre.input_ids.device),
            position_ids=positions(pre, pre.length, len(question)),
            past_key_values=_expanded_cache(pre.cache, 1),
            use_cache=True,
        )
        first = torch.log_softmax(thinker.lm_head(out.last_hidden_state[:, -1]).float(), dim=-1)[0]
        start = pre.length + len(question)
        scores = []
        for at in range(0, len(candidates), chunk):
            part = candidates[at : at + chunk]
            scores += _score_batch(thinker, pre, out.past_key_values, first, start, part)
        results.append(scores)
    return results


def _score_batch(thinker, pre, cache, first, start, candidates) -> list[float]:
    width = max(len(c) for c in candidates)
    lengths = torch.tensor([len(c) for c in candidates], device=first.device)
    ids = torch.zeros(len(candidates), width, dtype=torch.long)
    for i, cand in enumerate(candidates):
        ids[i, : len(cand)] = torch.tensor(cand)
    ids = ids.to(first.device)
    out = thinker.model(
        input_ids=ids,
        position_ids=positions(pre, start, width, batch=len(candidates)),
        past_key_values=_expanded_cache(cache, len(candidates)),
        use_cache=True,
    )
    logprobs = torch.log_softmax(thinker.lm_head(out.last_hidden_state[:, :-1]).float(), dim=-1)
    # token 0 is predicted by the question's last position, token t by position t - 1
    later = logprobs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # [N, width - 1]
    real = torch.arange(1, width, device=first.device).unsqueeze(0) < lengths.unsqueeze(1)
    scores = first[ids[:, 0]] + (later * real).sum(dim=1)
    return scores.tolist()


class Sampler:
    """Temperature / top-k / top-p / repetition penalty over one row of logits."""

    def __init__(
        self, sampling: Sampling, banned: Sequence[int], generator: torch.Generator | None
    ):
        self.sampling = sampling
        self.banned = torch.tensor(sorted(set(banned)), dtype=torch.long)
        self.generator = generator

    def __call__(self, logits: torch.Tensor, previous: Sequence[int]) -> int:
        s = self.sampling
        logits = logits.float().clone()
        if len(self.banned):
            if self.banned.device != logits.device:
                self.banned = self.banned.to(logits.device)  # once, not per token
            logits[self.banned] = -math.inf
        if previous and s.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(previous)), device=logits.device)
            vals = logits[seen]
            logits[seen] = torch.where(
                vals > 0, vals / s.repetition_penalty, vals * s.repetition_penalty
            )
        if s.temperature <= 0:
            return int(logits.argmax())
        logits = logits / s.temperature
        if 0 < s.top_k < logits.numel():
            kth = torch.topk(logits, s.top_k).values[-1]
            logits[logits < kth] = -math.inf
        probs = torch.softmax(logits, dim=-1)
        if s.top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            drop = sorted_p.cumsum(0) - sorted_p > s.top_p
            sorted_p[drop] = 0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        return int(torch.multinomial(probs.cpu(), 1, generator=self.generator))


@torch.inference_mode()
def force(thinker, pre: Prefill, ids: list[int]) -> torch.Tensor:
    """Feed known tokens after everything already in ``pre.cache`` (extending it) and
    return their last-layer states [1, len(ids), H] (e.g. to speak fixed text)."""
    start = pre.cache.get_seq_length()
    out = thinker.model(
        input_ids=torch.tensor([ids], device=pre.input_ids.device),
        position_ids=positions(pre, start, len(ids)),
        past_key_values=pre.cache,
        use_cache=True,
    )
    return out.last_hidden_state


@dataclass
class Step:
    """One decoded token and the thinker state the talker needs for it."""

    token: int
    hidden: torch.Tensor | None  # [1, 1, H] last-layer state of the *input* token


@torch.inference_mode()
def decode(
    thinker,
    pre: Prefill,
    suffix_ids: list[int],
    sampler: Sampler,
    *,
    stop_ids: Sequence[int],
    max_new_tokens: int,
    keep_hidden: bool,
) -> Iterator[Step | torch.Tensor]:
    """Continue the prompt with ``suffix_ids`` then sample up to ``max_new_tokens``.

    First yields the suffix's last-layer states ([1, S, H], or None-free tensor only when
    ``keep_hidden``), then one `Step` per generated token. Each step's ``hidden`` is the
    state produced when the previous token was fed, i.e. aligned with the token itself as
    in transformers' own Qwen2.5-Omni generate(). Consumes (extends) ``pre.cache``.
    """
    device = pre.input_ids.device
    ids = torch.tensor([suffix_ids], dtype=torch.long, device=device)
    pos = pre.length
    out = thinker.model(
        input_ids=ids,
        position_ids=positions(pre, pos, len(suffix_ids)),
        past_key_values=pre.cache,
        use_cache=True,
    )
    pos += len(suffix_ids)
    if keep_hidden:
        yield out.last_hidden_state
    generated: list[int] = []
    for _ in range(max_new_tokens):
        last = out.last_hidden_state[:, -1:]
        token = sampler(thinker.lm_head(last)[0, -1], generated)
        if token in stop_ids:
            return
        generated.append(token)
        out = thinker.model(
            input_ids=torch.tensor([[token]], device=device),
            position_ids=positions(pre, pos, 1),
            past_key_values=pre.cache,
            use_cache=True,
        )
        pos += 1
        yield Step(token=token, hidden=out.last_hidden_state if keep_hidden else None)
