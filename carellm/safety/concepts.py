"""Concept combinations and framing: the part of `assess` that generalises past phrases.

Two tables per language (`carellm.safety.concepts_en`, `carellm.safety.concepts_zh`):

* ``RULES``: ``category -> ((level, pattern | (pattern, ...)), ...)``. A tuple of patterns
  is a *combination*: it fires only when every pattern matches somewhere in the text,
  e.g. a request to look after a pet × a finality cue ("won't be around"), or a child ×
  a harm verb × fear of acting. The matches then go through the same negation, history
  and escalation steps as the phrase rules in `carellm.safety.rules`. A combination
  whose first element is ``SENTENCE`` must match within one sentence (self × wish ×
  death in "every morning I'm disappointed I woke up"); one whose first element is
  ``TWICE`` needs two different matches of its one pattern (two farewell acts).
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
SENTENCE = "@sentence"  # marker: every pattern within one sentence
TWICE = "@twice"  # marker: two different matches of the pattern
_SCRIPT = {"zh": re.compile(r"[\u3400-\u9fff]"), "en": re.compile(r"[a-z]")}
_SENTENCE_END = re.compile(r"[.!?;\n。！？；]+")
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
                mode = group[0] if group[0] in (SENTENCE, TWICE) else ""
                group = group[1:] if mode else group
                rules.append((category, level, (mode, *(re.compile(p) for p in group))))
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


def matches(rule: tuple, text: str) -> re.Match | None:
    """The first pattern's match when the rule holds for ``text``, else None.

    ``rule`` is (mode, pattern, ...) as `compiled` builds it: mode "" (every pattern
    somewhere in the text), `SENTENCE` or `TWICE`.
    """
    mode, *patterns = rule
    if mode == TWICE:
        found = patterns[0].finditer(text)
        first = next(found, None)
        if first is None or all(m.group() == first.group() for m in found):
            return None
        return first
    if mode == SENTENCE:
        start = 0
        for end in [m.start() for m in _SENTENCE_END.finditer(text)] + [len(text)]:
            first = patterns[0].search(text, start, end)
            if first and all(p.search(text, start, end) for p in patterns[1:]):
                return first
            start = end
        return None
    return _all_match(tuple(patterns), text)


def _all_match(patterns: tuple[re.Pattern, ...], text: str) -> re.Match | None:
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
    for lang, table in compiled().items():
        if not _SCRIPT[lang].search(text):
            continue  # no word in this language's script: its frames cannot hold
        for name, patterns, blocker in table["frames"]:
            if _all_match(patterns, text) and not (blocker and blocker.search(text)):
                found.append(name)
    return tuple(dict.fromkeys(found))


def frame_cap(frames: tuple[str, ...], category: str) -> bool:
    """True when one of ``frames`` caps findings of ``category`` at "low"."""
    return any(category in FRAME_CATEGORIES.get(name, {category}) for name in frames)
