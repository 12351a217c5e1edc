"""Run a sentence-transformers folder's OpenVINO export without loading its torch weights.

sentence-transformers' own OpenVINO backend goes through optimum-intel, which needs
torchvision (it does not install beside the pinned CPU torch), so `OpenVinoModel` reads the
folder's configuration itself and offers the few parts of `SentenceTransformer` that
`SentenceTransformerEncoder` uses: `tokenizer`, `max_seq_length`, `prompts`,
`get_embedding_dimension()` and `encode()`. Only the layouts our models have are accepted
(a Transformer, then mean or CLS pooling, then an optional Normalize), in the configuration
formats of sentence-transformers before and since 5.x; anything else is refused with a
message rather than pooled wrongly, before any export is built (`read_layout`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_LAYOUT = ("Transformer", "Pooling")
_SUPPORTED_POOLING = ("mean", "cls")
# sentence-transformers' legacy pooling config: one boolean per mode.
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def document_prompt(prompts: dict[str, str]) -> str:
    """The prompt a folder gives documents (sentence-transformers calls it `document`, some
    folders `passage`), or none."""
    return prompts.get("document", prompts.get("passage", ""))


def model_inputs(tokenizer, texts: list[str], max_length: int, input_names: set[str]
                 ) -> dict[str, np.ndarray]:
    """The exported encoder's inputs for a batch of texts, padded to its longest member."""
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                        return_tensors="np")
    inputs = {name: encoded[name] for name in ("input_ids", "attention_mask")}
    if "token_type_ids" in input_names:
        inputs["token_type_ids"] = np.zeros_like(encoded["input_ids"])
    return inputs


@dataclass(frozen=True)
class FolderLayout:
    pooling: str
    dimension: int
    normalise: bool
    lower_case: bool
    max_seq_length: int | None
    prompts: dict[str, str]


def _pooling_modes(config: dict) -> list[str]:
    if "pooling_mode" in config:  # sentence-transformers 5.x
        mode = config["pooling_mode"]
        return [mode] if isinstance(mode, str) else list(mode)
    if any(key in config for key in _LEGACY_POOLING_KEYS):
        return [mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key)]
    return ["mean"]  # sentence-transformers' default


def read_layout(model_dir: Path) -> FolderLayout:
    """What the folder's configuration says about pooling, normalisation, case and prompts;
    ValueError for anything this runtime would not reproduce exactly."""
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    kinds = [module["type"].rsplit(".", 1)[-1] for module in modules]
    if tuple(kinds[:2]) != _LAYOUT or any(kind != "Normalize" for kind in kinds[2:]):
        raise ValueError(f"{model_dir}: the OpenVINO backend supports Transformer + Pooling "
                         f"(+ Normalize) folders, not {kinds}")
    pooling = _read_json(model_dir / modules[1]["path"] / "config.json")
    modes = _pooling_modes(pooling)
    if len(modes) != 1 or modes[0] not in _SUPPORTED_POOLING:
        raise ValueError(f"{model_dir}: the OpenVINO backend pools by mean or CLS alone, "
                         f"not {modes}")
    if not pooling.get("include_prompt", True):
        raise ValueError(f"{model_dir}: pooling that leaves the prompt out is not supported")
    dimension = pooling.get("embedding_dimension", pooling.get("word_embedding_dimension"))
    if not dimension:
        raise ValueError(f"{model_dir}: the pooling config names no embedding dimension")
    transformer = _read_json(model_dir / modules[0]["path"] / "sentence_bert_config.json")
    return FolderLayout(
        pooling=modes[0],
        dimension=int(dimension),
        normalise=len(kinds) > 2,
        lower_case=bool(transformer.get("do_lower_case")),
        max_seq_length=transformer.get("max_seq_length"),
        prompts=_read_json(model_dir / "config_sentence_transformers.json").get("prompts") or {},
    )


class OpenVinoModel:
    def __init__(self, model_dir: Path, xml_file: str) -> None:
        import openvino
        from transformers import AutoTokenizer

        layout = read_layout(model_dir)
        self._layout = layout
        self.prompts = dict(layout.prompts)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        limit = self.tokenizer.model_max_length
        self.max_seq_length = int(min(layout.max_seq_length or limit, limit))

        core = openvino.Core()
        # fp32 for whatever the int8 export left unquantized: on CPUs with bf16 OpenVINO
        # would otherwise run those parts in bf16 and drift from the checked numbers.
        compiled = core.compile_model(
            core.read_model(str(model_dir / xml_file)), "CPU",
            {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"},
        )
        self._input_names = {port.get_any_name() for port in compiled.inputs}
        self._output = compiled.outputs[0]
        self._request = compiled.create_infer_request()

    def get_embedding_dimension(self) -> int:
        return self._layout.dimension

    def encode(self, texts: Sequence[str], *, prompt: str | None = None, batch_size: int = 16,
               convert_to_numpy: bool = True, normalize_embeddings: bool = False) -> np.ndarray:
        del convert_to_numpy  # always numpy
        prefix = prompt or ""
        out = np.empty((len(texts), self._layout.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = [prefix + text for text in texts[start : start + batch_size]]
            if self._layout.lower_case:
                batch = [text.lower() for text in batch]
            inputs = model_inputs(self.tokenizer, batch, self.max_seq_length, self._input_names)
            hidden = self._request.infer(inputs)[self._output]
            if self._layout.pooling == "cls":
                vectors = hidden[:, 0]
            else:
                mask = inputs["attention_mask"][..., None].astype(np.float32)
                vectors = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if self._layout.normalise or normalize_embeddings:
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                vectors = vectors / np.maximum(norms, 1e-12)
            out[start : start + len(batch)] = vectors
        return out
