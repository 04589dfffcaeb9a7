"""CareLLM's exceptions.

Every error a user can cause raises a `CareLLMError` subclass whose message is one
line saying what is wrong and what to do about it. Causes are chained with
``raise ... from e`` so a developer still sees the original traceback.
"""

from __future__ import annotations


class CareLLMError(Exception):
    """Base class of every error CareLLM raises on purpose."""


class InputError(CareLLMError, ValueError):
    """A turn's input (text, audio, image, video) cannot be used.

    ``field`` names the part of the turn at fault ("text", "audio", "image", "video").
    """

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class ModelLoadError(CareLLMError):
    """A model, processor or adapter could not be found or loaded."""


class MemoryPlanError(CareLLMError):
    """No model/settings combination fits the machine's memory."""


class DataFormatError(CareLLMError, ValueError):
    """A dataset file is missing or is not in the format its loader expects."""


class ReportError(CareLLMError, ValueError):
    """An emotion report (or its input) is invalid; ``field`` names the part at fault."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")


class RemoteError(CareLLMError):
    """The remote server refused the request or could not be reached."""
