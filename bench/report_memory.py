"""Benchmark: memory and time of the emotion report at a real-size configuration, on CPU.

Builds a Qwen2.5-Omni thinker whose text model has the released 3B dimensions (hidden
2048, 16 heads, 2 KV heads, head_dim 128, MLP 11008, vocabulary 151936; see
`carellm.planning.memory_model`) but only ``--layers`` layers, random weights, and
tiny audio/vision towers that a text prompt never runs. It prefills a prompt of
``--prompt-tokens`` random text ids with `carellm.generation.prefill`, then scores the
real report questions (`carellm.emotion.questions_for`, a video turn: emotion, risk,
voice, visual) three ways:

* ``copying``: the method before this change (git 3d0c87f), reproduced below: each
  question and candidate batch runs on a cache of `expand()`ed prefix views, which
  transformers 5.23's `DynamicCache.update` turns into a full copy per batch row;
* ``packed``: `carellm.generation.score_candidates` (one packed forward that reads the
  prefix in place), with the fused CPU attention kernel;
* ``packed, math``: the same with the chunked-math attention other devices use.

Token ids are random, with the real counts and the lengths the tiny model's BPE
tokenizer gives the real question and candidate strings (no Qwen tokenizer offline;
the tiny BPE splits words more finely, so these sequences are, if anything, longer
than Qwen's).

Memory is torch.profiler's record of every CPU-allocator allocation and free (with
``profile_memory=True``; exact sizes, kernel scratch included): the running sum of
those made during the report, in time order, peaks at the report's extra bytes. Each
method also runs on a ``--short-tokens`` prompt; the difference between the two peaks
over the difference in prompt KV is the share of the prompt's KV the report copies
(0 when nothing scales with the prompt). Seconds are the CPU time of that same
profiled run (all threads of this process: a shared machine's load does not inflate
it as it does wall time). Finally a greedy reply of ``--reply-tokens`` tokens is timed
on the long prompt, for the (report + reply) / reply ratio at this size.

    python bench/report_memory.py [--prompt-tokens 4096] [--layers 2] [--dtype float32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from carellm import emotion, generation
from carellm.assessment import REPORT_OPENING

console = Console(width=130)
MIB = 2**20
QWEN_SPECIAL_FROM = 151643  # Qwen's special tokens start here: prompts use ids below


def build_thinker(layers: int, dtype: torch.dtype):
    """A random thinker with the 3B text dimensions and ``layers`` decoder layers."""
    from transformers import (
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
    )

    text = dict(
        vocab_size=151936, hidden_size=2048, intermediate_size=11008,
        num_hidden_layers=layers, num_attention_heads=16, num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                         "mrope_section": [16, 24, 24]},
    )  # fmt: skip
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=2048)
    audio = dict(
        encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, d_model=32,
        output_dim=2048,
    )  # fmt: skip
    config = Qwen2_5OmniThinkerConfig(text_config=text, vision_config=vision, audio_config=audio)
    config.vision_start_token_id = 151652  # read by get_rope_index, not a declared field
    torch.manual_seed(0)
    with torch.device("cpu"):
        thinker = Qwen2_5OmniThinkerForConditionalGeneration(config)
    return thinker.to(dtype).eval()


def report_questions(rng: torch.Generator) -> list[tuple[list[int], list[list[int]]]]:
    """The video-turn report: real counts, tiny-BPE lengths, random ids."""
    from transformers import AutoTokenizer

    from carellm.tiny import build_tiny_text_model

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = AutoTokenizer.from_pretrained(build_tiny_text_model(Path(tmp) / "lite"))

    def ids(text: str) -> list[int]:
        n = len(tokenizer.encode(text))
        return torch.randint(0, QWEN_SPECIAL_FROM, (n,), generator=rng).tolist()

    return [
        (ids(REPORT_OPENING + q.prompt), [ids(" " + c) for c in q.candidates])
        for q in emotion.questions_for({"text", "audio", "video"})
    ]


def score_copying(thinker, pre, questions, chunk: int = 32) -> list[list[float]]:
    """The report before this change (git 3d0c87f), for comparison."""
    from transformers import DynamicCache

    def expanded(cache, batch):
        branch = DynamicCache()
        for idx, layer in enumerate(cache.layers):
            keys = layer.keys.expand(batch, -1, -1, -1)
            branch.update(keys, layer.values.expand(batch, -1, -1, -1), idx)
        return branch

    results = []
    for question, candidates in questions:
        out = thinker.model(
            input_ids=torch.tensor([question]),
            position_ids=generation.positions(pre, pre.length, len(question)),
            past_key_values=expanded(pre.cache, 1),
            use_cache=True,
        )
        first = torch.log_softmax(thinker.lm_head(out.last_hidden_state[:, -1]).float(), -1)[0]
        start, scores = pre.length + len(question), []
        for at in range(0, len(candidates), chunk):
            part = candidates[at : at + chunk]
            width = max(len(c) for c in part)
            ids = torch.zeros(len(part), width, dtype=torch.long)
            for i, cand in enumerate(part):
                ids[i, : len(cand)] = torch.tensor(cand)
            batch = thinker.model(
                input_ids=ids,
                position_ids=generation.positions(pre, start, width, batch=len(part)),
                past_key_values=expanded(out.past_key_values, len(part)),
                use_cache=True,
            )
            logp = torch.log_softmax(thinker.lm_head(batch.last_hidden_state[:, :-1]).float(), -1)
            later = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            real = torch.arange(1, width) < torch.tensor([len(c) for c in part]).unsqueeze(1)
            scores += (first[ids[:, 0]] + (later * real).sum(dim=1)).tolist()
        results.append(scores)
    return results


def score_packed(thinker, pre, questions, fused: bool) -> list[list[float]]:
    before = generation.FUSED_ATTENTION_DEVICES
    generation.FUSED_ATTENTION_DEVICES = ("cpu",) if fused else ()
    try:
        return generation.score_candidates(thinker, pre, questions)
    finally:
        generation.FUSED_ATTENTION_DEVICES = before


def peak_new_bytes(fn, *args) -> tuple[object, int, float]:
    """(result, peak CPU bytes ``fn(*args)`` allocated and held at once, CPU seconds).

    torch.profiler with ``profile_memory=True`` reports every allocation and free of
    torch's CPU allocator with its size; frees of blocks allocated before the window are
    not reported, so the running sum in time order is what ``fn`` holds on top of what
    existed, and its maximum the peak. tracemalloc does not see torch's allocator and
    RSS is too coarse."""
    from torch.profiler import ProfilerActivity, profile

    start = time.process_time()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn(*args)
    seconds = time.process_time() - start
    events = [
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    ]
    live = peak = 0
    for _, size in sorted(events, key=lambda e: e[0]):
        live += size
        peak = max(peak, live)
    return result, peak, seconds


def prefill(thinker, tokens: int, rng: torch.Generator) -> generation.Prefill:
    ids = torch.randint(0, QWEN_SPECIAL_FROM, (1, tokens), generator=rng)
    return generation.prefill(
        thinker, {"input_ids": ids}, keep_hidden=False, use_audio_in_video=False
    )


def kv_bytes(pre: generation.Prefill) -> int:
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in pre.cache.layers)


def reply_seconds(thinker, pre, tokens: int) -> float:
    sampler = generation.Sampler(generation.Sampling(temperature=0), [], None)
    start = time.process_time()
    steps = generation.decode(
        thinker, pre, [0], sampler, stop_ids=(), max_new_tokens=tokens, keep_hidden=False
    )
    assert sum(1 for _ in steps) == tokens
    return time.process_time() - start


METHODS = {
    "copying (before)": lambda th, pre, qs: score_copying(th, pre, qs),
    "packed (fused CPU kernel)": lambda th, pre, qs: score_packed(th, pre, qs, fused=True),
    "packed (chunked math)": lambda th, pre, qs: score_packed(th, pre, qs, fused=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-tokens", type=int, default=4096)
    parser.add_argument("--short-tokens", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--reply-tokens", type=int, default=32)
    args = parser.parse_args()
    rng = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    thinker = build_thinker(args.layers, getattr(torch, args.dtype))
    questions = report_questions(rng)
    packed = sum(len(q) + sum(map(len, c)) for q, c in questions)
    console.print(
        f"thinker text: 3B dims, {args.layers} layers, {args.dtype}, built in "
        f"{time.perf_counter() - start:.0f} s; report: {len(questions)} questions, "
        f"{sum(len(c) for _, c in questions)} candidates, {packed} packed tokens"
    )
    with torch.inference_mode():
        prompts = {n: prefill(thinker, n, rng) for n in (args.short_tokens, args.prompt_tokens)}
        results = {}
        for name, method in METHODS.items():
            for n, pre in prompts.items():
                results[name, n] = peak_new_bytes(method, thinker, pre, questions)
        reply = reply_seconds(thinker, prompts[args.prompt_tokens], args.reply_tokens)
    short, long = (kv_bytes(prompts[n]) for n in (args.short_tokens, args.prompt_tokens))
    reference = results["packed (fused CPU kernel)", args.prompt_tokens][0]
    table = Table(title=f"Report stage on a {args.prompt_tokens}-token prompt")
    for col in (
        "method", "prompt KV MiB", "report peak MiB", "peak / prompt KV",
        "grows with prompt / KV", "max |score diff|", "report CPU s", "(report+reply)/reply",
    ):  # fmt: skip
        table.add_column(col, justify="left" if col == "method" else "right")
    for name in METHODS:
        scores, peak, seconds = results[name, args.prompt_tokens]
        growth = (peak - results[name, args.short_tokens][1]) / (long - short)
        diff = max(abs(a - b) for s, r in zip(scores, reference) for a, b in zip(s, r))
        table.add_row(
            name, f"{long / MIB:.1f}", f"{peak / MIB:.1f}", f"{peak / long:.2f}",
            f"{growth:.3f}", f"{diff:.1e}", f"{seconds:.2f}", f"{(seconds + reply) / reply:.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"reply: {args.reply_tokens} greedy tokens in {reply:.2f} CPU s; "
        f"'grows with prompt' compares the {args.prompt_tokens}- and {args.short_tokens}-token "
        f"prompts; total {time.perf_counter() - start:.0f} s wall"
    )


if __name__ == "__main__":
    main()
