"""What this machine offers a model: GPUs, Apple MPS, CPU cores, RAM, optional kernels.

`probe()` reads the real machine without importing optional packages (their presence is
checked with `importlib.util.find_spec`); `Hardware.simulated(...)` builds one by hand so
plans for other machines can be computed and tested.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass

from carellm.errors import InputError

log = logging.getLogger(__name__)

GIB = 2**30  # bytes
OPTIONAL_PACKAGES = (
    "flash_attn",
    "bitsandbytes",
    "gptqmodel",
    "llama_cpp",
)  # GPTQ and AWQ: gptqmodel


@dataclass(frozen=True)
class GPU:
    """One CUDA device."""

    name: str
    total_bytes: int
    free_bytes: int  # free when probed; plans budget against this
    bf16: bool = True  # native bfloat16 (compute capability >= 8.0)
    capability: tuple[int, int] = (8, 0)  # CUDA compute capability

    @property
    def free_gib(self) -> float:
        return self.free_bytes / GIB


@dataclass(frozen=True)
class Hardware:
    """A machine as the planner sees it."""

    gpus: tuple[GPU, ...] = ()
    mps: bool = False  # Apple Metal available (unified memory = RAM)
    cpu_cores: int = 1
    cpu_bf16: bool = False  # AVX512-BF16 or AMX: bf16 matmuls run at full speed
    ram_total_bytes: int = 0
    ram_available_bytes: int = 0
    packages: frozenset[str] = frozenset()  # importable names from OPTIONAL_PACKAGES

    def has(self, package: str) -> bool:
        return package in self.packages

    @classmethod
    def simulated(
        cls,
        gpus_gb: list[float] | tuple[float, ...] = (),
        ram_gb: float = 32.0,
        mps: bool = False,
        cpu_cores: int = 8,
        packages: tuple[str, ...] = (),
        bf16: bool = True,
    ) -> Hardware:
        """A machine with GPUs of `gpus_gb` GiB each (all free) and `ram_gb` GiB of RAM."""
        if any(g <= 0 for g in gpus_gb):
            raise InputError("hardware", f"GPU memory must be positive, got {list(gpus_gb)}")
        if ram_gb <= 0:
            raise InputError("hardware", f"RAM must be positive, got {ram_gb} GB")
        unknown = set(packages) - set(OPTIONAL_PACKAGES)
        if unknown:
            raise InputError(
                "hardware",
                f"unknown packages {sorted(unknown)}; known: {', '.join(OPTIONAL_PACKAGES)}",
            )
        capability = (8, 0) if bf16 else (7, 5)
        gpus = tuple(
            GPU(f"simulated {g:g} GB", int(g * GIB), int(g * GIB), bf16, capability)
            for g in gpus_gb
        )
        ram = int(ram_gb * GIB)
        return cls(gpus, mps, cpu_cores, False, ram, ram, frozenset(packages))


def _meminfo() -> tuple[int, int]:
    """(total, available) RAM in bytes from /proc/meminfo, else from sysconf."""
    try:
        with open("/proc/meminfo") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return fields["MemTotal"], fields.get("MemAvailable", fields["MemFree"])
    except (OSError, KeyError, ValueError, IndexError):
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError):  # macOS has no SC_AVPHYS_PAGES: assume all free
            avail = pages
        return pages * size, avail * size


def _cpu_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cuda_gpus() -> tuple[GPU, ...]:
    try:
        import torch
    except ImportError:
        return ()
    if not torch.cuda.is_available():
        return ()
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        free, total = torch.cuda.mem_get_info(i)
        capability = (props.major, props.minor)
        gpus.append(GPU(props.name, total, free, capability >= (8, 0), capability))
    return tuple(gpus)


def _mps() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.backends.mps.is_available())


def probe() -> Hardware:
    """Describe this machine. Works without CUDA; never imports the optional packages."""
    total, available = _meminfo()
    packages = frozenset(p for p in OPTIONAL_PACKAGES if importlib.util.find_spec(p) is not None)
    hw = Hardware(
        gpus=_cuda_gpus(),
        mps=_mps(),
        cpu_cores=os.cpu_count() or 1,
        cpu_bf16=_cpu_bf16(),
        ram_total_bytes=total,
        ram_available_bytes=available,
        packages=packages,
    )
    log.debug("probed %s", hw)
    return hw
