"""Evaluation scripts behind `carellm eval`: ``emotion`` (labelled emotion sets),
``replies`` (held-out counseling dialogues), ``latency`` (per-stage timings), ``safety``
(the crisis rules on a labelled set); ``common`` holds the shared metrics and tables.
Import the submodule you need: emotion, replies and latency load torch."""
