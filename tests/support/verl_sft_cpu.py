"""Run verl's SFT trainer (`verl.trainer.sft_trainer`) on CPU, for tests only.

Started by torchrun with the ML venv's interpreter (`torchrun --nproc_per_node=1
verl_sft_cpu.py HYDRA_OVERRIDES...`). verl 0.9.1 knows only cuda, npu and rocm platforms
and falls back to nvidia, so on a machine without GPUs the trainer fails in NCCL. This shim:

- registers a CPU platform and makes it verl's current one (`CPUPlatform`): torch.cpu as
  the device module, behind a proxy that answers the CUDA memory and name queries the
  trainer makes; `current_device()` is `torch.device("cpu")`, because FSDP reads an int
  as a CUDA ordinal;
- makes verl's process group plain gloo (verl asks for "cpu:gloo,<device>:<nccl>", which
  on CPU names the cpu device twice).

The caller also sets `VERL_ENGINE_DEVICE=cuda VERL_ENGINE_VENDOR=nvidia`: they only select
the engine class (the FSDP engine is registered for cuda), and the overrides
`engine.strategy=fsdp2`, `+model.override_config.attn_implementation=sdpa`,
`model.use_remove_padding=false`. It relies on verl internals (`PlatformRegistry`,
`set_platform`, `initialize_global_process_group`), so it lives with the tests.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
from verl.plugin.platform import PlatformRegistry, set_platform
from verl.plugin.platform.platform_base import PlatformBase


class _CPUDeviceModule:
    """torch.cpu, plus no-op answers to the CUDA-only calls the trainer makes."""

    def __getattr__(self, name: str) -> Any:
        if hasattr(torch.cpu, name):
            return getattr(torch.cpu, name)
        if name.startswith(("memory_", "max_memory_", "reset_", "empty_cache")):
            return lambda *args, **kwargs: 0
        if name == "get_device_name":
            return lambda *args, **kwargs: "cpu"
        if name == "mem_get_info":
            return lambda *args, **kwargs: (0, 0)
        raise AttributeError(f"the CPU device module has no {name!r}")


class CPUPlatform(PlatformBase):
    """verl platform for running on CPU in tests (one process, gloo)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> Any:
        return _CPUDeviceModule()

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return True

    def current_device(self) -> Any:
        return torch.device("cpu")

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: int | None = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    def nvtx_range(self, msg: str) -> Any:
        import contextlib

        return contextlib.nullcontext()

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        return "CPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def install() -> None:
    """Register the CPU platform and make it verl's current platform."""
    PlatformRegistry.register(platform="cpu")(CPUPlatform)
    set_platform(CPUPlatform())


def patch_process_group() -> None:
    """Make verl's global process group plain gloo (its default names cpu twice on CPU)."""
    import verl.utils.distributed as distributed

    def initialize_global_process_group(timeout_second: int = 36000) -> tuple[int, int, int]:
        torch.distributed.init_process_group(
            backend="gloo", timeout=timedelta(seconds=timeout_second)
        )
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    distributed.initialize_global_process_group = initialize_global_process_group


if __name__ == "__main__":
    install()
    patch_process_group()
    from verl.trainer.sft_trainer import main

    main()
