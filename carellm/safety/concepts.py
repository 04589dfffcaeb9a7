"""Concept combinations and framing: the part of `assess` that generalises past phrases.

Two tables per language (`carellm.safety.concepts_en`, `carellm.safety.concepts_zh`):

* ``RULES``: ``category -> ((level, pattern | (pattern, ...)), ...)``. A tuple of patterns
  is a *combination*: it fires only when every pattern matches somewhere in the text,
  e.g. a request to look after a pet × a finality cue ("won't be around"), or a child ×
  a harm verb × fear of acting. The matches then go through the same negation, history
  and escalation steps as the phrase rules in `carellm.safety.rules`.
* ``FRAMES``: ``name -> ((pattern, ...), blocker | None)``. A frame says the topic is
  there but nobody in the chat is at risk now: a professional asking about warning
  signs, a third person who is already getting help, a recovered history, fiction or
  news, an explicit joke, a resolved kitchen accident. When all of a frame's patterns
  match and its blocker does not (a first-person, present-tense statement of intent, or
  signs that the risk is back: "again", "lately", "urges"), every finding is capped at
  "low" ("safe_injury" caps only self-harm and medical findings).
"""

from __future__ import annotations

import functools
import re

from carellm.safety import concepts_en, concepts_zh

_TABLES = {"en": concepts_en, "zh": concepts_zh}
# Frames that cap only these categories (others cap every category).
FRAME_CATEGORIES: dict[str, frozenset[str]] = {
    "safe_injury": frozenset({"self_harm", "medical_emergency"}),
}


@functools.lru_cache(maxsize=1)
def compiled() -> dict[str, dict]:
    """Per language: "rules" [(category, level, (pattern, ...))] and "frames"."""
    out = {}
    for lang, module in _TABLES.items():
        rules = []
        for category, entries in module.RULES.items():
            for level, patterns in entries:
                group = (patterns,) if isinstance(patterns, str) else patterns
                rules.append((category, level, tuple(re.compile(p) for p in group)))
        frames = []
        for name, (patterns, blocker) in module.FRAMES.items():
            frames.append(
                (
                    name,
                    tuple(re.compile(p) for p in patterns),
                    re.compile(blocker) if blocker else None,
                )
            )
        out[lang] = {"rules": rules, "frames": frames}
    return out


def matches(patterns: tuple[re.Pattern, ...], text: str) -> re.Match | None:
    """The first pattern's match when every pattern matches ``text``, else None."""
    first = patterns[0].search(text)
    if first is None:
        return None
    for pattern in patterns[1:]:
        if pattern.search(text) is None:
            return None
    return first


def active_frames(text: str) -> tuple[str, ...]:
    """Names of the frames (both languages) that hold for ``text``."""
    found = []
    for table in compiled().values():
        for name, patterns, blocker in table["frames"]:
            if matches(patterns, text) and not (blocker and blocker.search(text)):
                found.append(name)
    return tuple(dict.fromkeys(found))


def frame_cap(frames: tuple[str, ...], category: str) -> bool:
    """True when one of ``frames`` caps findings of ``category`` at "low"."""
    return any(category in FRAME_CATEGORIES.get(name, {category}) for name in frames)
