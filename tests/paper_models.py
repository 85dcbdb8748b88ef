"""Tiny random models of the paper's three architectures, with their processors, saved as
checkpoint folders: what ``configs/paper/*.yaml`` load with ``--set task.backbone=<dir>``.

- ALMA-7B: ``LlamaForCausalLM``;
- Qwen2-Audio-7B-Instruct: ``Qwen2AudioForConditionalGeneration`` + ``Qwen2AudioProcessor``
  (a Whisper feature extractor, the audio placeholder tokens);
- LLaVA-1.6-Vicuna-7B: ``LlavaForConditionalGeneration`` + ``LlavaProcessor`` (CLIP image
  processor, the ``<image>`` token). (LLaVA-1.6 is ``LlavaNext``: the same language model
  and projector layout; its any-resolution tiling needs image sizes a 16-pixel test model
  cannot have.)

Same classes and module names as the 7B checkpoints, a few thousand parameters each, and a
byte-level BPE tokenizer trained here on Multi30k text (so every string tokenises).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import torch
import transformers as T

ROOT = Path(__file__).resolve().parents[1]
SPECIAL = ["<s>", "</s>", "<pad>", "<unk>"]
MEDIA_TOKENS = ["<image>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]


def tokenizer() -> T.PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    lines = []
    for name in ("train.en.gz", "train.de.gz"):
        with gzip.open(ROOT / "tasks/data/multi30k" / name, "rt", encoding="utf-8") as f:
            lines += [next(f) for _ in range(300)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL + MEDIA_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    return T.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                     pad_token="<pad>", unk_token="<unk>",
                                     additional_special_tokens=MEDIA_TOKENS)


def _llama_config(tok, **extra):
    return T.LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **extra)


def _save(model, processor_or_tokenizer, out: Path) -> Path:
    model.generation_config.pad_token_id = model.config.get_text_config().pad_token_id
    model.save_pretrained(out)
    processor_or_tokenizer.save_pretrained(out)
    return out


def alma(out: Path) -> Path:
    tok = tokenizer()
    torch.manual_seed(0)
    return _save(T.LlamaForCausalLM(_llama_config(tok)), tok, out)


def qwen2_audio(out: Path) -> Path:
    tok = tokenizer()
    features = T.WhisperFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160,
                                         chunk_length=2, n_fft=400)
    processor = T.Qwen2AudioProcessor(feature_extractor=features, tokenizer=tok)
    text = T.Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    audio = T.Qwen2AudioEncoderConfig(num_mel_bins=16, encoder_layers=1, encoder_attention_heads=2,
                                      encoder_ffn_dim=32, d_model=16, max_source_positions=100)
    cfg = T.Qwen2AudioConfig(audio_config=audio, text_config=text,
                             audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"))
    torch.manual_seed(0)
    return _save(T.Qwen2AudioForConditionalGeneration(cfg), processor, out)


def llava(out: Path) -> Path:
    tok = tokenizer()
    images = T.CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    processor = T.LlavaProcessor(image_processor=images, tokenizer=tok, patch_size=8,
                                 vision_feature_select_strategy="default", num_additional_image_tokens=1)
    vision = T.CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                num_attention_heads=2, image_size=16, patch_size=8, projection_dim=16)
    cfg = T.LlavaConfig(vision_config=vision, text_config=_llama_config(tok),
                        image_token_index=tok.convert_tokens_to_ids("<image>"),
                        vision_feature_select_strategy="default", vision_feature_layer=-2)
    torch.manual_seed(0)
    return _save(T.LlavaForConditionalGeneration(cfg), processor, out)
