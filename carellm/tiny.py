"""A tiny, randomly initialised Qwen2.5-Omni that loads through the user's own path.

`build_tiny_model(path)` writes, with ``save_pretrained``, everything
`carellm.load(path)` needs: the thinker + talker + token2wav weights, ``spk_dict.pt``
with both voices, a byte-level BPE tokenizer trained here on a small bilingual corpus,
the processor (Whisper features, Qwen2-VL image/video processors) and a chat template
shaped like Qwen's. Nothing is downloaded. Replies from this model are random text:
it exists for plumbing checks, tests and benchmarks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from carellm.media.common import AUDIO_RATE

logger = logging.getLogger(__name__)

TINY_SEED = 0
# What the builder writes, versioned: the cache folder (carellm.loading.tiny_dir) is
# named after it, so a cache written by an older builder is never reused. Bump it
# whenever build_tiny_model or build_tiny_text_model writes something different.
TINY_VERSION = 2  # 1: the first build; 2: an audible vocoder (token2wav output scaled)
VOCODER_RMS = 0.1  # target RMS of the tiny vocoder's waveform (peaks ~0.3-0.5, no clipping)
TINY_MARKER = "carellm_tiny.json"  # written beside the weights so the engine can warn loudly

# Special tokens the processor and the model use, in the order they get ids after the
# BPE vocabulary. The talker's text pad/bos/eod tokens are thinker vocabulary rows.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>",
    "<|audio_eos|>", "<|vision_bos|>", "<|vision_eos|>", "<|vision_pad|>", "<|IMAGE|>",
    "<|VIDEO|>", "<|tts_pad|>", "<|tts_bos|>", "<|tts_eod|>",
)  # fmt: skip

CODEC_VOCAB = 96  # talker codec vocabulary; the last four ids are its control tokens
CODEC_PAD, CODEC_BOS, CODEC_EOS, CODEC_MASK = 92, 93, 94, 95
TALKER_EOS_IDS = (CODEC_PAD, CODEC_EOS)  # what generate() must stop on for this codec

# A Jinja chat template with the same shape as Qwen2.5-Omni's: media parts become
# <|audio_bos|><|AUDIO|><|audio_eos|> / <|vision_bos|><|IMAGE|>/<|VIDEO|><|vision_eos|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text the tiny BPE is trained on: enough English and Chinese for every character the
# tests use to map to real merges rather than raw bytes alone.
_CORPUS = """
I feel so lonely and sad today. My exams are making me anxious and I cannot sleep.
Thank you for listening. It sounds like you are carrying a lot right now.
What would help you feel a little safer tonight? Let's take one slow breath together.
You are not alone. I am here with you. Can you tell me more about what happened?
admiration amusement anger annoyance approval caring confusion curiosity desire
disappointment disapproval disgust embarrassment excitement fear gratitude grief joy
love nervousness optimism pride realization relief remorse sadness surprise neutral
none low moderate high imminent calm shaky tearful tense flat cheerful angry quiet
smiling frowning relaxed agitated looking down neutral face Emotion check risk voice
我最近很难过，压力很大，晚上睡不着。谢谢你愿意听我说。你并不孤单，我在这里陪着你。
能和我多说说发生了什么吗？我们一起慢慢深呼吸。焦虑 紧张 担心 生气 开心 害怕 伤心
You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of
perceiving auditory and visual inputs, as well as generating text and speech.
"""


def _train_tokenizer(vocab_size: int = 600):
    """Byte-level BPE trained on `_CORPUS`, wrapped as transformers' `Qwen2Tokenizer`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    data = json.loads(bpe.to_str())
    vocab = dict(data["model"]["vocab"])
    merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["model"]["merges"]
    ]
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(SPECIAL_TOKENS),
        image_token="<|IMAGE|>",
        audio_token="<|AUDIO|>",
        video_token="<|VIDEO|>",
        vision_bos_token="<|vision_bos|>",
        vision_eos_token="<|vision_eos|>",
        audio_bos_token="<|audio_bos|>",
        audio_eos_token="<|audio_eos|>",
        model_max_length=32768,
    )


