"""Measure peak GPU memory of real-size Qwen2.5-Omni 3B/7B (random weights) per turn shape.

    python bench/vram.py            # `carellm plan` vs Qwen's table; measurements with CUDA
    python bench/vram.py --models 3B --cases text,audio30,video15

No download: the released architectures are rebuilt from the dims in `carellm.planning.memory_model`,
materialised directly on the GPU in bfloat16 (token2wav in fp32, as transformers does).
Each case runs a prefill plus a short generate, with and without the talker, and records
torch.cuda.max_memory_allocated / max_memory_reserved in GiB.
"""

from __future__ import annotations

import argparse
import gc
import sys

from carellm.planning import Hardware, Needs, select
from carellm.planning.memory_model import (
    CALIBRATION,
    FIT_POINTS,
    GIB,
    HELD_OUT,
    MODELS,
    PUBLISHED,
    ModelSpec,
    Workload,
    estimate,
)

# case name -> (video seconds, audio seconds)
CASES = {
    "text": (0, 0),
    "audio30": (0, 30),
    "video15": (15, 0),
    "video30": (30, 0),
    "video60": (60, 0),
}
NEW_TOKENS = 16  # thinker reply length in the measured generate
TALKER_TOKENS = 64  # codec tokens (~1.3 s of speech)


def cli_estimate(model_id: str, dtype: str, seconds: float) -> tuple[float, str]:
    """(GiB, of which Qwen's figure beyond our terms: served models only) of `carellm plan --model M --video-seconds S
    --gpu-mem 141 [--dtype D]`: the CLI's defaults (speech on, 30 s of voice, one image,
    600 text tokens) on a simulated 141 GB card."""
    plan = select(
        Needs(model=model_id, video_seconds=seconds, dtype=dtype),
        Hardware.simulated(gpus_gb=[141]),
    )
    return plan.estimated_peak_gb, plan.breakdown.get("unmodelled", 0.0)


def role(model_id: str, dtype: str, seconds: float) -> str:
    """How a published row is used: fitted, held out, or only compared."""
    if dtype == "bfloat16" and (model_id, seconds) in FIT_POINTS:
        return "fit"
    if dtype == "bfloat16" and (model_id, seconds) in HELD_OUT:
        return "held out"
    return "served: floor" if MODELS[model_id].served else "compared"


def print_modelled() -> None:
    print(f"calibration (fit on the 'fit' rows only): {CALIBRATION}\n")
    print("A served model's plan never goes below the published figure; its error column")
    print("is that of our terms alone.\n")
    print("| model | dtype | video s | row | `carellm plan` GiB | published | error |")
    print("|---|---|---:|---|---:|---:|---:|")
    for model_id, dtype, seconds, published in PUBLISHED:
        planned, unmodelled = cli_estimate(model_id, dtype, seconds)
        error = 100 * (planned - unmodelled - published) / published  # our terms alone
        print(
            f"| {model_id} | {dtype} | {seconds} | {role(model_id, dtype, seconds)} "
            f"| {planned:.2f} | {published:.2f} | {error:+.1f} % |"
        )


def build_config(spec: ModelSpec, speech: bool):
    from transformers import Qwen2_5OmniConfig

    text, vision, audio, talker = spec.text, spec.vision, spec.audio, spec.talker
    thinker = {
        "text_config": {
            "hidden_size": text.hidden,
            "num_hidden_layers": text.layers,
            "num_attention_heads": text.heads,
            "num_key_value_heads": text.kv_heads,
            "intermediate_size": text.intermediate,
            "vocab_size": text.vocab,
            "tie_word_embeddings": text.tied_embeddings,
        },
        "vision_config": {
            "depth": vision.depth,
            "hidden_size": vision.hidden,
            "num_heads": vision.heads,
            "intermediate_size": vision.intermediate,
            "out_hidden_size": text.hidden,
        },
        "audio_config": {
            "d_model": audio.d_model,
            "encoder_layers": audio.layers,
            "encoder_ffn_dim": audio.ffn,
            "output_dim": text.hidden,
        },
        "vision_start_token_id": 151652,  # read by get_rope_index, not a declared field
    }
    talker_cfg = {
        "hidden_size": talker.hidden,
        "num_hidden_layers": talker.layers,
        "num_attention_heads": talker.heads,
        "num_key_value_heads": talker.kv_heads,
        "head_dim": talker.head_dim,
        "intermediate_size": talker.intermediate,
        "embedding_size": text.hidden,
        "vision_start_token_id": 151652,
    }
    # A random talker can emit any codec id; the DiT's code embedding must cover them all.
    token2wav = {"dit_config": {"num_embeds": 8448 + 1}}
    return Qwen2_5OmniConfig(
        thinker_config=thinker,
        talker_config=talker_cfg,
        token2wav_config=token2wav,
        enable_audio_output=speech,
    )


