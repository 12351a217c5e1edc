"""A structure-aware mutator for .xlsx inputs: change what is inside the zip, then zip again.

Byte mutations of a zip almost never survive its CRC checks, so a fuzzer that only flips
bytes tests zipfile's error path and little else. This mutator opens the archive, mutates one
XML part (the worksheet and shared strings most often, where cells, row numbers and the
dimension live) with libFuzzer's own byte mutator, or drops, copies or renames a part, and
writes a valid zip again; a fifth of the time, and whenever the input is no readable zip, it
mutates the raw bytes so the zip layer itself stays under test.

`mutate_bytes` is libFuzzer's mutator (`atheris.Mutate`) in the harness; the tests pass a
plain function, so this module needs no atheris.
"""

from __future__ import annotations

import io
import random
import warnings
import zipfile
import zlib
from collections.abc import Callable

MutateBytes = Callable[[bytes, int], bytes]

RAW_SHARE = 0.2
# An archive that inflates past this is not unpacked here (the guard refuses those anyway):
# the mutator must stay fast whatever the fuzzer hands it.
_MAX_INFLATED = 4 * 1024 * 1024
# How much one mutation may grow a part.
_GROWTH = 4096
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # deterministic bytes: the same seed, the same output
# The parts where a reader's work is decided weigh most.
_WEIGHTS = (("worksheets/", 6), ("sharedstrings", 4), ("workbook.xml", 2), ("styles", 1))


def unpack(data: bytes) -> list[tuple[str, bytes]] | None:
    """The archive's parts in order, or None if `data` is no zip we can read in full."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if sum(member.file_size for member in members) > _MAX_INFLATED:
                return None
            return [(member.filename, archive.read(member)) for member in members]
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError,
            ValueError, zlib.error, KeyError):
        return None


def pack(parts: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    # Duplicate names are kept (a hostile zip may have them; which one does openpyxl read?);
    # zipfile's warning about them would flood the fuzzer's log.
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)
        for name, content in parts:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = compression
            archive.writestr(info, content, compresslevel=1 if compression else None)
    return out.getvalue()


def _weight(name: str) -> int:
    lowered = name.lower()
    return next((weight for marker, weight in _WEIGHTS if marker in lowered), 1)


def mutate_xlsx(data: bytes, max_size: int, seed: int, mutate_bytes: MutateBytes) -> bytes:
    """One mutation of `data`, at most `max_size` bytes long (libFuzzer's custom mutator)."""
    rng = random.Random(seed)
    parts = unpack(data)
    if not parts or rng.random() < RAW_SHARE:
        return mutate_bytes(data, max_size)
    index = rng.choices(range(len(parts)), weights=[_weight(name) for name, _ in parts])[0]
    name, content = parts[index]
    action = rng.random()
    compression = zipfile.ZIP_DEFLATED
    if action < 0.8:
        parts[index] = (name, mutate_bytes(content, len(content) + _GROWTH))
    elif action < 0.87 and len(parts) > 1:
        del parts[index]
    elif action < 0.94:
        # A second copy under a sibling name: another sheet, a second workbook part...
        names = {part for part, _ in parts}
        copy = name.replace("1", "2") if "1" in name else name + "2"
        while copy in names:  # zipfile warns of (and openpyxl reads one of) duplicate names
            copy += "2"
        parts.insert(index + 1, (copy, content))
    else:
        compression = zipfile.ZIP_STORED
    mutated = pack(parts, compression)
    if len(mutated) > max_size:
        return mutate_bytes(data, max_size)
    return mutated
