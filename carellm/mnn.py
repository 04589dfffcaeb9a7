"""The MNN backend: CareLLM sessions on an MNN export of Qwen2.5-Omni, for phones and CPUs.

    engine = carellm.load("Qwen2.5-Omni-3B-MNN/config.json", backend="mnn")
    session = engine.session(persona="counselor")
    reply = session.respond(carellm.Turn(text="I can't sleep.", audio="me.wav"))

The export is what alibaba/MNN's ``transformers/llm/export/llmexport.py`` writes (or the
published ``taobao-mnn/Qwen2.5-Omni-7B-MNN`` / ``-3B-MNN`` folders); ``pip install
mnn==3.6.1`` provides ``MNN.llm``. Text, image and audio go in; text comes out. Speech
does not: MNN's Python API exposes no talker (its C++ ``llm_demo`` has one), so every
reply carries `SPEECH_NOTE` in ``Reply.notes``. Video is refused (send frames as images).

What stays CareLLM's: the persona's system prompt, the history (text of past turns,
re-sent in full each turn; their media is not re-encoded), the crisis rules and
escalation on the user's text, and the emotion report, which is
`carellm.emotion.fallback_report` (source "fallback": MNN exposes no prefill to score the
report on). Decoding is greedy, token by token through ``Llm.forward``, so ``stream``
yields a `TextDelta` per token (one ending inside a UTF-8 character waits for the rest);
MNN's own sampler runs only inside ``Llm.response``, which returns the whole text at once.
"""

from __future__ import annotations

import codecs
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carellm import safety
from carellm.conversation import Conversation, SessionOptions, check_language
from carellm.errors import InputError, ModelLoadError
from carellm.prompts import check_voice, get_persona, system_prompt
from carellm.reply import OUTPUT_RATE

logger = logging.getLogger(__name__)

MNN_INSTALL = "pip install mnn==3.6.1"
SPEECH_NOTE = (
    "no speech on the MNN backend: MNN's Python API returns text only "
    "(its C++ llm_demo runs the talker)"
)
REPORT_NOTE = "emotion report is the keyword fallback: MNN exposes no prefill to score it on"
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")  # Qwen chat turn end and end of text
NOT_LOADED = -1  # MNN.llm.LlmStatus.NOT_LOADED: load() failed (MNN prints why)


@dataclass(frozen=True)
class MnnInfo:
    """What `EngineInfo` says for a local model, for an MNN export."""

    model: str  # the export's config.json
    device: str  # MNN backend_type: "cpu", "opencl", "metal", ...
    modalities: tuple[str, ...]  # what the export takes: "text", "image", "audio"
    dtype: str = "mnn"  # weights are MNN-quantized (llmexport's --quant_bit)
    speech: bool = False  # never: see SPEECH_NOTE
    tiny: bool = False
    reason: str = "MNN export"


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ModelLoadError(f"MNN export incomplete: {what} {path} is missing") from e
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{what} {path} is not readable JSON ({e}); re-export it") from e
    if not isinstance(data, dict):
        raise ModelLoadError(f"{what} {path} is not a JSON object; re-export it")
    return data


def export_modalities(config_path: Path) -> tuple[str, ...]:
    """The inputs an export takes, from the files its config.json names."""
    config = _read_json(config_path, "config")
    folder = config_path.parent
    kinds = ["text"]
    if (folder / config.get("visual_model", "visual.mnn")).is_file():
        kinds.append("image")
    if (folder / config.get("audio_model", "audio.mnn")).is_file():
        kinds.append("audio")
    return tuple(kinds)


def _config_path(path: str) -> Path:
    config = Path(path).expanduser()
    if config.is_dir():
        config = config / "config.json"
    if not config.is_file():
        raise ModelLoadError(
            f"no MNN export at {path}: pass the config.json of an llmexport folder "
            "(e.g. Qwen2.5-Omni-3B-MNN/config.json)"
        )
    return config


def _import_mnn_llm():
    try:
        import MNN.llm as mnn_llm
    except ImportError as e:
        raise ModelLoadError(f"backend='mnn' needs the MNN package: {MNN_INSTALL}") from e
    return mnn_llm


