"""`carellm eval emotion`: the model chooses a label from the dataset's own label set.

Each item is one turn: the user's text (and, for MELD's ``audio``/``video`` modes, the
clip) is prefilled once with CareLLM's system prompt, then every label is scored as the
continuation of ``"Which emotion ...? Answer:"`` on a branch of that cache
(`carellm.generation.score_candidates`, as the per-turn report does). The label with
the highest total log-probability is the prediction.

Multi-label gold (GoEmotions): a prediction is correct when it is any of the gold
labels. For F1 and the confusion matrix each item is reduced to one gold label: the
predicted one when it is in the gold set, else the first gold label ("best match").
Accuracy is then the plain accuracy of those pairs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from carellm import generation
from carellm.errors import InputError
from carellm.evaluation import common as evaluation

logger = logging.getLogger(__name__)

MODES = ("text", "audio", "video")  # what of a MELD clip the model gets
DEFAULT_LABELS = {"goemotions": "goemotions", "empathetic_dialogues": "ed32", "meld": "meld7"}
QUESTION = "Which emotion does the user express in their last message? Choose one of: {}. Answer:"
OPENING = "<|im_start|>assistant\n"
# Published anchors printed beside a result: (label set, format) -> text.
ANCHORS = {
    ("goemotions", "goemotions"): "GoEmotions BERT baseline macro-F1 0.46",
    ("ekman", "goemotions"): "GoEmotions BERT baseline (Ekman) macro-F1 0.64",
    ("sentiment", "goemotions"): "GoEmotions BERT baseline (sentiment) macro-F1 0.69",
    ("meld7", "meld"): "MELD accuracy: Qwen2.5-Omni-7B 0.570, Qwen2.5-Omni-3B 0.558",
}


@dataclass(frozen=True)
class EmotionEvalOptions:
    model: str  # folder, hub id or "tiny" (ignored when an engine is passed)
    data: Path  # dataset file or folder
    format: str  # goemotions | empathetic_dialogues | meld | records
    labels: str | None = None  # label set name (record.labels key); None: format default
    mode: str = "text"  # text | audio | video (MELD clips or records' media parts)
    out: Path | None = None  # items.jsonl, metrics.json, confusion.png; None: nothing written
    limit: int | None = None  # first N usable items
    seed: int = 0
    device: str | None = None
    progress: bool = True


def label_set(name: str, fmt: str, records: list) -> tuple[str, ...]:
    """The candidates: the dataset's own label set for ``name``."""
    from carellm.data import ED32_LABELS, MELD7_LABELS
    from carellm.data.meld import SENTIMENT_LABELS as MELD_SENTIMENT
    from carellm.emotion.taxonomy import EKMAN_LABELS, GOEMOTIONS_LABELS, SENTIMENT_LABELS

    if fmt == "meld" and name == "sentiment":
        return MELD_SENTIMENT
    known = {"goemotions": GOEMOTIONS_LABELS, "ekman": EKMAN_LABELS, "sentiment": SENTIMENT_LABELS,
             "ed32": ED32_LABELS, "meld7": MELD7_LABELS}  # fmt: skip
    if name in known:
        return known[name]
    found = sorted({g for r in records for g in gold_labels(r, name)})
    if not found:
        raise InputError("labels", f"no record has labels[{name!r}]; pass --labels with a key")
    return tuple(found)


def gold_labels(record, name: str) -> list[str]:
    value = record.labels.get(name)
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def turn_for(record, mode: str):
    """The `Turn` of an item (None when its mode's media is missing)."""
    from carellm.data.records import text_of
    from carellm.turn import Turn

    users = [m for m in record.messages if m["role"] == "user"]
    text = "\n".join(text_of(m["content"]) for m in users).strip()
    if mode == "text":
        return Turn(text=text)
    parts = [p for m in users if isinstance(m["content"], list) for p in m["content"]]
    clip = record.meta.get("clip") or next(
        (p.get("video") or p.get("audio") for p in parts if p["type"] in ("video", "audio")), None
    )
    if clip is None:
        return None
    return Turn(text=text, audio=clip) if mode == "audio" else Turn(text=text, video=clip)


