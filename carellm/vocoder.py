"""token2wav in chunks: codec codes → 24 kHz audio while the talker is still running.

Qwen2.5-Omni's token2wav is a DiT (codes → mel, 10-step RK4 flow matching with
classifier-free guidance) followed by BigVGAN (mel → waveform). Its DiT attends within
blocks of ``block_size`` mel frames plus one block back (each layer in
``look_backward_layers``) and one ahead (``look_ahead_layers``), so a chunk of whole
blocks can be synthesised from its codes plus that much context, the way Qwen's own
streaming code does it:

* noise: one sequence drawn block by block from one generator, so every chunk starts
  from the same initial state a whole-reply synthesis would draw (same seed);
* DiT: each chunk of ``chunk_blocks`` blocks runs on a window with ``back`` blocks before
  and ``ahead`` blocks after it, and keeps only its own frames (the ODE mixes context a
  little beyond the attention window, hence a tolerance rather than equality);
* BigVGAN: each piece of mel is vocoded with `VOCODER_CONTEXT` frames on both sides and
  cropped, so the waveform is cut where the convolutions no longer see the edge; the
  audio therefore lags the mel by that many frames until the reply's last chunk.

The first chunk is a single block so audio starts after a dozen codes.
The speaker encoder (ECAPA) depends only on the voice, so it runs once per reply.
"""

from __future__ import annotations

import numpy as np
import torch

VOCODER_CONTEXT = 20  # mel frames of context each side of a vocoded piece (Qwen's value)


