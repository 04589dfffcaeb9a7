"""The Gradio counseling demo: `build_app(engine)` lays out the page and wires events.

    engine = carellm.load("auto")
    build_app(engine).launch()            # or `carellm demo`, or demos/counseling_demo.py

Nothing loads at import. Each browser tab keeps its own `ChatState` (and Session) in a
``gr.State``; the engine is shared and the queue runs one turn at a time, showing each
waiting user their place. Handlers live in `carellm.demo.handlers`, rendering in
`carellm.demo.views`, ZeroGPU support in `carellm.demo.spaces`.
"""

from __future__ import annotations

import logging

from carellm.demo import views
from carellm.demo.handlers import OUTPUTS, Handlers
from carellm.prompts import PERSONAS, VOICES

logger = logging.getLogger(__name__)

QUEUE_SIZE = 32  # waiting turns beyond this are refused with "queue full"
MAX_UPLOAD = (
    "1gb"  # Gradio's cap; the engine's own per-kind limits (200 MiB audio/image) apply after
)
CACHE_PURGE = (60, 60)  # s: how often Gradio purges its upload cache, and the age purged
CSS = "#crisis-banner {margin-bottom: 8px}  #status {min-height: 1.5em}"


def build_app(engine, *, plan=None, session_kwargs: dict | None = None):
    """The demo as a ``gr.Blocks`` (queued, not launched).

    ``plan``: a `carellm.Plan` (or its ``to_dict()``) shown in the model panel.
    ``session_kwargs``: extra `Engine.session` keywords for every tab (seed,
    max_new_tokens, language, region...).
    """
    import gradio as gr

    handlers = Handlers(engine, session_kwargs)
    plan_dict = plan.to_dict() if hasattr(plan, "to_dict") else plan
    # Gradio keeps uploads and recordings in its temp folder: purge them every minute
    # (files older than a minute) and on shutdown; send no usage analytics.
    with gr.Blocks(
        title="CareLLM counseling demo", delete_cache=CACHE_PURGE, analytics_enabled=False
    ) as demo:
        gr.Markdown("# CareLLM · multimodal counseling research demo")
        if engine.info.tiny:
            gr.HTML(views.TINY_WARNING)
        gr.Markdown(views.DISCLAIMER, elem_id="disclaimer")
        banner = gr.HTML(visible=False, elem_id="crisis-banner")
        with gr.Row():
            with gr.Column(scale=3):
                parts = _conversation_column(gr, engine)
            with gr.Column(scale=2):
                parts |= _side_panel(gr, engine, plan_dict)
        parts["banner"] = banner
        parts["state"] = gr.State(None)  # a ChatState per tab, made on its first turn
        _wire(gr, handlers, parts)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo


def _conversation_column(gr, engine) -> dict:
    """Chat, spoken reply, message box, buttons, uploads and settings."""
    p = {}
    p["chat"] = gr.Chatbot(label="Conversation", height=420, elem_id="chat")
    p["speech"] = gr.Audio(
        label="Spoken reply (plays sentence by sentence)", streaming=True, autoplay=True,
        interactive=False, elem_id="speech-out",
    )  # fmt: skip
    p["text"] = gr.Textbox(
        placeholder="Type how you feel, or attach a voice note / video / photo below, "
        "then press Enter",
        show_label=False, lines=1, max_lines=6, elem_id="message",
    )  # fmt: skip
    with gr.Row():
        p["send"] = gr.Button("Send", variant="primary", elem_id="send")
        p["reset"] = gr.Button("Reset", elem_id="reset")
        p["export"] = gr.Button("Export session (.zip)", elem_id="export")
    p["status"] = gr.Markdown(elem_id="status")
    p["download"] = gr.File(label="Exported session", height=60, elem_id="download")
    with gr.Accordion("Attach voice, video or a photo", open=True):
        with gr.Row():
            p["audio"] = gr.Audio(sources=["microphone", "upload"], type="filepath",
                                  label="Voice (record or upload)", elem_id="audio-in")  # fmt: skip
            p["video"] = gr.Video(sources=["webcam", "upload"], include_audio=True,
                                  label="Video (its sound is heard too)", elem_id="video-in")  # fmt: skip
            p["image"] = gr.Image(sources=["upload", "clipboard"], type="filepath",
                                  label="Photo", elem_id="image-in")  # fmt: skip
    with gr.Row():
        p["persona"] = gr.Dropdown([(x.title, x.name) for x in PERSONAS.values()],
                                   value="counselor", label="Persona")  # fmt: skip
        p["voice"] = gr.Dropdown(list(VOICES), value=VOICES[0], label="Voice")
        p["speak"] = gr.Checkbox(
            value=engine.speech, interactive=engine.speech, label="Speech reply",
            info=None if engine.speech else "loaded without a talker (--no-speech)",
            elem_id="speech-reply",
        )  # fmt: skip
    return p


def _side_panel(gr, engine, plan_dict) -> dict:
    """Current emotion, the session's trajectory and the model plan."""
    p = {}
    gr.Markdown("### Current emotion · 当前情绪")
    p["emotion"] = gr.Markdown(views.NO_REPORT, elem_id="emotion-panel")
    p["trajectory"] = gr.LinePlot(
        views.trajectory_frame([]), x="turn", y="value", color="series",
        tooltip=["primary"], y_lim=[-1, 1], title="Valence / arousal per turn",
        x_title="turn", y_title="", height=220, elem_id="trajectory",
    )  # fmt: skip
    p["trajectory_caption"] = gr.Markdown(elem_id="trajectory-caption")
    with gr.Accordion("Model plan", open=False):
        gr.Markdown(views.plan_panel(engine.info, plan_dict), elem_id="plan")
    return p


def _wire(gr, handlers: Handlers, p: dict) -> None:
    inputs = [p[k] for k in ("text", "audio", "video", "image", "persona", "voice", "speak")]
    inputs.append(p["state"])
    outputs = [p[name] for name in OUTPUTS]
    for trigger in (p["text"].submit, p["send"].click):
        trigger(handlers.respond, inputs, outputs, show_progress="minimal")
    p["reset"].click(handlers.reset, [p["state"]], outputs)
    p["export"].click(handlers.export, [p["state"]], [p["download"]])


def launch(demo, *, host: str | None = "127.0.0.1", port: int | None = 7860,
           share: bool = False, **kwargs):  # fmt: skip
    """``demo.launch`` with the demo's upload cap; host None lets Gradio decide (Spaces)."""
    return demo.launch(server_name=host, server_port=port, share=share,
                       max_file_size=MAX_UPLOAD, css=CSS, **kwargs)  # fmt: skip


__all__ = ["build_app", "launch"]