def build_inputs(config, video_seconds: float, audio_seconds: float, device):
    """Token ids and features shaped as qwen-omni-utils' defaults would produce them."""
    import torch

    th = config.thinker_config
    ids = [151644, 872, 198]  # <|im_start|>user\n
    kwargs = {}
    if audio_seconds:
        mel_frames = int(audio_seconds * 100)
        n_audio = ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1
        ids += (
            [th.audio_start_token_id] + [th.audio_token_index] * n_audio + [th.audio_end_token_id]
        )
        kwargs["input_features"] = torch.randn(
            1, 128, mel_frames, device=device, dtype=torch.bfloat16
        )
        kwargs["feature_attention_mask"] = torch.ones(
            1, mel_frames, device=device, dtype=torch.long
        )
    if video_seconds:
        work = Workload(video_seconds=video_seconds)
        grid_t = work.video_frames // 2
        grid_h, grid_w = 48, 64  # 672 x 896 px = 768 merged tokens per frame pair
        patches = grid_t * grid_h * grid_w
        ids += [151652] + [th.video_token_index] * (patches // 4) + [151653]
        kwargs["pixel_values_videos"] = torch.randn(
            patches, 3 * 2 * 14 * 14, device=device, dtype=torch.bfloat16
        )
        kwargs["video_grid_thw"] = torch.tensor([[grid_t, grid_h, grid_w]], device=device)
        kwargs["video_second_per_grid"] = torch.tensor([1.0], device=device)
    ids += [151645, 198, 151644, 77091, 198]  # <|im_end|>\n<|im_start|>assistant\n
    input_ids = torch.tensor([ids], device=device)
    return input_ids, torch.ones_like(input_ids), kwargs


def measure(spec: ModelSpec, case: str, speech: bool, model) -> tuple[float, float]:
    import torch

    video_s, audio_s = CASES[case]
    input_ids, mask, kw = build_inputs(model.config, video_s, audio_s, "cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        if speech:
            # Media go to the thinker only (ENVIRONMENT.md, observation 1).
            thinker_kw = {f"thinker_{k}": v for k, v in kw.items() if k != "feature_attention_mask"}
            if "feature_attention_mask" in kw:
                thinker_kw["feature_attention_mask"] = kw["feature_attention_mask"]
            model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                thinker_max_new_tokens=NEW_TOKENS,
                talker_max_new_tokens=TALKER_TOKENS,
                speaker="Chelsie",
                **thinker_kw,
            )
        else:
            model.thinker.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, **kw
            )
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB


def run_gpu(model_ids: list[str], cases: list[str]) -> None:
    import torch
    from transformers import Qwen2_5OmniForConditionalGeneration

    print("\n| model | case | speech | allocated GiB | reserved GiB | plan estimate | published |")
    print("|---|---|---|---:|---:|---:|---:|")
    for model_id in model_ids:
        spec = MODELS[model_id]
        for speech in (False, True):
            config = build_config(spec, speech)
            config.thinker_config._attn_implementation = "flash_attention_2"
            with torch.device("cuda"):
                model = Qwen2_5OmniForConditionalGeneration._from_config(
                    config, dtype=torch.bfloat16
                ).eval()
            if speech:
                model.speaker_map = {
                    "Chelsie": {
                        "bos_token": 151870,
                        "cond": torch.zeros(config.token2wav_config.dit_config.enc_emb_dim),
                        "ref_mel": torch.zeros(1, 300, config.token2wav_config.dit_config.mel_dim),
                    }
                }
            for case in cases:
                video_s, audio_s = CASES[case]
                work = Workload(
                    video_seconds=video_s,
                    audio_seconds=audio_s,
                    images=0,
                    text_tokens=8 + NEW_TOKENS,
                    speech=speech,
                    video_audio=False,
                )
                planned = estimate(spec, work, "bfloat16").peak / GIB
                try:
                    alloc, reserved = measure(spec, case, speech, model)
                    got = f"{alloc:.2f} | {reserved:.2f}"
                except torch.OutOfMemoryError:
                    got = "OOM | OOM"
                published = next(
                    (p for m, d, s, p in PUBLISHED if (m, d, s) == (model_id, "bfloat16", video_s)),
                    float("nan"),
                )
                print(
                    f"| {model_id} | {case} | {speech} | {got} | {planned:.2f} | {published:.2f} |",
                    flush=True,
                )
                torch.cuda.empty_cache()
            del model
            gc.collect()
            torch.cuda.empty_cache()


