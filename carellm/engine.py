"""The loaded model and what every session shares: processor, device, token ids, a lock.

`load()` is the public entry point; `Engine.session()` opens an independent
conversation. Sessions hold their own history; the engine holds no per-user state.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import torch

from carellm.errors import ModelLoadError
from carellm.loading import Resolved, load_checkpoint, resolve

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineInfo:
    """What was loaded, for logs, the UI and exports."""

    model: str  # hub id or folder
    device: str
    dtype: str
    speech: bool  # talker + token2wav loaded
    tiny: bool  # random tiny model: replies are noise
    reason: str = ""  # why this model/setting was chosen ("auto" plans)
    adapter: str | None = None  # LoRA folder applied to the thinker, if any


class Engine:
    """A loaded Qwen2.5-Omni with its processor. Create with `carellm.load`."""

    def __init__(self, model, processor, info: EngineInfo, *, talker_eos=None, tokenizer=None):
        self.model = model
        self.processor = processor  # None for a lite (text-only) model
        self.tokenizer = tokenizer if tokenizer is not None else processor.tokenizer
        self.info = info
        # the text decoder: Qwen2.5-Omni's thinker, or the whole lite model
        self.thinker = model.thinker if hasattr(model, "thinker") else model
        self.plan = None  # carellm.planning.selection.Plan when loaded with model="auto"
        self.media_limits = media_limits_for(None)  # caps every session's media use
        # one turn at a time on the shared model; a turn's worker thread takes and
        # releases it (carellm.session.TurnWorker), and nothing takes it twice
        self.lock = threading.Lock()
        self.talker_eos = talker_eos
        # emotion-report question and candidate ids, encoded once (carellm.assessment)
        self.report_ids: dict[str, tuple[list[int], list[list[int]]]] = {}
        tok = self.tokenizer
        self.im_end = tok.convert_tokens_to_ids("<|im_end|>")
        self.endoftext = tok.convert_tokens_to_ids("<|endoftext|>")
        # A reply may end with <|im_end|>; every other special token (media
        # placeholders, tts tokens…) is banned so replies stay plain text.
        self.banned_ids = [i for i in tok.all_special_ids if i not in (self.im_end,)]
        self.banned_ids += [
            tok.convert_tokens_to_ids(t)
            for t in tok.get_added_vocab()
            if t.startswith("<|") and tok.convert_tokens_to_ids(t) != self.im_end
        ]
        vocab = self.thinker.config.get_text_config().vocab_size
        self.banned_ids += list(range(len(tok), vocab))  # padding rows beyond the tokenizer

    @property
    def device(self) -> torch.device:
        return self.thinker.get_input_embeddings().weight.device

    @property
    def lite(self) -> bool:
        """A text-only model (the CPU "lite" tier): no audio, images, video or speech."""
        return self.processor is None

    @property
    def speech(self) -> bool:
        return bool(getattr(self.model, "has_talker", False))

    def session(
        self,
        persona: str = "counselor",
        voice: str = "Chelsie",
        language: str | None = None,
        **kwargs,
    ):
        """A new independent conversation (see `carellm.session.Session`)."""
        from carellm.session import Session

        return Session(self, persona=persona, voice=voice, language=language, **kwargs)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def _pick_device(device: str | None) -> str:
    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _pick_dtype(dtype, device: str):
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype:
        try:
            return {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
                    "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}[dtype]  # fmt: skip
        except KeyError:
            raise ModelLoadError(
                f"unknown dtype {dtype!r}; use bfloat16, float16 or float32"
            ) from None
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16 if device == "mps" else torch.float32


def _auto_plan(speech: bool):
    """The selection module's plan for this machine; MemoryPlanError if nothing fits."""
    from carellm.planning.selection import Needs, require_fit, select

    plan = select(Needs(speech=speech))
    require_fit(plan)
    return plan


