"""ONNX builds of a sentence-transformers folder: the fp32 export, and the int8 model served
on CPUs with neither AMX nor VNNI.

`fp32_onnx_export` exports a folder to fp32 ONNX through sentence-transformers' own backend,
in a scratch copy that is deleted afterwards: the starting point of both int8 builds (this
module's dynamic one, and embeddings/openvino_store.py's static one). `materialize_onnx_int8`
quantizes it dynamically with `export_dynamic_quantized_onnx_model` for this CPU's int8
kernel family and keeps the result in `<folder>/onnx/` with its own MANIFEST.json, which
records the recipe; the folder tools of embeddings/model_folders.py stage, lock and verify it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from embeddings.cpu import int8_preset
from embeddings.model_folders import (
    MANIFEST_NAME,
    ONNX_SUBDIR,
    OPENVINO_SUBDIR,
    ModelStoreError,
    build_lock,
    read_manifest,
    verify,
    write_manifest,
)

log = logging.getLogger(__name__)

QUANTIZATION_CONFIGS = ("avx512_vnni", "avx512", "avx2", "arm64")

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
    model_dir: Path, *, quantization: str | None = None, progress: bool = True
) -> Path:
    """Add `onnx/model_qint8_<preset>_mixed.onnx` to a sentence-transformers folder.

    Returns the file's path. Idempotent: a verified export for the same preset is reused.
    The export goes through sentence-transformers' own backend (fp32 ONNX export, then
    `export_dynamic_quantized_onnx_model` with the recipe above), is staged in a temporary
    folder and moved in only once complete.
    """
    model_dir = Path(model_dir)
    quantization = quantization or int8_preset()
    if quantization not in QUANTIZATION_CONFIGS:
        raise ValueError(f"quantization must be one of {QUANTIZATION_CONFIGS}: {quantization!r}")
    existing = _verified_int8(model_dir, quantization)
    if existing:
        return existing
    with build_lock(model_dir / ONNX_SUBDIR):
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
