"""The thinker's context across turns: keep what the cache holds, prefill only what is new.

A session's prompt grows by one exchange per turn (its history view keeps a stable
prefix, see `Session._history_view`). After a turn the session keeps the thinker's
cache as a `Context`: the token ids it holds, their M-RoPE positions, a fingerprint of
each media item in them and, when speech is on, their last-layer states (the talker is
conditioned on the whole prompt's states). The next turn's `prefill`:

1. takes the longest common prefix of the held ids and the new prompt's ids, never
   ending inside a media placeholder run nor past a media item whose features changed;
2. computes the M-RoPE positions of the WHOLE new prompt (`get_rope_index` with every
   grid and audio length) and checks that the held prefix has the same positions;
3. crops the cache to that prefix (views: nothing is copied) and runs the thinker on the
   remainder only, with the features of the media whose placeholders lie in it and the
   remainder's slice of the positions; the Prefill carries the full prompt's rope deltas.

Anything that does not fit (another system prompt, trimmed history, a changed media
item, a held prefix without states while speech is on) shortens the prefix, down to a
full prefill. The result equals a full re-prefill's up to float rounding (tests compare
the logits). The caller hands the Context over for the turn and gets a new one only when
the turn completes, so a failed or cancelled turn leaves none (the next one rebuilds).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from carellm import generation


@dataclass
class Context:
    """What the thinker's cache holds after a turn (the next turn's reusable prefix)."""

    cache: object  # transformers DynamicCache holding len(ids) positions
    ids: list[int]  # the token ids in the cache, in order
    positions: torch.Tensor  # [3, len(ids)] their M-RoPE position ids
    media: list[str]  # a fingerprint per media item in ids, in order of appearance
    hidden: torch.Tensor | None  # [1, len(ids), H] last-layer states (speech), or None

    @property
    def length(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class _Item:
    """One media item of a prompt: where its placeholders lie and what it holds."""

    kind: str  # "audio", "image" or "video"
    index: int  # its index among the prompt's items of that kind
    start: int  # first placeholder token
    end: int  # one past the last placeholder token
    fingerprint: str  # digest of its features


def _digest(*tensors) -> str:
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _feature_slices(inputs: dict) -> dict[str, list[dict]]:
    """Per kind, per item: the processor's tensors that belong to that item alone."""
    out: dict[str, list[dict]] = {"audio": [], "image": [], "video": []}
    feats = inputs.get("input_features")
    if feats is not None:
        mask = inputs["feature_attention_mask"]
        out["audio"] = [
            {"input_features": feats[i : i + 1], "feature_attention_mask": mask[i : i + 1]}
            for i in range(feats.shape[0])
        ]
    for kind, pixels, grid, extra in (
        ("image", "pixel_values", "image_grid_thw", ()),
        ("video", "pixel_values_videos", "video_grid_thw", ("video_second_per_grid",)),
    ):
        if inputs.get(pixels) is None:
            continue
        sizes = inputs[grid].prod(-1).tolist()
        at = 0
        for i, size in enumerate(sizes):
            item = {pixels: inputs[pixels][at : at + size], grid: inputs[grid][i : i + 1]}
            item.update({k: inputs[k][i : i + 1] for k in extra if inputs.get(k) is not None})
            out[kind].append(item)
            at += size
    return out


def _items(config, ids: list[int], slices: dict[str, list[dict]]) -> list[_Item]:
    """The prompt's media items in order of appearance (one placeholder run each)."""
    kinds = {config.audio_token_id: "audio", config.image_token_id: "image",
             config.video_token_id: "video"}  # fmt: skip
    items, counts, i = [], {"audio": 0, "image": 0, "video": 0}, 0
    while i < len(ids):
        kind = kinds.get(ids[i])
        if kind is None:
            i += 1
            continue
        start = i
        while i < len(ids) and ids[i] == ids[start]:
            i += 1
        n = counts[kind]
        counts[kind] += 1
        parts = slices[kind][n] if n < len(slices[kind]) else {}
        if "feature_attention_mask" in parts:  # the valid frames only, not the padding
            length = int(parts["feature_attention_mask"].sum())
            parts = {"frames": parts["input_features"][..., :length]}
        items.append(_Item(kind, n, start, i, _digest(*parts.values())))
    return items


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _reusable(ctx: Context, ids: list[int], items: list[_Item], positions, keep_hidden: bool):
    """How many leading tokens of ``ids`` the held cache serves as they are."""
    if ctx is None or (keep_hidden and ctx.hidden is None):
        return 0
    n = min(_common_prefix(ctx.ids, ids), len(ids) - 1)  # the last token always runs
    for k, item in enumerate(items):
        if item.start >= n:
            break
        if item.end > n or k >= len(ctx.media) or ctx.media[k] != item.fingerprint:
            n = item.start  # never split a placeholder run; a changed item runs again
            break
    if n and not torch.equal(ctx.positions[:, :n], positions[:, :n].to(ctx.positions.device)):
        return 0
    return n


