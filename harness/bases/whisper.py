"""A CTranslate2 Whisper model (``model.bin`` + ``tokenizer.json`` + ``config.json``) as a
``transformers`` ``WhisperForConditionalGeneration`` folder: weights (fp32 safetensors), the
tokenizer, the log-mel feature extractor and the generation config that ``generate`` reads
for ``language=`` / ``task=``. The weights' mapping is :mod:`harness.bases.ctranslate2`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import harness.bases.ctranslate2 as ct2
from harness.bases.gguf import assemble
from harness.errors import MCLBenchError


def convert(files: list[Path], out: Path) -> None:
    """``files``: the ``model.bin`` (or its parts, in order), ``tokenizer.json``, ``config.json``."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    *weights, tokenizer_file, config_file = files
    if len(weights) > 1:
        model_bin = out / "_model.bin"
        assemble(weights, model_bin)
    else:
        model_bin = weights[0]
    spec, variables = ct2.read_model_bin(model_bin)
    if model_bin.parent == out:
        model_bin.unlink()
    if spec != "WhisperSpec":
        raise MCLBenchError(f"{weights[0]}: a CTranslate2 {spec}, not a WhisperSpec")
    ct2_config = json.loads(Path(config_file).read_text())
    vocab = json.loads(Path(tokenizer_file).read_text())
    ids = {t["content"]: t["id"] for t in vocab["added_tokens"]}
    special = _special_ids(ids)
    config = WhisperConfig(**ct2.whisper_config(variables), **special,
                           suppress_tokens=_ids(ct2_config.get("suppress_ids")),
                           begin_suppress_tokens=_ids(ct2_config.get("suppress_ids_begin")))
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(ct2.whisper_state_dict(variables), strict=False)
    if unexpected or set(missing) - {"proj_out.weight"}:  # proj_out is tied to the embeddings
        raise MCLBenchError(f"{weights[0]}: does not map onto Whisper (missing {sorted(missing)[:3]}, "
                            f"unexpected {sorted(unexpected)[:3]})")
    model.tie_weights()
    model.generation_config = _generation_config(config, ids, ct2_config)
    model.save_pretrained(out)
    shutil.copyfile(tokenizer_file, out / "tokenizer.json")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "WhisperTokenizer", "unk_token": "<|endoftext|>", "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "model_max_length": 1024,
        "errors": "replace", "add_prefix_space": False}, indent=1) + "\n")
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(out)


def _ids(value) -> list[int]:
    """CTranslate2's config lists ids as a JSON list, or as a string of one."""
    if value is None:
        return []
    return [int(i) for i in (json.loads(value) if isinstance(value, str) else value)]


def _special_ids(ids: dict[str, int]) -> dict[str, int]:
    end = ids["<|endoftext|>"]
    return {"bos_token_id": end, "eos_token_id": end, "pad_token_id": end,
            "decoder_start_token_id": ids["<|startoftranscript|>"]}


def _generation_config(config, ids: dict[str, int], ct2_config: dict):
    """The fields ``WhisperForConditionalGeneration.generate`` reads (as OpenAI's checkpoints
    on the hub have them)."""
    from transformers import GenerationConfig

    languages = {t: i for t, i in ids.items() if t.startswith("<|") and len(t) <= 9 and t[2:-2].isalpha()
                 and t[2:-2].islower() and t not in ("<|endoftext|>",)}
    multilingual = "<|translate|>" in ids and len(languages) > 1
    fields = {
        "decoder_start_token_id": config.decoder_start_token_id, "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id,
        
        "suppress_tokens": config.suppress_tokens, "begin_suppress_tokens": config.begin_suppress_tokens,
        "no_timestamps_token_id": ids["<|notimestamps|>"], "prev_sot_token_id": ids.get("<|startofprev|>"),
        "is_multilingual": multilingual, "alignment_heads": ct2_config.get("alignment_heads"),
        "max_initial_timestamp_index": 50,
    }
    if multilingual:
        fields["lang_to_id"] = languages
        fields["task_to_id"] = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    return GenerationConfig(**fields)
