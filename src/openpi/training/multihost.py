"""JAX multi-host training: joining the ``jax.distributed`` job and checking that its processes agree.

Every process runs the same program on its own devices; the mesh spans the devices of all processes, each process
reads its slice of every global batch, orbax writes checkpoints cooperatively and process 0 alone writes wandb,
``metrics.jsonl`` and the log. The processes must train the same config on the same data: ``check_agreement``
compares digests of both across processes at start and names what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import hashlib
import json
import os
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np

# Environment variables that give a multi-process job's size, for the cluster environments JAX detects itself.
_CLUSTER_SIZE_VARS = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


def initialize(coordinator_address: str | None, num_processes: int | None, process_id: int | None) -> bool:
    """Joins the ``jax.distributed`` job when any of the three is given, ``JAX_COORDINATOR_ADDRESS`` is set, or the
    cluster environment (SLURM, Open MPI) runs more than one task; unset values are detected by JAX. Must run
    before any JAX computation. Returns whether the process is part of a multi-process job."""
    if jax.distributed.is_initialized():
        return True
    given = (coordinator_address, num_processes, process_id)
    cluster = os.environ.get("JAX_COORDINATOR_ADDRESS") or any(
        int(os.environ.get(var, "1")) > 1 for var in _CLUSTER_SIZE_VARS
    )
    if all(v is None for v in given) and not cluster:
        return False
    # CPU devices of different processes need a collectives backend (GPUs use NCCL, TPUs their interconnect).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)
    return True


def is_main() -> bool:
    """Process 0: the one that writes wandb, metrics and logs."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Waits until every process got here (no-op in a single process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if dataclasses.is_dataclass(x):
        return dataclasses.asdict(x)
    return str(x)


def _digest(value: Any) -> int:
    text = json.dumps(value, sort_keys=True, default=_jsonable)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def check_agreement(fingerprint: Mapping[str, Any]) -> None:
    """Raises ``ValueError`` naming the entries of ``fingerprint`` (config fields, dataset metadata) whose values
    differ between processes, and which processes hold which digest. Every process must call it with the same keys."""
    if jax.process_count() == 1:
        return
    names = sorted(fingerprint)
    local = np.array([_digest(fingerprint[name]) for name in names], np.uint32)
    gathered = np.asarray(multihost_utils.process_allgather(local))  # [processes, entries]
    differ = [i for i in range(len(names)) if len(set(gathered[:, i].tolist())) > 1]
    if differ:
        details = "; ".join(f"{names[i]}: digests {gathered[:, i].tolist()} by process" for i in differ)
        raise ValueError(
            f"The {jax.process_count()} processes disagree on {[names[i] for i in differ]} ({details}). Launch every "
            "process with the same command-line overrides, code and data (same dataset root contents and norm stats)."
        )


def any_failed(failed: bool) -> bool:
    """Whether ``failed`` is true on any process; every process must call it."""
    if jax.process_count() == 1:
        return failed
    return bool(np.max(multihost_utils.process_allgather(np.int32(failed))))
