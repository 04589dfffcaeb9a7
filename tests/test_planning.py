"""carellm.planning.dims and memory_model: dims from config.json, the fit, held-out figures."""

import json
import shutil
from pathlib import Path

import pytest

from carellm.cli import main
from carellm.errors import ModelLoadError
from carellm.planning.dims import SHIPPED, folder_spec, shipped_spec
from carellm.planning.hardware import Hardware
from carellm.planning.memory_model import (
    CALIBRATION,
    FIT_POINTS,
    GIB,
    HELD_OUT,
    PUBLISHED,
    Workload,
    estimate,
    fit_calibration,
    published_bf16,
)
from carellm.planning.selection import Needs, select

OMNI = ("Qwen/Qwen2.5-Omni-7B", "Qwen/Qwen2.5-Omni-3B")
SHIPPED_3B = Path(__file__).parents[1] / "carellm" / "resources" / "qwen2.5-omni-3b.config.json"


def _cli_plan(capsys, model: str, seconds: float, *extra: str) -> dict:
    """What `carellm plan --model M --video-seconds S --gpu-mem 141 --json` prints."""
    args = ["plan", "--model", model, "--video-seconds", str(seconds), "--gpu-mem", "141"]
    assert main([*args, *extra, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("model_id", OMNI)
def test_parameter_formulas_match_the_modules_transformers_builds(model_id):
    import torch
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    spec = shipped_spec(model_id)
    config = json.loads((SHIPPED_3B.parent / SHIPPED[model_id][0]).read_text())
    with torch.device("meta"):
        model = Qwen2_5OmniForConditionalGeneration._from_config(Qwen2_5OmniConfig(**config))
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    thinker = model.thinker
    built = {
        "thinker": count(thinker.model.language_model) + count(thinker.lm_head),
        "vision": count(thinker.model.visual),
        "audio": count(thinker.model.audio_tower),
        "talker": count(model.talker),
        "token2wav": count(model.token2wav),
    }
    assert spec.component_params == built


@pytest.mark.parametrize(("model_id", "billions"), [(OMNI[0], 10.7), (OMNI[1], 5.5)])
def test_shipped_configs_have_the_released_sizes(model_id, billions):
    assert sum(shipped_spec(model_id).component_params.values()) / 1e9 == pytest.approx(
        billions, rel=0.01
    )


def test_the_fit_reproduces_the_shipped_calibration_from_the_fit_points_only():
    assert not set(FIT_POINTS) & set(HELD_OUT)
    assert fit_calibration() == CALIBRATION
    # refitting with a held-out point in place of a fit point changes the numbers: the
    # held-out figures really are not used
    other = (*FIT_POINTS[:3], HELD_OUT[1])
    assert fit_calibration(other) != CALIBRATION


@pytest.mark.parametrize(("model_id", "seconds"), HELD_OUT)
def test_cli_plan_is_within_10_percent_of_each_held_out_published_figure(capsys, model_id, seconds):
    plan = _cli_plan(capsys, model_id, seconds)
    assert plan["model"] == model_id and plan["speech"] and plan["fits"]
    assert plan["estimated_peak_gb"] == pytest.approx(published_bf16(model_id, seconds), rel=0.10)


@pytest.mark.parametrize(("model_id", "seconds"), FIT_POINTS)
def test_cli_plan_is_within_10_percent_of_each_fitted_figure(capsys, model_id, seconds):
    plan = _cli_plan(capsys, model_id, seconds)
    assert plan["estimated_peak_gb"] == pytest.approx(published_bf16(model_id, seconds), rel=0.10)


def test_every_bf16_figure_of_the_table_is_a_fit_or_held_out_point():
    bf16 = {(m, s) for m, d, s, _ in PUBLISHED if d == "bfloat16" and "Qwen2.5" in m}
    assert bf16 == set(FIT_POINTS) | set(HELD_OUT)


def _folder(tmp_path: Path, **changes) -> Path:
    """A checkpoint folder holding the shipped 3B config.json with `changes` to its LLM."""
    config = json.loads(SHIPPED_3B.read_text())
    config["thinker_config"]["text_config"].update(changes)
    folder = tmp_path / ("3b-" + "-".join(f"{k}{v}" for k, v in changes.items()))
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_folder_plans_from_its_own_config(tmp_path, capsys):
    same = _cli_plan(capsys, str(_folder(tmp_path)), 15)
    deeper = _cli_plan(capsys, str(_folder(tmp_path, num_hidden_layers=72)), 15)
    published = _cli_plan(capsys, "Qwen/Qwen2.5-Omni-3B", 15)
    assert same["breakdown"] == published["breakdown"]
    spec = shipped_spec("Qwen/Qwen2.5-Omni-3B")
    layer_gib = 36 * spec.text.layer_params * 2 / GIB  # 36 more layers in bf16
    gained = deeper["breakdown"]["weights"] - same["breakdown"]["weights"]
    assert gained == pytest.approx(layer_gib, abs=0.02)
    assert deeper["breakdown"]["kv_cache"] == pytest.approx(2 * same["breakdown"]["kv_cache"], 0.01)
    assert deeper["estimated_peak_gb"] > same["estimated_peak_gb"] + layer_gib


def test_tiny_checkpoint_parameters_come_from_its_config(tiny_path):
    import carellm

    spec = folder_spec(tiny_path)
    model = carellm.load(str(tiny_path), device="cpu", speech=True).model
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    thinker = model.thinker
    assert spec.component_params["thinker"] == count(thinker.model.language_model) + count(
        thinker.lm_head
    )
    assert spec.component_params["vision"] == count(thinker.model.visual)
    assert spec.component_params["audio"] == count(thinker.model.audio_tower)
    assert spec.component_params["talker"] == count(model.talker)


def test_a_config_without_a_needed_field_is_one_clear_line(tmp_path, capsys):
    folder = _folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    del config["thinker_config"]["vision_config"]
    (folder / "config.json").write_text(json.dumps(config))
    assert main(["plan", "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "config.json lacks 'vision_config'" in err and err.count("\n") == 1


def test_a_folder_without_config_is_an_unknown_model(tmp_path):
    shutil.copy(SHIPPED_3B, tmp_path / "not-config.json")
    with pytest.raises(ModelLoadError, match="a checkpoint folder with its config.json"):
        Needs(model=str(tmp_path))


def test_more_video_never_plans_less_memory():
    spec = shipped_spec("Qwen/Qwen2.5-Omni-7B")
    peaks = [estimate(spec, Workload(video_seconds=s)).peak for s in (0, 15, 30, 60)]
    assert peaks == sorted(peaks) and peaks[0] < peaks[-1]


def test_speech_off_drops_the_talker_terms_and_weights():
    hw = Hardware.simulated(gpus_gb=[141])
    on = select(Needs(model="Qwen/Qwen2.5-Omni-7B", video_seconds=30), hw)
    off = select(Needs(model="Qwen/Qwen2.5-Omni-7B", video_seconds=30, speech=False), hw)
    assert off.breakdown["talker"] == off.breakdown["hidden_states"] == 0
    assert on.breakdown["talker"] > 0 and on.breakdown["hidden_states"] > 0
    talker_and_vocoder = (1_351_360_256 * 2 + 449_051_264 * 4) / GIB
    assert on.breakdown["weights"] - off.breakdown["weights"] == pytest.approx(
        talker_and_vocoder, abs=0.02
    )


# ------------------------------------------------------------------ GGUF (llama.cpp lite tier)


def _json_plan(capsys, *args: str) -> tuple[int, dict]:
    rc = main(["plan", *args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_cli_plans_a_hub_gguf_by_its_quantization(capsys):
    rc, q8 = _json_plan(capsys, "--model", "Qwen/Qwen2.5-1.5B-Instruct-GGUF:q8_0", "--ram", "4")
    _, q4 = _json_plan(capsys, "--model", "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "--ram", "4")
    assert rc == 0 and q8["fits"] and (q8["tier"], q8["device"]) == ("lite", "cpu")
    assert (q8["dtype"], q4["dtype"]) == ("q8_0", "q4_k_m")
    # 1.54 B parameters at ~8.5 bits vs ~4.9 bits per weight
    assert q8["breakdown"]["weights"] == pytest.approx(1.54e9 * 1.0625 / GIB, rel=0.05)
    assert q4["breakdown"]["weights"] < 0.7 * q8["breakdown"]["weights"]


def test_cli_plan_of_a_gguf_that_does_not_fit_exits_1(capsys):
    rc, plan = _json_plan(capsys, "--model", "Qwen/Qwen2.5-7B-Instruct-GGUF", "--ram", "4")
    assert rc == 1 and not plan["fits"] and plan["estimated_peak_gb"] > 4


def test_cli_plans_a_gguf_file_from_its_size(tmp_path, capsys):
    path = tmp_path / "qwen2.5-0.5b-instruct-q4_k_m.gguf"
    with open(path, "wb") as f:
        f.truncate(3 * GIB)  # sparse: its size is what the plan reads
    rc, plan = _json_plan(capsys, "--model", str(path), "--ram", "8")
    assert rc == 0 and plan["breakdown"]["weights"] == 3.0 and plan["fits"]
    rc, small = _json_plan(capsys, "--model", str(path), "--ram", "3")
    assert rc == 1 and not small["fits"]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("Qwen/Qwen9-Chat-GGUF", "no plan for Qwen/Qwen9-Chat-GGUF: known GGUF repositories"),
        ("missing.gguf", "GGUF file missing.gguf does not exist"),
    ],
)
def test_cli_plan_bad_gguf_is_one_clear_line(capsys, model, message):
    assert main(["plan", "--model", model]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
