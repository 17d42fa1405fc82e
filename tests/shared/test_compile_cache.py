"""The persistent compilation cache: a second process compiling the same function reads it from the directory
the first one wrote; ``off`` writes nothing."""

import os
import pathlib
import subprocess
import sys

SCRIPT = """
import jax, jax.numpy as jnp
from openpi.shared import compile_cache
hits = []
jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
print(compile_cache.enable())
jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((7, 5))).block_until_ready()
print(len(hits))  # the computations read from the cache
"""


def _run(setting: str, tmp_path: pathlib.Path) -> list[str]:
    env = {**os.environ, "OPENPI_COMPILE_CACHE": setting, "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True,
                            timeout=120)
    return result.stdout.split()


def test_second_process_reads_what_the_first_compiled(tmp_path):
    cache = tmp_path / "cache"
    assert _run(str(cache), tmp_path) == [str(cache), "0"]
    assert any(cache.iterdir())
    path, hits = _run(str(cache), tmp_path)
    assert path == str(cache) and int(hits) > 0


def test_default_location_and_off(tmp_path):
    default = tmp_path / "xdg" / "openpi" / "xla"
    assert _run("", tmp_path) == [str(default), "0"] and any(default.iterdir())
    assert _run("off", tmp_path) == ["None", "0"]
    assert not (tmp_path / "off").exists()
