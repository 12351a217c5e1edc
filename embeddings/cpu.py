"""What this CPU can do fast, read once from /proc/cpuinfo (Linux x86) or the machine name.

Three choices hang on it: whether the default encoder runs its matrix products in bfloat16
(only where AMX does them in hardware; elsewhere bf16 is emulated and slower than int8),
whether it runs as a static int8 OpenVINO model (where the CPU has int8 dot-product
instructions, VNNI), and which int8 kernel family the ONNX export targets otherwise.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path


@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def is_arm() -> bool:
    return platform.machine().lower() in ("arm64", "aarch64")


def int8_preset() -> str:
    """The sentence-transformers dynamic-quantization preset that suits this CPU."""
    if is_arm():
        return "arm64"
    flags = cpu_flags()
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags and "avx512bw" in flags:
        return "avx512"
    return "avx2"


def has_amx_bf16() -> bool:
    """Intel AMX tiles with bf16 (Sapphire Rapids and later): oneDNN, and so torch, runs
    bf16 matrix products on them several times faster than fp32."""
    flags = cpu_flags()
    return "amx_bf16" in flags and "amx_tile" in flags


def has_int8_dot_product() -> bool:
    """x86 VNNI, in its AVX-512 or AVX (256-bit) form: one instruction multiplies and sums
    four int8 pairs, where older CPUs need three, so int8 models run about twice as fast."""
    flags = cpu_flags()
    return not is_arm() and ("avx512_vnni" in flags or "avx_vnni" in flags)