class MnnEngine:
    """An MNN export seen as an `Engine`: ``.session()`` opens conversations.

    ``threads``: CPU threads (default: the export's ``thread_num``). One turn runs at a time
    (a lock): an MNN ``Llm`` holds a single KV cache.
    """

    def __init__(self, config_path: str, *, threads: int | None = None):
        config = _config_path(config_path)
        settings = _read_json(config, "config")
        for key in ("llm_model", "llm_weight"):
            name = settings.get(
                key, key.replace("_model", ".mnn").replace("_weight", ".mnn.weight")
            )
            if not (config.parent / name).is_file():
                raise ModelLoadError(f"MNN export incomplete: {config.parent / name} is missing")
        mnn_llm = _import_mnn_llm()
        self.llm = mnn_llm.create(str(config))
        overrides = {"use_template": False}  # CareLLM renders the chat itself
        if threads is not None:
            overrides["thread_num"] = int(threads)
        self.llm.set_config(overrides)
        try:
            self.llm.load()
        except Exception as e:  # the C++ side raises nothing typed
            raise ModelLoadError(f"MNN could not load {config} ({e}); re-export it") from e
        if self.llm._c_obj.get_context().get("status") == NOT_LOADED:  # MNN only prints why
            raise ModelLoadError(
                f"MNN could not load {config} (its messages above say why; e.g. llm_config.json "
                "says has_talker but the export has no talker): fix or re-export it"
            )
        self.lock = threading.Lock()
        self.stop_ids = self._stop_ids()
        self.info = MnnInfo(
            model=str(config),
            device=str(settings.get("backend_type", "cpu")),
            modalities=export_modalities(config),
        )
        self.speech = False
        logger.info("loaded MNN export %s (%s)", config, ", ".join(self.info.modalities))

    def _stop_ids(self) -> frozenset[int]:
        ids = set()
        for token in STOP_TOKENS:
            encoded = list(self.llm.tokenizer_encode(token))
            if len(encoded) == 1:  # a special token of this vocabulary
                ids.add(int(encoded[0]))
        if not ids:
            raise ModelLoadError("the MNN export's tokenizer has no <|im_end|>; re-export it")
        return frozenset(ids)

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in self.llm.tokenizer_encode(text)]

    def session(self, persona: str = "counselor", voice: str = "Chelsie",
                language: str | None = None, *, speech: bool | None = None,
                seed: int | None = None, max_new_tokens: int = 256,
                region: str | None = None) -> MnnSession:  # fmt: skip
        """A new conversation; same arguments as `Engine.session` (speech is never on)."""
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise InputError("max_new_tokens", f"must be an integer >= 1, got {max_new_tokens!r}")
        options = SessionOptions(
            persona=get_persona(persona), voice=check_voice(voice),
            language=check_language(language), speech=False, seed=seed,
            max_new_tokens=max_new_tokens, region=region,
        )  # fmt: skip
        return MnnSession(self, options)


@dataclass
class _Exchange:
    turn: object  # PreparedTurn
    reply: object  # Reply


class MnnSession(Conversation):
    """A conversation on an `MnnEngine`: the public API of `carellm.session.Session`."""

    def __init__(self, engine: MnnEngine, options: SessionOptions):
        self.engine = engine
        self.options = options
        self._history: list[_Exchange] = []

    def _check(self, prepared) -> None:
        if prepared.video is not None:
            raise InputError(
                "video", "the MNN backend takes text, images and audio: send frames as images"
            )
        allowed = set(self.engine.info.modalities)
        for kind in ("image", "audio"):
            if kind in prepared.modalities and kind not in allowed:
                raise InputError(
                    kind, f"this MNN export has no {kind} encoder (it takes "
                    f"{', '.join(sorted(allowed))}); send text or use an Omni export",
                )  # fmt: skip

    def _messages(self, user_text: str) -> list[dict]:
        opts = self.options
        messages = [{"role": "system", "content": system_prompt(opts.persona, opts.language)}]
        for e in self._history:
            sent = sorted(e.turn.modalities - {"text"})
            note = f"(The user sent {' and '.join(sent)}, not shown again.) " if sent else ""
            text = (note + (e.turn.text or "")).strip() or "(media)"
            messages += [{"role": "user", "content": text},
                         {"role": "assistant", "content": e.reply.model_text}]  # fmt: skip
        messages.append({"role": "user", "content": user_text})
        return messages

    def _prompt(self, prepared) -> str | dict:
        """The rendered chat with MNN's media tags, and the media itself when any."""
        tags, images, audios = "", [], []
        if prepared.image is not None:
            rgb = np.asarray(prepared.image.convert("RGB"), dtype=np.uint8)
            bgr = _var(rgb[:, :, ::-1], "uint8")  # HWC BGR, as MNN.cv.imread returns
            images.append({"data": bgr, "height": rgb.shape[0], "width": rgb.shape[1]})
            tags += "<img>image_0</img>"
        for i, chunk in enumerate(prepared.audio):
            audios.append({"waveform": _var(chunk, "float32")})  # 16 kHz mono
            tags += f"<audio>audio_{i}</audio>"
        text = self.engine.llm.apply_chat_template(self._messages(tags + prepared.text))
        if not images and not audios:
            return text
        return {"text": text, "images": images, "audios": audios}

    def stream(self, turn, report: bool = True) -> Iterator[object]:
        """Yield Assessment, TextDelta events (about one per token), then Final(reply)."""
        from carellm.reply import Assessment
        from carellm.turn import prepare

        start = time.perf_counter()
        prepared = prepare(turn)  # InputError before anything runs
        self._check(prepared)
        rules = safety.assess(prepared.text or "")
        emotion = None
        if report:
            from carellm.emotion import fallback_report

            emotion = fallback_report(
                prepared.text, modalities=prepared.modalities, risk_floor=rules.level
            )
        yield Assessment(emotion, rules)
        run = _MnnTurn(self, prepared, emotion, rules, start)
        yield from run.events()
        self._history.append(_Exchange(prepared, run.reply))


