"""What the thinker reads: personas, the system prompt, and the rendered conversation.

`build_inputs` renders the (trimmed) history and the current turn with the chat
template and runs the processor once for all media of the prompt.

Qwen2.5-Omni's talker was trained with Qwen's own system sentence; speech output
depends on it, so `system_prompt` always starts with `QWEN_SPEECH_SENTENCE`. The
persona follows it *in the same system message* rather than in a first user turn (the
other placement Qwen's README suggests): a system message is never trimmed from the
history, never shown as something the user said, and keeps one place for every
instruction. Tests check that speech still works with each persona.
"""

from __future__ import annotations

from dataclasses import dataclass

from carellm.errors import InputError
from carellm.turn import PreparedTurn

QWEN_SPEECH_SENTENCE = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
    "perceiving auditory and visual inputs, as well as generating text and speech."
)

VOICES = ("Chelsie", "Ethan")  # the speakers shipped in Qwen2.5-Omni's spk_dict.pt
DEFAULT_VOICE = "Chelsie"

_SHARED_RULES = (
    "Reply in the language the user writes or speaks in (Chinese or English, or whatever "
    "they use). Keep replies short enough to be spoken: two to four sentences. "
    "You are a research tool, not a therapist: never diagnose or prescribe. If the user "
    "mentions suicide, self-harm, harming others, abuse or a medical emergency, respond "
    "with care and encourage them to contact local emergency services or a crisis line."
)


# Added to the reply's prompt when a turn's safety level is high or imminent (the
# escalation with hotlines is appended in code whatever the model writes).
CRISIS_NOTE = (
    "Safety: the user may be in crisis. Respond with warmth, take it seriously, and "
    "encourage them to contact a crisis line or emergency services now."
)


@dataclass(frozen=True)
class Persona:
    """A counseling style: the instructions placed after Qwen's sentence."""

    name: str  # short id used by the CLI and the demo
    title: str  # display name
    instructions: str  # what the model is asked to do, in English (it replies in any language)
    temperature: float = 0.7  # sampling for the reply (the emotion report is always scored)
    top_p: float = 0.9


PERSONAS: dict[str, Persona] = {
    p.name: p
    for p in (
        Persona(
            "counselor",
            "Supportive counselor",
            "Act as a warm, supportive counselor. Acknowledge what the person feels, reflect "
            "it back in your own words, and ask one gentle open question that helps them "
            "explore it. Offer a small, concrete coping idea only when it fits.",
        ),
        Persona(
            "listener",
            "Active listener",
            "Practise active listening. Do not give advice. Paraphrase what you heard, name "
            "the feeling you notice, and invite the person to say more. Be brief and calm.",
            temperature=0.6,
        ),
        Persona(
            "cbt",
            "CBT-informed coach",
            "Act as a coach informed by cognitive behavioural therapy. Help the person "
            "notice the situation, the automatic thought, the feeling and the behaviour; "
            "gently question unhelpful thoughts and suggest one small experiment or skill.",
            temperature=0.6,
        ),
    )
}


def get_persona(name: str) -> Persona:
    """The persona called `name`; InputError listing the known ones otherwise."""
    try:
        return PERSONAS[name]
    except KeyError:
        known = ", ".join(PERSONAS)
        raise InputError("persona", f"unknown persona {name!r}; choose one of: {known}") from None


def check_voice(voice: str) -> str:
    if voice not in VOICES:
        raise InputError("voice", f"unknown voice {voice!r}; choose one of: {', '.join(VOICES)}")
    return voice


def system_prompt(persona: Persona, language: str | None = None) -> str:
    """Qwen's speech sentence first, then the persona and the shared safety rules."""
    parts = [QWEN_SPEECH_SENTENCE, persona.instructions, _SHARED_RULES]
    if language == "zh":
        parts.append("The user prefers Chinese: reply in Simplified Chinese.")
    elif language == "en":
        parts.append("The user prefers English: reply in English.")
    return " ".join(parts)