def media_limits_for(plan) -> object:
    """MediaLimits tightened to the plan's video/image caps (never loosened)."""
    from dataclasses import replace

    from carellm.media import MediaLimits

    base = MediaLimits()
    if plan is None:
        return base
    frames = max(base.video_min_frames, min(base.video_max_frames, plan.video_max_frames) // 2 * 2)
    return replace(
        base,
        video_fps=min(base.video_fps, plan.video_fps),
        video_max_frames=frames,
        video_max_pixels=min(base.video_max_pixels, plan.video_max_pixels),
        image_max_pixels=min(base.image_max_pixels, plan.image_max_pixels),
    )


def load(
    model: str = "auto",
    *,
    device: str | None = None,
    dtype=None,
    speech: bool = True,
    attn_implementation: str | None = None,
    adapter: str | None = None,
    merge_adapter: bool = False,
    backend: str = "local",
    base_url: str | None = None,
    api_key: str | None = None,
):
    """Load Qwen2.5-Omni and return an `Engine`.

    ``model``: a Hugging Face id (``Qwen/Qwen2.5-Omni-7B``/``-3B``), a local folder,
    ``"tiny"`` (a random model built locally, for plumbing checks) or ``"auto"``; a
    ``.gguf`` file or a hub ``…-GGUF`` id runs on llama.cpp (`carellm.lite`, CPU, text).
    ``speech=False`` loads no talker/token2wav (about 2 GB less GPU memory).
    ``adapter``: a LoRA folder from ``carellm finetune`` applied to the thinker.
    ``backend="openai"`` drives an OpenAI-compatible server at ``base_url`` (vLLM,
    vLLM-Omni, ``carellm serve``) and returns a `carellm.remote.RemoteEngine`.
    ``backend="mnn"`` runs an MNN export (``model`` is its config.json) and returns a
    `carellm.mnn.MnnEngine` (text, image and audio in; text out).
    """
    if backend == "openai":
        from carellm.remote import RemoteEngine

        if not base_url:
            raise ModelLoadError("backend='openai' needs base_url, e.g. http://127.0.0.1:8901/v1")
        return RemoteEngine(base_url, model=None if model == "auto" else model, api_key=api_key)
    if backend == "mnn":  # model: an MNN export's config.json (carellm/mnn.py)
        from carellm.mnn import MnnEngine

        return MnnEngine(model)
    if backend != "local":
        raise ModelLoadError(f"unknown backend {backend!r}; use 'local', 'openai' or 'mnn'")
    reason, plan = "", None
    if model == "auto":
        plan = _auto_plan(speech)
        model, reason = plan.model, "; ".join(plan.reasons)
        speech = speech and plan.speech
        device = device or (plan.device if plan.device_map is None else "auto")
        dtype = dtype or plan.dtype
        attn_implementation = attn_implementation or plan.attn_implementation
        logger.info("auto-selected %s (%s, speech=%s): %s", model, plan.dtype, speech, reason)
        for warning in plan.warnings:
            logger.warning("plan: %s", warning)
    from carellm.qwen3 import is_qwen3, load_qwen3

    if is_qwen3(model):  # a Qwen3-Omni folder, Qwen/Qwen3-Omni-* id or "tiny-qwen3"
        return load_qwen3(model, device=device, dtype=dtype, speech=speech, reason=reason,
                          attn_implementation=attn_implementation, adapter=adapter)  # fmt: skip
    from carellm.lite import is_gguf, load_gguf

    if is_gguf(model):  # a .gguf file or hub GGUF id: the lite tier on llama.cpp
        return load_gguf(model, plan=plan, reason=reason, adapter=adapter)
    resolved: Resolved = resolve(model)
    device = _pick_device(device)
    torch_dtype = _pick_dtype(dtype, device)
    if resolved.tiny:
        logger.warning("TINY RANDOM MODEL: replies are random tokens, for plumbing checks only")
    if resolved.tier == "lite":
        from carellm.loading import load_lite

        net, tokenizer = load_lite(
            resolved, device=device, dtype=torch_dtype, attn=attn_implementation
        )
        info = EngineInfo(
            model=resolved.name, device=device, dtype=str(torch_dtype).removeprefix("torch."),
            speech=False, tiny=resolved.tiny, reason=reason or "lite text tier",
        )  # fmt: skip
        engine = Engine(net, None, info, tokenizer=tokenizer)
        engine.plan, engine.media_limits = plan, media_limits_for(plan)
        return engine
    net, processor = load_checkpoint(
        resolved, device=device, dtype=torch_dtype, speech=speech, attn=attn_implementation
    )
    if adapter is not None:
        from carellm.adapters import apply_adapter

        apply_adapter(net, adapter, merge=merge_adapter)
    talker_eos = None
    if resolved.tiny:
        from carellm.tiny import TALKER_EOS_IDS

        talker_eos = TALKER_EOS_IDS
    info = EngineInfo(
        model=resolved.name, device=device, dtype=str(torch_dtype).removeprefix("torch."),
        speech=bool(getattr(net, "has_talker", False)), tiny=resolved.tiny, reason=reason,
        adapter=adapter,
    )  # fmt: skip
    logger.info("loaded %s on %s (%s), speech=%s", info.model, info.device, info.dtype, info.speech)
    engine = Engine(net, processor, info, talker_eos=talker_eos)
    engine.plan, engine.media_limits = plan, media_limits_for(plan)
    return engine
