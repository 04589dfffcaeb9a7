"""`load(path, format=...)`: one entry point over every dataset reader."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from carellm.data.empathetic_dialogues import read_empathetic_dialogues
from carellm.data.goemotions import read_goemotions
from carellm.data.meld import read_meld
from carellm.data.records import RecordStream, read_records
from carellm.data.soulchat import read_soulchat
from carellm.errors import DataFormatError

_READERS: dict[str, Callable[..., RecordStream]] = {
    "goemotions": read_goemotions,
    "empathetic_dialogues": read_empathetic_dialogues,
    "soulchat": read_soulchat,
    "meld": read_meld,
    "records": read_records,
}
FORMATS: tuple[str, ...] = tuple(_READERS)  # names accepted by `load`


def load(
    path: str | os.PathLike, format: str, progress: bool = False, **options: Any
) -> RecordStream:
    """Open a dataset in the named format as a lazy `RecordStream`.

    `options` go to that format's reader (e.g. ``clips=`` for MELD, ``min_raters=`` for
    GoEmotions). The path is checked now; records are read while iterating, and
    ``stream.skipped`` lists what could not be used.
    """
    reader = _READERS.get(format)
    if reader is None:
        raise DataFormatError(
            f"unknown dataset format {format!r}; use one of: {', '.join(FORMATS)}"
        )
    accepted = set(inspect.signature(reader).parameters) - {"path", "progress"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise DataFormatError(
            f"format {format!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(accepted)) or 'none'}"
        )
    return reader(path, progress=progress, **options)