def user_content(turn: PreparedTurn, *, with_media: bool) -> list[dict]:
    """Chat-template parts for a user message: media first, then the text."""
    parts: list[dict] = []
    if with_media:
        parts += [{"type": "audio"} for _ in turn.audio]
        if turn.image is not None:
            parts.append({"type": "image"})
        if turn.video is not None:
            parts.append({"type": "video"})
    else:
        sent = sorted(turn.modalities - {"text"})
        if sent:
            parts.append(
                {"type": "text", "text": f"(The user sent {' and '.join(sent)}, not shown again.) "}
            )
    if turn.text:
        parts.append({"type": "text", "text": turn.text})
    return parts


@dataclass
class ModelInputs:
    """Processor output plus what later stages need to know about it."""

    tensors: dict
    use_audio_in_video: bool
    media_tokens: int  # placeholder tokens of the *current* user message


def chat_messages(system: str, history: list, current: PreparedTurn):
    """Chat messages of the shown turns, their media in prompt order, and for each audio
    the index of the video it comes from (None for a recording). Shared by the Qwen2.5 and
    Qwen3 prompt builders; ``history`` as in `build_inputs`."""
    messages = [{"role": "system", "content": system}]
    audio, audio_src, images, videos = [], [], [], []
    for turn, reply, keep in [*history, (current, None, True)]:
        messages.append({"role": "user", "content": user_content(turn, with_media=keep)})
        if keep:
            audio += turn.audio
            audio_src += [None] * len(turn.audio)
            images += [] if turn.image is None else [turn.image]
            if turn.video is not None:
                if turn.use_audio_in_video:
                    audio.append(turn.video.audio)
                    audio_src.append(len(videos))
                videos.append(turn.video)
        if reply is not None:
            messages.append({"role": "assistant", "content": reply})
    return messages, audio, audio_src, images, videos


def build_inputs(engine, system: str, history: list, current: PreparedTurn) -> ModelInputs:
    """Render the conversation and run the processor (one call for all media).

    ``history`` holds (PreparedTurn, reply_text, keep_media) triples, oldest first.
    """
    from carellm.media import processor_video_kwargs

    if engine.lite:
        return _build_text_inputs(engine, system, history, current)
    messages, audio, audio_src, images, videos = chat_messages(system, history, current)
    text = engine.processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=False
    )
    # One flag for the whole prompt (processor, thinker and talker must agree):
    # on only when every video in it carries its audio track.
    in_video = bool(videos) and all(any(s == i for s in audio_src) for i in range(len(videos)))
    kwargs = {}
    if videos:
        kwargs["videos_kwargs"] = processor_video_kwargs(videos[-1])
        kwargs["videos"] = [v.frames for v in videos]
        if in_video:
            kwargs["load_audio_from_video"] = True
            kwargs["audio_from_video_indices"] = audio_src
        elif any(s is not None for s in audio_src):
            audio = [a for a, s in zip(audio, audio_src) if s is None]
    tensors = engine.processor(
        text=[text], audio=audio or None, images=images or None, return_tensors="pt", **kwargs
    )
    tensors = {k: v.to(engine.device) if hasattr(v, "to") else v for k, v in tensors.items()}
    return ModelInputs(tensors, in_video, _current_media_tokens(engine, tensors["input_ids"]))


def _build_text_inputs(engine, system: str, history: list, current: PreparedTurn) -> ModelInputs:
    """The lite tier: a text-only chat model sees the text alone."""
    if current.modalities - {"text"}:
        kinds = ", ".join(sorted(current.modalities - {"text"}))
        raise InputError(
            "turn",
            f"this text-only (lite) model cannot take {kinds}; send text, or load an Omni model",
        )
    messages = [{"role": "system", "content": system}]
    for turn, reply, _ in history:
        messages += [
            {"role": "user", "content": turn.text},
            {"role": "assistant", "content": reply},
        ]
    messages.append({"role": "user", "content": current.text})
    text = engine.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=False
    )
    ids = engine.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    return ModelInputs({"input_ids": ids.to(engine.device)}, False, 0)


def _current_media_tokens(engine, input_ids) -> int:
    cfg = engine.thinker.config
    ids = input_ids[0].tolist()
    user_start = engine.tokenizer.convert_tokens_to_ids("<|im_start|>")
    last = max(i for i, t in enumerate(ids) if t == user_start)
    media = {cfg.audio_token_index, cfg.image_token_index, cfg.video_token_index}
    return sum(1 for t in ids[last:] if t in media)
