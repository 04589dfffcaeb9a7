"""The lite tier on llama.cpp: a tiny random Qwen2 converted to GGUF here and loaded
through `carellm.load("….gguf")`, the path a user's GGUF file takes.

Tests that run llama.cpp skip when llama-cpp-python is not installed
(``pip install -e '.[cpu]'`` builds it); the planning tests run everywhere.
"""

from __future__ import annotations

import importlib.util
import io

import numpy as np
import pytest

import carellm
from carellm import InputError, ModelLoadError
from carellm.turn import Turn

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("gguf") is None,
    reason="llama-cpp-python/gguf not installed: pip install -e '.[cpu]' to run these",
)
PROMPT_TEXT = "I can't sleep before exams 3 times a week.\n我最近很难过，压力很大。 Thank you!!"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from carellm.tiny import build_tiny_text_model

    return build_tiny_text_model(tmp_path_factory.mktemp("lite") / "model")


@pytest.fixture(scope="module")
def gguf_path(tiny_folder):
    from carellm.lite.convert import convert_to_gguf

    # f32 matrices: scores are compared with transformers' on the same weights
    return convert_to_gguf(tiny_folder, tiny_folder.parent / "tiny-f32.gguf", outtype="f32")


@pytest.fixture(scope="module")
def llama(gguf_path):
    return carellm.load(str(gguf_path))


@pytest.fixture(scope="module")
def hf(tiny_folder):
    return carellm.load(str(tiny_folder), device="cpu")


@needs_llama
def test_loads_as_lite_text_engine(llama, gguf_path):
    from carellm.lite import LlamaEngine

    assert isinstance(llama, LlamaEngine) and llama.lite and not llama.speech
    assert llama.info.tiny and llama.info.dtype == "f32" and llama.info.model == str(gguf_path)


@needs_llama
def test_converted_tokenizer_and_template_match_transformers(llama, hf):
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": PROMPT_TEXT}]
    text = hf.tokenizer.apply_chat_template(messages, tokenize=False)
    assert llama.tokenizer.apply_chat_template(messages) == text
    assert llama.encode(text) == hf.encode(text)
    assert (llama.im_end, llama.endoftext) == (hf.im_end, hf.endoftext)
    assert set(llama.banned_ids) == set(hf.banned_ids)


@needs_llama
@pytest.mark.timeout(60)
def test_report_scores_equal_transformers_on_the_shared_prompt(llama, hf):
    """Candidate log-probabilities from llama.cpp's branches equal transformers'."""
    from carellm import emotion, generation
    from carellm.assessment import _question_ids
    from carellm.prompts import build_inputs, get_persona, system_prompt
    from carellm.turn import prepare

    prepared = prepare(Turn(text=PROMPT_TEXT))
    inputs = build_inputs(hf, system_prompt(get_persona("counselor")), [], prepared)
    questions = [_question_ids(hf, q) for q in emotion.questions_for({"text"})]
    pre = generation.prefill(
        hf.thinker, inputs.tensors, keep_hidden=False, use_audio_in_video=False
    )
    expected = generation.score_candidates(hf.thinker, pre, questions)
    runtime = llama.runtime
    prompt = inputs.tensors["input_ids"][0].tolist()
    runtime.prefill(prompt)
    got = runtime.score(questions)
    assert runtime.tokens == prompt  # the branches never wrote the conversation
    assert [len(g) for g in got] == [len(e) for e in expected]
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(expected), atol=2e-2)
    again = np.concatenate(runtime.score(questions))  # same cache, same scores
    np.testing.assert_allclose(again, np.concatenate(got), atol=1e-4)


@needs_llama
def test_turn_streams_text_report_and_safety_without_speech(llama):
    from carellm.lite.session import NO_SPEECH_NOTE
    from carellm.reply import Assessment, Final, TextDelta

    session = llama.session(seed=0, max_new_tokens=12)
    events = list(session.stream(Turn(text="I feel lonely these days.")))
    assert isinstance(events[0], Assessment) and isinstance(events[-1], Final)
    reply = events[-1].reply
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip() == reply.text
    assert reply.audio is None and reply.notes == (NO_SPEECH_NOTE,)
    assert reply.emotion.source == "model" and reply.emotion is events[0].emotion
    assert {"prefill", "report", "decode", "total"} <= set(reply.timings)
    crisis = session.respond(Turn(text="I want to kill myself"))
    assert crisis.escalated and "988" in crisis.text and crisis.safety.level in ("high", "imminent")
    assert [t.text for t, _ in session.history] == [
        "I feel lonely these days.",
        "I want to kill myself",
    ]


