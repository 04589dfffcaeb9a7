"""`carellm.load("model.gguf")`: the lite tier on llama.cpp, for machines without a GPU.

`LlamaEngine` offers what `carellm.engine.Engine` offers a session (tokenizer, chat
template, special ids, a lock, ``session()``) on a GGUF file; `LlamaSession` runs the
turns. A GGUF is named by a path ending in ``.gguf`` or by a hub repository whose
name ends in ``-GGUF`` (Qwen publishes ``Qwen/Qwen2.5-0.5B-Instruct-GGUF`` … ``-7B-``),
optionally with the quantization after a colon as llama.cpp's ``-hf`` flag takes it:
``Qwen/Qwen2.5-1.5B-Instruct-GGUF:q8_0`` (default ``q4_k_m``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from carellm.errors import InputError, ModelLoadError
from carellm.lite.runtime import Runtime, RuntimeOptions

logger = logging.getLogger(__name__)

DEFAULT_QUANT = "q4_k_m"  # what Qwen's GGUF repositories and most users run
HUB_GGUF = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+-GGUF(:[\w.-]+)?$", re.IGNORECASE)
_CONTROL, _UNUSED, _USER_DEFINED = 1 << 3, 1 << 1, 1 << 4  # llama_token_attr bits
_FILE_TYPES = {0: "f32", 1: "f16", 2: "q4_0", 7: "q8_0", 15: "q4_k_m", 17: "q5_k_m", 18: "q6_k"}


def is_gguf(model) -> bool:
    """Whether ``model`` names a GGUF file or a hub GGUF repository."""
    return isinstance(model, str) and (
        model.lower().endswith(".gguf") or bool(HUB_GGUF.match(model.strip()))
    )


def hub_file(repo: str, quant: str, files: list[str]) -> list[str]:
    """The file(s) of ``quant`` among a GGUF repository's ``files``: one file, or every
    part of a split one (``…-00001-of-00002.gguf``), first part first."""
    quant = quant.lower()
    single = [f for f in files if f.lower().endswith(f"-{quant}.gguf")]
    if single:
        return single[:1]
    parts = sorted(f for f in files if re.search(rf"-{quant}-\d+-of-\d+\.gguf$", f.lower()))
    if parts:
        return parts
    found = (re.search(r"-([a-z0-9_]+?)(-\d+-of-\d+)?\.gguf$", f.lower()) for f in files)
    have = sorted({m.group(1) for m in found if m})
    raise ModelLoadError(
        f"{repo} has no {quant} file; it has: {', '.join(have) or 'no .gguf files'}"
    )


def _download(model: str) -> Path:
    """The local path of a hub GGUF (downloaded, or from the Hugging Face cache)."""
    from huggingface_hub import HfApi, hf_hub_download

    from carellm.loading import hub_reachable

    repo, _, quant = model.strip().partition(":")
    quant = quant or DEFAULT_QUANT
    guess = f"{repo.split('/')[-1][: -len('-GGUF')].lower()}-{quant.lower()}.gguf"
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or not hub_reachable()
    try:
        files = [guess] if offline else hub_file(repo, quant, HfApi().list_repo_files(repo))
        paths = [hf_hub_download(repo, f, local_files_only=offline) for f in files]
    except ModelLoadError:
        raise
    except Exception as e:
        why = "offline and not in the local cache" if offline else f"{type(e).__name__}"
        raise ModelLoadError(
            f"cannot get {model} ({why}); on a machine with network run `huggingface-cli "
            f"download {repo} {guess} --local-dir DIR` and pass --model DIR/{guess}"
        ) from e
    return Path(paths[0])


def resolve_gguf(model: str) -> Path:
    """A GGUF path or hub id → an existing local file, or ModelLoadError saying why."""
    if not model.lower().endswith(".gguf"):
        return _download(model)
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"GGUF file {path} does not exist; pass the path of a .gguf file")
    return path


class GGUFTokenizer:
    """The GGUF's own tokenizer and chat template, with the few transformers
    tokenizer methods the prompt code calls (`carellm.prompts`)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.chat_template = runtime.meta("tokenizer.chat_template")

    def encode(self, text: str) -> list[int]:
        return self.runtime.tokenize(text)

    def __call__(self, text: str, add_special_tokens: bool = False, return_tensors=None):
        import torch

        ids = self.encode(text)
        return {"input_ids": torch.tensor([ids]) if return_tensors == "pt" else ids}

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        """Render ``messages`` with the GGUF's Jinja template, as transformers does."""
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        env.globals["raise_exception"] = raise_exception
        text = env.from_string(self.chat_template).render(
            messages=messages, add_generation_prompt=add_generation_prompt
        )
        return self.encode(text) if tokenize else text

    def decode(self, ids: list[int]) -> str:
        return b"".join(self.runtime.piece(t) for t in ids).decode(errors="replace")


