"""Text encoders: the `Encoder` protocol, the real model behind it, a fake for tests, a cache."""

from embeddings.base import EmptyTextError, Encoder, check_texts, l2_normalise

__all__ = ["Encoder", "EmptyTextError", "check_texts", "l2_normalise"]
