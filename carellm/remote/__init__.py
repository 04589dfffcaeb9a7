"""The same Session API over an OpenAI-compatible server (`load(..., backend="openai")`):
``client`` holds `RemoteEngine`/`RemoteSession` (history, report, safety stay here, on the
client), ``wire`` reads and writes each engine's wire format (vLLM-Omni, vLLM, OpenAI,
`carellm serve`). Torch-free."""

from carellm.errors import RemoteError
from carellm.remote.client import RemoteEngine, RemoteInfo, RemoteSession

__all__ = ["RemoteEngine", "RemoteError", "RemoteInfo", "RemoteSession"]
