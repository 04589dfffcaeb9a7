"""Loading: the tiny model goes through the user's path; every failure is one clear line."""

from __future__ import annotations

import shutil

import pytest
import torch

import carellm
from carellm import ModelLoadError
from carellm.loading import resolve


def test_tiny_model_loads_through_the_real_classes(engine, tiny_path):
    from transformers import Qwen2_5OmniForConditionalGeneration, Qwen2_5OmniProcessor

    assert isinstance(engine.model, Qwen2_5OmniForConditionalGeneration)
    assert isinstance(engine.processor, Qwen2_5OmniProcessor)
    assert engine.info.tiny and engine.info.speech and engine.info.model == str(tiny_path)
    assert set(engine.model.speaker_map) == {"Chelsie", "Ethan"}
    assert (tiny_path / "spk_dict.pt").exists() and (tiny_path / "chat_template.jinja").exists()


def test_tiny_model_is_deterministic_for_a_seed(tiny_path, tmp_path):
    from safetensors.torch import load_file

    from carellm.tiny import build_tiny_model

    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    a, b, c = (load_file(p / "model.safetensors") for p in (tiny_path, again, other))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert (tiny_path / "tokenizer.json").read_text() == (again / "tokenizer.json").read_text()


def test_model_tiny_builds_once_into_a_versioned_cache(monkeypatch, tmp_path):
    from carellm.tiny import TINY_VERSION

    monkeypatch.setenv("CARELLM_CACHE", str(tmp_path))
    stale = tmp_path / f"tiny-v{TINY_VERSION - 1}-seed0"  # an older builder's output
    stale.mkdir()
    first = resolve("tiny")
    folder = tmp_path / f"tiny-v{TINY_VERSION}-seed0"
    assert first.name == str(folder) and first.tiny
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    second = resolve("tiny")
    assert first == second
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert not any(stale.iterdir())


def _vocab_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "within the vocabulary" in r.getMessage()]


@pytest.fixture
def transformers_warnings(caplog):
    """caplog that sees transformers' warnings (its logger does not propagate), each
    logged afresh (transformers logs a given warning once per process)."""
    import logging

    hf_logger = logging.getLogger("transformers")
    propagate = hf_logger.propagate  # another test may have turned propagation on:
    hf_logger.propagate = False  # then caplog would see each record twice
    hf_logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="transformers")
    logging.Logger.warning_once.cache_clear()
    yield caplog
    hf_logger.removeHandler(caplog.handler)
    hf_logger.propagate = propagate


@pytest.mark.timeout(120)
def test_loading_the_tiny_model_logs_no_vocabulary_warning(tiny_path, transformers_warnings):
    from transformers import Qwen2_5OmniConfig

    from carellm.loading import check_talker_ids

    config = Qwen2_5OmniConfig.from_pretrained(tiny_path)
    assert check_talker_ids(config) == []  # the talker's text ids are thinker rows
    codec = config.talker_config
    assert all(
        0 <= getattr(codec, f"tts_codec_{n}_token_id") < codec.vocab_size
        for n in ("start", "end", "pad", "mask")
    )
    transformers_warnings.clear()
    carellm.load(str(tiny_path), device="cpu")
    assert _vocab_warnings(transformers_warnings) == []


def _broken_config(tiny_path, tmp_path, **talker):
    import json

    config = json.loads((tiny_path / "config.json").read_text())
    config["talker_config"].update(talker)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_a_codec_id_outside_the_codec_vocabulary_still_warns(
    tiny_path, tmp_path, transformers_warnings
):
    from transformers import Qwen2_5OmniConfig

    from carellm.loading import quiet_talker_id_warnings

    path = _broken_config(tiny_path, tmp_path, tts_codec_pad_token_id=5000)
    with quiet_talker_id_warnings():
        Qwen2_5OmniConfig.from_pretrained(path)
    warnings = _vocab_warnings(transformers_warnings)
    assert len(warnings) == 1 and "tts_codec_pad_token_id" in warnings[0] and "5000" in warnings[0]


def test_a_talker_text_id_outside_the_thinker_vocabulary_is_reported(tiny_path, tmp_path, caplog):
    from transformers import Qwen2_5OmniConfig

    from carellm.loading import check_talker_ids

    path = _broken_config(tiny_path, tmp_path, tts_text_pad_token_id=5000)
    assert check_talker_ids(Qwen2_5OmniConfig.from_pretrained(path)) == ["tts_text_pad_token_id"]
    assert "tts_text_pad_token_id = 5000 is not a row of the thinker's vocabulary" in caplog.text


@pytest.mark.parametrize("name", ["/no/such/folder", "./missing-model", "not a model"])
def test_missing_folder_or_unknown_name(name):
    with pytest.raises(ModelLoadError, match="does not exist|choose one of"):
        carellm.load(name)


