"""`carellm eval safety --model M`: the rules, the model's scored risk and their combination.

Each item runs as a one-turn session (speech off, a short reply, ``report=False``): the
turn's `SafetyAssessment.signals` hold the rules' level on the text ("text") and the
model's ("model", see `carellm.assessment`); the combination is the turn's ``level``.
The three are scored with the definitions of `carellm.evaluation.safety`. On the tiny
random model the pipeline runs end to end but the model's numbers mean nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from carellm.evaluation.safety import (
    GroupScore,
    ItemResult,
    format_groups,
    groups_of,
    read_eval,
    write_items,
)

logger = logging.getLogger(__name__)

SIGNALS = ("text", "model", "combined")  # what the table compares


@dataclass(frozen=True)
class ModelSafetyResult:
    """Scores of the rules, the model and their combination on one labelled set."""

    path: str  # the file evaluated
    model: str  # the model evaluated
    tiny: bool  # True for the tiny random test model: its numbers are meaningless
    threshold: float  # P(high) + P(imminent) from which the model escalates
    groups: dict[str, tuple[GroupScore, ...]]  # per SIGNALS name: all, zh, en, per kind
    items: tuple[ItemResult, ...]  # every item, in file order
    model_missing: int  # items whose model scoring failed (no "model" signal)
    seconds_per_item: float  # mean wall time of one turn (s)


def evaluate_with_model(
    data, model: str, *, device: str | None = None, max_new_tokens: int = 8, engine=None
) -> ModelSafetyResult:
    """Run every item of ``data`` as a one-turn session of ``model`` (or a loaded ``engine``).

    Raises DataFormatError for a bad file and the loader's errors for a bad model.
    """
    from carellm.assessment import MODEL_ESCALATION_THRESHOLD
    from carellm.turn import Turn

    items = read_eval(data)
    if engine is None:
        import carellm

        engine = carellm.load(model, speech=False, device=device)
    rows, start = [], time.perf_counter()
    for item in items:
        session = engine.session(speech=False, seed=0, max_new_tokens=max_new_tokens)
        safety = session.respond(Turn(text=item["text"]), report=False).safety
        rows.append(
            ItemResult(
                item["id"], item["lang"], item["kind"], item["level"], safety.level,
                {**safety.signals, "combined": safety.level}, safety.matched, item["text"],
            )
        )  # fmt: skip
    return ModelSafetyResult(
        path=str(data), model=model, tiny=bool(getattr(engine.info, "tiny", False)),
        threshold=MODEL_ESCALATION_THRESHOLD,
        groups={name: groups_of(rows, name) for name in SIGNALS},
        items=tuple(rows), model_missing=sum("model" not in r.signals for r in rows),
        seconds_per_item=(time.perf_counter() - start) / len(rows),
    )  # fmt: skip


def format_model_eval(result: ModelSafetyResult) -> str:
    """Plain-text tables: rules only, model only and combined, then a summary."""
    lines = [f"safety eval with model {result.model}: {result.path} ({len(result.items)} items)"]
    if result.tiny:
        lines.append(
            "NOTE: tiny random test model: the model's numbers are meaningless "
            "(this run only checks the pipeline)."
        )
    titles = {"text": "rules only (text signal)", "model": "model only (model signal)",
              "combined": "combined (level = max of signals)"}  # fmt: skip
    for name in SIGNALS:
        lines += ["", *format_groups(result.groups[name][:3], titles[name])]
    lines += [
        "",
        f"model escalation threshold P(high)+P(imminent) >= {result.threshold}",
        f"items without a model signal (scoring failed): {result.model_missing}",
        f"seconds per turn: {result.seconds_per_item:.2f}",
    ]
    return "\n".join(lines)


def write_model_eval(result: ModelSafetyResult, out) -> Path:
    """OUT/items.tsv (item table with text/model/combined levels) and OUT/summary.txt."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_items(result.items, out / "items.tsv")
    summary = [format_model_eval(result), ""]
    for name in SIGNALS:
        summary += ["", *format_groups(result.groups[name], f"{name}: per language and kind")]
    (out / "summary.txt").write_text("\n".join(summary) + "\n", encoding="utf-8")
    return out