def rope_index(thinker, inputs: dict, use_audio_in_video: bool):
    """M-RoPE positions [3, P] and rope deltas [1, 1] of the whole prompt."""
    ids = inputs["input_ids"]
    mask = inputs.get("feature_attention_mask")
    pos, deltas = thinker.model.get_rope_index(
        ids, inputs.get("image_grid_thw"), inputs.get("video_grid_thw"),
        torch.ones_like(ids), use_audio_in_video,
        mask.sum(dim=1) if mask is not None else None, inputs.get("video_second_per_grid"),
    )  # fmt: skip
    return pos[:, 0], deltas.reshape(1, 1)


@torch.inference_mode()
def prefill(
    thinker, inputs: dict, ctx: Context | None, *, keep_hidden: bool, use_audio_in_video: bool
) -> tuple[generation.Prefill, torch.Tensor, list[str], int]:
    """Prefill the prompt, reusing ``ctx``'s cache for the prefix it shares.

    Returns (the Prefill of the whole prompt, its positions [3, P], its media
    fingerprints, the number of tokens the thinker ran). ``ctx``'s cache becomes the
    Prefill's: the caller must not use ``ctx`` afterwards.
    """
    ids = inputs["input_ids"][0].tolist()
    if not hasattr(thinker.model, "audio_tower"):  # a plain text model: no reuse
        pre = generation.prefill(thinker, inputs, keep_hidden=keep_hidden, use_audio_in_video=False)
        return pre, torch.arange(len(ids)).expand(3, -1), [], len(ids)
    slices = _feature_slices(inputs)
    items = _items(thinker.model.config, ids, slices)
    positions, deltas = rope_index(thinker, inputs, use_audio_in_video)
    media = [item.fingerprint for item in items]
    n = _reusable(ctx, ids, items, positions, keep_hidden)
    if use_audio_in_video:  # interleaved audio/video runs: reuse only what comes before
        n = min([n] + [item.start for item in items if item.kind == "video"])
    if n == 0:
        pre = generation.prefill(
            thinker, inputs, keep_hidden=keep_hidden, use_audio_in_video=use_audio_in_video
        )
        pre.rope_deltas = deltas.to(pre.rope_deltas.device)
        return pre, positions, media, len(ids)
    cache = ctx.cache
    if cache.get_seq_length() > n:
        cache.crop(n - cache.get_seq_length())
    mm = {}
    for kind in ("audio", "image", "video"):  # the items before n are whole runs, one each
        new = slices[kind][sum(1 for it in items if it.kind == kind and it.start < n) :]
        for key in new[0] if new else ():
            mm[key] = torch.cat([part[key] for part in new])
    if mm:
        mm["use_audio_in_video"] = use_audio_in_video
    device = inputs["input_ids"].device
    out = thinker.model(
        input_ids=inputs["input_ids"][:, n:],
        position_ids=positions[:, n:].unsqueeze(1).to(device),
        past_key_values=cache,
        use_cache=True,
        **mm,
    )
    hidden = None
    if keep_hidden:
        hidden = torch.cat([ctx.hidden[:, :n].to(device), out.last_hidden_state], dim=1)
    pre = generation.Prefill(
        input_ids=inputs["input_ids"], cache=cache, rope_deltas=deltas.to(device),
        hidden=hidden, mm_meta=_mm_meta(inputs, use_audio_in_video),
    )  # fmt: skip
    return pre, positions, media, len(ids) - n


def _mm_meta(inputs: dict, use_audio_in_video: bool) -> dict:
    """Grids and audio lengths of the whole prompt (the talker's RoPE), as `prefill` keeps."""
    keys = ("image_grid_thw", "video_grid_thw", "video_second_per_grid")
    meta = {k: inputs[k] for k in keys if inputs.get(k) is not None}
    if inputs.get("feature_attention_mask") is not None:
        meta["audio_feature_lengths"] = inputs["feature_attention_mask"].sum(dim=1)
    meta["use_audio_in_video"] = use_audio_in_video
    return meta


def rewind(pre: generation.Prefill) -> None:
    """Drop every cached position after the prompt (views only: nothing is copied)."""
    extra = pre.cache.get_seq_length() - pre.length
    if extra > 0:
        pre.cache.crop(-extra)


def keep(pre: generation.Prefill, positions, media: list[str], fed: list[int], fed_hidden):
    """The Context after a turn: the prompt plus the ``fed`` tokens still in the cache
    (the reply, when nothing rewound it), or the prompt alone when the cache does not
    hold exactly that (it is cropped back to the prompt)."""
    if pre.cache.get_seq_length() - pre.length != len(fed) or (
        pre.hidden is not None and fed_hidden is None and fed
    ):
        rewind(pre)
        fed, fed_hidden = [], None
    ids = pre.input_ids[0].tolist() + list(fed)
    pos = positions.to(pre.rope_deltas.device)
    if fed:
        after = (
            torch.arange(pre.length, len(ids), device=pos.device) + pre.rope_deltas.reshape(-1)[0]
        )
        pos = torch.cat([pos, after.expand(3, -1)], dim=1)
    hidden = pre.hidden
    if hidden is not None and fed:
        hidden = torch.cat([hidden, fed_hidden], dim=1)
    return Context(cache=pre.cache, ids=ids, positions=pos, media=media, hidden=hidden)