@needs_llama
def test_cli_chat_with_a_gguf_file_replies_with_a_report(gguf_path, monkeypatch, capsys, tmp_path):
    from carellm.cli import main

    typed = f"I have been feeling low all week.\n/export {tmp_path / 'out'}\n/quit\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    assert main(["chat", "--model", str(gguf_path), "--seed", "0", "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert "TINY RANDOM MODEL" in out and "carellm> " in out and "· model]" in out
    assert (tmp_path / "out" / "session.json").exists()


@needs_llama
def test_same_seed_same_reply_and_history_reaches_the_prompt(llama):
    first = llama.session(seed=3, max_new_tokens=8).respond(Turn(text="hello"))
    again = llama.session(seed=3, max_new_tokens=8).respond(Turn(text="hello"))
    assert first.text == again.text
    session = llama.session(seed=3, max_new_tokens=8)
    session.add_exchange(Turn(text="my name is Ana"), "Nice to meet you, Ana.")
    session.respond(Turn(text="hello"))
    prompt = llama.tokenizer.decode(llama.runtime.tokens)
    assert "my name is Ana" in prompt and "Nice to meet you, Ana." in prompt


@needs_llama
def test_media_is_refused_and_history_kept(llama):
    session = llama.session(seed=0, max_new_tokens=4)
    session.respond(Turn(text="hello"))
    with pytest.raises(InputError, match="text-only") as err:
        session.respond(Turn(text="look", image=np.zeros((64, 64, 3), np.uint8)))
    assert err.value.field == "turn" and len(session.history) == 1


@needs_llama
def test_speech_request_is_noted_not_refused(llama):
    reply = llama.session(speech=True, seed=0, max_new_tokens=4).respond(Turn(text="hi"))
    assert reply.audio is None and "no speech" in reply.notes[0]


@needs_llama
def test_turn_longer_than_the_context_is_refused_before_anything_changes(gguf_path):
    from carellm.lite import RuntimeOptions, load_gguf

    engine = load_gguf(str(gguf_path), options=RuntimeOptions(n_ctx=1024))
    session = engine.session(seed=0, max_new_tokens=4)
    session.respond(Turn(text="hello"))
    with pytest.raises(InputError, match="context holds 1024"):
        session.respond(Turn(text="word " * 400))
    assert len(session.history) == 1


@needs_llama
def test_quantized_file_runs_a_turn(gguf_path):
    from carellm.lite.convert import quantize_gguf

    q8 = quantize_gguf(gguf_path, gguf_path.with_name("tiny-q8_0.gguf"), "q8_0")
    engine = carellm.load(str(q8))
    assert engine.info.dtype == "q8_0"
    reply = engine.session(seed=0, max_new_tokens=6).respond(Turn(text="hello"))
    assert reply.emotion.source == "model"


@needs_llama
@pytest.mark.parametrize(
    ("model", "kwargs", "match"),
    [
        ("missing/model.gguf", {}, "does not exist"),
        ("QWEN_TEST_BROKEN", {}, "cannot load"),
        ("QWEN_TEST_GGUF", {"adapter": "lora"}, "LoRA"),
    ],
)
def test_bad_gguf_inputs(gguf_path, tmp_path, model, kwargs, match):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    model = {"QWEN_TEST_BROKEN": str(broken), "QWEN_TEST_GGUF": str(gguf_path)}.get(model, model)
    with pytest.raises(ModelLoadError, match=match):
        carellm.load(model, **kwargs)


