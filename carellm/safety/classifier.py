"""A small bilingual crisis classifier: character n-grams + English words, linear heads.

Why: phrase lists only catch the wording someone thought of; a linear model over
character n-grams (2–4, and single CJK characters) of the normalised text
(`carellm.safety.normalize`) scores wording it never saw, and character n-grams work
the same for Chinese (no word segmentation), English, misspellings and mixed zh/en. English word unigrams and
bigrams (prefixed with a tab, which normalised text never holds) add word identity.

Heads (one logistic regression each, trained by ``scripts/train_safety.py`` on
``datasets/safety/crisis_corpus.jsonl`` and the sets in ``tests/assets/safety``):
``crisis`` (gold level moderate or more), ``severe`` (high or more) and one per category
(which category a crisis is about). A text's feature vector is binary and L2-normalised
(each present feature counts 1/sqrt(number of distinct features)). Texts longer than
`WINDOW_CHARS` are scored in windows of whole sentences; each head takes its highest
window, so a crisis sentence at the end of a long message is not diluted.

Inference is pure Python over a dict (no scikit-learn, no numpy): the weights live in
``resources/safety_classifier.json`` (features with a non-zero weight only, stored as
integers in units of ``scale``), with the thresholds chosen on cross-validated
predictions. `classify` reads normalised text; `carellm.safety.assess` combines the
result with the rules (policy in that module).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from carellm.errors import DataFormatError

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "safety_classifier.json"
NGRAM_SIZES = (2, 3, 4)  # character n-gram lengths (+ single CJK characters; 3–4 only
# for text without CJK: cheaper, and Latin 2-grams carry little)
WINDOW_CHARS = 240  # texts longer than this are scored per window of whole sentences
MAX_WINDOWS = 400  # longer texts: the first and last MAX_WINDOWS // 2 windows are scored
_WORD = re.compile(r"[a-z][a-z']*")
_SENTENCE = re.compile(r"[^.!?;。！？；\n]*[.!?;。！？；\n]*")


@dataclass(frozen=True)
class Weights:
    """The trained model, as read from ``resources/safety_classifier.json``."""

    heads: tuple[str, ...]  # "crisis", "severe", then one head per category
    bias: tuple[float, ...]  # one intercept per head
    tables: tuple[dict[str, float], ...]  # per head: feature -> weight (every feature)
    vocabulary: frozenset[str]  # the features with a weight (for one C-level intersection)
    moderate_threshold: float  # P(crisis) from which the classifier says "moderate"
    high_threshold: float  # P(severe) from which it says "high"
    veto_threshold: float  # below this P(crisis) a rules "moderate"/"high" drops to "low"
    rules_low_caps: bool  # a rules "low" (negated, news, third person) caps the classifier


@dataclass(frozen=True)
class ClassifierResult:
    """What the classifier found in one text."""

    p_crisis: float  # probability of a crisis (gold moderate or more)
    p_severe: float  # probability of high or imminent (0.0 when P(crisis) is under threshold)
    category: str  # the most probable category (in CATEGORIES); "" when the level is "none"
    level: str  # "none", "moderate" or "high" by the thresholds


def features(text: str) -> set[str]:
    """The binary features of one (normalised) text: char n-grams and English words."""
    padded = f" {text} "
    cjk = [ch for ch in text if ch >= "\u3000"]
    sizes = NGRAM_SIZES if cjk else NGRAM_SIZES[1:]  # no 2-grams in Latin-only text
    grams = {padded[i : i + n] for n in sizes for i in range(len(padded) - n + 1)}
    grams.update(cjk)  # single characters: CJK only
    words = _WORD.findall(text)
    grams.update("\t" + word for word in words)
    grams.update(f"\t{a} {b}" for a, b in zip(words, words[1:]))
    return grams


def windows(text: str) -> list[str]:
    """``text`` cut into windows of whole sentences of at most about `WINDOW_CHARS`."""
    if len(text) <= WINDOW_CHARS:
        return [text]
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE.findall(text):
        while len(sentence) > WINDOW_CHARS:  # one very long "sentence": hard cut
            out.append(current + sentence[: WINDOW_CHARS - len(current)])
            sentence, current = sentence[WINDOW_CHARS - len(current) :], ""
        if len(current) + len(sentence) > WINDOW_CHARS:
            out.append(current)
            current = ""
        current += sentence
    if current.strip():
        out.append(current)
    if len(out) > MAX_WINDOWS:
        out = out[: MAX_WINDOWS // 2] + out[-MAX_WINDOWS // 2 :]
    return [w for w in out if w.strip()] or [text[:WINDOW_CHARS]]


@functools.lru_cache(maxsize=2)
def load(path=None) -> Weights:
    """The packaged weights, or those at ``path`` (read once). DataFormatError if broken."""
    resource = (
        Path(path) if path else importlib.resources.files("carellm") / "resources" / WEIGHTS_FILE
    )
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
        scale = float(data["scale"])
        heads = tuple(data["heads"])
        tables: tuple[dict[str, float], ...] = tuple({} for _ in heads)
        for feature, values in data["weights"].items():
            for table, value in zip(tables, values, strict=True):
                table[feature] = int(value) * scale
        loaded = Weights(
            heads=heads,
            bias=tuple(float(b) for b in data["bias"]),
            tables=tables,
            vocabulary=frozenset(data["weights"]),
            moderate_threshold=float(data["thresholds"]["moderate"]),
            high_threshold=float(data["thresholds"]["high"]),
            veto_threshold=float(data["thresholds"]["veto"]),
            rules_low_caps=bool(data["thresholds"]["rules_low_caps"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataFormatError(
            f"{resource}: cannot read the crisis classifier ({e}); reinstall carellm "
            "or rebuild it with scripts/train_safety.py"
        ) from e
    if heads[:2] != ("crisis", "severe") or len(loaded.bias) != len(heads):
        raise DataFormatError(f"{resource}: heads must start with crisis, severe; rebuild it")
    return loaded


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _probability(known: set[str], scale: float, table: dict[str, float], bias: float) -> float:
    # fsum is exact, so the result does not depend on the set's (hash-seeded) order
    return _sigmoid(bias + scale * math.fsum(map(table.__getitem__, known)))


def classify(
    normalised: str, model: Weights | None = None, *, name_category: bool = True
) -> ClassifierResult:
    """Score a normalised text (``carellm.safety.normalize.normalise``) with the heads.

    The crisis head runs on every window; the others only on the window with the
    highest P(crisis) and only when it passes the moderate threshold (a "high" needs
    both), the category heads only with ``name_category`` (False when the rules
    already named one: saves their time).
    """
    model = model or load()
    p_crisis, top = -1.0, (set(), 1.0)
    for window in windows(normalised):
        grams = features(window)
        known = grams & model.vocabulary
        scale = 1.0 / math.sqrt(len(grams) or 1)  # empty text: no features, the bias
        p = _probability(known, scale, model.tables[0], model.bias[0])
        if p > p_crisis:
            p_crisis, top = p, (known, scale)
    if p_crisis < model.moderate_threshold:  # no crisis: the other heads are not needed
        return ClassifierResult(p_crisis, 0.0, "", "none")
    p_severe = _probability(*top, model.tables[1], model.bias[1])
    level = "high" if p_severe >= model.high_threshold else "moderate"
    if not name_category:
        return ClassifierResult(p_crisis, p_severe, "", level)
    heads = range(2, len(model.heads))
    ranked = [(_probability(*top, model.tables[h], model.bias[h]), model.heads[h]) for h in heads]
    return ClassifierResult(p_crisis, p_severe, max(ranked, default=(0, "suicide"))[1], level)
