import numpy as np
import pytest

from embeddings.base import EmptyTextError
from embeddings.cache import CachedEncoder, EmbeddingCache
from embeddings.fake import FakeEncoder


class CountingEncoder(FakeEncoder):
    def __init__(self) -> None:
        super().__init__(32)
        self.seen: list[str] = []

    def encode_documents(self, texts, *, progress=False):
        self.seen.extend(texts)
        return super().encode_documents(texts)

    def encode_queries(self, texts, *, progress=False):
        self.seen.extend(texts)
        return super().encode_queries(texts)


def test_second_pass_encodes_nothing(tmp_path):
    inner = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    enc = CachedEncoder(inner, cache)
    first = enc.encode_documents(["锂电池", "光伏", "锂电池"])
    assert inner.seen == ["锂电池", "光伏"]  # duplicates encoded once
    inner.seen.clear()
    again = CachedEncoder(inner, EmbeddingCache(tmp_path / "e.sqlite"))
    second = again.encode_documents(["光伏", "锂电池", "新文本"])
    assert inner.seen == ["新文本"]
    np.testing.assert_allclose(second[1], first[0])
    np.testing.assert_allclose(second[0], first[1])
    assert second.dtype == np.float32


def test_roles_and_models_are_kept_apart(tmp_path):
    inner = CountingEncoder()
    enc = CachedEncoder(inner, EmbeddingCache(tmp_path / "e.sqlite"))
    enc.encode_documents(["电池"])
    enc.encode_queries(["电池"])
    assert inner.seen == ["电池", "电池"]
    assert enc.cache.count(inner.name) == 2
    assert enc.cache.count("other-model") == 0


def test_empty_text_refused_before_cache_or_model(tmp_path):
    inner = CountingEncoder()
    enc = CachedEncoder(inner, EmbeddingCache(tmp_path / "e.sqlite"))
    with pytest.raises(EmptyTextError):
        enc.encode_documents(["ok", "   "])
    assert inner.seen == []


def test_many_texts_cross_lookup_slices(tmp_path):
    enc = CachedEncoder(CountingEncoder(), EmbeddingCache(tmp_path / "e.sqlite"))
    texts = [f"文本{i}" for i in range(1234)]
    a = enc.encode_documents(texts)
    b = enc.encode_documents(texts)
    np.testing.assert_array_equal(a, b)


def test_document_windows_are_cached_too(tmp_path):
    inner = FakeEncoder(16, window_chars=4)
    calls = []
    original = inner.encode_document_windows

    def counting(texts, *, progress=False):
        calls.append(list(texts))
        return original(texts)

    inner.encode_document_windows = counting
    enc = CachedEncoder(inner, EmbeddingCache(tmp_path / "c.sqlite"))
    first = enc.encode_document_windows(["锂电池正极材料包覆", "光伏"])
    assert [w.shape[0] for w in first] == [3, 1]
    again = CachedEncoder(inner, EmbeddingCache(tmp_path / "c.sqlite"))
    second = again.encode_document_windows(["光伏", "锂电池正极材料包覆"])
    assert calls == [["锂电池正极材料包覆", "光伏"]]
    np.testing.assert_array_equal(second[1], first[0])


def test_many_processes_can_open_a_new_cache_at_once(tmp_path):
    """Workers starting together all set up the same new cache file (WAL switch + schema).
    In CI two gunicorn workers once met there and one failed with "database is locked";
    the set-up now retries. (This does not reproduce that timing every time.)"""
    import subprocess
    import sys
    import time

    # Every process waits for the same moment, so they really meet at the set-up.
    script = ("import sys, time; from embeddings.cache import EmbeddingCache; "
              "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
              "EmbeddingCache(sys.argv[1]).close()")
    path = tmp_path / "shared.sqlite"
    start = str(time.time() + 3)
    processes = [subprocess.Popen([sys.executable, "-c", script, str(path), start],
                                  stderr=subprocess.PIPE) for _ in range(8)]
    errors = [p.communicate(timeout=60)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, errors

