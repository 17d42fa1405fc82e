"""JAX checkpoints in openpi's layout: ``<exp>/<step>/{params, train_state, assets/<asset_id>/norm_stats.json}``.

orbax writes each step into a temporary directory and renames it when every item is complete, so a step
interrupted while being written never appears as ``<step>`` and is never loaded. ``params`` holds
``{"params": <pure dict>}`` (EMA weights when EMA is on), the tree openpi's loaders read; ``train_state``
holds the rest (optimizer, EMA, step) as numbered leaves with their paths kept for a clear mismatch error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from openpi.shared import checkpoint_files as _files
from openpi.shared import normalize as _normalize
from openpi.training import run_utils


class _FullDiskRecords(logging.Filter):
    """Drops orbax's own reports of a write that ran out of space: every background writer logs the failure with a
    traceback, hundreds of lines, while the trainer reports it once as "no space left on <dir>"."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        return not ("RESOURCE_EXHAUSTED" in text or "No space left" in text)


logging.getLogger("absl").addFilter(_FullDiskRecords())  # orbax logs through absl's logger


class AssetsHandler(ocp.CheckpointHandler):
    """Writes norm stats as ``<item>/<asset_id>/norm_stats.json`` (openpi's file) inside the checkpoint."""

    def save(self, directory, args: AssetsSave):
        if jax.process_index() != 0:  # multi-host: one writer for the shared directory
            return
        _normalize.save(pathlib.Path(directory) / args.asset_id, args.norm_stats)

    def restore(self, directory, args: AssetsRestore | None = None):
        directory = pathlib.Path(directory)
        return {p.name: _normalize.load(p) for p in directory.iterdir() if (p / _normalize.NORM_STATS_FILE).exists()}


@ocp.args.register_with_handler(AssetsHandler, for_save=True)
@dataclasses.dataclass
class AssetsSave(ocp.args.CheckpointArgs):
    asset_id: str
    norm_stats: dict[str, _normalize.NormStats]


@ocp.args.register_with_handler(AssetsHandler, for_restore=True)
@dataclasses.dataclass
class AssetsRestore(ocp.args.CheckpointArgs):
    pass


def manager(directory: pathlib.Path, *, keep_period: int | None, async_save: bool = True) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        directory,
        item_names=(_files.JAX_PARAMS, _files.JAX_TRAIN_STATE, _files.ASSETS),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1,
            keep_period=keep_period,
            create=True,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
        ),
    )


def _numbered(tree) -> tuple[dict[str, Any], list[str]]:
    leaves_with_paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    return (
        {f"leaf_{i:05d}": leaf for i, (_, leaf) in enumerate(leaves_with_paths)},
        [jax.tree_util.keystr(path) for path, _ in leaves_with_paths],
    )


def save(
    mgr: ocp.CheckpointManager,
    step: int,
    *,
    params: dict,
    train_state: Any,
    asset_id: str,
    norm_stats: dict[str, _normalize.NormStats] | None,
) -> None:
    """Saves one step; ``train_state`` is any pytree (its structure must match at restore)."""
    leaves, paths = _numbered(train_state)
    items = {
        _files.JAX_PARAMS: ocp.args.PyTreeSave({"params": params}),
        _files.JAX_TRAIN_STATE: ocp.args.PyTreeSave({"leaves": leaves, "paths": json.dumps(paths)}),
        _files.ASSETS: AssetsSave(asset_id=asset_id, norm_stats=norm_stats or {}),
    }
    mgr.save(step, args=ocp.args.Composite(**items))


def restore_train_state(mgr: ocp.CheckpointManager, step: int, target: Any) -> Any:
    """Restores the train state saved at ``step`` into the structure (and shardings) of ``target``."""
    treedef = jax.tree_util.tree_structure(target)
    target_leaves, target_paths = _numbered(target)
    abstract = {
        name: ocp.utils.to_shape_dtype_struct(leaf) if hasattr(leaf, "shape") else leaf
        for name, leaf in target_leaves.items()
    }
    item = {"leaves": abstract, "paths": ""}
    try:
        restored = mgr.restore(
            step,
            args=ocp.args.Composite(
                # Explicit restore args: the target's shardings, never the saved ones (which name the devices of the
                # run that wrote the checkpoint, e.g. another process count).
                **{_files.JAX_TRAIN_STATE: ocp.args.PyTreeRestore(
                    item, restore_args=ocp.checkpoint_utils.construct_restore_args(item)
                )},
            ),
        )[_files.JAX_TRAIN_STATE]
    except Exception as error:  # tensorstore and orbax raise many kinds for a truncated or missing file
        raise run_utils.unreadable_checkpoint(pathlib.Path(mgr.directory) / str(step), error) from error
    saved_paths = json.loads(restored["paths"])
    if saved_paths != target_paths:
        diff = next((a, b) for a, b in zip(saved_paths, target_paths, strict=False) if a != b) if saved_paths else None
        raise ValueError(
            f"Checkpoint step {step} in {mgr.directory} has a different train-state structure than this config "
            f"({len(saved_paths)} vs {len(target_paths)} leaves; first difference {diff}). Was it written by "
            "another config?"
        )
    return jax.tree_util.tree_unflatten(treedef, [restored["leaves"][name] for name in target_leaves])


def restore_params(mgr: ocp.CheckpointManager, step: int) -> dict:
    """The ``{"params": ...}`` item of ``step`` as a pure dict of numpy arrays."""
    restored = mgr.restore(step, args=ocp.args.Composite(**{_files.JAX_PARAMS: ocp.args.PyTreeRestore()}))
    return restored[_files.JAX_PARAMS]["params"]
