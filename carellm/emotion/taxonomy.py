"""Emotion label sets: GoEmotions (27 emotions + neutral) and its published groupings.

Orders and mappings follow the GoEmotions release (Demszky et al., 2020):
``data/emotions.txt``, ``data/ekman_mapping.json`` and ``data/sentiment_mapping.json``
in google-research/goemotions.
"""

from __future__ import annotations

# The 28 labels in the order of the dataset's emotions.txt (label id = index).
GOEMOTIONS_LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip

# Ekman group -> GoEmotions labels (ekman_mapping.json); "neutral" maps to itself.
EKMAN_MAPPING: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": ("joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism",
            "relief", "pride", "admiration", "desire", "caring"),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}  # fmt: skip

# Sentiment group -> GoEmotions labels (sentiment_mapping.json); "neutral" maps to itself.
SENTIMENT_MAPPING: dict[str, tuple[str, ...]] = {
    "positive": ("amusement", "excitement", "joy", "love", "desire", "optimism", "caring",
                 "pride", "admiration", "gratitude", "relief", "approval"),
    "negative": ("fear", "nervousness", "remorse", "embarrassment", "disappointment",
                 "sadness", "grief", "disgust", "anger", "annoyance", "disapproval"),
    "ambiguous": ("realization", "surprise", "curiosity", "confusion"),
    "neutral": ("neutral",),
}  # fmt: skip

EKMAN_LABELS: tuple[str, ...] = tuple(EKMAN_MAPPING)
SENTIMENT_LABELS: tuple[str, ...] = tuple(SENTIMENT_MAPPING)

_TO_EKMAN = {label: group for group, labels in EKMAN_MAPPING.items() for label in labels}
_TO_SENTIMENT = {label: group for group, labels in SENTIMENT_MAPPING.items() for label in labels}


def ekman_group(label: str) -> str:
    """Ekman group of a GoEmotions label (KeyError for an unknown label)."""
    return _TO_EKMAN[label]


def sentiment_group(label: str) -> str:
    """Sentiment group of a GoEmotions label (KeyError for an unknown label)."""
    return _TO_SENTIMENT[label]