def _build_processor(tokenizer):
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    # Same numbers as the released preprocessor_config.json (CLIP mean/std, 14 px
    # patches merged 2x2, 128 mel bins at 16 kHz, 30 s windows).
    mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    image = Qwen2VLImageProcessor(
        min_pixels=3136, max_pixels=12845056, patch_size=14, temporal_patch_size=2,
        merge_size=2, image_mean=mean, image_std=std,
    )  # fmt: skip
    video = Qwen2VLVideoProcessor(
        min_pixels=3136, max_pixels=12845056, patch_size=14, temporal_patch_size=2,
        merge_size=2, image_mean=mean, image_std=std,
    )  # fmt: skip
    features = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=AUDIO_RATE, hop_length=160, chunk_length=30, n_fft=400
    )
    return Qwen2_5OmniProcessor(
        image_processor=image,
        video_processor=video,
        feature_extractor=features,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def _build_config(tokenizer):
    from transformers import Qwen2_5OmniConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab = len(tokenizer)
    text = dict(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                         "mrope_section": [2, 3, 3]},  # sums to head_dim/2 = 8
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
    )  # fmt: skip
    vision = dict(
        depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
        fullatt_block_indexes=[1], window_size=112,
    )  # fmt: skip
    audio = dict(
        num_mel_bins=128, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
        d_model=32, output_dim=64, max_source_positions=1500, n_window=100,
    )  # fmt: skip
    thinker = dict(
        text_config=text, vision_config=vision, audio_config=audio,
        audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"],
        video_token_index=ids["<|VIDEO|>"], audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"], vision_start_token_id=ids["<|vision_bos|>"],
        user_token_id=tokenizer.convert_tokens_to_ids("user") or 0,
    )  # fmt: skip
    talker = dict(
        vocab_size=CODEC_VOCAB, embedding_size=64, hidden_size=48, intermediate_size=96,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=24,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                         "mrope_section": [4, 4, 4]},  # sums to head_dim/2 = 12
        audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"],
        video_token_index=ids["<|VIDEO|>"], vision_start_token_id=ids["<|vision_bos|>"],
        vision_end_token_id=ids["<|vision_eos|>"], audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"],
        tts_text_start_token_id=ids["<|tts_bos|>"], tts_text_end_token_id=ids["<|tts_eod|>"],
        tts_text_pad_token_id=ids["<|tts_pad|>"], tts_codec_start_token_id=CODEC_BOS,
        tts_codec_end_token_id=CODEC_EOS, tts_codec_pad_token_id=CODEC_PAD,
        tts_codec_mask_token_id=CODEC_MASK, max_position_embeddings=4096,
    )  # fmt: skip
    token2wav = dict(
        dit_config=dict(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=2, head_dim=32, ff_mult=2,
            emb_dim=32, num_embeds=CODEC_VOCAB, mel_dim=80, enc_emb_dim=32, enc_dim=32,
            enc_channels=[32, 32, 32, 32, 96], enc_attention_channels=16, enc_se_channels=16,
            look_ahead_layers=[1], look_backward_layers=[0], block_size=24, repeats=2,
        ),
        bigvgan_config=dict(
            mel_dim=80, upsample_initial_channel=64, resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3, 5]], upsample_rates=[5, 3, 2, 2, 2, 2],
            upsample_kernel_sizes=[11, 7, 4, 4, 4, 4],
        ),
    )  # fmt: skip
    return Qwen2_5OmniConfig(
        thinker_config=thinker, talker_config=talker, token2wav_config=token2wav,
        enable_audio_output=True,
    )  # fmt: skip


def _speakers(config, tokenizer, seed: int) -> dict:
    """Per-voice conditioning like the released spk_dict.pt, with random tensors."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    dit = config.token2wav_config.dit_config
    bos = tokenizer.convert_tokens_to_ids("<|tts_bos|>")
    return {
        name: {
            "bos_token": bos,
            "cond": torch.randn(dit.enc_emb_dim, generator=gen),
            "ref_mel": torch.randn(1, 30, dit.mel_dim, generator=gen),
        }
        for name in ("Chelsie", "Ethan")
    }


def _audible_vocoder(model, seed: int) -> None:
    """Give the tiny BigVGAN audible output instead of ~1e-7.

    transformers' default init (normal, std 0.02) shrinks the signal ~10x per upsample
    stage. Here every conv gets a fan-in (He-like) init, which keeps the signal alive
    through the stages, and the bias-free output conv is then scaled so a typical
    DiT mel (the DiT's output is about unit noise) comes out at `VOCODER_RMS`.
    """
    import math

    import torch
    from torch import nn

    vocoder = model.token2wav.code2wav_bigvgan_model
    gen = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for module in vocoder.modules():
            if isinstance(module, nn.ConvTranspose1d):
                fan_in = module.weight.shape[0] * module.weight.shape[-1] / module.stride[0]
            elif isinstance(module, nn.Conv1d):
                fan_in = module.weight.shape[1] * module.weight.shape[-1]
            else:
                continue
            module.weight.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=gen)
        mel_dim = model.config.token2wav_config.bigvgan_config.mel_dim
        probe = torch.randn(1, mel_dim, 64, generator=gen)
        seen = []  # the output conv's result before the vocoder clamps it to [-1, 1]
        hook = vocoder.conv_post.register_forward_hook(lambda _m, _i, out: seen.append(out))
        vocoder(probe)
        hook.remove()
        vocoder.conv_post.weight.mul_(VOCODER_RMS / float(seen[0].float().pow(2).mean().sqrt()))


def build_tiny_model(path: str | Path, seed: int = TINY_SEED) -> Path:
    """Write a tiny random Qwen2.5-Omni (with tokenizer, processor, voices) to `path`.

    Deterministic for a seed. Returns the folder. About 3 MB on disk.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5OmniForConditionalGeneration

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    processor = _build_processor(tokenizer)
    config = _build_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5OmniForConditionalGeneration(config).eval()
    _audible_vocoder(model, seed)
    model.generation_config = GenerationConfig(
        eos_token_id=config.thinker_config.text_config.eos_token_id
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    torch.save(_speakers(config, tokenizer, seed), path / "spk_dict.pt")
    (path / TINY_MARKER).write_text(
        json.dumps({"seed": seed, "talker_eos_token_ids": list(TALKER_EOS_IDS)}, indent=2)
    )
    logger.info("wrote tiny random Qwen2.5-Omni to %s", path)
    return path


def build_tiny_text_model(path: str | Path, seed: int = TINY_SEED) -> Path:
    """Write a tiny random Qwen2 chat model (the "lite" tier's shape) to `path`.

    Same tokenizer and chat template as the tiny Omni; loads through
    ``AutoModelForCausalLM``/``AutoTokenizer`` like a real ``Qwen2.5-*-Instruct``.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"), tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(seed)
    Qwen2ForCausalLM(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / TINY_MARKER).write_text(json.dumps({"seed": seed, "tier": "lite"}, indent=2))
    logger.info("wrote tiny random Qwen2 text model to %s", path)
    return path
