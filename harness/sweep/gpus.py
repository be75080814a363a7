"""GPU placement for parallel jobs on one node: each running job gets a GPU of its own.

A job that may use a GPU (train.device gpu or auto) leases one of the GPUs this process
sees (CUDA_VISIBLE_DEVICES, else every GPU nvidia-smi lists) for as long as it runs, and its
worker process is started with CUDA_VISIBLE_DEVICES set to that one GPU; the run records it
(tag `cuda_visible_devices`). Leases are lock files held with flock, so they work across the
processes of any launcher on the node (joblib's loky workers, submitit's local jobs) and
across sweeps running side by side, and the kernel releases them when a process dies. A job
that finds every GPU taken waits for one: two runs sharing a GPU would spoil each other's
timings. Under SLURM each job's own allocation is its own namespace: the scheduler already
keeps jobs apart, and its cgroups may number every job's GPU 0.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

_LAST: dict[str, str] = {}  # lock dir -> the GPU this process held last (its warm worker's)


def visible_gpus(
    env: Mapping[str, str] | None = None, query: Callable[[], list[str]] | None = None
) -> list[str]:
    """The GPU ids a job may be given: CUDA_VISIBLE_DEVICES if set, else nvidia-smi's list."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        ids = [g.strip() for g in env["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
        # CUDA stops at the first invalid id; "-1" is the usual way to hide every GPU
        return ids[: ids.index("-1")] if "-1" in ids else ids
    return (query or _nvidia_smi)()


def _nvidia_smi() -> list[str]:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return (
        [line.strip() for line in out.stdout.splitlines() if line.strip().isdigit()]
        if out.returncode == 0
        else []
    )


def lock_dir(env: Mapping[str, str] | None = None) -> Path:
    """Node-local lock files; one namespace per SLURM job (its allocation), else per node."""
    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID")
    return Path(tempfile.gettempdir()) / "harness-gpu-locks" / (f"slurm-{job}" if job else "node")


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def lease(
    gpus: list[str],
    where: Path,
    poll_s: float = 0.5,
    log: Callable[[str], None] | None = None,
    prefer: str | None = None,
) -> Iterator[str]:
    """Hold one GPU of `gpus`: `prefer` (a parallel slot's last), else the one this process
    held last, first, so that the warm worker bound to it is reused."""
    for folder in (where.parent, where):
        folder.mkdir(exist_ok=True)
        try:
            os.chmod(folder, 0o1777)  # other users' jobs share the node's GPUs and this folder
        except PermissionError:
            pass
    key = str(where)
    order = sorted(gpus, key=lambda g: g != (prefer or _LAST.get(key)))
    waited = False
    while True:
        for gpu in order:
            fd = _try_lock(where / f"gpu-{gpu.replace('/', '_')}.lock")
            if fd is not None:
                break
        else:
            if not waited and log is not None:
                log(f"every GPU ({','.join(gpus)}) is running a job; waiting for one to be free")
            waited = True
            time.sleep(poll_s)
            continue
        break
    _LAST[key] = gpu
    try:
        yield gpu
    finally:
        os.close(fd)  # releases the flock


@contextmanager
def for_job(
    device: str, log: Callable[[str], None] | None = None, prefer: str | None = None
) -> Iterator[str | None]:
    """The GPU a sweep job runs on, held while it runs; None: leave CUDA_VISIBLE_DEVICES as is
    (a CPU job, or at most one GPU to choose from)."""
    gpus = visible_gpus() if device != "cpu" else []
    if len(gpus) <= 1:
        yield None
        return
    with lease(gpus, lock_dir(), log=log, prefer=prefer) as gpu:
        yield gpu
