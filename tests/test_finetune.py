"""LoRA fine-tuning on the tiny model: label masking, loss, adapters, resume, speech."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import carellm
from carellm.adapters import apply_adapter, target_pattern
from carellm.data import read_records
from carellm.errors import InputError, ModelLoadError
from carellm.finetune import IGNORE, FinetuneOptions, encode_record, list_checkpoints, train

ASSETS = Path(__file__).parent / "assets" / "eval"
ONE_DIALOGUE = {
    "id": "one", "source": "test",
    "messages": [{"role": "user", "content": "I feel so lonely and sad today."},
                 {"role": "assistant", "content": "You are not alone. I am here with you."}],
}  # fmt: skip


@pytest.fixture(scope="module")
def one_dialogue(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ft") / "one.jsonl"
    path.write_text(json.dumps(ONE_DIALOGUE) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tiny_path, one_dialogue, tmp_path_factory):
    options = FinetuneOptions(
        model=str(tiny_path), data=one_dialogue, out=tmp_path_factory.mktemp("adapter"),
        max_steps=30, lr=5e-3, rank=8, dropout=0.0, device="cpu", progress=False,
    )  # fmt: skip
    return options, train(options)


def test_labels_cover_only_assistant_tokens(text_engine):
    from carellm.prompts import get_persona, system_prompt

    record = next(iter(read_records(ASSETS / "dialogues.jsonl")))  # two assistant turns
    example = encode_record(
        record, text_engine.processor, system_prompt(get_persona("counselor")), 4096
    )
    tok = text_engine.tokenizer
    learned = [t for t in example.labels if t != IGNORE]
    expected = (
        "You are not alone. I am here with you.<|im_end|>"
        "Let's take one slow breath together.<|im_end|>"
    )
    assert tok.decode(learned) == expected
    # every labelled position carries its own input token; the rest is masked
    assert all(lab in (IGNORE, tid) for lab, tid in zip(example.labels, example.input_ids))
    assert "lonely" not in tok.decode([t for t, lab in zip(example.input_ids, example.labels)
                                       if lab != IGNORE])  # fmt: skip


def test_a_few_lora_steps_lower_the_loss(trained):
    options, result = trained
    assert result.steps == 30
    assert result.losses[-1][1] < result.losses[0][1]
    card = json.loads((options.out / "carellm_adapter.json").read_text())
    assert card["steps"] == 30 and len(card["data_sha256"]) == 64
    assert card["hyperparameters"]["rank"] == 8
    assert (options.out / "README.md").read_text().startswith("# CareLLM LoRA adapter")


def _logits(engine, text="I feel so lonely"):
    ids = torch.tensor([engine.encode(text)])
    with torch.no_grad():
        return engine.model.thinker(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


@pytest.mark.parametrize("merge", [False, True])
def test_the_adapter_reloads_and_changes_the_thinker(tiny_path, trained, merge):
    options, _ = trained
    engine = carellm.load(str(tiny_path), device="cpu", speech=False)
    before = _logits(engine)
    apply_adapter(engine.model, options.out, merge=merge)
    after = _logits(engine)
    assert not torch.allclose(before, after, atol=1e-4)
    has_lora = any("lora_" in n for n, _ in engine.model.thinker.named_parameters())
    assert has_lora is not merge


def test_lora_targets_only_the_language_model(tiny_path, trained):
    options, _ = trained
    engine = carellm.load(str(tiny_path), device="cpu", speech=False)
    apply_adapter(engine.model, options.out)
    adapted = {n for n, _ in engine.model.thinker.named_parameters() if "lora_A" in n}
    assert adapted and all(".language_model.layers." in n for n in adapted)
    with pytest.raises(InputError, match="targets"):
        target_pattern(("q_proj", "qkv"))


def test_resume_continues_from_the_last_checkpoint(tiny_path, one_dialogue, tmp_path):
    from carellm.cli import main

    out = tmp_path / "run"
    argv = ["finetune", "--model", str(tiny_path), "--data", str(one_dialogue), "--out",
            str(out), "--lr", "5e-3", "--rank", "4", "--save-every", "2", "--device", "cpu",
            "--no-speech-check"]  # fmt: skip
    assert main([*argv, "--max-steps", "4"]) == 0
    assert [p.name for p in list_checkpoints(out)] == ["step-000002", "step-000004"]
    first = json.loads((list_checkpoints(out)[-1] / "state.json").read_text())["losses"]
    options = FinetuneOptions(
        model=str(tiny_path), data=one_dialogue, out=out, max_steps=6, lr=5e-3, rank=4,
        save_every=2, resume=True, device="cpu", progress=False,
    )  # fmt: skip
    result = train(options)
    assert result.start_step == 4 and result.steps == 6
    assert [s for s, _ in result.losses] == [1, 2, 3, 4, 5, 6]
    assert [list(x) for x in result.losses[:4]] == first  # not restarted
    changed = FinetuneOptions(**{**options.__dict__, "rank": 8})
    with pytest.raises(carellm.CareLLMError, match="rank"):
        train(changed)


def test_a_missing_adapter_is_a_model_load_error(text_engine, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        apply_adapter(text_engine.model, tmp_path / "nope")
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="adapter_model"):
        apply_adapter(text_engine.model, tmp_path)


def test_bad_options_are_rejected(one_dialogue, tmp_path):
    with pytest.raises(InputError, match="lr"):
        train(FinetuneOptions(model="tiny", data=one_dialogue, out=tmp_path, lr=0))


def test_speech_still_works_with_the_adapter(tiny_path, trained):
    from carellm.finetune import speech_check

    options, _ = trained
    check = speech_check(str(tiny_path), options.out, device="cpu")
    assert check["audio_seconds"] > 0
