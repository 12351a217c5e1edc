"""Pick, build and cache the process's encoder.

`load_encoder(spec, backend=..., models_dir=...)` resolves a spec (the caller passes the
settings' `MATCHER_MODEL`, `MATCHER_BACKEND` and models folder: nothing here reads the
environment):

* `"default"` / `"e5"`: multilingual-e5-small, materialized on first use into
  `<models_dir>/multilingual-e5-small`, run the fastest faithful way this CPU has:
  with AMX on torch with bf16 matrix products; with VNNI (int8 dot products) as a static
  int8 OpenVINO model; elsewhere through its dynamic int8 ONNX export (each export built
  on first use, one to two minutes);
* `"fake"`: the deterministic FakeEncoder, for tests and dry runs;
* a path: any sentence-transformers folder; ONNX Runtime when it holds an ONNX export,
  torch otherwise (bf16 autocast on a CPU with AMX); OpenVINO int8 when asked for.

`backend="torch"|"bf16"|"onnx"|"openvino"` (`MATCHER_BACKEND`) overrides the backend choice
(torch: plain fp32; openvino: the static int8 model, built for that folder on first use).
Loaded encoders are cached per process (loading costs seconds and hundreds of MB); under
gunicorn load after fork.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from embeddings.base import Encoder
from embeddings.cpu import has_amx_bf16, has_int8_dot_product
from embeddings.fake import FakeEncoder
from embeddings.model_folders import ONNX_SUBDIR
from embeddings.model_store import default_e5_dir, materialize_e5
from embeddings.onnx_store import find_onnx_int8, materialize_onnx_int8
from embeddings.openvino_runtime import read_layout
from embeddings.openvino_store import (
    find_openvino_int8,
    materialize_openvino_int8,
    openvino_available,
)
from embeddings.sentence import BACKENDS, DEFAULT_WINDOW_TOKENS, SentenceTransformerEncoder

__all__ = ["load_encoder", "clear_encoder_cache"]

log = logging.getLogger(__name__)

DEFAULT_SPECS = ("default", "e5", "multilingual-e5-small")

_cache: dict[tuple, Encoder] = {}
_lock = threading.Lock()


def _checked_backend(backend: str | None) -> str | None:
    backend = (backend or "").strip().lower()
    if not backend:
        return None
    if backend not in BACKENDS:
        raise ValueError(f"MATCHER_BACKEND must be one of {BACKENDS}, not {backend!r}")
    return backend


def _torch_backend() -> str:
    # Measured on the development sets (README, benchmarks/encode.py): with AMX, bf16 is 3x
    # fp32 with nDCG@10 within 0.61%; without AMX bf16 is emulated and slow.
    return "bf16" if has_amx_bf16() else "torch"


def _default_backend() -> str:
    # Measured with benchmarks/encode.py (README): AMX bf16 3.0x fp32; OpenVINO static int8
    # 2.5x with VNNI (dynamic int8 ONNX there: 1.4-2.1x); dynamic int8 ONNX 1.5x with AVX2.
    if has_amx_bf16():
        return "bf16"
    if has_int8_dot_product() and openvino_available():
        return "openvino"
    return "onnx"


def _export_file(model_dir: Path, backend: str, *, build: bool) -> str | None:
    if backend == "openvino":
        found = find_openvino_int8(model_dir)
        if found is None and build:
            found = materialize_openvino_int8(model_dir).relative_to(model_dir).as_posix()
        return found
    if backend == "onnx":
        return _onnx_file_for(model_dir, build=build)
    return None


def _plain_onnx_file(model_dir: Path) -> str | None:
    """An ONNX export that came with a folder (e.g. onnx/model.onnx from the hub)."""
    candidates = sorted((model_dir / ONNX_SUBDIR).glob("*.onnx"))
    preferred = [path for path in candidates if path.name == "model.onnx"]
    chosen = (preferred or candidates or [None])[0]
    return f"{ONNX_SUBDIR}/{chosen.name}" if chosen else None


def _onnx_file_for(model_dir: Path, *, build: bool) -> str | None:
    found = find_onnx_int8(model_dir) or _plain_onnx_file(model_dir)
    if found is None and build:
        built = materialize_onnx_int8(model_dir)
        found = built.relative_to(model_dir).as_posix()
    return found


def _resolve(spec: str, override: str | None, models_dir: Path | None
             ) -> tuple[str, Path | None, str, str | None]:
    """(kind, model_dir, backend, export_file) for a spec; builds the default model if needed."""
    if spec.lower() in DEFAULT_SPECS:
        if models_dir is None:
            raise ValueError("the default model needs models_dir (Settings.models_dir)")
        model_dir = materialize_e5(default_e5_dir(models_dir))
        backend = override or _default_backend()
        try:
            return "st", model_dir, backend, _export_file(model_dir, backend, build=True)
        except Exception as error:
            if override or backend != "openvino":
                raise
            # The OpenVINO build is an optimisation: a machine where it fails (an OpenVINO
            # that does not load, memory) still gets the int8 ONNX model.
            log.warning("OpenVINO int8 model unavailable (%s); using the int8 ONNX model", error)
            return "st", model_dir, "onnx", _export_file(model_dir, "onnx", build=True)
    model_dir = Path(spec).expanduser()
    if not model_dir.exists():
        raise FileNotFoundError(
            f"embedding model {spec!r} does not exist (MATCHER_MODEL takes 'fake', 'e5' or the "
            "path of a sentence-transformers folder)"
        )
    if not (model_dir / "modules.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a sentence-transformers folder")
    if override == "openvino":
        read_layout(model_dir)  # refuse a folder this runtime cannot pool before building
        return "st", model_dir.resolve(), override, _export_file(model_dir, override, build=True)
    onnx_file = _onnx_file_for(model_dir, build=override == "onnx")
    backend = override or ("onnx" if onnx_file else _torch_backend())
    return "st", model_dir.resolve(), backend, onnx_file if backend == "onnx" else None


def load_encoder(spec: str | None = None, *, backend: str | None = None,
                 models_dir: Path | None = None, window_tokens: int | None = None) -> Encoder:
    """The encoder named by `spec` (None: the default), run by `backend` (None: the one this
    CPU suits best), the default model kept under `models_dir`; cached per process."""
    spec = (spec or "default").strip() or "default"
    if spec.lower() == "fake":
        key: tuple = ("fake",)
        with _lock:
            if key not in _cache:
                _cache[key] = FakeEncoder()
            return _cache[key]
    window = window_tokens or DEFAULT_WINDOW_TOKENS
    with _lock:
        _kind, model_dir, chosen, export_file = _resolve(spec, _checked_backend(backend),
                                                         models_dir)
        key = (str(model_dir), chosen, export_file, window)
        if key not in _cache:
            _cache[key] = SentenceTransformerEncoder(
                model_dir, backend=chosen, export_file=export_file, window_tokens=window
            )
        return _cache[key]


def clear_encoder_cache() -> None:
    with _lock:
        _cache.clear()
