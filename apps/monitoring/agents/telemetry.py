"""GPU telemetry for the provider agent: NVML when a GPU is present
(nvidia-ml-py), otherwise a plausible synthetic signal."""

import logging
import random
import shutil
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class GpuFacts:
    name: str
    count: int
    vram_gb: int


class SyntheticGpus:
    """A random walk around a per-node baseline: utilisation drifts, the
    temperature and power follow it. Deterministic per seed."""

    def __init__(self, facts: GpuFacts, seed: int = 0):
        self.facts = facts
        self.rng = random.Random(seed)
        self.util = self.rng.randint(20, 80)

    def sample(self) -> dict:
        self.util = max(0, min(100, self.util + self.rng.randint(-8, 8)))
        mem_total = self.facts.vram_gb * 1024 * self.facts.count
        return {
            "gpu_util": self.util,
            "mem_used_mb": mem_total * self.util // 100,
            "mem_total_mb": mem_total,
            "temperature_c": 35 + self.util * 45 // 100 + self.rng.randint(-2, 2),
            "power_w": self.facts.count * (60 + self.util * 3),
            "workloads": 1 if self.util > 30 else 0,
        }


class NvmlGpus:
    """Real readings through NVML; raises at construction if there is no GPU."""

    def __init__(self):
        # Imported here: nvidia-ml-py is optional, only machines with an NVIDIA GPU have it.
        import pynvml

        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        if not self.handles:
            raise RuntimeError("NVML found no GPU")
        name = pynvml.nvmlDeviceGetName(self.handles[0])
        name = name.decode() if isinstance(name, bytes) else name
        vram = pynvml.nvmlDeviceGetMemoryInfo(self.handles[0]).total // (1024**3)
        self.facts = GpuFacts(name=name, count=len(self.handles), vram_gb=int(vram))
        try:
            self.cuda_version = cuda_version_text(pynvml.nvmlSystemGetCudaDriverVersion())
        except pynvml.NVMLError:  # an old driver without the call: the version stays unreported
            self.cuda_version = None

    def sample(self) -> dict:
        n = self.nvml
        utils, used, total, temps, power, procs = [], 0, 0, [], 0, 0
        for h in self.handles:
            utils.append(n.nvmlDeviceGetUtilizationRates(h).gpu)
            mem = n.nvmlDeviceGetMemoryInfo(h)
            used += mem.used // (1024**2)
            total += mem.total // (1024**2)
            temps.append(n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU))
            try:
                power += n.nvmlDeviceGetPowerUsage(h) // 1000
            except n.NVMLError:
                pass
            try:
                procs += len(n.nvmlDeviceGetComputeRunningProcesses(h))
            except n.NVMLError:
                pass
        return {
            "gpu_util": sum(utils) // len(utils),
            "mem_used_mb": used,
            "mem_total_mb": total,
            "temperature_c": max(temps),
            "power_w": power,
            "workloads": min(procs, 10_000),
        }


def cuda_version_text(version: int) -> str:
    """NVML's integer driver version (1000 * major + 10 * minor) as renters read it: 12040 -> "12.4"."""
    return f"{version // 1000}.{version % 1000 // 10}"


def disk_gb(path) -> tuple[int, int]:
    """Free and total space, in whole GB (10^9 bytes, as disks are sold), of
    the file system holding ``path``."""
    usage = shutil.disk_usage(path)
    return usage.free // 10**9, usage.total // 10**9


def host_facts(source, disk_path) -> dict:
    """What the node tells renters besides its GPUs: the CUDA driver version
    (only NVML knows it: none on a machine without an NVIDIA driver) and
    the disk a workload would write to."""
    try:
        free, total = disk_gb(disk_path)
    except OSError as exc:  # the path went away: the health answer must still come
        log.warning("disk space of %s unreadable (%s)", disk_path, exc)
        free = total = None
    return {
        "cuda_version": getattr(source, "cuda_version", None),
        "disk_free_gb": free,
        "disk_total_gb": total,
    }


def open_source(declared: GpuFacts, seed: int = 0, allow_nvml: bool = True):
    """NVML if it answers, else synthetic telemetry matching the declared spec."""
    if allow_nvml:
        try:
            return NvmlGpus()
        except Exception as exc:  # no driver, no GPU, no library: all mean "synthesise"
            log.info("NVML unavailable (%s); synthesising telemetry", exc)
    return SyntheticGpus(declared, seed)
