"""Materializing multilingual-e5-small from packaged weights: manifests, idempotence, repair.

The slow tests share one materialized folder per session (MATCHER_HOME, else var/), so CI
builds it once; tests that damage a folder work on their own copy under tmp_path.
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from embeddings import e5_weights, model_folders, model_store, openvino_store
from embeddings.cpu import int8_preset
from embeddings.model_folders import MANIFEST_NAME, read_manifest, verify, write_manifest
from embeddings.model_store import default_e5_dir, is_materialized_e5, materialize_e5
from embeddings.onnx_store import QUANTIZATION_CONFIGS, find_onnx_int8, materialize_onnx_int8
from embeddings.openvino_store import (
    OPENVINO_INT8_FILE,
    OPENVINO_RECIPE,
    calibration_texts,
    find_openvino_int8,
    materialize_openvino_int8,
)
from settings import Settings

# --------------------------------------------------------------------------- manifests (fast)


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(os.urandom(4096))
    (folder / "config.json").write_text('{"hidden_size": 384}\n')
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}\n')
    write_manifest(folder)
    return folder


def test_manifest_lists_every_file_with_hash_and_size(small_folder: Path) -> None:
    files = read_manifest(small_folder)["files"]
    assert set(files) == {"weights.bin", "config.json", "1_Pooling/config.json"}
    assert files["weights.bin"]["size"] == 4096
    assert len(files["weights.bin"]["sha256"]) == 64
    assert verify(small_folder)


def test_verify_detects_a_corrupted_file_of_the_same_size(small_folder: Path) -> None:
    assert verify(small_folder)
    weights = small_folder / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert not verify(small_folder)


def test_deep_verify_detects_corruption_that_kept_size_and_mtime(small_folder: Path) -> None:
    weights = small_folder / "weights.bin"
    assert verify(small_folder)
    stat = weights.stat()
    data = bytearray(weights.read_bytes())
    data[0] ^= 0x01
    with weights.open("r+b") as handle:  # same inode, same size
        handle.write(bytes(data[:1]))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert not verify(small_folder, deep=True)


@pytest.mark.parametrize("damage", ["delete", "truncate", "manifest"])
def test_verify_detects_missing_truncated_or_unreadable_manifest(
    small_folder: Path, damage: str
) -> None:
    if damage == "delete":
        (small_folder / "config.json").unlink()
    elif damage == "truncate":
        (small_folder / "weights.bin").write_bytes(b"short")
    else:
        (small_folder / MANIFEST_NAME).write_text("{not json")
    assert not verify(small_folder)


def test_repeated_verify_hashes_each_file_once(
    small_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    real_sha256 = model_folders.sha256_file

    def counting_sha256(path: Path) -> str:
        hashed.append(path)
        return real_sha256(path)

    monkeypatch.setattr(model_folders, "sha256_file", counting_sha256)
    assert verify(small_folder)
    assert len(hashed) == 3
    assert verify(small_folder)
    assert len(hashed) == 3, "an unchanged folder must verify without rehashing"
    (small_folder / "config.json").write_text('{"hidden_size": 385}\n')
    assert not verify(small_folder)


# --------------------------------------------------------------------------- Q4_0 (fast)


def test_q4_0_dequantization_follows_the_e5c_layout() -> None:
    # One row of 64 weights = two blocks. Block: fp16 scale, then byte j holds weight j in
    # its low nibble and weight j + 16 in its high nibble, both offset by 8.
    rng = np.random.default_rng(0)
    expected = np.empty((1, 64), dtype=np.float32)
    raw = bytearray()
    for block, scale in enumerate((0.5, -0.125)):
        low = rng.integers(0, 16, size=16)
        high = rng.integers(0, 16, size=16)
        raw += struct.pack("<e", scale) + bytes(
            int(lo | (hi << 4)) for lo, hi in zip(low, high, strict=True)
        )
        expected[0, block * 32 : block * 32 + 16] = (low - 8) * scale
        expected[0, block * 32 + 16 : block * 32 + 32] = (high - 8) * scale
    out = e5_weights.dequantize_q4_0(np.frombuffer(bytes(raw), dtype=np.uint8), 1, 64)
    np.testing.assert_array_equal(out, expected)


def test_packaged_weights_parse_and_match_the_packaged_tokenizer() -> None:
    data = memoryview(e5_weights.packaged_weights_path().read_bytes())
    packed = e5_weights.read_packed_e5(data)
    assert (packed.hidden, packed.layers, packed.heads, packed.intermediate) == (384, 12, 12, 1536)
    assert (packed.vocab, packed.max_positions, packed.type_vocab) == (250037, 512, 2)
    tokenizer = json.loads(e5_weights.packaged_tokenizer_path().read_text(encoding="utf-8"))
    e5_weights.check_tokenizer_matches(tokenizer, packed)  # raises on any mismatch
    for name in e5_weights.bert_tensor_names(packed.layers):
        assert name.removesuffix(".w") in packed.tensors or name in packed.tensors


def test_int8_preset_is_a_sentence_transformers_preset() -> None:
    assert int8_preset() in QUANTIZATION_CONFIGS


# --------------------------------------------------------------------------- real folder (slow)


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    return materialize_e5(default_e5_dir(Settings.from_env().models_dir), progress=False)


EXPECTED_FILES = {
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
}


@pytest.mark.slow
def test_materialized_folder_is_a_complete_sentence_transformers_model(e5_dir: Path) -> None:
    assert set(read_manifest(e5_dir)["files"]) >= EXPECTED_FILES
    modules = json.loads((e5_dir / "modules.json").read_text())
    assert [module["type"].rsplit(".", 1)[1] for module in modules] == [
        "Transformer",
        "Pooling",
        "Normalize",
    ]
    pooling = json.loads((e5_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    st_config = json.loads((e5_dir / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "document": "passage: "}
    assert (e5_dir / "model.safetensors").stat().st_size > 400_000_000  # fp32, not 4-bit


@pytest.mark.slow
def test_second_materialize_is_a_fast_no_op(e5_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a verified folder must not be rebuilt")

    monkeypatch.setattr(model_store, "build_e5_folder", fail_build)
    manifest_mtime = (e5_dir / MANIFEST_NAME).stat().st_mtime_ns
    started = time.perf_counter()
    assert materialize_e5(e5_dir, progress=False) == e5_dir
    assert time.perf_counter() - started < 2.0
    assert (e5_dir / MANIFEST_NAME).stat().st_mtime_ns == manifest_mtime


@pytest.mark.slow
def test_corrupted_or_partial_folder_is_rebuilt(tmp_path: Path) -> None:
    target = tmp_path / "e5"
    materialize_e5(target, progress=False)
    assert is_materialized_e5(target)
    original = read_manifest(target)["files"]

    config = target / "config.json"
    config.write_text(config.read_text().replace('"hidden_size": 384', '"hidden_size": 385'))
    assert not is_materialized_e5(target)
    materialize_e5(target, progress=False)
    assert is_materialized_e5(target)
    assert json.loads(config.read_text())["hidden_size"] == 384

    # A crash mid-build in an older layout: no manifest, some files missing.
    (target / MANIFEST_NAME).unlink()
    (target / "tokenizer.json").unlink()
    materialize_e5(target, progress=False)
    assert read_manifest(target)["files"] == original
    leftovers = [path for path in tmp_path.glob(".e5.*") if path.name != ".e5.lock"]
    assert not leftovers, "staging folders must not be left behind"


@pytest.mark.slow
def test_int8_onnx_export_is_checksummed_and_idempotent(
    e5_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = materialize_onnx_int8(e5_dir, progress=False)
    assert exported.is_file() and exported.suffix == ".onnx"
    assert exported.name == f"model_qint8_{int8_preset()}_mixed.onnx"
    assert find_onnx_int8(e5_dir) == exported.relative_to(e5_dir).as_posix()
    manifest = read_manifest(e5_dir, subdir="onnx")
    # Every layer's feed-forward output projection stays fp32 (see INT8_RECIPE).
    assert len(manifest["fp32_matmuls"]) == 12
    assert manifest["quantized_matmuls"] == 12 * 5
    import onnx

    graph = onnx.load(str(exported), load_external_data=False).graph
    assert sum(node.op_type == "MatMulInteger" for node in graph.node) == 60
    assert verify(e5_dir, subdir="onnx") and verify(e5_dir)

    def fail_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("a verified export must not be redone")

    import sentence_transformers

    monkeypatch.setattr(sentence_transformers, "export_dynamic_quantized_onnx_model", fail_export)
    assert materialize_onnx_int8(e5_dir, progress=False) == exported


def _fake_openvino_build(folder: Path, recipe: str) -> None:
    (folder / "openvino").mkdir(parents=True, exist_ok=True)
    (folder / OPENVINO_INT8_FILE).write_text("<net/>")
    (folder / OPENVINO_INT8_FILE).with_suffix(".bin").write_bytes(os.urandom(1024))
    write_manifest(folder, subdir="openvino", extra={"recipe": recipe})


def test_openvino_build_counts_only_when_verified_and_of_the_current_recipe(
    small_folder: Path,
) -> None:
    assert find_openvino_int8(small_folder) is None
    _fake_openvino_build(small_folder, "an-older-recipe")
    assert find_openvino_int8(small_folder) is None
    _fake_openvino_build(small_folder, OPENVINO_RECIPE)
    assert find_openvino_int8(small_folder) == OPENVINO_INT8_FILE
    weights = (small_folder / OPENVINO_INT8_FILE).with_suffix(".bin")
    weights.write_bytes(os.urandom(1024))  # same size, other bytes
    os.utime(weights, ns=(1, 1))
    assert find_openvino_int8(small_folder) is None
    # The folder's own manifest never lists the exports.
    write_manifest(small_folder)
    assert not any(name.startswith("openvino/") for name in read_manifest(small_folder)["files"])


def test_calibration_texts_are_the_demo_needs_as_documents_and_queries() -> None:
    documents, queries = calibration_texts()
    assert len(documents) == len(queries) >= 60
    pairs = list(zip(documents, queries, strict=True))
    assert all(document.startswith(query) and len(document) > len(query)
               for document, query in pairs)


@pytest.mark.slow
def test_openvino_int8_model_is_quantized_checksummed_and_idempotent(
    e5_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openvino

    built = materialize_openvino_int8(e5_dir, progress=False)
    assert built == e5_dir / OPENVINO_INT8_FILE and built.with_suffix(".bin").is_file()
    manifest = read_manifest(e5_dir, subdir="openvino")
    assert manifest["recipe"] == OPENVINO_RECIPE
    assert manifest["calibration_texts"] == 2 * len(calibration_texts()[0])
    assert set(manifest["files"]) == {OPENVINO_INT8_FILE, OPENVINO_INT8_FILE[:-4] + ".bin"}
    assert verify(e5_dir, subdir="openvino") and verify(e5_dir)
    graph = openvino.Core().read_model(str(built))
    # Every weight MatMul of the 12 layers gets int8 inputs (NNCF's FakeQuantize nodes).
    fake_quantize = [op for op in graph.get_ops() if op.get_type_name() == "FakeQuantize"]
    assert len(fake_quantize) >= 12 * 6

    def fail_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a verified build must not be redone")

    monkeypatch.setattr(openvino_store, "build_openvino_int8", fail_build)
    assert materialize_openvino_int8(e5_dir, progress=False) == built
