"""How well crisis detection works on a labelled JSON Lines set (`carellm eval safety`).

Definitions (the same for the rules, the model and their combination):

* a **crisis item** has gold level ``moderate``, ``high`` or ``imminent``; a **negative**
  (hard negative) has gold ``none`` or ``low``;
* **recall** (moderate+): share of crisis items predicted ``moderate`` or more;
* **escalation recall** (high+): share of gold ``high``/``imminent`` items predicted
  ``high`` or more (what triggers the hotline escalation in a reply);
* **false-positive rate**: share of negatives predicted ``moderate`` or more ("fp@mod",
  the goal's measure); ``fp@low`` also counts any predicted risk at ``low``;
* ``crisis_recall`` (kept from the first sets): gold >= high predicted >= high, over all.

`format_eval` also scores each signal of `SafetyAssessment.signals` alone ("text": the
rules after the classifier's veto, "classifier": the crisis classifier), so their shares
can be told apart.

Scores are given overall, per language and per ``kind`` (the optional item field that
names the sub-type, e.g. ``farewell`` or ``idiom``); `assess` is timed per message.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from carellm.errors import DataFormatError
from carellm.safety.assess import CATEGORIES, LANGS, LEVELS, assess, level_at_least

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupScore:
    """Detection scores of one group of items (all, one language, or one kind)."""

    group: str  # "all", "en", "zh", or "<lang>:<kind>"
    crises: int  # crisis items (gold >= moderate)
    recall: float | None  # crisis items predicted >= moderate; None without crisis items
    severe: int  # gold >= high items
    escalation_recall: float | None  # gold >= high predicted >= high
    negatives: int  # gold none/low items
    fp_moderate: float | None  # negatives predicted >= moderate
    fp_low: float | None  # negatives predicted >= low


@dataclass(frozen=True)
class ItemResult:
    """One item: gold and predicted level (per signal where the model ran)."""

    id: str  # the item's id (line number when it has none)
    lang: str  # "zh" or "en"
    kind: str  # the item's kind, "" when absent
    gold: str  # gold level
    predicted: str  # predicted level (the combination where several signals ran)
    signals: dict[str, str]  # level per signal ("text", "model", ...)
    matched: tuple[str, ...]  # rule phrases or concepts that fired
    text: str  # the message


@dataclass(frozen=True)
class SafetyEvalResult:
    """Scores of `assess` on a labelled JSONL set (see `evaluate`)."""

    path: str  # the file evaluated
    n_items: int  # labelled items read
    groups: tuple[GroupScore, ...]  # "all", "en", "zh", then "<lang>:<kind>" sorted
    confusion: tuple[tuple[int, ...], ...]  # [gold][predicted] counts, both in LEVELS order
    crisis_recall: float | None  # share of gold >= high predicted >= high (old measure)
    false_positive_rate: float | None  # share of negatives predicted >= moderate
    level_accuracy: float  # share of items whose predicted level equals the gold one
    mismatches: tuple[str, ...]  # "id: gold -> predicted" for wrong side of moderate/high
    items: tuple[ItemResult, ...]  # every item, in file order
    mean_ms: float  # mean `assess` CPU time per message (ms, thread CPU time: other load on
    # the machine does not inflate it)
    p99_ms: float  # 99th-percentile `assess` time per message (ms)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


def read_eval(path) -> list[dict]:
    """Items of a JSONL eval file, each with id, text, lang, level, categories (+ kind)."""
    path = Path(path)
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
        items.append({**item, "id": str(item.get("id", number)), "kind": str(item.get("kind", ""))})
    if not items:
        raise DataFormatError(f"{path}: no items; write one JSON object per line")
    return items


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def group_score(group: str, rows: list[ItemResult], signal: str | None = None) -> GroupScore:
    """Scores of ``rows`` using the combined level, or one signal's level."""

    def level(row: ItemResult) -> str:
        return row.predicted if signal is None else row.signals.get(signal, "none")

    crises = [r for r in rows if level_at_least(r.gold, "moderate")]
    severe = [r for r in rows if level_at_least(r.gold, "high")]
    negatives = [r for r in rows if not level_at_least(r.gold, "moderate")]
    return GroupScore(
        group=group,
        crises=len(crises),
        recall=_ratio(sum(level_at_least(level(r), "moderate") for r in crises), len(crises)),
        severe=len(severe),
        escalation_recall=_ratio(
            sum(level_at_least(level(r), "high") for r in severe), len(severe)
        ),
        negatives=len(negatives),
        fp_moderate=_ratio(
            sum(level_at_least(level(r), "moderate") for r in negatives), len(negatives)
        ),
        fp_low=_ratio(sum(level_at_least(level(r), "low") for r in negatives), len(negatives)),
    )


def groups_of(rows: list[ItemResult], signal: str | None = None) -> tuple[GroupScore, ...]:
    """Scores overall, per language, and per language and kind."""
    keys = ["all", *LANGS] + sorted({f"{r.lang}:{r.kind}" for r in rows if r.kind})
    return tuple(
        group_score(key, [r for r in rows if key in ("all", r.lang, f"{r.lang}:{r.kind}")], signal)
        for key in keys
    )


