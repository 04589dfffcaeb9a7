"""Speech: one talker run per reply turns the thinker's states into codec codes.

The talker is conditioned the way transformers' `Qwen2_5OmniForConditionalGeneration.
generate` conditions it — prompt states (thinker last-layer state + token embedding,
media rows zeroed), the speaker's text-bos row, the reply's first token, then one text
row per generated code (reply tokens, the text-eos row, then text-pad rows) — but it
runs *while the reply is decoded*: `TalkerRun` keeps its own KV cache and continuous
positions and takes each reply token's row as the thinker produces it. Its codes equal
the official path's for the same prompt and thinker tokens (tests/test_speech.py).
Rows come from the states the shared prefill and the decode loop already computed, so
the prompt is never encoded a second time. `carellm.vocoder` turns the codes into audio
chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from carellm.reply import OUTPUT_RATE  # noqa: F401  (re-exported: Hz of every waveform here)

CODES_PER_SECOND = 50  # talker codec frame rate of the released model (mel 100 Hz / 2)


@dataclass(frozen=True)
class SpeechSettings:
    voice: str = "Chelsie"  # key of the model's speaker map
    temperature: float = 0.9  # talker sampling, as in Qwen's defaults; 0 means greedy
    top_k: int = 40
    top_p: float = 0.8
    repetition_penalty: float = 1.05
    eos_token_ids: tuple[int, ...] = (8292, 8294)  # released codec's stop codes
    max_codes: int = 4096  # hard cap per reply (about 80 s)


def code_budget(settings: SpeechSettings, reply_tokens: int) -> int:
    """Most codes a reply of ``reply_tokens`` tokens may get (2 s + 0.5 s per token)."""
    return min(settings.max_codes, 2 * CODES_PER_SECOND + 25 * reply_tokens)


def _media_mask(model, input_ids: torch.Tensor) -> torch.Tensor:
    cfg = model.config.thinker_config
    ids = (cfg.audio_token_index, cfg.image_token_index, cfg.video_token_index)
    return torch.isin(input_ids, torch.tensor(ids, device=input_ids.device))


def _processors(talker, settings: SpeechSettings):
    """transformers' own logits processors, in generate()'s order, for the same draws."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        SuppressTokensLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    device = talker.device
    procs = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    procs.append(SuppressTokensLogitsProcessor([talker.codec_bos_token], device=device))
    if settings.temperature > 0:
        if settings.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_k:
            procs.append(TopKLogitsWarper(settings.top_k))
        if settings.top_p < 1.0:
            procs.append(TopPLogitsWarper(settings.top_p))
    return procs


class TalkerRun:
    """The talker for one reply, fed row by row as the thinker decodes.

    ``push(token, hidden)`` adds reply token ``token`` with its thinker state ``hidden``
    [1, 1, H] (the state of feeding that token, as `generation.decode` yields it);
    ``close()`` says the reply is complete. ``step()`` generates the next code when the
    text row it needs is there: code k (k >= 1) reads reply row k, so the talker never
    runs ahead of the text; after ``close()`` it reads the text-eos row, then pad rows,
    until a stop code or the budget (`code_budget`). ``codes`` holds the codes so far
    (stop code excluded).
    """

    def __init__(self, model, prompt_ids, prompt_hidden, settings: SpeechSettings,
                 generator: torch.Generator | None = None):  # fmt: skip
        """``prompt_ids`` [1, P] and ``prompt_hidden`` [1, P, H]: everything before the reply."""
        self.model, self.talker = model, model.talker
        self.settings, self.generator = settings, generator
        self.prompt_ids, self.prompt_hidden = prompt_ids, prompt_hidden
        self.embed = model.thinker.get_input_embeddings()
        self.rows: list[torch.Tensor] = []  # reply rows [1, 1, H]: state + token embedding
        self.tokens = 0
        self.closed = self.done = False
        self.codes: list[int] = []
        self._seen: torch.Tensor | None = None  # codec ids so far (repetition penalty)
        self._cache = None  # the talker's own KV cache, continued across the reply
        self._procs = _processors(self.talker, settings)
        self._first = 0  # the reply's first token (the talker's text ids end with it)

    def _row(self, token: int) -> torch.Tensor:
        ids = torch.tensor([[token]], device=self.prompt_ids.device)
        return self.embed(ids).to(self.prompt_hidden.dtype)

    def push(self, token: int, hidden: torch.Tensor) -> None:
        assert not self.closed, "push after close"
        self.rows.append(hidden.to(self.prompt_hidden.dtype) + self._row(token))
        if not self.tokens:
            self._first = token
        self.tokens += 1

    def close(self) -> None:
        self.closed = True
        if not self.rows:
            self.done = True  # nothing to say

    def ready(self) -> bool:
        """Whether `step` would generate a code now (its text row is available)."""
        if self.done:
            return False
        return self.closed or len(self.rows) > len(self.codes)

    def _next_row(self) -> torch.Tensor:
        k = len(self.codes)  # code k reads reply row k, then text-eos, then text-pad
        if k < len(self.rows):
            return self.rows[k]
        talker = self.talker
        return self._row(talker.text_eos_token if k == len(self.rows) else talker.text_pad_token)

    @torch.inference_mode()
    def step(self) -> int | None:
        """Generate one code if `ready`; return it (None when waiting, stopped or done)."""
        if not self.ready():
            return None
        logits = self._prefill() if self._cache is None else self._forward_one()
        scores = self._procs(self._seen, logits.float())
        if self.settings.temperature > 0:
            probs = torch.softmax(scores, dim=-1)
            code = int(torch.multinomial(probs.cpu(), 1, generator=self.generator))
        else:
            code = int(scores.argmax(dim=-1))
        self._seen = torch.cat([self._seen, self._seen.new_tensor([[code]])], dim=1)
        if code in self.settings.eos_token_ids:
            self.done = True
            return None
        self.codes.append(code)
        if self.closed and len(self.codes) >= code_budget(self.settings, self.tokens):
            self.done = True
        return code

    def _prefill(self) -> torch.Tensor:
        talker, model, device = self.talker, self.model, self.prompt_ids.device
        ids = self.prompt_ids
        embeds = self.embed(ids).to(self.prompt_hidden.dtype)
        embeds = embeds.masked_fill(_media_mask(model, ids).unsqueeze(-1), 0)
        bos = model.speaker_map[self.settings.voice]["bos_token"]
        inputs_embeds = torch.cat(
            [self.prompt_hidden + embeds, self._row(bos), self.rows[0]], dim=1
        )
        text_ids = torch.cat([ids, torch.tensor([[bos, self._first]], device=device)], dim=1)
        n = ids.shape[1]
        codec_ids = torch.cat(
            [
                torch.full((1, n), talker.codec_mask_token, device=device),
                torch.tensor([[talker.codec_pad_token, talker.codec_bos_token]], device=device),
            ],
            dim=1,
        )
        from transformers import DynamicCache

        self._cache = DynamicCache()
        # As transformers 5.23's generate() calls the talker: without an attention mask,
        # so the talker's forward neither adds the codec pad/bos embeddings to the last
        # two rows nor computes M-RoPE positions; positions are 0..n-1 on all three axes
        # and continue with the cache length.
        out = self.talker(
            input_text_ids=text_ids, inputs_embeds=inputs_embeds,
            past_key_values=self._cache, use_cache=True,
        )  # fmt: skip
        self._seen = codec_ids
        return out.logits[:, -1]

    def _forward_one(self) -> torch.Tensor:
        out = self.talker(
            input_ids=self._seen[:, -1:], thinker_reply_part=self._next_row(),
            past_key_values=self._cache, use_cache=True,
        )  # fmt: skip
        return out.logits[:, -1]


