"""A tiny, randomly initialised Qwen3-Omni (thinker + talker + code2wav) built here.

`build_tiny_qwen3(path)` writes with ``save_pretrained`` what
``Qwen3OmniMoeForConditionalGeneration.from_pretrained`` and
``Qwen3OmniMoeProcessor.from_pretrained`` read from a real
``Qwen/Qwen3-Omni-30B-A3B-Instruct`` folder: config, weights, a byte-level BPE tokenizer
(trained here, as `carellm.tiny` does for 2.5) with Qwen3-Omni's special token names,
the processor (Whisper features, 16 px vision patches) and a chat template shaped like
Qwen's. Voices live in ``talker_config.speaker_id`` as in the released config (no
``spk_dict.pt``). Nothing is downloaded; replies are random text.

Two settings transformers 5.23 needs and does not default: the talker config's
``spatial_merge_size`` (read by the talker, not declared by its config class) and a
codec vocabulary above 1024 (generate() suppresses the top 1024 codec ids but EOS).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

logger = logging.getLogger(__name__)

TINY_QWEN3_SEED = 0
# Bump whenever build_tiny_qwen3 writes something different (names the cache folder).
TINY_QWEN3_VERSION = 1
TINY_QWEN3_MARKER = "carellm_tiny_qwen3.json"
VOCODER_RMS = 0.1  # target RMS of the tiny code2wav's output (well inside [-1, 1])
VOICES = ("Chelsie", "Ethan", "Aiden")  # Qwen3-Omni's three speakers

# Qwen3-Omni's special tokens (names as in its tokenizer), ids after the BPE vocabulary.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_start|>", "<|audio_end|>",
    "<|audio_pad|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
    "<|tts_pad|>", "<|tts_bos|>", "<|tts_eos|>",
)  # fmt: skip

CODEC_VOCAB = 1088  # > 1024: generate() suppresses ids [vocab-1024, vocab) except EOS
CODEBOOK = 64  # code-predictor / code2wav codebook size
CODE_GROUPS = 4  # codebooks per frame (talker's first + 3 residual)
CODEC_PAD, CODEC_BOS, CODEC_EOS = 1080, 1081, 1082
CODEC_NOTHINK, CODEC_THINK_BOS, CODEC_THINK_EOS = 1083, 1084, 1085
SPEAKER_IDS = {"chelsie": 1070, "ethan": 1071, "aiden": 1072}

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'audio' %}<|audio_start|><|audio_pad|><|audio_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer():
    """The 2.5 tiny's BPE corpus, with Qwen3-Omni's special tokens; role names are
    single tokens as in Qwen's vocabulary (the talker finds user turns by them)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    from carellm.tiny import _CORPUS

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator([_CORPUS] * 4 + ["system\nuser\nassistant\n"] * 64, trainer=trainer)
    data = json.loads(bpe.to_str())
    vocab = dict(data["model"]["vocab"])
    merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["model"]["merges"]
    ]
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tok = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>",
        pad_token="<|endoftext|>", extra_special_tokens=list(SPECIAL_TOKENS),
        image_token="<|image_pad|>", audio_token="<|audio_pad|>", video_token="<|video_pad|>",
        vision_bos_token="<|vision_start|>", vision_eos_token="<|vision_end|>",
        audio_bos_token="<|audio_start|>", audio_eos_token="<|audio_end|>",
        model_max_length=32768,
    )  # fmt: skip
    for role in ("system", "user", "assistant"):
        if len(tok.encode(role, add_special_tokens=False)) != 1:
            raise RuntimeError(f"tiny tokenizer: {role!r} is not one token")
    return tok


def _processor(tokenizer):
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        Qwen3OmniMoeProcessor,
        WhisperFeatureExtractor,
    )

    # Qwen3-Omni's preprocessor numbers: 16 px patches merged 2x2, mean/std 0.5, 128 mels.
    vision = dict(
        min_pixels=4096, max_pixels=12845056, patch_size=16, temporal_patch_size=2,
        merge_size=2, image_mean=[0.5] * 3, image_std=[0.5] * 3,
    )  # fmt: skip
    features = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400
    )
    return Qwen3OmniMoeProcessor(
        image_processor=Qwen2VLImageProcessor(**vision),
        video_processor=Qwen2VLVideoProcessor(**vision),
        feature_extractor=features, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE,
    )  # fmt: skip


