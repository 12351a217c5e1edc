"""An Encoder backed by a sentence-transformers folder (torch or ONNX Runtime).

Three things sit on top of plain `SentenceTransformer.encode`:

* the model's own query/document prompts (e5: `query: ` / `passage: `) are applied, so
  callers never hand-write prefixes; a folder without prompts gets none;
* texts longer than the window are cut into overlapping token windows along the
  tokenizer's character offsets (each chunk is real text), every chunk is encoded with the
  prompt; `encode_documents` averages the chunk vectors weighted by their token counts and
  renormalises, `encode_document_windows` keeps one vector per window (what the index
  stores: a document scores by its best window). The tail of a long text counts either way,
  nothing is silently truncated;
* work is batched by token length, longest first, so a batch pads to its own longest
  member only;
* backend "bf16" is torch with the matrix products autocast to bfloat16 (norms
  and pooling stay fp32): on CPUs with AMX it is the fastest faithful way to run the model;
  backend "openvino" runs a static int8 OpenVINO export (embeddings/openvino_runtime.py,
  no torch weights loaded): the fastest on CPUs with VNNI but no AMX.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from embeddings.base import check_texts, l2_normalise
from embeddings.model_folders import weights_fingerprint
from embeddings.openvino_runtime import document_prompt

Backend = Literal["torch", "bf16", "onnx", "openvino"]
BACKENDS: tuple[Backend, ...] = ("torch", "bf16", "onnx", "openvino")

# 512 is the model maximum; the benchmark (benchmarks/encode.py) picks the default.
DEFAULT_WINDOW_TOKENS = 512
DEFAULT_BATCH_SIZE = 16
# Tokens that are always added around a chunk (<s> ... </s>), plus slack because a chunk's
# text can tokenize a token or two longer than its slice of the whole text did.
_SPECIAL_TOKENS = 2
_RETOKENIZE_SLACK = 4


def _linear_layers_to_bf16(model) -> None:
    """Store the linear layers' weights in bf16. Autocast would round them to bf16 anyway,
    on every call: casting once keeps the numbers and halves a short query's latency."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)


@dataclass(frozen=True)
class _Chunk:
    text_index: int
    text: str
    tokens: int


