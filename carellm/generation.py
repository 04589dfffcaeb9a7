"""The thinker's verbs: prefill once, branch the cache, score candidates, decode.

One counseling turn encodes its multimodal prompt exactly once (`prefill`). The
emotion report (`score_candidates`) and the reply (`decode`) then run on branches of
that cache. Two things make branching safe:

* The prefix cache is shared, and transformers' DynamicCache grows by concatenation (a
  copy of every layer): the scoring branch therefore never goes through a cache. It
  packs all questions and candidates into one sequence whose attention reads the
  prefix layers in place; the reply branch, which runs last, continues the cache.
* Multimodal RoPE positions of tokens after the prefix are ``index + rope_deltas``; the
  model keeps ``rope_deltas`` as module state that any other call overwrites, so the
  prefill's value is saved in `Prefill` and every later call passes explicit
  ``position_ids`` built from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


# Scoring: every question and candidate in one packed forward that reads the prefix cache

_BRANCH_ATTENTION = "carellm_branch"  # our name in transformers' AttentionInterface
FUSED_ATTENTION_DEVICES = ("cpu",)  # devices whose fused attention op returns the LSE


@dataclass
class _Packed:
    """Questions and candidates laid out as one sequence of T tokens after the prompt."""

    ids: list[int] = field(default_factory=list)  # a question, its candidates, next question…
    offsets: list[int] = field(default_factory=list)  # position after the prompt, per token
    starts: list[int] = field(default_factory=list)  # its span's start: seen causally from here
    questions: list[tuple[int, int]] = field(default_factory=list)  # question span it sees whole
    rows: list[int] = field(default_factory=list)  # the row predicting each scored token
    targets: list[int] = field(default_factory=list)  # the scored token ids
    owners: list[int] = field(default_factory=list)  # flat candidate index per scored token

    def add(self, ids: list[int], offset: int, question: tuple[int, int]) -> tuple[int, int]:
        start = len(self.ids)
        self.ids += ids
        self.offsets += range(offset, offset + len(ids))
        self.starts += [start] * len(ids)
        self.questions += [question] * len(ids)
        return start, len(self.ids)

    def bias(self, dtype: torch.dtype, device) -> torch.Tensor:
        """Additive tree mask [1, 1, T, T]: 0 where token i may attend token j, else -inf."""
        i = torch.arange(len(self.ids)).unsqueeze(1)
        j = i.view(1, -1)
        span = torch.tensor(self.questions)
        allowed = (j >= torch.tensor(self.starts).unsqueeze(1)) & (j <= i)
        allowed |= (j >= span[:, :1]) & (j < span[:, 1:])
        bias = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, -math.inf)
        return bias.view(1, 1, *bias.shape).to(device)


@torch.inference_mode()
def score_candidates(
    thinker,
    pre: Prefill,
    questions: Sequence[tuple[list[int], list[list[int]]]],
    *,
    max_tokens: int = 1024,
) -> list[list[float]]:
    """Log-probability of each candidate after its question, given the prompt.

    ``questions`` holds (question_ids, [candidate_ids, ...]) pairs. All are packed into
    one sequence (split only past ``max_tokens`` tokens) under a tree-shaped mask: each
    candidate sees the prompt, its question and its own earlier tokens, at the positions
    it would have right after its question. That sequence runs as one forward whose
    attention reads the prefix cache in place (`_branch_attend`): the cache is neither
    written nor copied, and the extra memory is that of the packed tokens alone.
    """
    total = sum(len(candidates) for _, candidates in questions)
    scores = torch.zeros(total, dtype=torch.float64)
    for packed in _packs(questions, max_tokens):
        hidden = _branch_hidden(thinker, pre, packed)
        scores += _token_logprobs(thinker, hidden, packed, total)
    flat, results = scores.tolist(), []
    for _, candidates in questions:
        results.append(flat[: len(candidates)])
        flat = flat[len(candidates) :]
    return results


def _packs(questions, max_tokens: int) -> Iterator[_Packed]:
    """The pairs as sequences of at most ``max_tokens`` tokens (one question and one
    candidate may be longer); a question is repeated in each sequence that needs it."""
    packed, flat = _Packed(), 0
    for question, candidates in questions:
        if not question:
            raise ValueError("a question needs at least one token")
        q_span = None  # the question's (start, end) in the current sequence
        for cand in candidates:
            if not cand:
                raise ValueError(f"candidate {flat} has no tokens")
            cost = len(cand) + (0 if q_span else len(question))
            if packed.ids and len(packed.ids) + cost > max_tokens:
                yield packed
                packed, q_span = _Packed(), None
            if q_span is None:
                start = len(packed.ids)
                q_span = packed.add(question, 0, (start, start))
            start, end = packed.add(cand, len(question), q_span)
            packed.rows += [q_span[1] - 1, *range(start, end - 1)]  # question's last → first
            packed.targets += cand
            packed.owners += [flat] * len(cand)
            flat += 1
    if packed.ids:
        yield packed


def _text_model(thinker):
    """The decoder stack: Qwen2.5-Omni's thinker language model, or a lite model's body."""
    return getattr(thinker.model, "language_model", thinker.model)


def _branch_hidden(thinker, pre: Prefill, packed: _Packed) -> torch.Tensor:
    """Last-layer states [T, H] of the packed tokens, attending to the prefix in place."""
    lm = _text_model(thinker)
    device = pre.input_ids.device
    offsets = torch.tensor(packed.offsets, device=device)
    pos = offsets + pre.length + pre.rope_deltas.reshape(-1)[0].to(device)
    pos = pos.view(1, 1, -1).expand(3, 1, -1) if pre.mrope else pos.view(1, -1)
    with _branch_attention(lm.config):
        out = lm(
            input_ids=torch.tensor([packed.ids], device=device),
            position_ids=pos,
            attention_mask=packed.bias(lm.embed_tokens.weight.dtype, device),  # 4-D: used as is
            use_cache=False,
            carellm_prefix=pre.cache,  # this and the next reach `_branch_attend`
            carellm_fused=device.type in FUSED_ATTENTION_DEVICES,
        )
    return out.last_hidden_state[0]


def _token_logprobs(thinker, hidden, packed: _Packed, total: int, rows_per_step: int = 32):
    """Per-candidate sums [total] of log P(target | row), full-vocabulary logits taken
    ``rows_per_step`` distinct rows at a time to bound their memory."""
    device = hidden.device
    rows = torch.tensor(packed.rows, device=device)
    targets = torch.tensor(packed.targets, device=device)
    owners = torch.tensor(packed.owners)
    unique, where = torch.unique(rows, return_inverse=True)
    sums = torch.zeros(total, dtype=torch.float64)
    for at in range(0, len(unique), rows_per_step):
        logits = thinker.lm_head(hidden[unique[at : at + rows_per_step]]).float()
        logp = torch.log_softmax(logits, dim=-1)
        pick = (where >= at) & (where < at + rows_per_step)
        values = logp[where[pick] - at, targets[pick]]
        sums.index_add_(0, owners[pick.cpu()], values.double().cpu())
    return sums


@contextmanager
def _branch_attention(config):
    """Route the decoder's attention through `_branch_attend` while scoring.

    The attention function is chosen per call from ``config._attn_implementation``, so
    it is switched for the duration of the branch forward and restored after (callers
    hold the engine lock, as every turn does).
    """
    from transformers import AttentionInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if _BRANCH_ATTENTION not in ALL_ATTENTION_FUNCTIONS:
        AttentionInterface.register(_BRANCH_ATTENTION, _branch_attend)
    before = config._attn_implementation
    config._attn_implementation = _BRANCH_ATTENTION
    try:
        yield
    finally:
        config._attn_implementation = before


def _branch_attend(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """Attention of the packed tokens over [prefix cache; packed tokens], without
    concatenating them: each part is attended separately and the two are merged with
    their log-sum-exps. ``query`` [1, heads, T, D]; ``key``/``value`` [1, kv_heads, T, D]
    are the packed tokens' own; returns ([1, T, heads, D], None) like transformers' own."""
    if "carellm_prefix" not in kwargs:
        raise RuntimeError("branch attention ran outside score_candidates; hold engine.lock")
    if getattr(module, "sliding_window", None):
        raise NotImplementedError("branch scoring does not support sliding-window attention")
    layer, fused = kwargs["carellm_prefix"].layers[module.layer_idx], kwargs["carellm_fused"]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    out_p, lse_p = _attend(query, layer.keys, layer.values, None, scale, fused)
    out_b, lse_b = _attend(query, key, value, attention_mask, scale, fused)
    top = torch.maximum(lse_p, lse_b)
    w_p = torch.exp(lse_p - top).unsqueeze(-1)
    w_b = torch.exp(lse_b - top).unsqueeze(-1)
    out = (out_p.float() * w_p + out_b.float() * w_b) / (w_p + w_b)
    batch, heads, length, dim = query.shape
    out = out.to(query.dtype).reshape(batch, heads, length, dim)
    return out.transpose(1, 2).contiguous(), None


def _attend(query, key, value, bias, scale: float, fused: bool):
    """Softmax attention and its log-sum-exp, with grouped-query heads kept grouped.

    ``query`` [1, heads, T, D] is regrouped to [1, kv_heads, rep·T, D] so that each KV
    head serves its ``rep`` query heads without repeating the keys (a repeat would copy
    the prefix). ``bias`` [1, 1, T, K] or None. Returns (out [1, kv_heads, rep·T, D],
    lse [1, kv_heads, rep·T] in float32).
    """
    batch, heads, length, dim = query.shape
    groups = key.shape[1]
    rep = heads // groups
    q = query.reshape(batch, groups, rep * length, dim)
    if bias is not None:  # the fused kernel wants the query's dtype
        bias = bias.to(query.dtype).repeat(1, 1, rep, 1)
    if fused:
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, key, value, 0.0, False, attn_mask=bias, scale=scale
        )
    # exact math, query rows in chunks: scores stay under 1/8 of this layer's K+V bytes
    budget = 2 * key.numel() * key.element_size() // 8
    step = max(16, budget // max(1, 8 * groups * key.shape[2]))
    outs, lses = [], []
    for at in range(0, rep * length, step):
        scores = torch.matmul(q[:, :, at : at + step], key.transpose(2, 3)).float() * scale
        if bias is not None:
            scores = scores + bias[:, :, at : at + step]
        lse = torch.logsumexp(scores, dim=-1)
        probs = torch.exp(scores - lse.unsqueeze(-1)).to(value.dtype)
        outs.append(torch.matmul(probs, value))
        lses.append(lse)
    return torch.cat(outs, dim=2), torch.cat(lses, dim=2)


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
