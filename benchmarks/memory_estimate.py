"""The memory estimate of a tiny config against the peak measured on this machine.

A fresh subprocess builds the JAX trainer's real train state (``jax_trainer.init_train_state``), compiles its real
``train_step`` (state donated, as in training) and runs a few steps on a synthetic batch of the config's shapes
(no data loader). Memory is the process's resident set: compiling first, then freeing compile garbage
(``malloc_trim``), resetting the high-water mark (``/proc/self/clear_refs``) and running the steps; the baseline is
the resident set once the state and batch are freed again (imports, compiled code, runtime). Measured peak =
high-water mark - baseline. Also printed: XLA's own figure for the whole compiled step (arguments + outputs -
donated + temporaries).

Run: ``python benchmarks/memory_estimate.py [--config-name pi05_b1k_demo] [--batch-size 8] [--steps 3]``
(Linux only: it reads /proc).
"""

import ctypes
import dataclasses
import functools
import gc
import json
import os
import pathlib
import re
import subprocess
import sys

import tyro


@dataclasses.dataclass(frozen=True)
class Args:
    config_name: str = "pi05_b1k_demo"
    batch_size: int = 8
    steps: int = 3
    measure: bool = False
    """Internal: be the child process (train and print the measurement as JSON)."""


def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in bytes."""
    text = pathlib.Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1)) * 1024


def _release() -> None:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def _measure(args: Args) -> dict:
    """Runs in the child: the trainer's real state and step, a few steps, the resident-set figures."""
    import jax

    from openpi.training import config as _config
    from openpi.training import jax_trainer
    from openpi.training import sharding as _sharding

    config = dataclasses.replace(_config.get_config(args.config_name), batch_size=args.batch_size)
    mesh = _sharding.make_mesh(1)
    state, state_sharding = jax_trainer.init_train_state(config, mesh)
    batch = jax.device_put(
        (config.model.fake_obs(args.batch_size), config.model.fake_act(args.batch_size)), _sharding.data_sharding(mesh)
    )
    rng = jax.random.key(0)
    step = jax.jit(
        functools.partial(jax_trainer.train_step, config),
        in_shardings=(_sharding.replicated(mesh), state_sharding, _sharding.data_sharding(mesh)),
        out_shardings=(state_sharding, _sharding.replicated(mesh)),
        donate_argnums=(1,),
    ).lower(rng, state, batch).compile()
    stats = step.memory_analysis()
    xla_peak = (stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
                + stats.temp_size_in_bytes)
    state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
    _release()
    pathlib.Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts at the current RSS
    start = _status("VmRSS")
    for _ in range(args.steps):
        state, info = step(rng, state, batch)
        jax.block_until_ready(info)
    high_water = _status("VmHWM")
    del state, info, batch
    _release()
    baseline = _status("VmRSS")
    return {"high_water": high_water, "baseline": baseline, "start": start, "state_bytes": state_bytes,
            "xla_step_peak": xla_peak}


def main(args: Args) -> None:
    if args.measure:
        print(json.dumps(_measure(args)))
        return
    from openpi.training import config as _config
    from openpi.training import memory

    cmd = [sys.executable, __file__, "--config-name", args.config_name, "--batch-size", str(args.batch_size),
           "--steps", str(args.steps), "--measure"]
    child = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ})
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    config = _config.get_config(args.config_name)
    result = memory.estimate(config, batch_size=args.batch_size, fsdp_devices=1)
    print(memory.format_report(result))
    peak = measured["high_water"] - measured["baseline"]
    estimate = result.train_peak(remat=True)
    mb = 1e6
    print(f"\nMeasured on this machine ({args.steps} steps of the real train_step, batch {args.batch_size}):")
    print(f"  baseline RSS (imports, compiled code, runtime)  {measured['baseline'] / mb:9.1f} MB")
    print(f"  RSS high-water mark during the steps           {measured['high_water'] / mb:9.1f} MB")
    print(f"  measured peak (high-water - baseline)          {peak / mb:9.1f} MB")
    print(f"  train state's arrays (nbytes)                  {measured['state_bytes'] / mb:9.1f} MB")
    print(f"  resident before the steps - baseline           {(measured['start'] - measured['baseline']) / mb:9.1f} MB")
    print(f"  XLA's figure for the whole compiled step       {measured['xla_step_peak'] / mb:9.1f} MB")
    print(f"  estimate (training peak, remat)                {estimate / mb:9.1f} MB")
    print(f"  error of the estimate                          {100 * (estimate - peak) / peak:+9.1f} %")


if __name__ == "__main__":
    main(tyro.cli(Args))