class SentenceTransformerEncoder:
    """Encoder protocol over any sentence-transformers folder.

    `window_tokens` is the longest input the model sees at once, prompt and special
    tokens included; `overlap_tokens` defaults to an eighth of it.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        backend: Backend = "torch",
        export_file: str | None = None,
        window_tokens: int = DEFAULT_WINDOW_TOKENS,
        overlap_tokens: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        model_dir = Path(model_path)
        if not (model_dir / "modules.json").is_file():
            raise FileNotFoundError(f"{model_dir} is not a sentence-transformers folder")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if export_file and backend not in ("onnx", "openvino"):
            raise ValueError("export_file names the ONNX or OpenVINO model those backends run")
        if backend == "openvino" and not export_file:
            raise ValueError("backend='openvino' needs export_file (the OpenVINO .xml to run)")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")

        if backend == "openvino":
            from embeddings.openvino_runtime import OpenVinoModel

            self._model = OpenVinoModel(model_dir, export_file)
        else:
            model_kwargs = {"file_name": export_file} if export_file else None
            self._model = SentenceTransformer(
                str(model_dir),
                device="cpu",
                backend="onnx" if backend == "onnx" else "torch",
                model_kwargs=model_kwargs,
            )
        if backend == "bf16":
            _linear_layers_to_bf16(self._model)
        self._tokenizer = self._model.tokenizer
        self._lock = threading.RLock()
        model_limit = int(self._model.max_seq_length or window_tokens)
        if not 16 <= window_tokens <= model_limit:
            raise ValueError(f"window_tokens must be within 16..{model_limit}, not {window_tokens}")
        self.window_tokens = window_tokens
        self.overlap_tokens = window_tokens // 8 if overlap_tokens is None else overlap_tokens
        self.batch_size = batch_size
        # Chunks are built to fit, so the model never has to truncate anything itself.
        self._model.max_seq_length = window_tokens

        prompts = self._model.prompts or {}
        self.query_prompt = prompts.get("query", "")
        self.document_prompt = document_prompt(prompts)

        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ValueError(f"{model_dir} does not declare its embedding dimension")
        self.dimension = int(dimension)
        self.backend = backend
        self.model_dir = model_dir
        variant = backend
        if export_file:
            stem = Path(export_file).stem.removeprefix("openvino_model_").removeprefix("model_")
            variant = f"{backend}-{stem}"
        if backend == "bf16":
            variant = "torch-bf16"
        fingerprint = weights_fingerprint(model_dir, export_file)
        self.name = f"{model_dir.name}@{fingerprint}:{variant}:w{window_tokens}"

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder({self.name!r})"

    # ------------------------------------------------------------------ public API

    # Hugging Face's fast tokenizer is not safe to share between threads ("Already
    # borrowed"); the site serves from several threads, so every use goes through one lock.
    # Inference already uses every core, so serialising it costs little.

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        texts = check_texts(texts)
        with self._lock:
            return self._encode(texts, self.query_prompt, progress=progress)

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        texts = check_texts(texts)
        with self._lock:
            return self._encode(texts, self.document_prompt, progress=progress)

    def count_tokens(self, text: str, *, prompt: str = "") -> int:
        """Tokens the model would see for `prompt + text`, special tokens included."""
        with self._lock:
            encoded = self._tokenizer(prompt + text, add_special_tokens=True, verbose=False)
        return len(encoded["input_ids"])

    # ------------------------------------------------------------------ internals

    def _content_budget(self, prompt: str) -> int:
        prompt_tokens = len(self._tokenizer(prompt, add_special_tokens=False)["input_ids"])
        budget = self.window_tokens - _SPECIAL_TOKENS - prompt_tokens
        if budget <= _RETOKENIZE_SLACK + self.overlap_tokens:
            raise ValueError(f"a {self.window_tokens}-token window leaves no room for text")
        return budget

    def _chunk(self, texts: list[str], prompt: str) -> list[_Chunk]:
        """Whole texts that fit the window; overlapping windows of the ones that do not."""
        budget = self._content_budget(prompt)
        # verbose=False: long texts are the point here, not a mistake worth a log line.
        encoded = self._tokenizer(
            texts,
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            verbose=False,
        )
        chunks: list[_Chunk] = []
        pending: list[tuple[int, str]] = []
        for index, (text, offsets) in enumerate(zip(texts, encoded["offset_mapping"], strict=True)):
            # The slack covers the prompt/text boundary tokenizing differently when joined.
            if len(offsets) <= budget - _RETOKENIZE_SLACK:
                chunks.append(_Chunk(index, text, len(offsets) + _SPECIAL_TOKENS))
                continue
            pending.extend((index, piece) for piece in self._split(text, offsets, budget))
        if pending:
            prompt_tokens = len(self._prompt_ids(prompt))
            # A slice can tokenize differently at its edges: count again, split any overshoot.
            counts = self._tokenizer(
                [prompt + piece for _, piece in pending], add_special_tokens=True, verbose=False
            )["input_ids"]
            for (index, piece), ids in zip(pending, counts, strict=True):
                if len(ids) > self.window_tokens:
                    raise RuntimeError(
                        f"chunk of {len(ids)} tokens exceeds the {self.window_tokens}-token window"
                    )
                chunks.append(_Chunk(index, piece, len(ids) - prompt_tokens))
        return chunks

    def _prompt_ids(self, prompt: str) -> list[int]:
        return self._tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def _split(self, text: str, offsets: list[tuple[int, int]], budget: int) -> list[str]:
        """Overlapping windows of at most `budget - slack` tokens, cut at token boundaries."""
        size = budget - _RETOKENIZE_SLACK
        step = size - self.overlap_tokens
        pieces = []
        count = len(offsets)
        windows = max(1, math.ceil((count - self.overlap_tokens) / step))
        for window in range(windows):
            first = window * step
            last = min(first + size, count) - 1
            start = offsets[first][0]
            # Run to the start of the next token so text between tokens is kept.
            end = offsets[last + 1][0] if last + 1 < count else len(text)
            piece = text[start:end].strip()
            if piece:
                pieces.append(piece)
            if last + 1 >= count:
                break
        return pieces

    def _precision(self) -> contextlib.AbstractContextManager:
        if self.backend != "bf16":
            return contextlib.nullcontext()
        import torch

        # Autocast rather than a bf16 model: linear layers and attention (SDPA) run in
        # bf16, embeddings, LayerNorm and pooling in fp32. A model cast to bf16
        # throughout was ~20% faster but drifted further (cosine to fp32 down to 0.998).
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def _encode_chunks(self, texts: list[str], prompt: str, *, progress: bool
                       ) -> tuple[list[_Chunk], np.ndarray]:
        chunks = self._chunk(texts, prompt)
        # Longest first: every later batch fits in memory an earlier one freed. Shortest
        # first, each batch asked malloc for a little more than any free block, and the heap
        # grew to 5.4 GB over 5,000 patents (2.1 GB longest first, and 20% faster).
        order = sorted(range(len(chunks)), key=lambda position: -chunks[position].tokens)
        chunk_vectors = np.empty((len(chunks), self.dimension), dtype=np.float32)
        batches = [
            order[start : start + self.batch_size]
            for start in range(0, len(order), self.batch_size)
        ]
        for batch in tqdm(batches, desc="encoding", unit="batch", disable=not progress):
            with self._precision():
                vectors = self._model.encode(
                    [chunks[position].text for position in batch],
                    prompt=prompt or None,
                    batch_size=len(batch),
                    convert_to_numpy=True,
                    normalize_embeddings=False,
                )
            chunk_vectors[batch] = vectors
        return chunks, chunk_vectors

    def _encode(self, texts: list[str], prompt: str, *, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        chunks, chunk_vectors = self._encode_chunks(texts, prompt, progress=progress)
        if len(chunks) == len(texts):
            # Nothing was split; chunks are in text order.
            return l2_normalise(chunk_vectors)
        pooled = np.zeros((len(texts), self.dimension), dtype=np.float64)
        for chunk, vector in zip(chunks, chunk_vectors, strict=True):
            pooled[chunk.text_index] += chunk.tokens * vector.astype(np.float64)
        return l2_normalise(pooled)

    def encode_document_windows(self, texts: Sequence[str], *, progress: bool = False
                                ) -> list[np.ndarray]:
        """Per text, one normalised vector per window, in reading order (a text that fits
        the window has one). The index scores a document by its best window: a mean of many
        windows drifts towards the centre of the whole corpus and then matches every query."""
        texts = check_texts(texts)
        if not texts:
            return []
        with self._lock:
            chunks, chunk_vectors = self._encode_chunks(texts, self.document_prompt,
                                                        progress=progress)
        rows: list[list[int]] = [[] for _ in texts]
        for position, chunk in enumerate(chunks):
            rows[chunk.text_index].append(position)
        normalised = l2_normalise(chunk_vectors)
        return [normalised[positions] for positions in rows]
