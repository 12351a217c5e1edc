"""A `FaissIndex` on disk: the sidecar fields it is saved with, and the checks that reading
one back makes before any of it is trusted (see `matcher.vector_common` for the commit)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from matcher.vector_common import (
    IndexFileError,
    check_loaded,
    commit_index_files,
    open_committed,
    sorted_unique,
)

KIND_FLAT = "faiss-flat"
KIND_IVF = "faiss-ivf"


@dataclass(frozen=True)
class IvfSettings:
    """What an IVF index was fitted to: the calibrated probe count and the recall it reached
    per k, and how many vectors it was trained on."""

    nprobe_by_k: dict[int, int]
    calibrated_recall: dict[int, float]
    trained_count: int


@dataclass(frozen=True)
class SavedFaiss:
    sidecar: dict[str, Any]
    # IndexIDMap2 over IndexFlatIP when `ivf` is None, else IndexIVFFlat with its direct map
    index: faiss.Index
    ivf: IvfSettings | None
    sorted_ids: np.ndarray


def save_faiss(
    directory: Path, index: faiss.Index, *, model: str, built_at: str, ann_threshold: int,
    target_recall: float, ivf: IvfSettings | None,
) -> dict[str, Any]:
    """Write `index` and its sidecar into `directory`; returns the sidecar as written."""
    sidecar: dict[str, Any] = {
        "kind": KIND_IVF if ivf is not None else KIND_FLAT,
        "model": model,
        "dimension": int(index.d),
        "count": int(index.ntotal),
        "metric": "inner_product",
        "built_at": built_at,
        "faiss_version": faiss.__version__,
        "ann_threshold": ann_threshold,
    }
    if ivf is not None:
        sidecar |= {
            "nlist": int(index.nlist),
            # JSON object keys are strings: {"10": nprobe, "100": nprobe}
            "nprobe_by_k": {str(k): n for k, n in ivf.nprobe_by_k.items()},
            "calibrated_recall": {str(k): r for k, r in ivf.calibrated_recall.items()},
            "trained_count": ivf.trained_count,
            "target_recall": target_recall,
        }
    return commit_index_files(
        Path(directory),
        "faiss",
        lambda path: faiss.write_index(index, str(path)),
        sidecar,
    )


def load_faiss(directory: Path) -> SavedFaiss:
    """The index saved in `directory`, refused (IndexFileError) unless file and sidecar
    agree on kind, dimension, count, metric, settings and unique ids."""
    sidecar, data_path = open_committed(Path(directory), (KIND_FLAT, KIND_IVF))
    try:
        stored = faiss.read_index(str(data_path))
    except RuntimeError as error:
        raise IndexFileError(f"{data_path} is not a readable FAISS index: {error}") from error
    check_loaded(sidecar, dimension=stored.d, count=stored.ntotal, where=data_path)
    if stored.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexFileError(f"{data_path}: index does not use inner product")
    ivf: IvfSettings | None = None
    if sidecar["kind"] == KIND_IVF:
        # read_index hands back the concrete class; a downcast_index wrapper would not
        # own the C++ object, which would then die with `stored`.
        if not isinstance(stored, faiss.IndexIVFFlat):
            raise IndexFileError(f"{data_path}: sidecar says IVF, file holds {type(stored)}")
        if stored.direct_map.type != faiss.DirectMap.Hashtable:
            raise IndexFileError(f"{data_path}: IVF index lacks its id direct map")
        try:
            ivf = IvfSettings(
                nprobe_by_k={int(k): int(n) for k, n in sidecar["nprobe_by_k"].items()},
                calibrated_recall={
                    int(k): float(r) for k, r in sidecar["calibrated_recall"].items()
                },
                trained_count=int(sidecar["trained_count"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise IndexFileError(f"{data_path}: sidecar lacks IVF settings: {error}") from error
        if not ivf.nprobe_by_k:
            raise IndexFileError(f"{data_path}: sidecar has no calibrated nprobe")
        stored_ids = _ivf_ids(stored)
    else:
        if not isinstance(stored, faiss.IndexIDMap2):
            raise IndexFileError(f"{data_path}: sidecar says exact, file holds {type(stored)}")
        stored_ids = faiss.vector_to_array(stored.id_map)
    sorted_ids = sorted_unique(stored_ids.astype(np.int64))
    if sorted_ids.size != stored.ntotal:
        raise IndexFileError(f"{data_path}: index holds duplicate ids")
    return SavedFaiss(sidecar, stored, ivf, sorted_ids)


def _ivf_ids(ivf: faiss.IndexIVF) -> np.ndarray:
    lists = ivf.invlists
    parts = []
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        if size:
            pointer = lists.get_ids(number)
            parts.append(faiss.rev_swig_ptr(pointer, size).copy())
            lists.release_ids(number, pointer)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