def choose(engine, turn, labels: tuple[str, ...]) -> tuple[str, list[float]]:
    """(predicted label, log-probability of each label) for one turn."""
    from carellm.prompts import build_inputs, get_persona, system_prompt
    from carellm.turn import prepare

    prepared = prepare(turn)
    with engine.lock:
        inputs = build_inputs(engine, system_prompt(get_persona("counselor")), [], prepared)
        pre = generation.prefill(
            engine.thinker, inputs.tensors, keep_hidden=False,
            use_audio_in_video=inputs.use_audio_in_video,
        )  # fmt: skip
        question = engine.encode(OPENING + QUESTION.format(", ".join(labels)))
        candidates = [engine.encode(" " + label) for label in labels]
        scores = generation.score_candidates(engine.thinker, pre, [(question, candidates)])
    best = max(range(len(labels)), key=lambda i: scores[0][i])
    return labels[best], scores[0]


def run_emotion(options: EmotionEvalOptions, engine=None) -> dict:
    """Score every item (resuming from ``out/items.jsonl``); return the metrics dict."""
    from tqdm.auto import tqdm

    from carellm.data import load

    if options.mode not in MODES:
        raise InputError("mode", f"unknown mode {options.mode!r}; use one of {', '.join(MODES)}")
    generation.seed_everything(options.seed)
    name = options.labels or DEFAULT_LABELS.get(options.format)
    records = list(load(options.data, options.format))
    if name is None:
        name = next((k for r in records for k in r.labels), None) or "emotion"
    labels = label_set(name, options.format, records)
    items = [r for r in records if any(g in labels for g in gold_labels(r, name))]
    items = items[: options.limit] if options.limit else items
    if engine is None:
        import carellm

        engine = carellm.load(options.model, speech=False, device=options.device)
    log = evaluation.ResultLog(options.out)
    skipped = 0
    for record in tqdm(items, desc="emotion", disable=not options.progress):
        if log.done(record.id):
            continue
        turn = turn_for(record, options.mode)
        if turn is None:
            skipped += 1
            continue
        pred, _ = choose(engine, turn, labels)
        gold = [g for g in gold_labels(record, name) if g in labels]
        log.add({"id": record.id, "gold": gold, "pred": pred, "correct": pred in gold})
    if skipped:
        logger.warning("%d item(s) lack a clip for mode %s: skipped", skipped, options.mode)
    return summarize(log, items, labels, name, options)


def summarize(log, items, labels, name: str, options: EmotionEvalOptions) -> dict:
    ids = {r.id for r in items}
    rows = [row for key, row in log.rows.items() if key in ids]
    gold = [row["pred"] if row["pred"] in row["gold"] else row["gold"][0] for row in rows]
    pred = [row["pred"] for row in rows]
    metrics = evaluation.classification_metrics(gold, pred, labels) if rows else {"n": 0}
    metrics.update(
        label_set=name, format=options.format, mode=options.mode, data=str(options.data),
        anchor=ANCHORS.get((name, options.format), ""), candidates=list(labels),
    )  # fmt: skip
    if options.out is not None and rows:
        out = Path(options.out)
        evaluation.write_json(out / "metrics.json", metrics)
        evaluation.plot_confusion(
            metrics["confusion"], metrics["labels"], out / "confusion.png",
            f"{options.format} / {name} ({options.mode})",
        )  # fmt: skip
    return metrics


def format_emotion(metrics: dict) -> str:
    """Headline numbers, the published anchor and per-class F1 as text."""
    if not metrics.get("n"):
        return "no items scored"
    head = evaluation.format_table(
        [[metrics["n"], metrics["accuracy"], metrics["macro_f1"], metrics["weighted_f1"]]],
        ["items", "accuracy", "macro-F1", "weighted-F1"],
    )
    per_class = evaluation.format_table(
        [[k, v] for k, v in metrics["per_class_f1"].items()], ["label", "F1"]
    )
    anchor = f"\npublished anchor: {metrics['anchor']}" if metrics["anchor"] else ""
    return f"{head}{anchor}\n\n{per_class}"
