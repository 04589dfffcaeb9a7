"""Benchmark: `carellm serve` throughput and latency at several concurrency levels.

By default it builds the tiny random model, serves it on 127.0.0.1 (CPU, speech off,
short replies) in this process and measures that: a check of the server's overhead and
queueing, not of a real model. With ``--base-url`` it measures any OpenAI-compatible
server instead (``carellm serve`` on a GPU, vLLM), e.g.

    python bench/serve.py                                   # tiny model, CPU
    python bench/serve.py --base-url http://gpu-host:8000 --api-key KEY --requests 64

Each level sends ``--requests`` text turns from that many concurrent clients and prints
requests/s and the p50/p95 latency of a whole (non-streamed) reply.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

LEVELS = (1, 4, 16)  # concurrent clients
TEXT = "I have an exam tomorrow and I keep worrying that I will fail it."


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", default=None, help="measure this server instead of the tiny one")
    p.add_argument("--api-key", default=None, help="Bearer key for --base-url")
    p.add_argument("--model", default="carellm", help="model name sent in requests")
    p.add_argument("--requests", type=int, default=32, help="requests per concurrency level")
    p.add_argument("--max-tokens", type=int, default=16, help="reply tokens per request")
    p.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="concurrencies")
    return p.parse_args()


@contextlib.contextmanager
def tiny_server(max_queue: int, max_tokens: int):
    """Serve the tiny random model (speech off) on a free loopback port."""
    import carellm
    from carellm.serve import create_app, running
    from carellm.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as folder:
        path = build_tiny_model(Path(folder) / "tiny")
        engine = carellm.load(str(path), device="cpu", speech=False)
        app = create_app(engine, max_queue=max_queue, session_kwargs={"max_new_tokens": max_tokens})
        with running(app) as url:
            yield url


def one_level(url: str, clients: int, args) -> dict:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    body = {"model": args.model, "messages": [{"role": "user", "content": TEXT}],
            "max_tokens": args.max_tokens, "seed": 0}  # fmt: skip

    def request(_: int) -> tuple[float, int]:
        t = time.perf_counter()
        r = http.post("/v1/chat/completions", json=body)
        return time.perf_counter() - t, r.status_code

    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=600,
                      limits=httpx.Limits(max_connections=clients)) as http:  # fmt: skip
        request(0)  # warm-up, not counted
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(request, range(args.requests)))
        wall = time.perf_counter() - start
    latencies = sorted(t for t, code in results if code == 200)
    if not latencies:
        return {"clients": clients, "ok": 0, "rps": 0.0, "p50": float("nan"), "p95": float("nan")}
    return {
        "clients": clients,
        "ok": len(latencies),
        "rps": len(latencies) / wall,
        "p50": statistics.median(latencies),
        "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    }


def main() -> None:
    args = parse_args()
    console = Console()
    server = (
        contextlib.nullcontext(args.base_url)
        if args.base_url
        else tiny_server(max(args.levels), args.max_tokens)
    )
    with server as url:
        rows = [one_level(url, n, args) for n in args.levels]
    table = Table(title=f"carellm serve at {args.base_url or 'tiny model, CPU, speech off'}")
    for column in ("clients", "ok / sent", "requests/s", "p50 s", "p95 s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r["clients"]), f"{r['ok']} / {args.requests}", f"{r['rps']:.2f}",
                      f"{r['p50']:.2f}", f"{r['p95']:.2f}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
