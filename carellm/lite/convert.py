"""A Qwen2 checkpoint folder → a GGUF file, and a GGUF → a quantized GGUF.

This is a minimal Qwen2-only version of llama.cpp's ``convert_hf_to_gguf.py``
(``conversion/qwen.py`` + ``conversion/base.py`` of the version vendored in
llama-cpp-python 0.3.36), written with the same ``gguf`` package (0.19.0, the
``gguf-py`` of that llama.cpp). It follows their Qwen2 path step by step: the
vocabulary as transformers' tokenizer lists it (ids without a token become
``[PAD{i}]``, added special tokens CONTROL), ``tokenizer.ggml.model = "gpt2"``,
merges and special ids through ``gguf.SpecialVocab``, hyper-parameters from
``config.json``, tensor names through ``gguf.get_tensor_name_map``, 1-D tensors in
F32 and matrices in F16 (or F32). What it does *not* do is detect the BPE
pre-tokenizer from a hash of the tokenization of a test string (llama.cpp only
knows the hashes of published tokenizers): a Qwen2 tokenizer always uses Qwen2's
split regex, so the pre-tokenizer is written as ``"qwen2"`` (the tiny model's
``tokenizer.json`` has exactly that regex; a test checks llama.cpp tokenizes like
transformers). Real Qwen GGUF files come from llama.cpp's script; the tests and the
benchmark use this one because that script is not installed by pip.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from carellm.errors import ModelLoadError

logger = logging.getLogger(__name__)

TINY_KEY = "carellm.tiny_random"  # GGUF metadata key: True for CareLLM's random models
OUTTYPES = ("f16", "f32")
# llama.cpp's quantization names → LLAMA_FTYPE_* values (llama.h)
QUANT_TYPES = {"q8_0": 7, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18, "q4_0": 2, "f16": 1}


def _config(folder: Path) -> dict:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot read {folder / 'config.json'}: {e}") from e
    if config.get("model_type") != "qwen2":
        raise ModelLoadError(
            f"{folder} is a {config.get('model_type')!r} model; this converter takes Qwen2 "
            "text models only: use llama.cpp's convert_hf_to_gguf.py for others"
        )
    return config


def _vocab(folder: Path, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens and their GGUF types, as llama.cpp's ``get_vocab_base`` lists them."""
    import gguf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    reverse = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(reverse[i])
            types.append(
                gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED
            )
        else:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def _hparams(writer, config: dict) -> None:
    rope = config.get("rope_parameters") or {}
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config.get("num_key_value_heads", config["num_attention_heads"]))
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))


def _tensors(folder: Path, writer, config: dict, outtype: str) -> None:
    import gguf
    import numpy as np
    from safetensors import safe_open

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config["num_hidden_layers"])
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{folder} has no *.safetensors weights to convert")
    for file in files:
        with safe_open(file, framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                if name == "lm_head.weight" and config.get("tie_word_embeddings"):
                    continue  # llama.cpp uses token_embd as the output matrix when tied
                new = names.get_name(name, try_suffixes=(".weight", ".bias"))
                if new is None:
                    raise ModelLoadError(f"cannot map tensor {name!r} of {file} to GGUF")
                data = f.get_tensor(name).float().numpy()
                if data.ndim > 1 and outtype == "f16":
                    data = data.astype(np.float16)
                writer.add_tensor(new, data)


def convert_to_gguf(folder: str | Path, out: str | Path, *, outtype: str = "f16") -> Path:
    """Write the Qwen2 model in ``folder`` (config.json, safetensors, tokenizer) as one
    GGUF file ``out`` with matrices in ``outtype`` ("f16" or "f32")."""
    import gguf

    folder, out = Path(folder), Path(out)
    if outtype not in OUTTYPES:
        raise ModelLoadError(f"outtype {outtype!r} is not one of {', '.join(OUTTYPES)}")
    config = _config(folder)
    tokens, types = _vocab(folder, config["vocab_size"])
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.QWEN2])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(folder.name)
    writer.add_file_type(
        gguf.LlamaFileType.MOSTLY_F16 if outtype == "f16" else gguf.LlamaFileType.ALL_F32
    )
    _hparams(writer, config)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(tokens))
    special.add_to_gguf(writer, quiet=True)
    if "bos" not in special.add_special_token:
        writer.add_add_bos_token(False)  # Qwen prompts start with <|im_start|>, no BOS
    from carellm.tiny import TINY_MARKER

    writer.add_bool(TINY_KEY, (folder / TINY_MARKER).exists())
    _tensors(folder, writer, config, outtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    logger.info("wrote %s (%s, %d tokens)", out, outtype, len(tokens))
    return out


def quantize_gguf(src: str | Path, dst: str | Path, kind: str = "q4_k_m", *,
                  threads: int = 0) -> Path:  # fmt: skip
    """Quantize GGUF ``src`` to ``dst`` with llama.cpp's own quantizer (as
    ``llama-quantize`` does): ``kind`` is q8_0, q4_k_m, q5_k_m, q6_k, q4_0 or f16."""
    import ctypes

    from carellm.lite.runtime import import_llama_cpp

    llama_cpp = import_llama_cpp()
    if kind.lower() not in QUANT_TYPES:
        raise ModelLoadError(f"unknown quantization {kind!r}; use one of {', '.join(QUANT_TYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[kind.lower()]
    params.nthread = threads
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    code = llama_cpp.llama_model_quantize(
        str(src).encode(), str(dst).encode(), ctypes.byref(params)
    )
    if code != 0:
        raise ModelLoadError(f"llama.cpp could not quantize {src} to {kind} (code {code})")
    return dst