def _config(tokenizer):
    from transformers import Qwen3OmniMoeConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    role = {r: tokenizer.convert_tokens_to_ids(r) for r in ("system", "user", "assistant")}
    rope = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3],
            "interleaved": True}  # fmt: skip
    text = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, moe_intermediate_size=32,
        num_experts=4, num_experts_per_tok=2, max_position_embeddings=4096, rope_parameters=rope,
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
    )  # fmt: skip
    vision = dict(
        depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
        patch_size=16, spatial_merge_size=2, num_position_embeddings=64,
        deepstack_visual_indexes=[0],
    )  # fmt: skip
    audio = dict(
        num_mel_bins=128, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
        d_model=32, output_dim=64, downsample_hidden_size=16, max_source_positions=1500,
    )  # fmt: skip
    media = dict(audio_token_id=ids["<|audio_pad|>"], image_token_id=ids["<|image_pad|>"],
                 video_token_id=ids["<|video_pad|>"], audio_start_token_id=ids["<|audio_start|>"])  # fmt: skip
    thinker = dict(text_config=text, vision_config=vision, audio_config=audio,
                   user_token_id=role["user"], vision_start_token_id=ids["<|vision_start|>"],
                   vision_end_token_id=ids["<|vision_end|>"],
                   audio_end_token_id=ids["<|audio_end|>"], **media)  # fmt: skip
    talker_text = dict(
        vocab_size=CODEC_VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=24, moe_intermediate_size=32,
        num_experts=4, num_experts_per_tok=2, max_position_embeddings=4096,
        rope_parameters={**rope, "mrope_section": [4, 4, 4]}, shared_expert_intermediate_size=32,
    )  # fmt: skip
    predictor = dict(
        vocab_size=CODEBOOK, hidden_size=48, intermediate_size=96, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=24, num_code_groups=CODE_GROUPS,
        max_position_embeddings=64,
    )  # fmt: skip
    talker = dict(
        text_config=talker_text, code_predictor_config=predictor, num_code_groups=CODE_GROUPS,
        thinker_hidden_size=64, accept_hidden_layer=1, codec_eos_token_id=CODEC_EOS,
        codec_pad_id=CODEC_PAD, codec_bos_id=CODEC_BOS, codec_nothink_id=CODEC_NOTHINK,
        codec_think_bos_id=CODEC_THINK_BOS, codec_think_eos_id=CODEC_THINK_EOS,
        speaker_id=dict(SPEAKER_IDS), vision_start_token_id=ids["<|vision_start|>"],
        spatial_merge_size=2, **media,
    )  # fmt: skip
    code2wav = dict(
        codebook_size=CODEBOOK, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, num_quantizers=CODE_GROUPS,
        sliding_window=16, decoder_dim=64, upsample_rates=[8, 5, 4, 3], upsampling_ratios=[2, 2],
    )  # fmt: skip
    return Qwen3OmniMoeConfig(
        thinker_config=thinker, talker_config=talker, code2wav_config=code2wav,
        enable_audio_output=True, im_start_token_id=ids["<|im_start|>"],
        im_end_token_id=ids["<|im_end|>"], tts_pad_token_id=ids["<|tts_pad|>"],
        tts_bos_token_id=ids["<|tts_bos|>"], tts_eos_token_id=ids["<|tts_eos|>"],
        system_token_id=role["system"], user_token_id=role["user"],
        assistant_token_id=role["assistant"],
    )  # fmt: skip


def _audible_code2wav(model, seed: int) -> None:
    """Give the tiny code2wav an audible output instead of near silence.

    The default init (normal, std 0.02) shrinks the signal at every conv stage; every
    conv gets a fan-in init instead, and the output conv is then scaled so random codes
    come out at `VOCODER_RMS` (as `carellm.tiny` does for 2.5's BigVGAN).
    """
    import torch
    from torch import nn

    c2w = model.code2wav
    gen = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for module in c2w.modules():
            if isinstance(module, nn.ConvTranspose1d):
                fan_in = module.weight.shape[0] * module.weight.shape[-1] / module.stride[0]
            elif isinstance(module, nn.Conv1d):
                fan_in = module.weight.shape[1] * module.weight.shape[-1] / module.groups
            else:
                continue
            module.weight.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=gen)
        last = c2w.decoder[-1].conv
        codes = torch.randint(0, CODEBOOK, (1, CODE_GROUPS, 24), generator=gen)
        seen = []  # the last conv's output before code2wav clamps it to [-1, 1]
        hook = last.register_forward_hook(lambda _m, _i, out: seen.append(out))
        c2w(codes)
        hook.remove()
        last.weight.mul_(VOCODER_RMS / float(seen[0].float().pow(2).mean().sqrt()))


def build_tiny_qwen3(path: str | Path, seed: int = TINY_QWEN3_SEED) -> Path:
    """Write a tiny random Qwen3-Omni (weights, tokenizer, processor) to `path`."""
    import torch
    from transformers import GenerationConfig, Qwen3OmniMoeForConditionalGeneration

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    config = _config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen3OmniMoeForConditionalGeneration(config).eval()
    _audible_code2wav(model, seed)
    model.generation_config = GenerationConfig(eos_token_id=config.im_end_token_id)
    model.save_pretrained(path)
    _processor(tokenizer).save_pretrained(path)
    (path / TINY_QWEN3_MARKER).write_text(json.dumps({"seed": seed}, indent=2))
    logger.info("wrote tiny random Qwen3-Omni to %s", path)
    return path


def tiny_qwen3_dir() -> Path:
    """Cache folder of the tiny Qwen3-Omni, next to `carellm.loading.tiny_dir`'s."""
    return _cache_base() / f"tiny-qwen3-v{TINY_QWEN3_VERSION}-seed{TINY_QWEN3_SEED}"


def _cache_base() -> Path:
    from carellm.loading import tiny_dir

    return tiny_dir().parent


def ensure_tiny_qwen3() -> Path:
    """The cached tiny Qwen3-Omni folder, built on first use."""
    folder = tiny_qwen3_dir()
    if not (folder / TINY_QWEN3_MARKER).exists() or not (folder / "model.safetensors").exists():
        logger.info("building the tiny random Qwen3-Omni in %s", folder)
        build_tiny_qwen3(folder)
    return folder