def _wrong(row: ItemResult) -> bool:
    """The prediction is on the wrong side of "moderate", or misses a high+ escalation."""
    crisis = level_at_least(row.gold, "moderate")
    if crisis != level_at_least(row.predicted, "moderate"):
        return True
    return level_at_least(row.gold, "high") and not level_at_least(row.predicted, "high")


def evaluate(path=None) -> SafetyEvalResult:
    """Run `assess` on every item of a labelled JSONL file (default: the packaged set).

    Raises DataFormatError for a missing or bad file.
    """
    if path is None:
        path = importlib.resources.files("carellm") / "resources" / "safety_eval.jsonl"
    items = read_eval(path)
    assess("warm-up")  # compile the rules outside the timed loop
    rows, times = [], []
    for item in items:
        start = time.thread_time()
        result = assess(item["text"], lang=item["lang"])
        times.append((time.thread_time() - start) * 1000.0)
        rows.append(
            ItemResult(
                item["id"], item["lang"], item["kind"], item["level"], result.level,
                dict(result.signals), result.matched, item["text"],
            )
        )  # fmt: skip
    confusion = [[0] * len(LEVELS) for _ in LEVELS]
    for row in rows:
        confusion[LEVELS.index(row.gold)][LEVELS.index(row.predicted)] += 1
    groups = groups_of(rows)
    times.sort()
    return SafetyEvalResult(
        path=str(path),
        n_items=len(rows),
        groups=groups,
        confusion=tuple(tuple(row) for row in confusion),
        crisis_recall=groups[0].escalation_recall,
        false_positive_rate=groups[0].fp_moderate,
        level_accuracy=sum(r.gold == r.predicted for r in rows) / len(rows),
        mismatches=tuple(f"{r.id}: {r.gold} -> {r.predicted}" for r in rows if _wrong(r)),
        items=tuple(rows),
        mean_ms=sum(times) / len(times),
        p99_ms=times[min(len(times) - 1, int(0.99 * len(times)))],
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_groups(groups: tuple[GroupScore, ...], title: str = "") -> list[str]:
    """Fixed-width table lines of group scores."""
    lines = [title] if title else []
    lines.append(
        f"{'group':<30} {'crises':>6} {'recall@mod':>10} {'severe':>6} {'escal@high':>10}"
        f" {'negatives':>9} {'fp@mod':>6} {'fp@low':>6}"
    )
    for g in groups:
        lines.append(
            f"{g.group:<30} {g.crises:>6} {_fmt(g.recall):>10} {g.severe:>6}"
            f" {_fmt(g.escalation_recall):>10} {g.negatives:>9} {_fmt(g.fp_moderate):>6}"
            f" {_fmt(g.fp_low):>6}"
        )
    return lines


def format_eval(result: SafetyEvalResult) -> str:
    """Plain-text tables: scores per language and kind, the level confusion, the timing."""
    lines = [f"safety eval: {result.path} ({result.n_items} items)", ""]
    lines += format_groups(result.groups)
    rows = list(result.items)
    signals = sorted({name for r in rows for name in r.signals})
    lines += ["", "each signal alone (text: the rules after the veto; classifier: the classifier)"]
    lines += format_groups(tuple(group_score(name, rows, name) for name in signals))
    lines += ["", "levels: gold (rows) x predicted (columns)"]
    lines.append(" " * 9 + "".join(f"{level:>9}" for level in LEVELS))
    for level, row in zip(LEVELS, result.confusion):
        lines.append(f"{level:<9}" + "".join(f"{n:>9}" for n in row))
    overall = result.groups[0]
    lines += [
        "",
        f"crisis recall (gold >= moderate predicted >= moderate): {_fmt(overall.recall)}",
        f"escalation recall (gold >= high predicted >= high): {_fmt(overall.escalation_recall)}",
        f"false-positive rate (negatives predicted >= moderate): {_fmt(overall.fp_moderate)}"
        f"  (>= low: {_fmt(overall.fp_low)})",
        f"level accuracy: {_fmt(result.level_accuracy)}",
        f"assess CPU time per message (one thread): mean {result.mean_ms:.3f} ms, p99 {result.p99_ms:.3f} ms",
    ]
    lines += [f"  wrong {m}" for m in result.mismatches]
    return "\n".join(lines)


def write_items(rows, path) -> None:
    """The item-level table as tab-separated values (one row per item, with a header)."""
    signals = sorted({name for r in rows for name in r.signals})
    header = ["id", "lang", "kind", "gold", "predicted", *signals, "wrong", "matched", "message"]
    lines = ["\t".join(header)]
    for r in rows:
        cells = [r.id, r.lang, r.kind, r.gold, r.predicted]
        cells += [r.signals.get(name, "-") for name in signals]
        cells += ["x" if _wrong(r) else "", " | ".join(r.matched), r.text]
        lines.append("\t".join(c.replace("\t", " ").replace("\n", " ") for c in cells))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
