"""carellm.mnn: sessions on an MNN export (tests/assets/mnn_tiny_text, a tiny random Qwen2
exported with MNN's own llmexport; see its README.md), and the backend's error paths."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import carellm
from carellm import Turn
from carellm.errors import CareLLMError, InputError, ModelLoadError
from carellm.reply import Assessment, EscalationDelta, Final, TextDelta

EXPORT = Path(__file__).parent / "assets" / "mnn_tiny_text"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def mnn_engine():
    pytest.importorskip("MNN.llm", reason="pip install -e '.[edge]' (mnn==3.6.1)")
    return carellm.load(str(EXPORT / "config.json"), backend="mnn")


def test_engine_says_what_the_export_takes(mnn_engine):
    assert mnn_engine.info.modalities == ("text",)  # no visual.mnn / audio.mnn here
    assert mnn_engine.info.speech is False
    assert mnn_engine.stop_ids == {mnn_engine.encode("<|im_end|>")[0], 600}


def test_stream_yields_assessment_deltas_final(mnn_engine):
    session = mnn_engine.session(max_new_tokens=6)
    events = list(session.stream(Turn(text="I feel alone these days.")))
    assert isinstance(events[0], Assessment) and isinstance(events[-1], Final)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 6  # one per token: the tiny model never says <|im_end|>
    reply = events[-1].reply
    assert reply.audio is None and reply.sample_rate == 24000
    assert any("no speech" in n for n in reply.notes)
    assert reply.emotion.source == "fallback"
    assert [e.modality for e in reply.emotion.evidence] == ["text"]
    assert set(reply.timings) >= {"prefill", "decode", "total"}


def test_greedy_stream_matches_mnn_own_generation(mnn_engine):
    """Our token loop (Llm.forward + argmax) produces what MNN's own response() does with
    its greedy sampler on the same rendered prompt."""
    session = mnn_engine.session(max_new_tokens=5)
    turn = Turn(text="Exams make me anxious.")
    streamed = "".join(
        e.text for e in session.stream(turn, report=False) if isinstance(e, TextDelta)
    )
    from carellm.turn import prepare

    llm = mnn_engine.llm
    llm.set_config({"sampler_type": "greedy", "max_new_tokens": 5})
    session.reset()
    llm.response(session._prompt(prepare(turn)))
    own = llm._c_obj.get_context()["output_tokens"]
    assert len(own) == 5
    assert "".join(llm.tokenizer_decode(t) for t in own) == streamed


def test_history_is_sent_with_the_persona(mnn_engine):
    from carellm.prompts import get_persona, system_prompt
    from carellm.turn import prepare

    session = mnn_engine.session(persona="counselor", max_new_tokens=2)
    session.respond(Turn(text="My dog died last week."))
    prompt = session._prompt(prepare(Turn(text="I miss him.")))
    assert system_prompt(get_persona("counselor")) in prompt
    assert prompt.index("My dog died last week.") < prompt.index("I miss him.")
    first = mnn_engine.llm._c_obj.get_context()["all_seq_len"]
    session.respond(Turn(text="I miss him."))
    assert mnn_engine.llm._c_obj.get_context()["all_seq_len"] > first  # history re-sent
    assert len(session.history) == 2
    session.reset()
    assert session.history == []


def test_crisis_turn_escalates_without_a_report(mnn_engine):
    session = mnn_engine.session(max_new_tokens=2, region="US")
    events = list(session.stream(Turn(text="I want to kill myself tonight."), report=False))
    reply = events[-1].reply
    assert reply.safety.level in ("high", "imminent") and reply.escalated
    assert any(isinstance(e, EscalationDelta) for e in events)
    assert "988" in reply.text and reply.emotion is None
    assert not any("keyword fallback" in n for n in reply.notes)


def test_media_the_export_cannot_take_is_refused_and_history_kept(mnn_engine, tmp_path):
    from PIL import Image

    session = mnn_engine.session(max_new_tokens=1)
    session.respond(Turn(text="hello"))
    image = tmp_path / "face.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(image)
    with pytest.raises(InputError, match="no image encoder"):
        list(session.stream(Turn(text="look", image=str(image))))
    audio = (0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220)).astype(np.float32)
    with pytest.raises(InputError, match="no audio encoder"):
        list(session.stream(Turn(text="listen", audio=(audio, 16000))))
    assert len(session.history) == 1


def test_video_is_refused(mnn_engine, media_dir):
    session = mnn_engine.session()
    with pytest.raises(InputError, match="send frames as images") as info:
        list(session.stream(Turn(video=str(media_dir / "clip.mp4"))))
    assert info.value.field == "video"


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_max_new_tokens(mnn_engine, bad):
    with pytest.raises(InputError, match="max_new_tokens"):
        mnn_engine.session(max_new_tokens=bad)


def test_missing_export_says_what_to_pass(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        carellm.load(str(tmp_path / "nope" / "config.json"), backend="mnn")


def test_incomplete_export_names_the_missing_file(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(EXPORT, folder)
    (folder / "llm.mnn.weight").unlink()
    with pytest.raises(ModelLoadError, match="llm.mnn.weight is missing"):
        carellm.load(str(folder), backend="mnn")  # a folder means its config.json


def test_unreadable_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not readable JSON"):
        carellm.load(str(tmp_path / "config.json"), backend="mnn")


def test_missing_mnn_package_gives_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "MNN.llm", None)  # import MNN.llm raises ImportError
    with pytest.raises(ModelLoadError, match=r"pip install mnn==3\.6\.1") as info:
        carellm.load(str(EXPORT / "config.json"), backend="mnn")
    assert isinstance(info.value, CareLLMError)


def test_unknown_backend_lists_mnn():
    with pytest.raises(ModelLoadError, match="'mnn'"):
        carellm.load("tiny", backend="tflite")


def test_export_modalities_read_from_files(tmp_path):
    from carellm.mnn import export_modalities

    folder = tmp_path / "omni"
    shutil.copytree(EXPORT, folder)
    config = json.loads((folder / "config.json").read_text())
    config["visual_model"] = "visual.mnn"
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "visual.mnn").write_bytes(b"")
    (folder / "audio.mnn").write_bytes(b"")
    assert export_modalities(folder / "config.json") == ("text", "image", "audio")


# ------------------------------------------------------------------ the Omni export: image, audio

OMNI = Path(__file__).parent / "assets" / "mnn_tiny_omni"


@pytest.fixture(scope="module")
def omni_engine():
    pytest.importorskip("MNN.llm", reason="pip install -e '.[edge]' (mnn==3.6.1)")
    from carellm.mnn import MnnEngine

    return MnnEngine(str(OMNI / "config.json"), threads=1)


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_omni_export_takes_image_and_audio(omni_engine, tmp_path):
    from PIL import Image

    assert omni_engine.info.modalities == ("text", "image", "audio")
    image = tmp_path / "room.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 80, 3)) * 255).astype(np.uint8)).save(image)
    session = omni_engine.session(max_new_tokens=4)
    llm = omni_engine.llm
    session.respond(Turn(text="hello"))
    assert llm._c_obj.get_context()["vision_us"] == 0
    reply = session.respond(Turn(text="what is this?", image=str(image)))
    assert llm._c_obj.get_context()["vision_us"] > 0  # the vision encoder ran
    assert reply.emotion.source == "fallback" and reply.audio is None
    reply = session.respond(Turn(text="listen", audio=(_tone(2.0), 16000)))
    assert llm._c_obj.get_context()["audio_us"] > 0  # the audio encoder ran
    assert [e.modality for e in reply.emotion.evidence] == ["text", "voice"]
    assert len(session.history) == 3


def test_omni_history_mentions_past_media_without_resending_it(omni_engine):
    from carellm.turn import prepare

    session = omni_engine.session(max_new_tokens=2)
    session.respond(Turn(text="my voice", audio=(_tone(1.0), 16000)))
    prompt = session._prompt(prepare(Turn(text="and now?")))
    assert isinstance(prompt, str)  # no media in this turn: nothing re-encoded
    assert "(The user sent audio, not shown again.) my voice" in prompt


def test_export_whose_config_promises_a_talker_fails_to_load(tmp_path):
    pytest.importorskip("MNN.llm", reason="pip install -e '.[edge]' (mnn==3.6.1)")
    folder = tmp_path / "omni"
    shutil.copytree(OMNI, folder)
    llm_config = json.loads((folder / "llm_config.json").read_text())
    llm_config["has_talker"] = True  # as llmexport writes it, but no talker was exported
    (folder / "llm_config.json").write_text(json.dumps(llm_config))
    with pytest.raises(ModelLoadError, match="has_talker"):
        carellm.load(str(folder / "config.json"), backend="mnn")


def test_an_mnn_turn_imports_no_torch():
    """An edge install has MNN, not torch: MnnEngine and its turns stay torch-free."""
    import subprocess

    pytest.importorskip("MNN.llm", reason="pip install -e '.[edge]' (mnn==3.6.1)")
    code = (
        "import sys, numpy as np\n"
        "from carellm.mnn import MnnEngine\n"
        "from carellm import Turn\n"
        f"e = MnnEngine({str(OMNI / 'config.json')!r}, threads=1)\n"
        "tone = (0.3 * np.sin(np.arange(16000) / 10)).astype(np.float32)\n"
        "r = e.session(max_new_tokens=2).respond(Turn(text='I want to die', audio=(tone, 16000)))\n"
        "assert r.escalated, r.text\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_tokens_split_inside_a_character_are_joined(mnn_engine):
    from carellm.mnn import _TokenText

    sentence = "我很难过，睡不着"
    ids = mnn_engine.encode(sentence)
    split = 0
    for token in ids:  # the tiny vocabulary cuts these characters into byte tokens
        try:
            mnn_engine.llm.tokenizer_decode(token)
        except UnicodeDecodeError:
            split += 1
    assert split > 0
    text = _TokenText(mnn_engine.llm)
    assert "".join(text.add(t) for t in ids) + text.flush() == sentence
