"""carellm.planning.selection: plans for simulated machines."""

import dataclasses
import json

import pytest

from carellm.cli import main
from carellm.errors import CareLLMError, InputError, MemoryPlanError, ModelLoadError
from carellm.planning.hardware import Hardware
from carellm.planning.memory_model import GIB, MODELS, Workload, estimate
from carellm.planning.selection import Needs, require_fit, select


def test_video_tokens_follow_qwen_reader_defaults():
    work = Workload(video_seconds=15, audio_seconds=0, images=0)
    assert work.video_frames == 30
    assert work.video_tokens == 15 * 768  # 768 merged tokens per pair of frames
    assert Workload(video_seconds=15).audio_tokens == 45 * 25  # voice + sound track


# (simulated machine, needs, expected model, speech, dtype, device)
MACHINES = [
    (dict(gpus_gb=[8], ram_gb=16), Needs(), "Qwen/Qwen2.5-Omni-3B", False, "bfloat16", "cpu"),
    (
        dict(gpus_gb=[12], packages=("gptqmodel",)),
        Needs(speech=False),
        "Qwen/Qwen2.5-Omni-7B-GPTQ-Int4",
        False,
        "float16",
        "cuda",
    ),
    (dict(gpus_gb=[12]), Needs(), "Qwen/Qwen2.5-Omni-3B", False, "float32", "cpu"),
    (dict(gpus_gb=[16]), Needs(), "Qwen/Qwen2.5-Omni-3B", True, "bfloat16", "cuda"),
    (
        dict(gpus_gb=[16]),
        Needs(video_seconds=30),
        "Qwen/Qwen2.5-Omni-3B",
        False,
        "bfloat16",
        "cuda",
    ),
    (dict(gpus_gb=[24]), Needs(), "Qwen/Qwen2.5-Omni-3B", True, "bfloat16", "cuda"),
    (
        dict(gpus_gb=[24]),
        Needs(video_seconds=60),
        "Qwen/Qwen2.5-Omni-3B",
        False,
        "bfloat16",
        "cuda",
    ),
    (dict(gpus_gb=[48]), Needs(), "Qwen/Qwen2.5-Omni-7B", True, "bfloat16", "cuda"),
    (dict(gpus_gb=[48]), Needs(video_seconds=15), "Qwen/Qwen2.5-Omni-7B", True, "bfloat16", "cuda"),
    (dict(gpus_gb=[80]), Needs(video_seconds=60), "Qwen/Qwen2.5-Omni-7B", True, "bfloat16", "cuda"),
    (dict(gpus_gb=[24, 24]), Needs(), "Qwen/Qwen2.5-Omni-7B", True, "bfloat16", "cuda"),
    (dict(gpus_gb=[], ram_gb=8), Needs(), "Qwen/Qwen2.5-1.5B-Instruct", False, "bfloat16", "cpu"),
    (dict(gpus_gb=[], ram_gb=32), Needs(), "Qwen/Qwen2.5-Omni-3B", False, "float32", "cpu"),
    (dict(mps=True, ram_gb=32), Needs(), "Qwen/Qwen2.5-Omni-3B", True, "float16", "mps"),
]


@pytest.mark.parametrize(("machine", "needs", "model", "speech", "dtype", "device"), MACHINES)
def test_plan_for_machine(machine, needs, model, speech, dtype, device):
    hw = Hardware.simulated(**machine)
    plan = select(needs, hw)
    assert (plan.model, plan.speech, plan.dtype, plan.device) == (model, speech, dtype, device)
    assert plan.fits
    assert plan.estimated_peak_gb + plan.margin_gb <= plan.budget_gb
    assert plan.reasons


def test_two_gpus_split_with_device_map_auto():
    plan = select(Needs(), Hardware.simulated(gpus_gb=[24, 24]))
    assert plan.device_map == "auto" and "max_memory" not in plan.to_dict()
    assert plan.estimated_peak_gb > 24  # would not fit one of the cards


def test_cpu_plan_warns_about_speed():
    plan = select(Needs(), Hardware.simulated(gpus_gb=[], ram_gb=32))
    assert any("minutes" in w for w in plan.warnings)


def test_quantized_model_named_when_not_installed():
    plan = select(Needs(video_seconds=60), Hardware.simulated(gpus_gb=[24]))
    assert any("pip install gptqmodel" in r for r in plan.reasons)


def test_forced_model_that_does_not_fit_suggests_alternatives():
    hw = Hardware.simulated(gpus_gb=[24])
    plan = select(Needs(model="Qwen/Qwen2.5-Omni-7B", video_seconds=30), hw)
    assert not plan.fits and plan.model == "Qwen/Qwen2.5-Omni-7B"
    assert plan.suggestions
    with pytest.raises(MemoryPlanError, match="try:"):
        require_fit(plan)


