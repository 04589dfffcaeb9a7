"""`carellm serve`: an OpenAI-compatible HTTP server (see `carellm.serve`).

Listens on 127.0.0.1 by default; any other address needs ``--api-key``.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="OpenAI-compatible HTTP API on one model")
    p.add_argument("--model", default="auto", help="hub id, local folder, 'tiny' or 'auto'")
    p.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--api-key", default=None, help="require Authorization: Bearer KEY on /v1/*")
    p.add_argument(
        "--max-queue", type=int, default=8, help="requests waiting or running before 503"
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=256, help="longest reply, in tokens (default 256)"
    )
    p.add_argument(
        "--no-speech", dest="speech", action="store_false", help="text only (no talker loaded)"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    import carellm
    from carellm.serve import check_bind, create_app, serve

    check_bind(args.host, args.api_key)  # before minutes of model loading
    engine = carellm.load(args.model, device=args.device, speech=args.speech)
    app = create_app(
        engine,
        api_key=args.api_key,
        max_queue=args.max_queue,
        session_kwargs={"max_new_tokens": args.max_new_tokens},
    )
    serve(app, host=args.host, port=args.port, api_key=args.api_key)
    return 0