def test_hub_gguf_offline_says_how_to_download(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(
        ModelLoadError,
        match="huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct-GGUF qwen2.5-0.5b-instruct-q8_0.gguf",
    ):
        carellm.load("Qwen/Qwen2.5-0.5B-Instruct-GGUF:q8_0")


def test_gguf_names_and_hub_files():
    from carellm.lite import is_gguf
    from carellm.lite.engine import hub_file

    assert is_gguf("m.gguf") and is_gguf("Qwen/Qwen2.5-1.5B-Instruct-GGUF:Q8_0")
    assert not is_gguf("Qwen/Qwen2.5-1.5B-Instruct") and not is_gguf("tiny-lite")
    files = ["README.md", "qwen2.5-7b-instruct-q8_0.gguf", "qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf",
             "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf"]  # fmt: skip
    assert hub_file("r", "q8_0", files) == ["qwen2.5-7b-instruct-q8_0.gguf"]
    assert hub_file("r", "Q4_K_M", files)[0].endswith("00001-of-00002.gguf")
    with pytest.raises(ModelLoadError, match="has no q2_k file; it has: q4_k_m, q8_0"):
        hub_file("r", "q2_k", files)


# ---------------------------------------------------------------- planning (no llama.cpp needed)


@pytest.mark.parametrize(
    ("ram_gb", "cores", "model"),
    [
        (4, 2, "Qwen/Qwen2.5-0.5B-Instruct-GGUF"),
        (16, 4, "Qwen/Qwen2.5-1.5B-Instruct-GGUF"),
        (16, 8, "Qwen/Qwen2.5-3B-Instruct-GGUF"),
        (4, 8, "Qwen/Qwen2.5-1.5B-Instruct-GGUF"),  # the 3B would not fit 4 GB
        (32, 16, "Qwen/Qwen2.5-7B-Instruct-GGUF"),
    ],
)
def test_cpu_plan_picks_the_gguf_that_fits_ram_and_cores(ram_gb, cores, model):
    from carellm.lite import is_gguf
    from carellm.planning import Hardware, Needs, select

    hw = Hardware.simulated(ram_gb=ram_gb, cpu_cores=cores, packages=("llama_cpp",))
    plan = select(Needs(), hw)
    assert (plan.model, plan.tier, plan.dtype, plan.device, plan.speech) == (
        model,
        "lite",
        "q4_k_m",
        "cpu",
        False,
    )
    assert plan.fits and plan.estimated_peak_gb + plan.margin_gb <= plan.budget_gb
    assert any("llama.cpp" in r for r in plan.reasons) and is_gguf(plan.model)
    assert any("text only" in w for w in plan.warnings)  # Needs() asks for audio and an image


def test_cpu_plan_without_llama_cpp_says_how_to_install():
    from carellm.planning import Hardware, Needs, select

    plan = select(Needs(), Hardware.simulated(ram_gb=8))
    assert plan.model == "Qwen/Qwen2.5-1.5B-Instruct"  # the transformers lite path, as before
    assert any("pip install 'carellm[cpu]'" in r for r in plan.reasons)


def test_gpu_machine_keeps_its_omni_plan_with_llama_cpp_installed():
    from carellm.planning import Hardware, Needs, select

    plan = select(Needs(), Hardware.simulated(gpus_gb=[24], packages=("llama_cpp",)))
    assert plan.model == "Qwen/Qwen2.5-Omni-3B" and plan.device == "cuda"


def test_gguf_plan_too_little_ram_falls_back():
    from carellm.planning import Hardware, Needs, select

    plan = select(Needs(), Hardware.simulated(ram_gb=1, cpu_cores=2, packages=("llama_cpp",)))
    assert not plan.fits and plan.model != "Qwen/Qwen2.5-0.5B-Instruct-GGUF"


@needs_llama
@pytest.mark.timeout(180)
def test_stream_closed_from_another_thread_frees_the_engine(llama):
    """As Gradio does when a tab closes mid-reply: the generator is closed on another
    thread; the engine lock must not stay with the dead turn (it is the worker's)."""
    import threading

    session = llama.session(seed=1, max_new_tokens=400)
    events = session.stream(Turn(text="Tell me about your week, slowly."))
    assert type(next(events)).__name__ == "Assessment"
    closer = threading.Thread(target=events.close)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), "closing the stream blocked"
    assert llama.lock.acquire(timeout=5), "the engine is still held 5 s after the stream closed"
    llama.lock.release()
    assert session.history == []
    answer = []
    other = llama.session(seed=2, max_new_tokens=3)
    turn = threading.Thread(target=lambda: answer.append(other.respond(Turn(text="hello?"))))
    turn.start()
    turn.join(120)
    assert answer and answer[0].text and len(other.history) == 1


@needs_llama
@pytest.mark.timeout(120)
def test_reply_counts_its_tokens(llama):
    session = llama.session(seed=3, max_new_tokens=5)
    reply = session.respond(Turn(text="I feel tired today."))
    assert 1 <= reply.completion_tokens <= 5
    assert reply.prompt_tokens == len(llama.runtime.tokens) - reply.completion_tokens + (
        reply.completion_tokens == 5  # the last token at the cap is sampled, never fed
    )
