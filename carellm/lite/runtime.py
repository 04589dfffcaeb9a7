"""llama.cpp through its C API (llama-cpp-python's ctypes bindings): one model, one
context, one KV cache whose sequence 0 holds the conversation.

The verbs mirror `carellm.generation`: `prefill` the prompt once (reusing the part of
the previous turn's prompt still in the cache), `score` candidates on branches of it,
`extend` it with the reply's tokens. Branches are llama.cpp sequences: a question's
sequence is a copy of sequence 0 (`llama_memory_seq_cp` shares the cells, it copies
no tensors), each candidate's sequence a copy of its question's, and all of them run
in one `llama_decode` batch; afterwards they are removed, so sequence 0 is never
written by the report.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carellm.errors import InputError, ModelLoadError

logger = logging.getLogger(__name__)
_native_log = logging.getLogger("carellm.lite.llama_cpp")  # llama.cpp's own messages
INSTALL_HINT = "pip install 'carellm[cpu]' (builds llama.cpp: a few minutes)"
_LOG_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # ggml_log_level → logging; others DEBUG
_state: dict = {}  # the ctypes log callback, kept alive once installed


def import_llama_cpp():
    """llama-cpp-python's low-level module, with llama.cpp's log routed to `logging`."""
    try:
        import llama_cpp.llama_cpp as lib
    except ImportError as e:
        raise ModelLoadError(
            f"the llama.cpp CPU tier needs llama-cpp-python: {INSTALL_HINT}"
        ) from e
    if "log" not in _state:

        @lib.llama_log_callback
        def _log(level, text, _user):
            _native_log.log(
                _LOG_LEVELS.get(level, logging.DEBUG), "%s", text.decode(errors="replace").rstrip()
            )

        lib.llama_log_set(_log, ctypes.c_void_p(0))
        lib.llama_backend_init()
        _state["log"] = _log
    return lib


def default_threads() -> int:
    """Cores this process may run on (llama.cpp is fastest with one thread per core)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


@dataclass(frozen=True)
class RuntimeOptions:
    """How the llama.cpp context is made."""

    n_ctx: int = 8192  # tokens of KV cache: prompt + report branches + reply (capped by the model)
    threads: int | None = None  # CPU threads; None: every core this process may use
    batch: int = 512  # tokens per llama_decode call (prompt chunks, report branches)
    branches: int = 64  # KV sequences: the conversation + one per question/candidate at once


