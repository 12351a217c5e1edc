"""The fuzz harness' own parts, fast: the crash rule, the deadline, the XLSX mutator and the
seed corpus it starts from."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from corpora.importer import readers
from corpora.importer.report import ImportFileError
from tests.fuzz import targets
from tests.fuzz.run import MAX_LEN, SEEDS, write_dictionary
from tests.fuzz.xlsx_mutator import mutate_xlsx, pack, unpack


def _xlsx() -> bytes:
    book = Workbook()
    book.active.append(["标题", "摘要", "单位"])
    book.active.append(["成果", "一种视觉定位方法", "测试大学"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_good_file_is_read_and_its_rows_checked(tmp_path: Path) -> None:
    data = "标题,摘要,单位\n成果,一种方法,测试大学\n,缺标题,测试大学\n".encode()
    need, result = targets.check_bytes("csv", data, tmp_path)
    assert need.startswith("need: refused")  # a results header is no needs header
    assert result == "result: 2 rows, 1 bad"
    assert (tmp_path / "in.rejects.csv").is_file()  # the --keep-valid path ran too


def test_a_refusal_is_clean_and_any_other_exception_is_a_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert targets.check_bytes("xlsx", b"PK\x03\x04 not a zip", tmp_path)[0].startswith(
        "need: refused")

    def broken(*_args: object) -> None:
        raise KeyError("a reader bug")

    monkeypatch.setattr(readers, "read_csv", broken)
    with pytest.raises(KeyError):
        targets.check_bytes("csv", b"title\nx\n", tmp_path)

    def refuses(*_args: object) -> None:
        raise ImportFileError("拒绝")

    monkeypatch.setattr(readers, "read_csv", refuses)
    assert targets.check_bytes("csv", b"title\nx\n", tmp_path) == [
        "need: refused: 拒绝", "result: refused: 拒绝"]


def test_the_deadline_interrupts_a_slow_block() -> None:
    started = time.monotonic()
    with pytest.raises(targets.SlowInput), targets.deadline(0.2):
        while True:
            pass
    assert time.monotonic() - started < 5
    with targets.deadline(5):
        pass  # and a quick block is left alone, the alarm cancelled
    time.sleep(0.01)


def _flip_first_byte(data: bytes, max_size: int) -> bytes:
    return (bytes([data[0] ^ 0x20]) + data[1:])[:max_size] if data else b"x"


def test_the_mutator_changes_one_part_and_keeps_a_valid_zip() -> None:
    data = _xlsx()  # once: a saved workbook carries the time it was saved
    original = dict(unpack(data) or [])
    changed_parts = 0
    for seed in range(40):
        mutated = mutate_xlsx(data, 1 << 20, seed, _flip_first_byte)
        parts = unpack(mutated)
        if parts is None:  # the raw-bytes share: the zip layer itself was mutated
            assert mutated == _flip_first_byte(data, len(data))
            continue
        differing = [name for name, content in parts if original.get(name) != content]
        assert len(differing) <= 1
        changed_parts += bool(differing)
    assert changed_parts > 20  # mostly inside the zip, as designed


def test_the_mutator_is_deterministic_and_respects_max_size() -> None:
    data = _xlsx()
    assert mutate_xlsx(data, 1 << 20, 7, _flip_first_byte) == \
        mutate_xlsx(data, 1 << 20, 7, _flip_first_byte)
    for seed in range(20):
        assert len(mutate_xlsx(data, 500, seed, _flip_first_byte)) <= 500
    # No zip at all: plain byte mutation.
    assert mutate_xlsx(b"abc", 10, 1, _flip_first_byte) == b"Abc"


def test_pack_and_unpack_round_trip() -> None:
    parts = [("[Content_Types].xml", b"<Types/>"), ("xl/worksheets/sheet1.xml", b"<x/>")]
    assert unpack(pack(parts)) == parts
    assert unpack(pack(parts, zipfile.ZIP_STORED)) == parts
    assert unpack(b"not a zip") is None


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_seed_corpus_is_there_and_every_seed_is_handled(fmt: str, tmp_path: Path) -> None:
    """The committed seeds (tests.fuzz.collect_seeds) exist, fit -max_len, and none is
    already a crash or slow: a run must start clean."""
    seeds = sorted((SEEDS / fmt).iterdir())
    assert len(seeds) >= 10
    for seed in seeds:
        assert len(seed.read_bytes()) <= MAX_LEN[fmt]
        with targets.deadline(10):
            targets.check_bytes(fmt, seed.read_bytes(), tmp_path)


def test_dictionary_is_libfuzzer_syntax(tmp_path: Path) -> None:
    lines = write_dictionary("xlsx", tmp_path / "x.dict").read_text("ascii").splitlines()
    assert '"<dimension ref=\\x22A1:XFD1048576\\x22/>"' in lines
    assert '"\\xe6\\xa0\\x87\\xe9\\xa2\\x98"' in lines  # 标题, a column name, as UTF-8 bytes
    assert all(line.startswith('"') and line.endswith('"') for line in lines)