def _banned_ids(runtime: Runtime, keep: int) -> list[int]:
    """Replies are plain text: every control/unused token except ``keep`` (<|im_end|>) is
    banned, and added tokens shaped like <|…|> (as `Engine` does for transformers)."""
    banned = []
    for t in range(runtime.n_vocab):
        attr = runtime.attr(t)
        if t != keep and (attr & (_CONTROL | _UNUSED) or (
                attr & _USER_DEFINED and runtime.piece(t, True).startswith(b"<|"))):  # fmt: skip
            banned.append(t)
    return banned


class LlamaEngine:
    """A GGUF chat model on llama.cpp, seen by sessions as an `Engine` (text only)."""

    lite = True  # text in, text out: no audio, images, video or speech
    speech = False

    def __init__(self, runtime: Runtime, info):
        from carellm.media import MediaLimits

        self.runtime = runtime
        self.info = info
        self.tokenizer = GGUFTokenizer(runtime)
        if not self.tokenizer.chat_template:
            raise ModelLoadError(f"{info.model} has no chat template; use an -Instruct GGUF")
        self.device = "cpu"
        self.plan = None  # carellm.planning.selection.Plan when loaded with model="auto"
        self.media_limits = MediaLimits()
        self.lock = threading.RLock()  # one turn at a time on the shared KV cache
        self.report_ids: dict[str, tuple[list[int], list[list[int]]]] = {}
        self.im_end = self._single("<|im_end|>")
        self.endoftext = self._single("<|endoftext|>")
        self.banned_ids = _banned_ids(runtime, self.im_end)

    def _single(self, token: str) -> int:
        ids = self.runtime.tokenize(token)
        if len(ids) != 1:
            raise ModelLoadError(f"{self.info.model} has no {token} token; use a Qwen chat GGUF")
        return ids[0]

    def encode(self, text: str) -> list[int]:
        return self.runtime.tokenize(text)

    def session(self, persona: str = "counselor", voice: str = "Chelsie",
                language: str | None = None, **kwargs):  # fmt: skip
        """A new independent conversation (see `carellm.lite.session.LlamaSession`)."""
        from carellm.lite.session import LlamaSession

        return LlamaSession(self, persona=persona, voice=voice, language=language, **kwargs)

    def close(self) -> None:
        self.runtime.close()


def load_gguf(model: str, *, plan=None, reason: str = "", adapter: str | None = None,
              options: RuntimeOptions | None = None) -> LlamaEngine:  # fmt: skip
    """Load a GGUF path or hub id with llama.cpp (see the module docstring)."""
    from carellm.engine import EngineInfo
    from carellm.lite.convert import TINY_KEY

    if adapter is not None:
        raise ModelLoadError(
            "LoRA adapters are not applied on the llama.cpp tier; merge the adapter "
            "(carellm finetune) and convert the merged model to GGUF"
        )
    path = resolve_gguf(model)
    runtime = Runtime(path, options or RuntimeOptions())
    tiny = runtime.meta(TINY_KEY) == "true"
    if tiny:
        logger.warning("TINY RANDOM MODEL: replies are random tokens, for plumbing checks only")
    file_type = runtime.meta("general.file_type")
    quant = _FILE_TYPES.get(int(file_type), f"type {file_type}") if file_type else "gguf"
    info = EngineInfo(
        model=str(model), device="cpu", dtype=quant, speech=False, tiny=tiny,
        reason=reason or f"llama.cpp lite tier, {runtime.threads} threads, {runtime.n_ctx}-token context",
    )  # fmt: skip
    engine = LlamaEngine(runtime, info)
    engine.plan = plan
    logger.info("loaded %s with llama.cpp (%s, %d threads)", path, quant, runtime.threads)
    return engine


def check_room(engine: LlamaEngine, prompt: int, reply: int, branches: int) -> None:
    """InputError (before the cache changes) when a turn cannot fit the context."""
    need = prompt + reply + branches
    if need > engine.runtime.n_ctx:
        raise InputError(
            "text",
            f"this turn needs {need} tokens (prompt {prompt}, reply {reply}, report {branches}) "
            f"but the model's context holds {engine.runtime.n_ctx}; shorten the message, "
            "reset the session or lower max_new_tokens",
        )
