"""The Gradio counseling demo: `build_app(engine)` builds it, `launch` serves it.

``layout`` places the components and wires events (and the one API endpoint,
/respond), ``handlers`` runs turns for one browser tab or API client, ``views`` renders
reports/banners as Markdown/HTML, ``examples`` lists the one-click example media in
``assets/``, ``spaces`` adapts it to Hugging Face Spaces (ZeroGPU).
"""

from carellm.demo.layout import build_app, launch
from carellm.demo.spaces import on_gpu, on_zero_gpu

__all__ = ["build_app", "launch", "on_gpu", "on_zero_gpu"]
