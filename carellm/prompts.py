"""Personas and the system prompt.

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