def _rss_gib() -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return kib * 1024 / GIB


def run_cpu_thinker(layers: int, tokens: int, new_tokens: int = 8) -> None:
    """Peak RSS of one text turn (prefill of `tokens`, then `new_tokens` greedy steps) of a
    random-weight thinker LLM with the 3B's shipped dims but `layers` decoder layers, bf16,
    on CPU, against the plan's weight + KV + prefill terms for the same layers."""
    import dataclasses
    import resource

    import torch
    from transformers import Qwen2_5OmniThinkerConfig
    from transformers.models.qwen2_5_omni import modeling_qwen2_5_omni as omni

    spec = MODELS["Qwen/Qwen2.5-Omni-3B"]
    text = dataclasses.replace(spec.text, layers=layers)
    config = Qwen2_5OmniThinkerConfig(text_config={
        "hidden_size": text.hidden, "num_hidden_layers": layers, "num_attention_heads": text.heads,
        "num_key_value_heads": text.kv_heads, "intermediate_size": text.intermediate,
        "vocab_size": text.vocab, "rope_scaling": {"mrope_section": [16, 24, 24], "type": "default"},
    }).text_config  # fmt: skip
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    before = _rss_gib()
    with torch.no_grad():
        model = omni.Qwen2_5OmniThinkerTextModel._from_config(config, dtype=torch.bfloat16)
        lm_head = torch.nn.Linear(text.hidden, text.vocab, bias=False, dtype=torch.bfloat16)
        ids = torch.randint(0, 150000, (1, tokens))
        out = model(input_ids=ids, use_cache=True)
        cache, step = out.past_key_values, lm_head(out.last_hidden_state[:, -1:]).argmax(-1)
        for _ in range(new_tokens):
            out = model(input_ids=step, past_key_values=cache, use_cache=True)
            cache, step = out.past_key_values, lm_head(out.last_hidden_state[:, -1:]).argmax(-1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB - before
    plan = estimate(dataclasses.replace(spec, text=text, vision=None, audio=None, talker=None),
                    Workload(text_tokens=tokens + new_tokens, speech=False))  # fmt: skip
    terms = plan.weights + plan.kv_cache + plan.prefill
    print(f"\n3B thinker LLM, {layers} of 36 layers, bf16, CPU, {tokens} + {new_tokens} tokens")
    print("| term | plan GiB |\n|---|---:|")
    for name in ("weights", "kv_cache", "prefill"):
        print(f"| {name} | {getattr(plan, name) / GIB:.3f} |")
    print(f"| weights + KV + prefill | {terms / GIB:.3f} |")
    print(f"| measured peak RSS above the process before building | {peak:.3f} |")
    print(f"measured / planned = {peak * GIB / terms:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="3B,7B", help="comma list of 3B,7B")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {list(CASES)}")
    parser.add_argument(
        "--cpu-layers",
        type=int,
        default=0,
        help="also measure a CPU turn of the 3B thinker LLM with this many layers",
    )
    parser.add_argument("--cpu-tokens", type=int, default=2048, help="prompt tokens for it")
    args = parser.parse_args(argv)
    if args.cpu_layers:
        run_cpu_thinker(args.cpu_layers, args.cpu_tokens)
        return 0
    print("Modelled peak vs Qwen's published minimum GPU memory (GiB)\n")
    print_modelled()
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        print("\nNo CUDA device: skipped the measurements (modelled table only).")
        return 0
    model_ids = [f"Qwen/Qwen2.5-Omni-{m.strip()}" for m in args.models.split(",")]
    run_gpu(model_ids, [c.strip() for c in args.cases.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
