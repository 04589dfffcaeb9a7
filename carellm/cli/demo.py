"""`carellm demo`: the Gradio counseling demo in the browser (see doc/demo.md)."""

from __future__ import annotations

import argparse
import json

from carellm.cli._model_args import add_model_arguments, load_engine, reply_tokens


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The demo's flags (shared with demos/counseling_demo.py)."""
    add_model_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: whole network)")
    p.add_argument("--port", type=int, default=7860, help="port to serve on")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="open the counseling demo in the browser")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from carellm.demo import build_app, launch
    from carellm.planning import plan_for_model

    plan = plan_for_model(args.model, args.speech)
    if plan is not None:
        print("memory plan:", json.dumps(plan.to_dict(), indent=2))
    engine = load_engine(args)
    print(f"model: {engine.info.model} on {engine.info.device} ({engine.info.dtype}), "
          f"speech {'on' if engine.info.speech else 'off'}")  # fmt: skip
    if engine.info.tiny:
        print("WARNING: tiny RANDOM model: replies are noise (plumbing check only)")
    demo = build_app(
        engine, plan=plan, session_kwargs={"max_new_tokens": reply_tokens(args, engine)}
    )
    # quiet: Gradio's own hint says "set share=True in launch()", which a CLI user cannot
    # do; we print the URLs and the flag ourselves once the server is up.
    _, local_url, share_url = launch(
        demo, host=args.host, port=args.port, share=args.share, quiet=True,
        prevent_thread_lock=True,
    )  # fmt: skip
    if share_url:
        public = share_url
    elif args.share:
        public = "could not be created (see above); the local URL still works"
    else:
        public = "pass --share"
    print(f"demo running on {local_url}\npublic link: {public}", flush=True)
    demo.block_thread()  # until Ctrl+C
    return 0