class ChunkedToken2Wav:
    """Feed codes as they arrive; get finished audio back.

    ``feed(codes, final)`` takes *all* codes so far (a growing list) and returns the new
    audio (float32 mono, possibly empty). Concatenated, the pieces approximate
    ``model.token2wav(all codes)`` drawn with the same ``generator`` seed.
    """

    def __init__(self, token2wav, conditioning: torch.Tensor, reference_mel: torch.Tensor,
                 generator: torch.Generator | None = None, *, first_blocks: int = 1,
                 chunk_blocks: int = 3, num_steps: int = 10, guidance_scale: float = 0.5,
                 sway_coefficient: float = -1.0):  # fmt: skip
        """``conditioning`` [1, enc_emb_dim] and ``reference_mel`` [1, T, mel_dim]: the voice."""
        self.dit = token2wav.code2wav_dit_model
        self.vocoder = token2wav.code2wav_bigvgan_model
        cfg = self.dit.config
        self.block, self.repeats, self.mel_dim = cfg.block_size, cfg.repeats, cfg.mel_dim
        self.back = max(1, len(cfg.look_backward_layers)) * self.block  # mel frames
        self.ahead = max(1, len(cfg.look_ahead_layers)) * self.block
        self.first, self.chunk = first_blocks * self.block, chunk_blocks * self.block
        self.steps, self.guidance, self.sway = num_steps, guidance_scale, sway_coefficient
        self.generator = generator
        device = self.dit.device
        self.conditioning = conditioning.to(device).float()
        with torch.inference_mode():
            ref = reference_mel.to(device).float()
            # ECAPA speaker vector for the guided and the unconditioned half of the batch
            self.voice = self.dit.input_embed.spk_encoder(torch.cat([ref, torch.zeros_like(ref)]))
        self.noise = torch.zeros(1, 0, self.mel_dim)
        self.mel = torch.zeros(1, self.mel_dim, 0, device=device)  # finished frames
        self.spoken = 0  # mel frames already turned into returned audio

    def _noise(self, frames: int) -> torch.Tensor:
        while self.noise.shape[1] < frames:  # whole blocks: the draws concatenate exactly
            more = torch.randn(1, self.block, self.mel_dim, generator=self.generator)
            self.noise = torch.cat([self.noise, more], dim=1)
        return self.noise[:, :frames]

    @torch.inference_mode()
    def feed(self, codes: list[int], final: bool = False) -> np.ndarray:
        total = len(codes) * self.repeats  # mel frames of everything known
        pieces = []
        while self.mel.shape[-1] < total:
            start = self.mel.shape[-1]
            end = min(start + (self.chunk if start else self.first), total)
            if not final and end + self.ahead > total:
                break  # wait for the look-ahead context
            self.mel = torch.cat([self.mel, self._dit_chunk(codes, start, end, total)], dim=-1)
        pieces.append(self._vocode(final))
        return np.concatenate(pieces).astype(np.float32)

    def _dit_chunk(self, codes: list[int], start: int, end: int, total: int) -> torch.Tensor:
        lo, hi = max(0, start - self.back), min(total, end + self.ahead)
        code = torch.tensor(
            [codes[lo // self.repeats : hi // self.repeats]], device=self.mel.device
        )
        mel = sample_mel(self.dit, self._noise(hi)[:, lo:].to(self.mel.device), code,
                         self.conditioning, self.voice, self.steps, self.guidance, self.sway)  # fmt: skip
        return mel[:, :, start - lo : end - lo]

    def _vocode(self, final: bool) -> np.ndarray:
        have = self.mel.shape[-1]
        upto = have if final else have - VOCODER_CONTEXT
        if upto <= self.spoken:
            return np.zeros(0, np.float32)
        lo, hi = max(0, self.spoken - VOCODER_CONTEXT), min(have, upto + VOCODER_CONTEXT)
        wav = self.vocoder(self.mel[:, :, lo:hi]).reshape(-1)
        hop = wav.shape[0] // (hi - lo)  # samples per mel frame (240 for 24 kHz)
        out = wav[(self.spoken - lo) * hop : (upto - lo) * hop]
        self.spoken = upto
        return out.float().cpu().numpy()


def sample_mel(dit, noise, code, conditioning, voice, num_steps, guidance, sway) -> torch.Tensor:
    """transformers' ``Qwen2_5OmniToken2WavDiTModel.sample`` on one window, starting from
    ``noise`` [1, T, mel] for ``code`` [1, T / repeats], with the voice's ECAPA vector
    ``voice`` [2, enc_dim] computed once. Returns mel [1, mel_dim, T]."""
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import RungeKutta4ODESolver

    frames = noise.shape[1]
    embed = dit.input_embed
    codes = torch.cat([dit.text_embed(code), dit.text_embed(code, drop_code=True)])
    speaker = conditioning.unsqueeze(1).repeat(1, frames, 1)
    static = torch.cat(  # everything but the noisy mel: voice, codes, speaker conditioning
        [voice.unsqueeze(1).repeat(1, frames, 1), codes, torch.cat([speaker, torch.zeros_like(speaker)])],
        dim=-1,
    )  # fmt: skip
    positions = torch.arange(frames, device=noise.device)[None].repeat(2, 1)
    rope = dit.rotary_embed(static, positions)
    block_diff = dit._create_block_diff(static)

    def velocity(time_step, state):
        t = dit.time_embed(time_step.repeat(2))
        hidden = embed.proj(torch.cat([torch.cat([state, state]), static], dim=-1))
        for block in dit.transformer_blocks:
            hidden = block(hidden, t, position_embeddings=rope, block_diff=block_diff)
        out = dit.proj_out(dit.norm_out(hidden, t))
        guided, null = torch.chunk(out, 2, dim=0)
        return guided + (guided - null) * guidance

    times = torch.linspace(0, 1, num_steps, device=noise.device, dtype=conditioning.dtype)
    if sway is not None:
        times = times + sway * (torch.cos(torch.pi / 2 * times) - 1 + times)
    return RungeKutta4ODESolver(velocity, noise).integrate(times)[-1].permute(0, 2, 1)


def whole_mel(token2wav, codes, conditioning, reference_mel, noise) -> torch.Tensor:
    """Mel [1, mel_dim, T] for all ``codes`` [1, N] from ``noise`` in one window."""
    dit = token2wav.code2wav_dit_model
    with torch.inference_mode():
        ref = reference_mel.float()
        voice = dit.input_embed.spk_encoder(torch.cat([ref, torch.zeros_like(ref)]))
        return sample_mel(dit, noise, codes, conditioning.float(), voice, 10, 0.5, -1.0)
