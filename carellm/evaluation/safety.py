"""How well the crisis rules detect risk on a labelled JSON Lines set (`carellm eval safety`)."""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import logging
from dataclasses import dataclass

from carellm.errors import DataFormatError
from carellm.safety.assess import CATEGORIES, LANGS, LEVELS, assess, level_at_least

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CategoryScore:
    """Detection of one category (or "crisis": level >= high) on one language's items."""

    lang: str  # "en", "zh" or "all"
    category: str  # a CATEGORIES name, or "crisis"
    precision: float | None  # None when nothing was predicted
    recall: float | None  # None when the gold set has no such item
    support: int  # gold items with the category
    predicted: int  # items predicted with the category


@dataclass(frozen=True)
class SafetyEvalResult:
    """Scores of `assess` on a labelled JSONL set (see `evaluate`)."""

    path: str  # the file evaluated
    n_items: int  # labelled items read
    scores: tuple[CategoryScore, ...]  # per language ("all" first) x category, then "crisis"
    confusion: tuple[tuple[int, ...], ...]  # [gold][predicted] counts, both in LEVELS order
    crisis_recall: float | None  # share of gold >= high predicted >= high
    false_positive_rate: float | None  # share of gold "none" predicted above "none"
    level_accuracy: float  # share of items whose predicted level equals the gold one
    mismatches: tuple[str, ...]  # "id: gold -> predicted" for items with a wrong level

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


def _read_eval(path) -> list[dict]:
    """Items of a JSONL eval file, each with id, text, lang, level and categories."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataFormatError(
            f"{path}: cannot read the eval file ({e.strerror}); check --data"
        ) from e
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            ok = (
                isinstance(item["text"], str) and item["lang"] in LANGS and item["level"] in LEVELS
                and isinstance(item["categories"], list) and set(item["categories"]) <= set(CATEGORIES)
            )  # fmt: skip
        except (ValueError, KeyError, TypeError) as e:
            raise DataFormatError(
                f"{path}, line {number}: not a JSON object with id, text, lang, level, categories ({e})"
            ) from e
        if not ok:
            raise DataFormatError(
                f"{path}, line {number}: lang must be zh/en, level one of {LEVELS}, categories from {CATEGORIES}"
            )
        items.append({**item, "id": str(item.get("id", number))})
    if not items:
        raise DataFormatError(f"{path}: no items; write one JSON object per line")
    return items


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _score(lang: str, category: str, pairs: list[tuple[set, set]]) -> CategoryScore:
    gold = sum(category in g for g, _ in pairs)
    predicted = sum(category in p for _, p in pairs)
    hits = sum(category in g and category in p for g, p in pairs)
    return CategoryScore(
        lang, category, _ratio(hits, predicted), _ratio(hits, gold), gold, predicted
    )


def evaluate(path=None) -> SafetyEvalResult:
    """Run `assess` on every item of a labelled JSONL file (default: the packaged set).

    A category counts as predicted when `assess` reports it at any level; "crisis" is the
    pseudo-category "level >= high". Raises DataFormatError for a missing or bad file.
    """
    from pathlib import Path

    if path is None:
        path = importlib.resources.files("carellm") / "resources" / "safety_eval.jsonl"
    elif not isinstance(path, Path):
        path = Path(path)
    items = _read_eval(path)
    rows = []  # (lang, gold labels, predicted labels, gold level, predicted level, id)
    for item in items:
        result = assess(item["text"], lang=item["lang"])
        gold, pred = set(item["categories"]), set(result.categories)
        gold |= {"crisis"} if level_at_least(item["level"], "high") else set()
        pred |= {"crisis"} if level_at_least(result.level, "high") else set()
        rows.append((item["lang"], gold, pred, item["level"], result.level, item["id"]))
    scores = tuple(
        _score(lang, category, [(g, p) for lg, g, p, *_ in rows if lang in ("all", lg)])
        for lang in ("all", "en", "zh")
        for category in (*CATEGORIES, "crisis")
    )
    confusion = [[0] * len(LEVELS) for _ in LEVELS]
    for *_, gold_level, pred_level, _id in rows:
        confusion[LEVELS.index(gold_level)][LEVELS.index(pred_level)] += 1
    negatives = [r for r in rows if r[3] == "none"]
    return SafetyEvalResult(
        path=str(path),
        n_items=len(rows),
        scores=scores,
        confusion=tuple(tuple(row) for row in confusion),
        crisis_recall=next(s.recall for s in scores if (s.lang, s.category) == ("all", "crisis")),
        false_positive_rate=_ratio(sum(r[4] != "none" for r in negatives), len(negatives)),
        level_accuracy=sum(r[3] == r[4] for r in rows) / len(rows),
        mismatches=tuple(f"{r[5]}: {r[3]} -> {r[4]}" for r in rows if r[3] != r[4]),
    )


def format_eval(result: SafetyEvalResult) -> str:
    """Plain-text tables: per-language/category scores, then the level confusion matrix."""

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [f"safety eval: {result.path} ({result.n_items} items)", ""]
    lines.append(
        f"{'lang':<5} {'category':<18} {'precision':>9} {'recall':>7} {'support':>7} {'predicted':>9}"
    )
    for s in result.scores:
        lines.append(
            f"{s.lang:<5} {s.category:<18} {fmt(s.precision):>9} {fmt(s.recall):>7} {s.support:>7} {s.predicted:>9}"
        )
    lines += ["", "levels: gold (rows) x predicted (columns)"]
    lines.append(" " * 9 + "".join(f"{level:>9}" for level in LEVELS))
    for level, row in zip(LEVELS, result.confusion):
        lines.append(f"{level:<9}" + "".join(f"{n:>9}" for n in row))
    lines += [
        "",
        f"crisis recall (gold >= high predicted >= high): {fmt(result.crisis_recall)}",
        f"false-positive rate on gold 'none': {fmt(result.false_positive_rate)}",
        f"level accuracy: {fmt(result.level_accuracy)}",
    ]
    lines += [f"  wrong level {m}" for m in result.mismatches]
    return "\n".join(lines)
