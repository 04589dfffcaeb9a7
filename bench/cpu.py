"""Benchmark: a CPU text turn with the emotion report on llama.cpp vs the transformers lite path.

Builds a random-weight Qwen2 with Qwen2.5-0.5B-Instruct's dimensions (hidden 896, 24
layers, 14 heads, 2 KV heads, MLP 4864, vocabulary 151936, tied embeddings) and the
tiny model's tokenizer, then runs the same counseling turns (persona prompt, emotion
report, crisis rules, ~80 reply tokens) through

* ``carellm.load(folder)``: today's lite path, transformers in float32;
* ``carellm.load(file.gguf)``: the llama.cpp tier, on the same weights converted to
  GGUF (`carellm.lite.convert`) and quantized as users run them (Q8_0, Q4_K_M).

The engines take turns (one turn each, repeated), so a busy machine slows them alike.
Each turn starts from an empty llama.cpp cache, so its prefill covers the whole prompt
as transformers' does. Prints median seconds per stage, reply tokens/s, the report's
share of the turn and each engine's speed-up over transformers.

    python bench/cpu.py [--repeats 3] [--tokens 80] [--quants q8_0,q4_k_m] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import carellm
from carellm.turn import Turn

TEXT = "I have exams next week and I can't sleep. I keep thinking I will fail."
console = Console(width=120)


def build_model(folder: Path) -> Path:
    """A random Qwen2 of Qwen2.5-0.5B-Instruct's dimensions, with the tiny tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from carellm.tiny import TINY_MARKER, build_tiny_text_model

    if (folder / "model.safetensors").exists():
        return folder
    tiny = build_tiny_text_model(folder.parent / "tokenizer-source")
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    config = Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )  # fmt: skip
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / TINY_MARKER).write_text('{"seed": 0, "tier": "lite", "dims": "Qwen2.5-0.5B"}')
    return folder


def gguf_files(folder: Path, quants: list[str]) -> dict[str, Path]:
    from carellm.lite.convert import convert_to_gguf, quantize_gguf

    f16 = folder.parent / "model-f16.gguf"
    if not f16.exists():
        convert_to_gguf(folder, f16, outtype="f16")
    out = {}
    for quant in quants:
        path = folder.parent / f"model-{quant}.gguf"
        if not path.exists():
            quantize_gguf(f16, path, quant)
        out[quant] = path
    return out


def one_turn(engine, seed: int, tokens: int) -> dict[str, float]:
    if hasattr(engine, "runtime"):
        engine.runtime.truncate(0)  # a first turn: nothing of the prompt cached yet
    session = engine.session(seed=seed, max_new_tokens=tokens)
    start = time.perf_counter()
    reply = session.respond(Turn(text=TEXT))
    row = dict(reply.timings, wall=time.perf_counter() - start)
    row["tokens"] = reply.completion_tokens  # sampled (re-encoding the text can differ)
    assert reply.emotion is not None and reply.emotion.source == "model", "report not scored"
    return row


def prompt_tokens(engine) -> int:
    from carellm.prompts import build_inputs, get_persona, system_prompt
    from carellm.turn import prepare

    inputs = build_inputs(
        engine, system_prompt(get_persona("counselor")), [], prepare(Turn(text=TEXT))
    )
    return int(inputs.tensors["input_ids"].shape[1])


def table(results: dict[str, list[dict]], prompts: dict[str, int]) -> Table:
    med = {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        for name, rows in results.items()
    }
    base = med.get("transformers fp32", {}).get("total")
    t = Table(title="CPU text turn with emotion report + safety (median seconds)")
    for col in ("engine", "prompt tok", "prefill", "report", "decode", "reply tok", "tok/s",
                "turn", "report %", "speed-up"):  # fmt: skip
        t.add_column(col, justify="left" if col == "engine" else "right")
    for name, m in med.items():
        speed = f"{base / m['total']:.1f}x" if base else "-"
        t.add_row(name, str(prompts[name]), f"{m['prefill']:.2f}", f"{m['report']:.2f}",
                  f"{m['decode']:.2f}", f"{m['tokens']:.0f}", f"{m['tokens'] / m['decode']:.1f}",
                  f"{m['total']:.2f}", f"{100 * m['report'] / m['total']:.0f}", speed)  # fmt: skip
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=80, help="reply tokens per turn (at most)")
    parser.add_argument("--quants", default="q8_0,q4_k_m", help="llama.cpp quantizations to run")
    parser.add_argument("--workdir", help="keep the built model and GGUF files here (reused)")
    parser.add_argument("--no-transformers", action="store_true", help="skip the fp32 baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        console.print("building the 0.5B-size random model and its GGUF files…")
        folder = build_model(work / "qwen2.5-0.5b-size")
        engines = (
            {}
            if args.no_transformers
            else {"transformers fp32": carellm.load(str(folder), device="cpu")}
        )
        for quant, path in gguf_files(folder, args.quants.split(",")).items():
            engines[f"llama.cpp {quant}"] = carellm.load(str(path))
        prompts = {name: prompt_tokens(engine) for name, engine in engines.items()}
        for engine in engines.values():
            one_turn(engine, 100, 8)  # warm-up
        results: dict[str, list[dict]] = {name: [] for name in engines}
        for i in range(args.repeats):
            for name, engine in engines.items():
                results[name].append(one_turn(engine, i, args.tokens))
                console.print(f"  {name} turn {i + 1}: {results[name][-1]['total']:.2f} s")
        import torch

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        console.print(f"{cores} cores; torch threads {torch.get_num_threads()}; "
                      f"llama.cpp threads {next((e.runtime.threads for e in engines.values() if hasattr(e, 'runtime')), '-')}")  # fmt: skip
        console.print(table(results, prompts))


if __name__ == "__main__":
    main()
