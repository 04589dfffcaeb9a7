"""The lite tier on llama.cpp: GGUF chat models on a CPU, same Session API.

``engine`` loads a GGUF (path or hub id) as a `LlamaEngine`; ``session`` runs its
turns; ``runtime`` is the thin layer over llama.cpp's C API (prefill, branches for the
report, decoding); ``convert`` writes a Qwen2 folder as GGUF and quantizes it;
``plan`` chooses the model size that fits the RAM. Needs ``pip install 'carellm[cpu]'``
(llama-cpp-python); nothing here imports it before a model is loaded.
"""

from carellm.lite.engine import LlamaEngine, is_gguf, load_gguf
from carellm.lite.runtime import INSTALL_HINT, RuntimeOptions

__all__ = ["INSTALL_HINT", "LlamaEngine", "RuntimeOptions", "is_gguf", "load_gguf"]
