"""Hugging Face Spaces entry point (README front matter: sdk gradio, app_file app.py).

Loads the model the memory planner picks for the Space's hardware ("auto"), or the one
named by the CARELLM_MODEL variable (a hub id, a folder or "tiny"), and serves the
counseling demo. On ZeroGPU hardware each turn holds a GPU only while it runs
(carellm.demo.spaces). The one-click examples are the files in assets/ beside this
script (found from its own location, whatever the working directory). Locally:
`python app.py` (or `carellm demo`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"  # the example media (assets/README.md)


def main() -> None:
    from carellm.demo.spaces import on_zero_gpu

    if on_zero_gpu():
        import spaces  # noqa: F401  (must be imported before CUDA is initialised)

    import carellm
    from carellm.demo import build_app, launch
    from carellm.planning import plan_for_model

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model = os.environ.get("CARELLM_MODEL", "auto")
    speech = os.environ.get("CARELLM_SPEECH", "1") not in ("0", "false", "no")
    plan = plan_for_model(model, speech)
    if plan is not None:
        print(f"memory plan: {plan.model} ({plan.dtype}), {plan.estimated_peak_gb:.1f} GiB "
              f"peak of {plan.budget_gb:.1f} GiB: {'; '.join(plan.reasons)}")  # fmt: skip
    engine = carellm.load(model, speech=speech)
    print(f"model: {engine.info.model} on {engine.info.device} ({engine.info.dtype})")
    # host None: Gradio binds GRADIO_SERVER_NAME, which Spaces sets to 0.0.0.0.
    launch(build_app(engine, plan=plan, examples=ASSETS), host=None, port=None)


if __name__ == "__main__":
    main()
