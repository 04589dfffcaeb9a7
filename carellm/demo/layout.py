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
from carellm.demo.examples import example_rows
from carellm.demo.handlers import MEDIA_KINDS, OUTPUTS, Handlers
from carellm.prompts import PERSONAS, VOICES

logger = logging.getLogger(__name__)

QUEUE_SIZE = 32  # waiting turns beyond this are refused with "queue full"
MAX_UPLOAD = (
    "1gb"  # Gradio's cap; the engine's own per-kind limits (200 MiB audio/image) apply after
)
CACHE_PURGE = (60, 60)  # s: how often Gradio purges its upload cache, and the age purged
CSS = "#crisis-banner {margin-bottom: 8px}  #status {min-height: 1.5em}"


def build_app(engine, *, plan=None, session_kwargs: dict | None = None, examples=None):
    """The demo as a ``gr.Blocks`` (queued, not launched).

    ``plan``: a `carellm.Plan` (or its ``to_dict()``) shown in the model panel.
    ``session_kwargs``: extra `Engine.session` keywords for every tab (seed,
    max_new_tokens, language, region...).
    ``examples``: folder of the one-click example media; None: the repository's
    ``assets/`` (`carellm.demo.examples`), shown only when its files are there.
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
        _examples(gr, handlers, parts, examples)
        _api(gr, handlers, parts)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo


def _conversation_column(gr, engine) -> dict:
    """Chat, the message box (text, microphone, attachments), settings and buttons."""
    p = {}
    p["chat"] = gr.Chatbot(label="Conversation", height=400, elem_id="chat")
    p["message"] = gr.MultimodalTextbox(
        sources=["microphone", "upload"], file_types=list(MEDIA_KINDS), file_count="multiple",
        placeholder="Type how you feel, or press 🎤 to speak / 📎 to attach a voice note, "
        "photo or video, then Enter", show_label=False, lines=1, max_lines=6,
        elem_id="message",
    )  # fmt: skip
    p["status"] = gr.Markdown(elem_id="status")
    p["examples_slot"] = gr.Column()  # gr.Examples are placed here by _examples
    with gr.Row():
        p["persona"] = gr.Dropdown([(x.title, x.name) for x in PERSONAS.values()],
                                   value="counselor", label="Persona")  # fmt: skip
        p["voice"] = gr.Dropdown(list(VOICES), value=VOICES[0], label="Voice")
        p["speak"] = gr.Checkbox(
            value=engine.speech, interactive=engine.speech, label="Speech reply",
            info=None if engine.speech else "loaded without a talker (--no-speech)",
            elem_id="speech-reply",
        )  # fmt: skip
    with gr.Accordion("Webcam video or photo", open=False, elem_id="camera"):
        with gr.Row():
            p["video"] = gr.Video(sources=["webcam", "upload"], include_audio=True,
                                  label="Video (its sound is heard too)", elem_id="video-in")  # fmt: skip
            p["image"] = gr.Image(sources=["webcam", "upload", "clipboard"], type="filepath",
                                  label="Photo", elem_id="image-in")  # fmt: skip
    with gr.Row():
        p["reset"] = gr.Button("Reset", elem_id="reset")
        p["export"] = gr.Button("Export session (.zip)", elem_id="export")
    p["download"] = gr.File(label="Exported session", visible=False, elem_id="download")
    return p


def _side_panel(gr, engine, plan_dict) -> dict:
    """Spoken reply, current emotion, the session's trajectory and the model plan."""
    p = {}
    p["speech"] = gr.Audio(
        label="Spoken reply (plays sentence by sentence)", streaming=True, autoplay=True,
        interactive=False, elem_id="speech-out",
    )  # fmt: skip
    gr.Markdown("### Current emotion · 当前情绪")
    p["emotion"] = gr.Markdown(views.NO_REPORT, elem_id="emotion-panel")
    p["trajectory"] = gr.LinePlot(
        views.trajectory_frame([]), x="turn", y="value", color="series",
        tooltip="all", y_lim=[-1, 1], title="Valence / arousal per turn",
        x_title="turns, oldest → latest", x_axis_labels_visible=False,
        y_title="score", height=220, elem_id="trajectory",
    )  # fmt: skip
    p["trajectory_caption"] = gr.Markdown(elem_id="trajectory-caption")
    with gr.Accordion("Model plan", open=False):
        gr.Markdown(views.plan_panel(engine.info, plan_dict), elem_id="plan")
    return p


def _turn_inputs(p: dict) -> list:
    keys = ("message", "video", "image", "persona", "voice", "speak", "state")
    return [p[k] for k in keys]


def _wire(gr, handlers: Handlers, p: dict) -> None:
    """The page's events; none is an API endpoint (the API is `_api`'s /respond)."""
    outputs = [p[name] for name in OUTPUTS]
    # Private events still take names; explicit ones keep "respond" free for the API.
    p["message"].submit(handlers.respond, _turn_inputs(p), outputs, show_progress="minimal",
                        api_name="page_turn", api_visibility="private")  # fmt: skip
    p["reset"].click(handlers.reset, [p["state"]], outputs, api_name="page_reset",
                     api_visibility="private")  # fmt: skip
    p["export"].click(_show_export(gr, handlers), [p["state"]], [p["download"]],
                      api_name="page_export", api_visibility="private")  # fmt: skip


def _show_export(gr, handlers: Handlers):
    def export(state):
        path = handlers.export(state)
        return gr.update(value=path, visible=path is not None)

    return export


def _examples(gr, handlers: Handlers, p: dict, folder) -> None:
    """One-click examples under the message box: clicking fills it and runs the turn."""
    rows, labels = example_rows(folder)
    if not rows:
        return
    with p["examples_slot"]:
        examples = gr.Examples(rows, [p["message"]], label="Try an example (synthetic voices and pictures)",
                               example_labels=labels, examples_per_page=len(rows),
                               api_name="page_example", api_visibility="private",
                               elem_id="examples")  # fmt: skip
    outputs = [p[name] for name in OUTPUTS]
    examples.load_input_event.then(handlers.respond, _turn_inputs(p), outputs,
                                   show_progress="minimal", api_name="page_example_turn",
                                   api_visibility="private")  # fmt: skip


def _api(gr, handlers: Handlers, p: dict) -> None:
    """The one API endpoint, /respond (see doc/demo.md): hidden components carry its
    parameters and results, named after `Handlers.api_respond`'s arguments."""
    with gr.Column(visible=False):
        inputs = [
            gr.Textbox(label="text"),
            gr.Audio(type="filepath", label="audio"),
            gr.Image(type="filepath", label="image"),
            gr.Video(label="video"),
            p["persona"], p["voice"], p["speak"], p["state"],
        ]  # fmt: skip
        outputs = [
            gr.Textbox(label="reply"),
            gr.Audio(type="numpy", format="wav", label="spoken_reply"),
            gr.JSON(label="emotion_report"),
            gr.JSON(label="safety"),
            gr.Textbox(label="transcript"),
            p["state"],
        ]  # fmt: skip
        button = gr.Button("respond")
    button.click(handlers.api_respond, inputs, outputs, api_name="respond")


def launch(demo, *, host: str | None = "127.0.0.1", port: int | None = 7860,
           share: bool = False, **kwargs):  # fmt: skip
    """``demo.launch`` with the demo's upload cap; host None lets Gradio decide (Spaces)."""
    return demo.launch(server_name=host, server_port=port, share=share,
                       max_file_size=MAX_UPLOAD, css=CSS, **kwargs)  # fmt: skip


__all__ = ["build_app", "launch"]