@pytest.mark.parametrize(
    "drop", ["spk_dict.pt", "model.safetensors", "tokenizer.json", "config.json"]
)
def test_incomplete_folder_names_the_missing_file(tiny_path, tmp_path, drop):
    folder = tmp_path / "partial"
    shutil.copytree(tiny_path, folder)
    (folder / drop).unlink()
    with pytest.raises(ModelLoadError) as err:
        carellm.load(str(folder))
    message = str(err.value)
    assert drop.split(".")[0] in message
    assert f"`hf download Qwen/Qwen2.5-Omni-7B --local-dir {folder}`" in message
    assert "huggingface-cli" not in message and "\n" not in message


def test_a_file_is_not_a_model(tiny_path):
    with pytest.raises(ModelLoadError, match="is a file"):
        carellm.load(str(tiny_path / "config.json"))


def test_hub_id_without_network_fails_fast_with_instructions(monkeypatch):
    import carellm.loading as loading

    monkeypatch.setattr(loading, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelLoadError) as err:
        carellm.load("Qwen/Qwen2.5-Omni-3B", device="cpu")
    assert "`hf download Qwen/Qwen2.5-Omni-3B --local-dir DIR`" in str(err.value)
    assert "--model DIR" in str(err.value)


def test_hub_id_offline_and_not_cached_names_the_download_command(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))  # empty
    with pytest.raises(ModelLoadError) as err:
        carellm.load("Qwen/Qwen2.5-Omni-7B", device="cpu")
    message = str(err.value)
    assert "HF_HUB_OFFLINE=1 is set" in message
    assert "`hf download Qwen/Qwen2.5-Omni-7B --local-dir DIR`" in message
    assert "huggingface-cli" not in message


def test_bad_dtype(tiny_path):
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        carellm.load(str(tiny_path), dtype="int3")


def test_auto_plan_caps_media_limits():
    from carellm.engine import media_limits_for
    from carellm.media import MediaLimits
    from carellm.planning.hardware import Hardware
    from carellm.planning.selection import Needs, select

    plan = select(Needs(speech=True, video_seconds=60), Hardware.simulated(gpus_gb=[24]))
    limits = media_limits_for(plan)
    default = MediaLimits()
    assert limits.video_max_frames <= default.video_max_frames
    assert limits.video_max_pixels <= min(default.video_max_pixels, plan.video_max_pixels)
    assert limits.video_max_frames % 2 == 0 and limits.video_fps <= plan.video_fps
    assert media_limits_for(None) == default


def test_auto_on_a_machine_where_nothing_fits_says_what_would(monkeypatch):
    from carellm import MemoryPlanError
    from carellm.planning.hardware import Hardware

    monkeypatch.setattr(
        "carellm.planning.selection.probe", lambda: Hardware.simulated(gpus_gb=[], ram_gb=1)
    )
    with pytest.raises(MemoryPlanError) as err:
        carellm.load("auto")
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ GPTQ / AWQ checkpoints


def _quantized_copy(tiny_path, tmp_path, method: str):
    """The tiny checkpoint with a `method` quantization_config in its config.json."""
    import json

    folder = tmp_path / f"tiny-{method}"
    shutil.copytree(tiny_path, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": method, "bits": 4, "group_size": 128}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    ("name", "local", "method"),
    [
        ("Qwen/Qwen2.5-Omni-7B-GPTQ-Int4", False, "gptq"),
        ("Qwen/Qwen2.5-Omni-7B-AWQ", False, "awq"),
        ("Qwen/Qwen2.5-Omni-7B", False, None),
    ],
)
def test_quantization_of_hub_ids(name, local, method):
    from carellm.loading import quantization_of

    assert quantization_of(name, local=local) == method


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_quantized_folder_without_gptqmodel_names_the_pip_command(tiny_path, tmp_path, method):
    import importlib.util

    from carellm.loading import quantization_of

    if importlib.util.find_spec("gptqmodel") is not None:
        pytest.skip("gptqmodel is installed: the missing-package message cannot be seen")
    folder = _quantized_copy(tiny_path, tmp_path, method)
    assert quantization_of(str(folder), local=True) == method
    with pytest.raises(ModelLoadError) as err:
        carellm.load(str(folder), device="cpu")
    message = str(err.value)
    assert f"is {method.upper()}-quantized" in message and "pip install gptqmodel" in message
    assert "\n" not in message


def test_plan_offers_a_quantized_model_only_with_its_package():
    from carellm.planning.hardware import Hardware
    from carellm.planning.selection import Needs, select

    needs = Needs(speech=False)
    without = select(needs, Hardware.simulated(gpus_gb=[12]))
    with_it = select(needs, Hardware.simulated(gpus_gb=[12], packages=("gptqmodel",)))
    assert "GPTQ" not in without.model and with_it.model == "Qwen/Qwen2.5-Omni-7B-GPTQ-Int4"
    assert any("pip install gptqmodel" in r for r in without.reasons)
    assert any("untested" in w for w in with_it.warnings)
    forced = select(Needs(model="Qwen/Qwen2.5-Omni-7B-AWQ"), Hardware.simulated(gpus_gb=[24]))
    assert any("does not load here: pip install gptqmodel" in w for w in forced.warnings)
