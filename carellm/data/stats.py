"""Summary numbers of a record set: counts, turns per dialogue, message lengths by role,
label distributions; and a plain-text table of them."""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from carellm.data.records import ROLES, ChatRecord, read_records, text_of


@dataclass(frozen=True)
class Summary:
    """Mean, median and maximum of a list of counts (all 0 for an empty list)."""

    count: int  # how many values
    mean: float
    median: float
    max: int

    @classmethod
    def of(cls, values: list[int]) -> Summary:
        if not values:
            return cls(0, 0.0, 0.0, 0)
        return cls(len(values), statistics.fmean(values), statistics.median(values), max(values))


@dataclass(frozen=True)
class DatasetStats:
    """What `stats` measures. Lengths are in characters of text (media parts not counted)."""

    records: int  # dialogues / labelled utterances
    messages: int  # chat messages, system ones included
    sources: dict[str, int]  # records per source format
    turns: Summary  # non-system messages per record
    chars_by_role: dict[str, Summary]  # per-message text length, for roles present
    media: dict[str, int]  # audio/video/image parts across all messages
    labels: dict[str, dict[str, int]]  # label set -> label -> records carrying it


def stats(source: str | os.PathLike | Iterable[ChatRecord]) -> DatasetStats:
    """Measure a records JSONL file (path) or any iterable of ChatRecords."""
    records = read_records(source) if isinstance(source, (str, Path)) else source
    count = messages = 0
    sources: Counter[str] = Counter()
    turns: list[int] = []
    lengths: dict[str, list[int]] = {}
    media: Counter[str] = Counter()
    labels: dict[str, Counter[str]] = {}
    for record in records:
        count += 1
        messages += len(record.messages)
        sources[record.source] += 1
        turns.append(sum(m["role"] != "system" for m in record.messages))
        for message in record.messages:
            lengths.setdefault(message["role"], []).append(len(text_of(message["content"])))
            if isinstance(message["content"], list):
                media.update(p["type"] for p in message["content"] if p["type"] != "text")
        for name, value in record.labels.items():
            values = value if isinstance(value, list) else [value]
            labels.setdefault(name, Counter()).update(str(v) for v in values)
    return DatasetStats(
        records=count,
        messages=messages,
        sources=dict(sources.most_common()),
        turns=Summary.of(turns),
        chars_by_role={r: Summary.of(lengths[r]) for r in ROLES if r in lengths},
        media=dict(sorted(media.items())),
        labels={name: dict(c.most_common()) for name, c in sorted(labels.items())},
    )


def format_stats(result: DatasetStats) -> str:
    """A plain-text report: totals, a per-role length table, then each label set."""
    lines = [
        f"records   {result.records}",
        f"messages  {result.messages}",
        "sources   " + (", ".join(f"{k} {v}" for k, v in result.sources.items()) or "-"),
        f"turns     mean {result.turns.mean:.2f}  median {result.turns.median:g}"
        f"  max {result.turns.max}",
    ]
    if result.media:
        lines.append("media     " + ", ".join(f"{k} {v}" for k, v in result.media.items()))
    lines += ["", _table(
        ("role", "messages", "mean chars", "median chars", "max chars"),
        [(role, s.count, f"{s.mean:.1f}", f"{s.median:g}", s.max)
         for role, s in result.chars_by_role.items()],
    )]  # fmt: skip
    for name, counts in result.labels.items():
        total = sum(counts.values())
        rows = [(label, n, f"{100 * n / total:.1f}%") for label, n in counts.items()]
        lines += ["", f"labels: {name}", _table(("label", "count", "share"), rows)]
    return "\n".join(lines)


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    """Columns left-aligned for the first, right-aligned for the rest."""
    cells = [list(header)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    out = []
    for row in cells:
        first = row[0].ljust(widths[0])
        out.append(
            "  ".join([first] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)])
        )
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
