"""Loading a Qwen3-Omni checkpoint and rendering its prompts.

`load_qwen3` goes through the real ``Qwen3OmniMoeForConditionalGeneration`` and
``Qwen3OmniMoeProcessor.from_pretrained`` (transformers 5.23), for a local folder, the
hub id (downloaded by the same call) or the cached tiny model. `Qwen3Engine` is a
`carellm.engine.Engine` (shared model, processor, token ids, lock) whose sessions are
`carellm.qwen3.session.Qwen3Session`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from carellm.engine import Engine, EngineInfo, _pick_device, _pick_dtype
from carellm.errors import InputError, ModelLoadError
from carellm.loading import HUB_ID, Resolved, _from_pretrained
from carellm.prompts import ModelInputs, chat_messages
from carellm.qwen3 import QWEN3_MODEL, QWEN3_TINY
from carellm.turn import PreparedTurn

logger = logging.getLogger(__name__)


class Qwen3Engine(Engine):
    """A loaded Qwen3-Omni with its processor. Create with `carellm.load`."""

    @property
    def voices(self) -> tuple[str, ...]:
        """The talker's speakers, as the checkpoint names them (capitalised)."""
        if not self.speech:
            return ()
        return tuple(name.capitalize() for name in self.model.config.talker_config.speaker_id)

    def check_voice(self, voice: str) -> str:
        """``voice`` if this checkpoint has it (any case), else a one-line InputError."""
        known = self.voices or ("Chelsie", "Ethan", "Aiden")
        if not isinstance(voice, str) or voice.lower() not in {v.lower() for v in known}:
            raise InputError("voice", f"unknown voice {voice!r}; choose one of: {', '.join(known)}")
        return voice.capitalize()

    def session(self, persona: str = "counselor", voice: str = "Chelsie", language=None, **kw):
        """A new independent conversation (see `carellm.qwen3.session.Qwen3Session`)."""
        from carellm.qwen3.session import Qwen3Session

        return Qwen3Session(self, persona=persona, voice=voice, language=language, **kw)


def check_qwen3_folder(folder: Path) -> None:
    """Raise ModelLoadError naming the files a Qwen3-Omni folder lacks."""
    missing = [] if (folder / "config.json").exists() else ["config.json"]
    if not any(folder.glob("*.safetensors")):
        missing.append("*.safetensors weights")
    if not (folder / "tokenizer.json").exists() and not (folder / "vocab.json").exists():
        missing.append("tokenizer.json (or vocab.json + merges.txt)")
    if not any(
        (folder / n).exists() for n in ("preprocessor_config.json", "processor_config.json")
    ):
        missing.append("preprocessor_config.json")
    if missing:
        raise ModelLoadError(
            f"Qwen3-Omni folder {folder} lacks {', '.join(missing)}; download the full "
            f"checkpoint with `hf download {QWEN3_MODEL} --local-dir {folder}` and pass that folder"
        )


def resolve_qwen3(model: str) -> Resolved:
    """A Qwen3-Omni folder, hub id or the tiny alias as something from_pretrained loads."""
    if model == QWEN3_TINY:
        from carellm.qwen3.tiny import ensure_tiny_qwen3

        return Resolved(str(ensure_tiny_qwen3()), local=True, tiny=True, tier="qwen3")
    path = Path(model).expanduser()
    if path.is_dir():
        from carellm.qwen3.tiny import TINY_QWEN3_MARKER

        check_qwen3_folder(path)
        return Resolved(str(path), True, (path / TINY_QWEN3_MARKER).exists(), tier="qwen3")
    if HUB_ID.match(model):
        return Resolved(model, local=False, tiny=False, tier="qwen3")
    raise ModelLoadError(f"model folder {model} does not exist; pass a folder or {QWEN3_MODEL}")


def load_qwen3(model: str, *, device=None, dtype=None, speech: bool = True,
               attn_implementation=None, adapter=None, reason: str = "") -> Qwen3Engine:  # fmt: skip
    """Load a Qwen3-Omni and return a `Qwen3Engine` (``speech=False``: no talker/code2wav)."""
    from transformers import Qwen3OmniMoeForConditionalGeneration, Qwen3OmniMoeProcessor

    if adapter is not None:
        raise ModelLoadError(
            "LoRA adapters are for Qwen2.5-Omni thinkers; load Qwen3-Omni without one"
        )
    resolved = resolve_qwen3(model)
    device = _pick_device(device)
    torch_dtype = _pick_dtype(dtype, device)
    if resolved.tiny:
        logger.warning(
            "TINY RANDOM QWEN3-OMNI: replies are random tokens, for plumbing checks only"
        )
    net, processor = _from_pretrained(
        resolved, Qwen3OmniMoeProcessor, Qwen3OmniMoeForConditionalGeneration, device=device,
        dtype=torch_dtype, attn=attn_implementation, enable_audio_output=speech,
    )  # fmt: skip
    info = EngineInfo(
        model=resolved.name, device=device, dtype=str(torch_dtype).removeprefix("torch."),
        speech=bool(getattr(net, "has_talker", False)), tiny=resolved.tiny,
        reason=reason or "Qwen3-Omni in process",
    )  # fmt: skip
    logger.info(
        "loaded Qwen3-Omni %s on %s (%s), speech=%s", info.model, device, info.dtype, info.speech
    )
    return Qwen3Engine(net, processor, info)


def build_qwen3_inputs(engine, system: str, history: list, current: PreparedTurn) -> ModelInputs:
    """Render the conversation with Qwen3-Omni's chat template and run its processor once
    (as `carellm.prompts.build_inputs` does for 2.5). A video's audio track is read with
    it only when every video of the prompt has one (one flag for the whole prompt)."""
    from carellm.media import processor_video_kwargs

    messages, audio, audio_src, images, videos = chat_messages(system, history, current)
    text = engine.processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=False
    )
    in_video = bool(videos) and all(any(s == i for s in audio_src) for i in range(len(videos)))
    kwargs = {}
    if videos:
        # frames were sized for 2.5's 28 px grid; Qwen3-Omni's is 32 px (16 px patches
        # merged 2x2), so its processor resizes them to the nearest multiple
        kwargs["videos_kwargs"] = {**processor_video_kwargs(videos[-1]), "do_resize": True}
        kwargs["videos"] = [v.frames for v in videos]
        if in_video:
            kwargs["load_audio_from_video"] = True
            kwargs["audio_from_video_indices"] = audio_src
        else:
            audio = [a for a, s in zip(audio, audio_src) if s is None]
    tensors = engine.processor(
        text=[text], audio=audio or None, images=images or None, return_tensors="pt", **kwargs
    )
    tensors = {k: v.to(engine.device) if hasattr(v, "to") else v for k, v in tensors.items()}
    return ModelInputs(tensors, in_video, _media_tokens(engine, tensors["input_ids"]))


def media_ids(engine) -> set[int]:
    cfg = engine.thinker.config
    return {cfg.audio_token_id, cfg.image_token_id, cfg.video_token_id}


def _media_tokens(engine, input_ids) -> int:
    """Placeholder tokens of the current (last) user message."""
    ids = input_ids[0].tolist()
    start = engine.tokenizer.convert_tokens_to_ids("<|im_start|>")
    last = max(i for i, t in enumerate(ids) if t == start)
    media = media_ids(engine)
    return sum(1 for t in ids[last:] if t in media)