class _MnnTurn:
    """Greedy decoding of one turn on the engine's `Llm`, as events."""

    def __init__(self, session: MnnSession, prepared, emotion, rules, start: float):
        self.session, self.prepared = session, prepared
        self.emotion, self.safety, self.start = emotion, rules, start
        self.timings: dict[str, float] = {}
        self.reply = None

    def _tokens(self) -> Iterator[str]:
        engine, opts = self.session.engine, self.session.options
        llm = engine.llm
        t0 = time.perf_counter()
        ids = list(llm.tokenizer_encode(self.session._prompt(self.prepared)))  # runs encoders
        llm.generate_init()  # clears the previous turn's cache (reuse_kv is off)
        logits = llm.forward(ids)
        self.timings["prefill"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        text = _TokenText(llm)
        for _ in range(opts.max_new_tokens):
            if logits is None:
                raise ModelLoadError("MNN returned no logits; check the export with llm_demo")
            scores = np.asarray(logits.read(), dtype=np.float32)
            token = int(scores.reshape(-1, scores.shape[-1])[-1].argmax())
            if token in engine.stop_ids:
                break
            yield text.add(token)
            logits = llm.forward([token])
        yield text.flush()
        self.timings["decode"] = time.perf_counter() - t1

    def events(self) -> Iterator[object]:
        from carellm.reply import EscalationDelta, Final, Reply, TextDelta

        pieces: list[str] = []
        with self.session.engine.lock:
            for piece in self._tokens():
                if piece:
                    pieces.append(piece)
                    yield TextDelta(piece)
        model_text = "".join(pieces).strip()
        escalation = _escalation(self.safety, self.session.options.region)
        text = model_text
        if escalation:
            yield EscalationDelta("\n\n" + escalation)
            text = (text + "\n\n" + escalation).strip()
        notes = [SPEECH_NOTE] + ([REPORT_NOTE] if self.emotion is not None else [])
        if not model_text:
            notes.append("the model returned no text")
        self.timings["total"] = time.perf_counter() - self.start
        self.reply = Reply(
            text=text, audio=None, sample_rate=OUTPUT_RATE, emotion=self.emotion,
            safety=self.safety, timings=self.timings, model_text=model_text,
            escalated=bool(escalation), notes=tuple(notes),
        )  # fmt: skip
        yield Final(self.reply)


def _escalation(assessment, region: str | None) -> str:
    """`carellm.assessment.escalation_for`'s rule (high or imminent: hotlines appended),
    without importing it: that module pulls in torch, which an edge install lacks."""
    if not safety.level_at_least(assessment.level, "high"):
        return ""
    return safety.escalation_message(assessment, region=region)


def _var(array: np.ndarray, dtype: str):
    """An MNN expression constant: MNN 3.6.1 crashes on a raw NumPy uint8 image."""
    import MNN.expr as F

    data = np.ascontiguousarray(array, dtype=dtype)
    kind = F.uint8 if dtype == "uint8" else F.float
    return F.const(data, list(data.shape), F.NHWC, kind)


class _TokenText:
    """Text of the tokens so far, a token at a time: a token can end inside a UTF-8
    character (Chinese often does), which MNN's ``tokenizer_decode`` cannot return as a
    str; its raw bytes ride on the UnicodeDecodeError and are held until complete."""

    def __init__(self, llm):
        self.llm = llm
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token: int) -> str:
        try:
            raw = self.llm.tokenizer_decode(token).encode("utf-8")
        except UnicodeDecodeError as e:
            raw = e.object
        return self.utf8.decode(raw)

    def flush(self) -> str:
        return self.utf8.decode(b"", final=True)
