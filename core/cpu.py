"""What the CPU can do, asked once: machines differ, so defaults that depend on it are detected, never assumed."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether the CPU has bf16 matrix instructions (AMX or AVX512-BF16), from /proc/cpuinfo; False where it cannot tell."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags
