"""What every evaluation shares: metrics, the resumable per-item log, seeds and plots.

The three evaluations live beside this module: `carellm.evaluation.emotion`
(label choice by scoring), `carellm.evaluation.replies` (generated replies against
references) and `carellm.evaluation.latency` (time to first audio, speed).

Metric definitions (all computed here, tested on hand-made cases):

* distinct-n: corpus level, ``100 × |unique n-grams| / |n-grams|`` over all replies
  together; tokens are words (lower-cased ``\\w+`` runs and single punctuation marks)
  with every CJK character its own token.
* BLEU and chrF: sacrebleu corpus scores (0-100); BLEU uses ``tokenize="zh"`` when most
  references contain CJK characters, else sacrebleu's default ``13a``.
* accuracy, macro-F1, weighted-F1, per-class F1: scikit-learn, over the labels that
  occur in the gold labels or the predictions (absent classes are not averaged in).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|\w+|[^\w\s]")
RESULTS_FILE = "items.jsonl"  # per-item results, one JSON object a line (resume reads it)


# ------------------------------------------------------------------ text metrics


def tokens(text: str) -> list[str]:
    """Words (lower-cased) and punctuation marks; each CJK character is one token."""
    return _TOKEN.findall(text.lower())


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Corpus-level distinct-n × 100 (0 when the corpus has no n-gram)."""
    grams = []
    for text in texts:
        words = tokens(text)
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 100.0 * len(set(grams)) / len(grams) if grams else 0.0


def is_chinese(texts: Sequence[str]) -> bool:
    """True when most texts contain a CJK character."""
    return sum(bool(_CJK.search(t)) for t in texts) * 2 > len(texts)


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu, 0-100) of one reference per hypothesis."""
    import sacrebleu

    tokenize = "zh" if is_chinese(references) else "13a"
    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize)
    chrf = sacrebleu.corpus_chrf(list(hypotheses), [list(references)])
    return {"bleu": float(bleu.score), "chrf": float(chrf.score), "bleu_tokenize": tokenize}


# ------------------------------------------------------------------ classification


def classification_metrics(gold: Sequence[str], pred: Sequence[str], order: Sequence[str]) -> dict:
    """Accuracy, macro/weighted F1, per-class F1 and the confusion matrix.

    ``order`` fixes the label order; only labels found in ``gold`` or ``pred`` are used.
    The confusion matrix has gold labels as rows and predictions as columns.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    seen = set(gold) | set(pred)
    labels = [label for label in order if label in seen]
    labels += sorted(seen - set(labels))
    per_class = f1_score(gold, pred, labels=labels, average=None, zero_division=0)
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(
            f1_score(gold, pred, labels=labels, average="weighted", zero_division=0)
        ),
        "per_class_f1": {label: float(f) for label, f in zip(labels, per_class)},
        "labels": labels,
        "confusion": confusion_matrix(gold, pred, labels=labels).tolist(),
    }


# ------------------------------------------------------------------ resumable log


class ResultLog:
    """Per-item results appended to ``out/items.jsonl``; a restart skips done ids.

    Without ``out`` it keeps results in memory only (nothing to resume).
    """

    def __init__(self, out: Path | None):
        self.path = Path(out) / RESULTS_FILE if out is not None else None
        self.rows: dict[str, dict] = {}
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by the interruption: that item runs again
                self.rows[str(row["id"])] = row
            logger.info("resuming: %d item(s) already in %s", len(self.rows), self.path)

    def done(self, item_id: str) -> bool:
        return item_id in self.rows

    def add(self, row: dict) -> None:
        self.rows[str(row["id"])] = row
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def plot_confusion(matrix: list[list[int]], labels: Sequence[str], path: Path, title: str):
    """Row-normalised confusion matrix as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.35 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A fixed-width text table."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
