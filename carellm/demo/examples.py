"""One-click examples from the repository's ``assets/`` folder (see assets/README.md).

Each example fills the message box (text plus one file) and runs the turn. The folder
is found from the package's location (``<repo>/assets`` beside ``carellm/``), never from
the working directory, so ``python app.py`` works from anywhere. There is no crisis
example on purpose: a click must not set off escalation (assets/README.md says why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    label: str  # what the button says
    file: str  # file name inside the assets folder
    text: str = ""  # typed with the file, if anything


EXAMPLES = (
    Example("🎤 Calm voice · English", "voice_calm_en.wav"),
    Example("🎤 Stressed voice · English", "voice_stressed_en.flac"),
    Example("🎤 平静的语音 · 中文", "voice_calm_zh.mp3"),
    Example("🎤 有压力的语音 · 中文", "voice_stressed_zh.ogg"),
    Example("🖼️ Tired photo", "photo_tired.jpg", "This is me tonight, still at my desk."),
    Example("🎬 Stressed video", "video_stressed_en.mp4"),
)


def assets_dir() -> Path:
    """``assets/`` at the root of the repository this package was loaded from."""
    return Path(__file__).resolve().parents[2] / "assets"


def example_rows(folder: Path | str | None = None) -> tuple[list[list[dict]], list[str]]:
    """(rows, labels) for ``gr.Examples`` with the message box as its only input.

    Rows hold MultimodalTextbox values ``{"text", "files": [absolute path]}``; examples
    whose file is missing are left out (logged), so an install without ``assets/``
    (e.g. from a wheel) simply shows none.
    """
    folder = Path(folder) if folder is not None else assets_dir()
    rows, labels = [], []
    for example in EXAMPLES:
        path = folder / example.file
        if not path.is_file():
            logger.info("example %s not shown: %s is missing", example.label, path)
            continue
        rows.append([{"text": example.text, "files": [str(path)]}])
        labels.append(example.label)
    return rows, labels


__all__ = ["EXAMPLES", "Example", "assets_dir", "example_rows"]