def settings_for(engine, voice: str, **overrides) -> SpeechSettings:
    """The engine's speech settings (its codec's stop codes) for ``voice``."""
    if engine.talker_eos:
        overrides.setdefault("eos_token_ids", tuple(engine.talker_eos))
    return SpeechSettings(voice=voice, **overrides)


class SpeechStream:
    """Speak a reply while it is decoded: a worker thread runs the `TalkerRun` and the
    chunked token2wav (`carellm.vocoder`) so the text never waits on them.

    The caller ``push``es each reply token with its thinker state, polls ``ready()`` for
    finished audio between tokens, and at the end iterates ``finish()`` for the rest.
    ``cancel()`` stops the worker (a stream abandoned mid-reply).
    """

    def __init__(self, model, prompt_ids, prompt_hidden, settings: SpeechSettings,
                 seed: int | None = None):  # fmt: skip
        import queue
        import threading

        from carellm.vocoder import ChunkedToken2Wav

        gens = (
            [None, None]
            if seed is None
            else [torch.Generator().manual_seed(seed + i) for i in (0, 1)]
        )
        self.talker = TalkerRun(model, prompt_ids, prompt_hidden, settings, gens[0])
        voice = model.speaker_map[settings.voice]
        self.vocoder = ChunkedToken2Wav(
            model.token2wav, voice["cond"].float().unsqueeze(0), voice["ref_mel"].float(), gens[1]
        )
        self._inbox: queue.Queue = queue.Queue()
        self._outbox: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="carellm-speech", daemon=True)
        self._thread.start()

    def push(self, token: int, hidden: torch.Tensor) -> None:
        self._inbox.put((token, hidden))

    def ready(self):
        """Audio pieces (float32 arrays) finished so far; never blocks."""
        import queue

        while True:
            try:
                item = self._outbox.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self._outbox.put(None)  # keep the end marker for finish()
                return
            yield self._check(item)

    def finish(self):
        """Close the reply and yield the remaining audio pieces as they are made."""
        self._inbox.put(_CLOSE)
        while (item := self._outbox.get()) is not None:
            yield self._check(item)
        self._thread.join()

    def cancel(self) -> None:
        if self._thread.is_alive():
            self._inbox.put(_STOP)
            self._thread.join()

    @staticmethod
    def _check(item):
        if isinstance(item, BaseException):
            raise item
        return item

    def _work(self) -> None:
        run, vocoder = self.talker, self.vocoder
        try:
            while not run.done:
                items = [self._inbox.get()]
                while not self._inbox.empty():
                    items.append(self._inbox.get_nowait())
                for item in items:
                    if item is _STOP:
                        return
                    if item is _CLOSE:
                        run.close()
                    else:
                        run.push(*item)
                while run.ready():
                    run.step()
                    audio = vocoder.feed(run.codes, final=run.done)
                    if audio.size:
                        self._outbox.put(audio)
                    if not self._inbox.empty():
                        break  # take the new rows first; the talker reads them in order
            audio = vocoder.feed(run.codes, final=True)
            if audio.size:
                self._outbox.put(audio)
        except BaseException as error:  # handed to the caller's thread
            self._outbox.put(error)
        finally:
            self._outbox.put(None)


_CLOSE, _STOP = object(), object()  # worker commands