def test_require_fit_passes_a_fitting_plan():
    plan = select(Needs(), Hardware.simulated(gpus_gb=[80]))
    assert require_fit(plan) is plan


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"video_seconds": -1}, InputError),
        ({"audio_seconds": float("nan")}, InputError),
        ({"model": "Qwen/Qwen9-Omni"}, ModelLoadError),
        ({"dtype": "int8"}, InputError),
    ],
)
def test_bad_needs_raise(kwargs, error):
    with pytest.raises(error) as info:
        Needs(**kwargs)
    assert isinstance(info.value, CareLLMError)
    assert str(info.value)


def test_unknown_model_lists_known_ones():
    with pytest.raises(ModelLoadError, match="Qwen/Qwen2.5-Omni-3B"):
        Needs(model="nope")


def test_cli_plan_json(capsys):
    rc = main(["plan", "--gpu-mem", "24,24", "--video-seconds", "15", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    for key in ("model", "dtype", "speech", "estimated_peak_gb", "margin_gb", "fits", "reasons"):
        assert key in data
    assert data["device_map"] == "auto" and data["fits"]


def test_cli_plan_forced_model_not_fitting(capsys):
    rc = main(["plan", "--gpu-mem", "16", "--model", "Qwen/Qwen2.5-Omni-7B", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 1 and not data["fits"] and data["suggestions"]


def test_cli_plan_bad_input(capsys):
    assert main(["plan", "--video-seconds", "-5"]) == 2
    assert "video_seconds" in capsys.readouterr().err


def test_cli_plan_table(capsys):
    assert main(["plan", "--ram", "32", "--no-speech"]) == 0
    assert "Qwen/Qwen2.5-Omni-3B" in capsys.readouterr().out


def test_cpu_plan_says_speech_is_off_because_a_cpu_is_too_slow():
    plan = select(Needs(speech=True), Hardware.simulated(gpus_gb=[], ram_gb=32))
    assert plan.device == "cpu" and not plan.speech
    speech = [w for w in plan.warnings if w.startswith("speech is off")]
    assert len(speech) == 1 and "CPU is too slow for speech" in speech[0]
    assert "did not fit" not in speech[0]


def _fits_as_suggested(line: str, needs: Needs, gpus_gb: list[float]) -> bool:
    """Apply one suggestion's flags to `needs` (installing what it says) and plan again."""
    words = line.split()
    changes = {}
    if "--model" in words:
        changes["model"] = words[words.index("--model") + 1]
    if "--no-speech" in words:
        changes["speech"] = False
    if "--video-seconds" in words:
        changes["video_seconds"] = float(words[words.index("--video-seconds") + 1])
    packages = (words[words.index("install") + 1].rstrip(","),) if "install" in words else ()
    plan = select(
        dataclasses.replace(needs, **changes),
        Hardware.simulated(gpus_gb=gpus_gb, packages=packages),
    )
    return plan.fits


@pytest.mark.parametrize(
    ("gpus_gb", "needs", "expected"),
    [
        (
            [16],
            Needs(model="Qwen/Qwen2.5-Omni-7B"),
            ("--model Qwen/Qwen2.5-Omni-3B", "--model Qwen/Qwen2.5-Omni-7B-GPTQ-Int4"),
        ),
        (
            [48],
            Needs(model="Qwen/Qwen2.5-Omni-7B", video_seconds=60),
            ("--no-speech", "--video-seconds 30"),
        ),
        ([16], Needs(model="Qwen/Qwen2.5-Omni-7B", video_seconds=60), ("drop --model",)),
    ],
)
def test_nothing_fits_suggests_alternatives_that_do_fit(gpus_gb, needs, expected):
    plan = select(needs, Hardware.simulated(gpus_gb=gpus_gb))
    assert not plan.fits and "nothing fits" in plan.reasons
    for flags in expected:
        assert any(flags in line for line in plan.suggestions), (flags, plan.suggestions)
    *alternatives, more = plan.suggestions
    assert more.startswith("more memory: needs") and plan.model == needs.model
    for line in alternatives:
        if "drop --model" in line:
            assert _fits_as_suggested("", dataclasses.replace(needs, model=None), gpus_gb)
        else:
            assert _fits_as_suggested(line, needs, gpus_gb), line


def test_plan_caps_video_frames_at_the_media_limit(capsys):
    from carellm.engine import media_limits_for
    from carellm.media import VIDEO_MAX_FRAMES

    plan = select(Needs(video_seconds=120), Hardware.simulated(gpus_gb=[80]))
    assert plan.fits and plan.video_max_frames == VIDEO_MAX_FRAMES
    assert media_limits_for(plan).video_max_frames == VIDEO_MAX_FRAMES
    # 120 s at 2 frames/s would be 240 frames: the estimate counts the 128 that are read
    at_cap = select(Needs(video_seconds=VIDEO_MAX_FRAMES / 2), Hardware.simulated(gpus_gb=[80]))
    assert plan.breakdown["encoders"] == at_cap.breakdown["encoders"]
    assert main(["plan", "--gpu-mem", "80", "--video-seconds", "120"]) == 0
    assert f"2 fps, {VIDEO_MAX_FRAMES} frames" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--gpu-mem", "abc"],
            "--gpu-mem: 'abc' is not a number of GiB; e.g. --gpu-mem 24 or 24,24",
        ),
        (["--gpu-mem", "24,x"], "--gpu-mem: 'x' is not a number of GiB"),
        (["--gpu-mem", "-8"], "--gpu-mem: '-8' is not a number of GiB"),
        (["--ram", "lots"], "--ram: 'lots' is not a number of GiB; e.g. --ram 32"),
    ],
)
def test_cli_plan_bad_sizes_are_one_clear_line(capsys, args, message):
    assert main(["plan", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_cli_plan_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    assert "1 = nothing fits" in " ".join(capsys.readouterr().out.split())


def test_cli_plan_nothing_fits_exits_1_and_lists_what_to_try(capsys):
    assert main(["plan", "--model", "Qwen/Qwen2.5-Omni-7B", "--gpu-mem", "16"]) == 1
    out = capsys.readouterr().out
    assert "nothing fits" in out and "│ try " in out and "Qwen2.5-Omni-3B" in out


# ------------------------------------------------------------------ Qwen3-Omni and MNN tiers

QWEN3 = "Qwen/Qwen3-Omni-30B-A3B-Instruct"


def test_qwen3_omni_parameters_match_released_checkpoint():
    spec = MODELS[QWEN3]
    total = sum(spec.component_params.values())
    assert total == pytest.approx(35_259_818_545, rel=0.01)  # safetensors of the release
    assert spec.text.params / 1e9 == pytest.approx(30.5, rel=0.01)  # "30B" MoE thinker
    assert spec.text.active_params / 1e9 == pytest.approx(3.3, rel=0.05)  # "A3B"


def test_qwen3_omni_talker_off_saves_about_10_gb():
    work = dict(video_seconds=15, audio_seconds=0, images=0, text_tokens=64)
    on = estimate(MODELS[QWEN3], Workload(**work, speech=True)).peak / GIB
    off = estimate(MODELS[QWEN3], Workload(**work, speech=False)).peak / GIB
    assert 8.0 <= on - off <= 12.0


@pytest.mark.parametrize(("seconds", "low", "high"), [(15, 78.85, 78.86), (45, 88.52, 107.74)])
def test_cli_never_plans_qwen3_omni_below_published(capsys, seconds, low, high):
    """Our Qwen2.5-fitted terms fall 9-25 % short of Qwen3-Omni's table (bench/vram.py),
    so the served plan adds the published remainder, interpolated between lengths."""
    args = ["plan", "--model", QWEN3, "--video-seconds", str(seconds), "--gpu-mem", "141"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == QWEN3 and data["fits"]
    assert low <= data["estimated_peak_gb"] <= high
    assert data["breakdown"]["unmodelled"] > 0


def test_served_tier_needs_enough_gpus():
    from carellm.planning.alternatives import other_tiers

    big = other_tiers(Needs(video_seconds=15), Hardware.simulated(gpus_gb=[80, 80]))
    small = other_tiers(Needs(video_seconds=15), Hardware.simulated(gpus_gb=[24]))
    served = [t for t in big if t.kind == "served"][0]
    assert served.model == QWEN3 and served.fits
    assert 'backend="openai"' in served.how and "--omni" in served.how
    assert "over 2 GPUs" in served.how
    assert not [t for t in small if t.kind == "served"][0].fits


def test_edge_tier_lists_published_mnn_peaks(capsys):
    assert main(["plan", "--ram", "4", "--no-speech", "--json"]) in (0, 1)
    edge = {t["model"]: t for t in json.loads(capsys.readouterr().out)["other_tiers"]
            if t["kind"] == "edge"}  # fmt: skip
    assert edge["taobao-mnn/Qwen2.5-Omni-7B-MNN"]["peak_gb"] == 5.8
    assert edge["taobao-mnn/Qwen2.5-Omni-3B-MNN"]["peak_gb"] == 3.6
    assert not edge["taobao-mnn/Qwen2.5-Omni-7B-MNN"]["fits"]  # 4 GB of RAM
    assert edge["taobao-mnn/Qwen2.5-Omni-3B-MNN"]["fits"]
    assert 'backend="mnn"' in edge["taobao-mnn/Qwen2.5-Omni-3B-MNN"]["how"]
