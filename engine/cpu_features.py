"""Whether this machine's CPU computes in bfloat16 natively, which decides a CPU engine's `auto` dtype.

vLLM's CPU backend takes a model's bfloat16 as it is on every x86 CPU; without AVX512-BF16 or AMX (an
AVX2-only EPYC, say) each bf16 operation is converted through float32 and an engine serving SmolLM2
made 12.9 output tokens/s where float32 made 33.8 (docs/benchmarks.md, "Engine"). So where the CPU
lacks native bf16, `auto` means float32 for the engines this machine starts itself.
"""

from __future__ import annotations

from pathlib import Path

# x86 (/proc/cpuinfo "flags") and aarch64 ("Features") names of native bfloat16 arithmetic
NATIVE_BF16 = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor listed in a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def auto_dtype(flags: frozenset[str]) -> str | None:
    """What `dtype: auto` becomes on a CPU with these flags: float32 without native bfloat16, else
    None (the model's own dtype, as vLLM takes it)."""
    return None if flags & NATIVE_BF16 else "float32"


def machine_flags() -> frozenset[str]:
    try:
        return cpu_flags(CPUINFO.read_text())
    except OSError:
        return frozenset()