class Runtime:
    """A GGUF model loaded by llama.cpp, with the token ids its sequence 0 holds."""

    def __init__(self, path: str | Path, options: RuntimeOptions = RuntimeOptions()):
        lib = self.lib = import_llama_cpp()
        mparams = lib.llama_model_default_params()
        mparams.n_gpu_layers = 0
        self.model = lib.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise ModelLoadError(f"llama.cpp cannot load {path}; is it a complete GGUF file?")
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_vocab = lib.llama_vocab_n_tokens(self.vocab)
        threads = options.threads or default_threads()
        cparams = lib.llama_context_default_params()
        cparams.n_ctx = min(options.n_ctx, lib.llama_model_n_ctx_train(self.model))
        cparams.n_batch = cparams.n_ubatch = options.batch
        cparams.n_seq_max = min(options.branches, lib.llama_max_parallel_sequences())
        cparams.kv_unified = True  # branches share the conversation's cells
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.no_perf = True
        self.ctx = lib.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            lib.llama_model_free(self.model)
            raise ModelLoadError(
                f"llama.cpp cannot make a {cparams.n_ctx}-token context for {path}"
            )
        self.n_ctx, self.n_seq, self.n_batch = cparams.n_ctx, cparams.n_seq_max, options.batch
        self.threads = threads
        self.memory = lib.llama_get_memory(self.ctx)
        self.batch = lib.llama_batch_init(self.n_batch, 0, 1)
        self.tokens: list[int] = []  # sequence 0, position by position

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self.lib.llama_batch_free(self.batch)
            self.lib.llama_free(self.ctx)
            self.lib.llama_model_free(self.model)
            self.ctx = None

    def __del__(self):
        self.close()

    # -- vocabulary ---------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (special tokens such as <|im_end|> parsed, no BOS)."""
        raw = text.encode()
        size = len(raw) + 8
        buf = (self.lib.llama_token * size)()
        n = self.lib.llama_tokenize(self.vocab, raw, len(raw), buf, size, False, True)
        if n < 0:  # llama.cpp says how many it needs
            size = -n
            buf = (self.lib.llama_token * size)()
            n = self.lib.llama_tokenize(self.vocab, raw, len(raw), buf, size, False, True)
        return list(buf[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (control tokens are empty unless ``special``)."""
        buf = ctypes.create_string_buffer(64)
        n = self.lib.llama_token_to_piece(self.vocab, token, buf, 64, 0, special)
        return buf.raw[:n] if n >= 0 else b""

    def attr(self, token: int) -> int:
        return int(self.lib.llama_vocab_get_attr(self.vocab, token))

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = self.lib.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode(errors="replace") if n >= 0 else None

    # -- decoding -----------------------------------------------------------------------
    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, sequence, wants logits) entries."""
        b = self.batch
        b.n_tokens = len(entries)
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
            b.seq_id[i][0] = seq
        code = self.lib.llama_decode(self.ctx, b)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code} for {len(entries)} tokens")

    def _logits(self, row: int) -> np.ndarray:
        """Logits [n_vocab] of the row-th entry of the last batch (a view until the next decode)."""
        ptr = self.lib.llama_get_logits_ith(self.ctx, row)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def room(self) -> int:
        """Cells of the context not used by sequence 0."""
        return self.n_ctx - len(self.tokens)

    def prefill(self, ids: list[int]) -> int:
        """Make sequence 0 hold exactly ``ids``; returns how many were reused from the cache."""
        if len(ids) > self.n_ctx:
            raise InputError("text", f"the conversation is {len(ids)} tokens, more than this "
                             f"model's {self.n_ctx}-token context; reset it or write less")  # fmt: skip
        keep = 0
        for a, b in zip(self.tokens, ids[:-1]):  # the last prompt token is always evaluated
            if a != b:
                break
            keep += 1
        self.truncate(keep)
        self.extend(ids[keep:], want_logits=False)
        return keep

    def truncate(self, length: int) -> None:
        self.lib.llama_memory_seq_rm(self.memory, 0, length, -1)
        del self.tokens[length:]

    def extend(self, ids: list[int], want_logits: bool = True) -> np.ndarray | None:
        """Append ``ids`` to sequence 0; the logits after the last one (a view)."""
        part: list[int] = []
        for at in range(0, len(ids), self.n_batch):
            part = ids[at : at + self.n_batch]
            start, last = len(self.tokens), at + self.n_batch >= len(ids)
            self._decode([(t, start + i, 0, want_logits and last and i == len(part) - 1)
                          for i, t in enumerate(part)])  # fmt: skip
            self.tokens += part
        return self._logits(len(part) - 1) if want_logits and part else None

    def score(self, questions: Sequence[tuple[list[int], list[list[int]]]]) -> list[list[float]]:
        """log P(candidate | conversation, question) for every candidate of every question.

        The questions run in one batch, one branch each; a candidate's first token is
        scored from its question's last logits, its later tokens in one batch of
        branches (one per multi-token candidate; a candidate's last token is never
        fed). Sequence 0 is left as it was."""
        pos0 = len(self.tokens)
        try:
            firsts = self._question_branches(questions, pos0)
            scores = [
                [float(firsts[j][c[0]]) for c in cands] for j, (_, cands) in enumerate(questions)
            ]
            jobs = [(j, k, cand) for j, (_, cands) in enumerate(questions)
                    for k, cand in enumerate(cands) if len(cand) > 1]  # fmt: skip
            group = self.n_seq - 1 - len(questions)  # sequences free for candidates
            if group < 1:
                raise ValueError(
                    f"{len(questions)} questions need more than {self.n_seq} sequences"
                )
            for at in range(0, len(jobs), group):
                self._candidate_branches(jobs[at : at + group], questions, pos0, scores)
        finally:
            for seq in range(1, self.n_seq):
                self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)
        return scores

    def _question_branches(self, questions, pos0: int) -> list[np.ndarray]:
        entries = []
        for j, (q_ids, _) in enumerate(questions):
            self.lib.llama_memory_seq_cp(self.memory, 0, 1 + j, -1, -1)
            entries += [(t, pos0 + i, 1 + j, i == len(q_ids) - 1) for i, t in enumerate(q_ids)]
        self._decode(entries)
        rows = np.cumsum([len(q) for q, _ in questions]) - 1
        return [_log_softmax(self._logits(int(r))) for r in rows]

    def _candidate_branches(self, jobs, questions, pos0: int, scores) -> None:
        """Add log P(token t | …, tokens < t) for t >= 1 of each job's candidate."""
        base = 1 + len(questions)
        entries = []
        for n, (j, _, cand) in enumerate(jobs):
            seq = base + n
            self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)
            self.lib.llama_memory_seq_cp(self.memory, 1 + j, seq, -1, -1)
            start = pos0 + len(questions[j][0])
            entries += [(t, start + i, seq, True) for i, t in enumerate(cand[:-1])]
        if len(entries) > self.n_batch:
            raise ValueError(
                f"{len(entries)} candidate tokens exceed the {self.n_batch}-token batch"
            )
        self._decode(entries)
        row = 0
        for j, k, cand in jobs:
            for nxt in cand[1:]:
                logits = self._logits(row)
                scores[j][k] += float(logits[nxt]) - _logsumexp(logits)
                row += 1


def _logsumexp(x: np.ndarray) -> float:
    m = float(x.max())
    return m + float(np.log(np.exp(x - m, dtype=np.float64).sum()))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) - _logsumexp(x)
