"""A persistent XLA compilation cache shared by every run on this machine: a run of a model already compiled
once (another seed or strategy, its evaluation, a rerun) loads the compiled train step and sampler from disk
instead of compiling them again.

Where: ``$OPENPI_COMPILE_CACHE``, else ``$XDG_CACHE_HOME/openpi/xla`` (default ``~/.cache/openpi/xla``);
``OPENPI_COMPILE_CACHE=off`` turns it off. Entries are keyed by the computation, the compiler version and
its flags, so a stale entry is never used; deleting the directory is always safe.
"""

from __future__ import annotations

import os
import pathlib

ENV_VAR = "OPENPI_COMPILE_CACHE"


def enable() -> pathlib.Path | None:
    """Points JAX's persistent compilation cache at the shared directory (made when absent) and caches every
    computation, however small or quick to compile. Call before the first compile worth keeping. Returns the
    directory, or None when ``OPENPI_COMPILE_CACHE=off``."""
    import jax

    setting = os.environ.get(ENV_VAR, "").strip()
    if setting.lower() == "off":
        return None
    if setting:
        path = pathlib.Path(setting).expanduser()
    else:
        path = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "openpi" / "xla"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"Cannot create the compilation cache directory {path} ({error}): set {ENV_VAR} to a writable directory, "
            f"or {ENV_VAR}=off."
        ) from None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path
