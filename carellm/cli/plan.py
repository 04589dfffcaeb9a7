"""`carellm plan`: which model, dtype and media caps fit this (or a simulated) machine."""

from __future__ import annotations

import argparse
import json
import math

from carellm.errors import InputError

EPILOG = (
    "exit status: 0 = the plan fits; 1 = nothing fits (the plan lists what would: speech "
    "off, a shorter video, another model); 2 = a bad argument"
)


def _gib(text: str, flag: str, example: str) -> float:
    """A positive size in GiB, or InputError naming the flag and an example."""
    try:
        size = float(text)
    except ValueError:
        size = math.nan
    if not math.isfinite(size) or size <= 0:
        raise InputError(flag, f"{text.strip()!r} is not a number of GiB; e.g. {example}")
    return size


def _gib_list(text: str) -> list[float]:
    """GiB per GPU from one --gpu-mem value ("24" or "24,24")."""
    example = "--gpu-mem 24 or 24,24"
    parts = [part for part in text.split(",") if part.strip()] or [text]
    return [_gib(part, "--gpu-mem", example) for part in parts]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plan",
        help="choose a model that fits this machine's memory",
        description="Print the plan `--model auto` uses on this (or a simulated) machine.",
        epilog=EPILOG,
    )
    p.add_argument("--model", help="force this model id and report whether it fits")
    p.add_argument("--video-seconds", type=float, default=0.0, help="longest video per turn, s")
    p.add_argument("--audio-seconds", type=float, default=30.0, help="longest voice input, s")
    p.add_argument("--images", type=int, default=1, help="images per turn")
    p.add_argument("--no-speech", action="store_true", help="text replies only")
    p.add_argument("--dtype", choices=("bfloat16", "float16", "float32"))
    p.add_argument(
        "--gpu-mem",
        action="append",
        metavar="GB",
        help="simulate a GPU with this much free memory (repeat or comma-list for several)",
    )
    p.add_argument("--ram", help="simulate this much RAM, GB")
    p.add_argument("--mps", action="store_true", help="simulate an Apple MPS machine")
    p.add_argument("--cpu", action="store_true", help="plan for the CPU even if a GPU exists")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from carellm.planning.alternatives import other_tiers
    from carellm.planning.hardware import Hardware
    from carellm.planning.selection import Needs, select

    needs = Needs(
        speech=not args.no_speech,
        video_seconds=args.video_seconds,
        audio_seconds=args.audio_seconds,
        images_per_turn=args.images,
        model=args.model,
        dtype=args.dtype,
        device="cpu" if args.cpu else None,
    )
    hardware = None
    if args.gpu_mem or args.ram is not None or args.mps:
        gpus = [g for text in args.gpu_mem or [] for g in _gib_list(text)]
        ram = 32.0 if args.ram is None else _gib(args.ram, "--ram", "--ram 32")
        hardware = Hardware.simulated(gpus_gb=gpus, ram_gb=ram, mps=args.mps)
    plan = select(needs, hardware)
    tiers = other_tiers(needs, hardware)
    if args.json:
        data = plan.to_dict()
        data["other_tiers"] = [dataclasses.asdict(t) for t in tiers]
        print(json.dumps(data, indent=2))
    else:
        _print_table(plan, tiers)
    return 0 if plan.fits else 1


def _print_table(plan, tiers=()) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="CareLLM memory plan (GB = GiB)", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    rows = [
        ("model", f"{plan.model} ({plan.tier})"),
        ("device", plan.device + (f", device_map={plan.device_map}" if plan.device_map else "")),
        ("dtype / attention", f"{plan.dtype} / {plan.attn_implementation}"),
        ("speech", "on" if plan.speech else "off"),
        (
            "video caps",
            f"{plan.video_fps:g} fps, {plan.video_max_frames} frames, "
            f"{plan.video_max_pixels // 784} tokens per frame pair",
        ),
        ("breakdown", ", ".join(f"{k} {v:.2f}" for k, v in plan.breakdown.items())),
        ("estimate", f"{plan.estimated_peak_gb:.2f} GB for {plan.tokens} tokens"),
        ("margin / budget", f"{plan.margin_gb:.2f} GB / {plan.budget_gb:.2f} GB"),
        ("fits", "[green]yes[/]" if plan.fits else "[red]no[/]"),
    ]
    rows += [("reason", r) for r in plan.reasons]
    rows += [("warning", f"[yellow]{w}[/]") for w in plan.warnings]
    rows += [("try", s) for s in plan.suggestions]
    for t in tiers:  # served (vLLM-Omni) and edge (MNN) tiers beside the in-process plan
        fit = "[green]fits[/]" if t.fits else "[red]does not fit[/]"
        rows.append((t.kind, f"{t.model}: {t.peak_gb:.2f} GB, {fit} here; {t.how} ({t.source})"))
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
