"""What `dtype: auto` means for an engine on this machine's CPU."""

from __future__ import annotations

import pytest

from modelplex.engine.cpu_features import auto_dtype, cpu_flags

EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme sse sse2 avx avx2 fma
"""
XEON_AMX = "processor\t: 0\nflags\t\t: sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize(
    ("cpuinfo", "dtype"),
    [(EPYC_AVX2, "float32"), (XEON_AMX, None), (GRAVITON, None), ("", "float32")],
)
def test_auto_is_float32_only_where_the_cpu_has_no_native_bfloat16(cpuinfo: str, dtype: str | None) -> None:
    assert auto_dtype(cpu_flags(cpuinfo)) == dtype
