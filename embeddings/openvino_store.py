"""Build a static int8 OpenVINO model from a sentence-transformers folder, once.

On CPUs with int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI) but no AMX this is the
fastest faithful way to run the encoder (README, benchmarks/encode.py). The recipe: the
folder's fp32 ONNX export (onnx_store.fp32_onnx_export), converted to OpenVINO and
quantized by NNCF's post-training quantization for transformers, whose activation ranges are
calibrated on real texts of our kind: the demo's firm needs (corpora/data), as documents and
as short queries. None of those texts is in a development set, so the dev-set figures do not
flatter the calibration.

The result lands in `<folder>/openvino/` with its own MANIFEST.json, staged and swapped in
whole like every other build here, and is reused while it verifies.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embeddings.model_folders import (
    OPENVINO_SUBDIR,
    build_lock,
    read_manifest,
    replace_dir,
    staging_dir,
    verify,
    write_manifest,
)
from embeddings.onnx_store import fp32_onnx_export
from embeddings.openvino_runtime import document_prompt, model_inputs

log = logging.getLogger(__name__)

OPENVINO_INT8_NAME = "openvino_model_qint8_static.xml"
OPENVINO_INT8_FILE = f"{OPENVINO_SUBDIR}/{OPENVINO_INT8_NAME}"
# Bump when the recipe changes, so existing builds are redone.
OPENVINO_RECIPE = "nncf-transformer-mixed-v1"
CALIBRATION_FILE = Path(__file__).resolve().parent.parent / "corpora" / "data" / "demo_needs.jsonl"
_CALIBRATION_BATCH = 8


def calibration_texts(path: Path = CALIBRATION_FILE) -> tuple[list[str], list[str]]:
    """(documents, queries): each demo need's title and description, and its title alone."""
    documents, queries = [], []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                documents.append(f"{row['title']}\n{row['description']}")
                queries.append(row["title"])
    if not documents:
        raise ValueError(f"{path} holds no calibration texts")
    return documents, queries


def openvino_available() -> bool:
    """Whether OpenVINO and NNCF are installed (found, not imported: NNCF takes 1.5 s)."""
    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "nncf"))


def find_openvino_int8(model_dir: Path) -> str | None:
    """The verified int8 OpenVINO model in `model_dir` (relative path), if it was built."""
    model_dir = Path(model_dir)
    if not verify(model_dir, subdir=OPENVINO_SUBDIR):
        return None
    manifest = read_manifest(model_dir, subdir=OPENVINO_SUBDIR)
    if manifest.get("recipe") != OPENVINO_RECIPE or OPENVINO_INT8_FILE not in manifest["files"]:
        return None
    return OPENVINO_INT8_FILE


def materialize_openvino_int8(model_dir: Path, *, progress: bool = True) -> Path:
    """Add `openvino/openvino_model_qint8_static.xml` (+ .bin) to a sentence-transformers
    folder and return its path. Idempotent: a verified build of the same recipe is reused."""
    model_dir = Path(model_dir)
    if find_openvino_int8(model_dir):
        return model_dir / OPENVINO_INT8_FILE
    with build_lock(model_dir / OPENVINO_SUBDIR):
        if find_openvino_int8(model_dir):  # built while we waited?
            return model_dir / OPENVINO_INT8_FILE
        build_openvino_int8(model_dir, progress=progress)
    return model_dir / OPENVINO_INT8_FILE


def _calibration_batches(model, input_names: set[str]) -> list[dict[str, np.ndarray]]:
    prompts = model.prompts or {}
    documents, queries = calibration_texts()
    texts = [document_prompt(prompts) + text for text in documents]
    texts += [prompts.get("query", "") + text for text in queries]
    return [
        model_inputs(model.tokenizer, texts[start : start + _CALIBRATION_BATCH],
                     model.max_seq_length, input_names)
        for start in range(0, len(texts), _CALIBRATION_BATCH)
    ]


def build_openvino_int8(model_dir: Path, *, progress: bool) -> None:
    """Build `<folder>/openvino/` afresh, replacing whatever is there (materialize_openvino_int8
    calls it under the build lock, only when no verified build exists)."""
    # NNCF reports usage to Google Analytics unless it believes it runs in CI (its only use
    # of NNCF_CI). The platform runs offline and tells nobody what an office does with it.
    os.environ.setdefault("NNCF_CI", "1")
    import nncf
    import openvino

    started = time.perf_counter()
    target = model_dir / OPENVINO_SUBDIR
    if target.exists():
        log.warning("%s is incomplete, corrupted or of an older recipe; rebuilding it", target)
    nncf.set_log_level(logging.ERROR)
    steps = tqdm(total=3, desc="int8 OpenVINO", unit="step", disable=not progress)
    try:
        with fp32_onnx_export(model_dir) as (model, _scratch), staging_dir(target) as staging:
            steps.update()
            fp32 = openvino.Core().read_model(str(model.transformers_model.path))
            names = {port.get_any_name() for port in fp32.inputs}
            batches = _calibration_batches(model, names)
            steps.update()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # NNCF's notes on its own internals
                quantized = nncf.quantize(
                    fp32,
                    nncf.Dataset(batches),
                    model_type=nncf.ModelType.TRANSFORMER,
                    preset=nncf.QuantizationPreset.MIXED,
                    subset_size=len(batches),
                )
            openvino.save_model(quantized, str(staging / OPENVINO_INT8_NAME))
            steps.update()
            replace_dir(staging, target)
    finally:
        steps.close()
    write_manifest(model_dir, subdir=OPENVINO_SUBDIR, extra={
        "recipe": OPENVINO_RECIPE,
        "calibration_texts": sum(len(batch["input_ids"]) for batch in batches),
    })
    log.info("int8 OpenVINO model %s in %.1f s", OPENVINO_INT8_FILE, time.perf_counter() - started)
