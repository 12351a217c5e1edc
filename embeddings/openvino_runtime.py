"""Run a sentence-transformers folder's OpenVINO export without loading its torch weights.

sentence-transformers' own OpenVINO backend goes through optimum-intel, which needs
torchvision (it does not install beside the pinned CPU torch), so `OpenVinoModel` reads the
folder's configuration itself and offers the few parts of `SentenceTransformer` that
`SentenceTransformerEncoder` uses: `tokenizer`, `max_seq_length`, `prompts`,
`get_embedding_dimension()` and `encode()`. Only the layouts our models have are accepted
(a Transformer, then mean or CLS pooling, then an optional Normalize); anything else is
refused with a message rather than pooled wrongly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


class OpenVinoModel:
    def __init__(self, model_dir: Path, xml_file: str) -> None:
        import openvino
        from transformers import AutoTokenizer

        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [module["type"] for module in modules]
        if kinds[:2] != [_TRANSFORMER, _POOLING] or any(k != _NORMALIZE for k in kinds[2:]):
            raise ValueError(f"{model_dir}: the OpenVINO backend supports Transformer + "
                             f"Pooling (+ Normalize) folders, not {kinds}")
        pooling = _read_json(model_dir / modules[1]["path"] / "config.json")
        if pooling.get("pooling_mode_mean_tokens"):
            self._pooling = "mean"
        elif pooling.get("pooling_mode_cls_token"):
            self._pooling = "cls"
        else:
            raise ValueError(f"{model_dir}: the OpenVINO backend pools by mean or CLS only")
        if not pooling.get("include_prompt", True):
            raise ValueError(f"{model_dir}: pooling that leaves the prompt out is not supported")
        self._dimension = int(pooling["word_embedding_dimension"])
        self._normalise = len(kinds) > 2

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        bert_config = _read_json(model_dir / "sentence_bert_config.json")
        self.max_seq_length = int(bert_config.get("max_seq_length")
                                  or self.tokenizer.model_max_length)
        self.prompts: dict[str, str] = _read_json(
            model_dir / "config_sentence_transformers.json").get("prompts") or {}

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
        return self._dimension

    def encode(self, texts: Sequence[str], *, prompt: str | None = None, batch_size: int = 16,
               convert_to_numpy: bool = True, normalize_embeddings: bool = False) -> np.ndarray:
        del convert_to_numpy  # always numpy
        prefix = prompt or ""
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = [prefix + text for text in texts[start : start + batch_size]]
            encoded = self.tokenizer(batch, padding=True, truncation=True,
                                     max_length=self.max_seq_length, return_tensors="np")
            inputs = {name: encoded[name] for name in ("input_ids", "attention_mask")}
            if "token_type_ids" in self._input_names:
                inputs["token_type_ids"] = np.zeros_like(encoded["input_ids"])
            hidden = self._request.infer(inputs)[self._output]
            if self._pooling == "cls":
                vectors = hidden[:, 0]
            else:
                mask = encoded["attention_mask"][..., None].astype(np.float32)
                vectors = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if self._normalise or normalize_embeddings:
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                vectors = vectors / np.maximum(norms, 1e-12)
            out[start : start + len(batch)] = vectors
        return out
