"""carellm.planning.hardware: probing this machine and simulating others."""

import pytest

from carellm.errors import CareLLMError
from carellm.planning.hardware import GIB, OPTIONAL_PACKAGES, Hardware, probe


def test_probe_without_gpu_reports_cpu_and_ram():
    hw = probe()
    assert hw.gpus == ()  # this CI machine has no CUDA device
    assert hw.cpu_cores > 0
    assert 0 < hw.ram_available_bytes <= hw.ram_total_bytes
    assert hw.packages <= set(OPTIONAL_PACKAGES)


@pytest.mark.parametrize("gpus_gb", [[24], [24, 24], []])
def test_simulated_gpus(gpus_gb):
    hw = Hardware.simulated(gpus_gb=gpus_gb, ram_gb=16)
    assert [g.total_bytes / GIB for g in hw.gpus] == gpus_gb
    assert all(g.free_bytes == g.total_bytes and g.bf16 for g in hw.gpus)
    assert hw.ram_available_bytes == 16 * GIB


def test_simulated_mps_and_packages():
    hw = Hardware.simulated(mps=True, ram_gb=32, packages=("gptqmodel",))
    assert hw.mps and not hw.gpus
    assert hw.has("gptqmodel") and not hw.has("awq")


@pytest.mark.parametrize(
    "kwargs",
    [{"gpus_gb": [-1]}, {"ram_gb": 0}, {"packages": ("tensorrt",)}],
)
def test_simulated_rejects_bad_input(kwargs):
    with pytest.raises(CareLLMError):
        Hardware.simulated(**kwargs)
