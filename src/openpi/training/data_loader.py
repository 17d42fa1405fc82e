"""Training data: LeRobot frames through the transform pipeline, batched for JAX or PyTorch.

`FrameDataset` applies the transforms to `LeRobotDataset` samples; `DataLoader` batches them with
torch worker processes, a seeded order per epoch (a permutation, or weighted draws with replacement when
per-sample weights are given) and returns either openpi's `(Observation, actions)` or the nested batch dict
``{"image", "image_mask", "state", "tokenized_prompt", "tokenized_prompt_mask", "actions"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import pathlib
from typing import Any
from typing import Literal

import numpy as np
import torch.utils.data

from openpi import transforms as _transforms
from openpi.datasets import episode_files
from openpi.datasets import lerobot as _lerobot
from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.models import model_inputs as _inputs

# Per-sample weights: an array aligned with the dataset, or a function of (episode_index[N], frame_index[N]).
SampleWeights = np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]


class FrameDataset:
    """A map-style dataset: ``transform(dataset[i])``."""

    def __init__(self, dataset: _lerobot.LeRobotDataset, transforms: Sequence[_transforms.DataTransformFn] = ()):
        self.dataset = dataset
        self.transform = _transforms.compose(transforms)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return self.transform(self.dataset[int(index)])


class _EpochSampler(torch.utils.data.Sampler):
    """Seeded sample order, fresh for every epoch; weighted draws with replacement when weights are given.

    The order of epoch ``e`` depends only on ``(seed, e)``; ``skip`` samples are dropped from the first epoch,
    so a loader started at batch k yields exactly the batches k, k+1, ... of a loader started at 0.
    ``shard=(rank, world_size, global_batch)`` keeps only rank's slice of every global batch (distributed training).
    """

    def __init__(
        self,
        size: int,
        shuffle: bool,
        seed: int | Sequence[int],
        weights: np.ndarray | None,
        *,
        epoch: int = 0,
        skip: int = 0,
        shard: tuple[int, int, int] | None = None,
    ):
        self._size, self._shuffle, self._shard = size, shuffle, shard
        self._seed = [int(seed)] if isinstance(seed, int) else [int(v) for v in seed]
        self._p = None if weights is None else weights / weights.sum()
        self._epoch, self._skip = epoch, skip

    def __len__(self) -> int:
        if self._shard is None:
            return self._size
        _, world_size, global_batch = self._shard
        return self._size // global_batch * (global_batch // world_size)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([*self._seed, self._epoch])
        self._epoch += 1
        if self._p is not None:
            order = rng.choice(self._size, size=self._size, replace=True, p=self._p)
        elif self._shuffle:
            order = rng.permutation(self._size)
        else:
            order = np.arange(self._size)
        skip, self._skip = self._skip, 0
        order = order[skip:]
        if self._shard is not None:
            rank, world_size, global_batch = self._shard
            whole = len(order) // global_batch * global_batch
            order = order[:whole].reshape(-1, world_size, global_batch // world_size)[:, rank].reshape(-1)
        return (int(i) for i in order)  # lazily: a list of 100M Python ints would take gigabytes


def _check_weights(weights: np.ndarray, size: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(weights) != size:
        raise ValueError(f"sample_weights has {len(weights)} entries for {size} samples.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        bad = int(np.flatnonzero(~np.isfinite(weights) | (weights < 0))[0])
        raise ValueError(f"sample_weights[{bad}] = {weights[bad]}; weights must be finite and >= 0.")
    if weights.sum() <= 0:
        raise ValueError("All sample_weights are zero.")
    return weights


class DataLoader:
    """Batches of a `FrameDataset`, endlessly (or ``num_batches``), epoch after epoch with a new seeded order.

    ``output="observation"`` yields ``(Observation, actions)``; ``"dict"`` the nested batch dict. Arrays are
    jax arrays (placed with ``sharding`` when given), torch tensors or numpy depending on ``framework``.
    ``start_batch`` resumes the seeded order where a run stopped (the batches a fresh loader would yield from
    there on). With ``world_size > 1`` (distributed training), ``batch_size`` is the global batch and this loader
    yields the ``rank``-th equal slice of each global batch.
    """

    def __init__(
        self,
        dataset: FrameDataset,
        *,
        batch_size: int,
        shuffle: bool = True,
        seed: int | Sequence[int] = 0,
        num_workers: int = 0,
        drop_last: bool = True,
        framework: _inputs.Framework = "jax",
        output: Literal["observation", "dict"] = "observation",
        sample_weights: SampleWeights | None = None,
        num_batches: int | None = None,
        worker_start_method: Literal["spawn", "fork", "forkserver"] = "spawn",
        sharding: Any = None,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        if batch_size % world_size or not 0 <= rank < world_size:
            raise ValueError(f"batch_size={batch_size} must split evenly over {world_size} ranks (rank {rank}).")
        if drop_last and len(dataset) < batch_size:
            raise ValueError(f"The dataset has {len(dataset)} samples, fewer than one batch of {batch_size}.")
        if callable(sample_weights):
            sample_weights = sample_weights(*dataset.dataset.frame_locations())
        weights = None if sample_weights is None else _check_weights(sample_weights, len(dataset))
        self.dataset = dataset
        self._framework, self._output, self._num_batches = framework, output, num_batches
        # Resume position: whole epochs, then batches into the next one.
        per_epoch = len(dataset) // batch_size if drop_last else -(-len(dataset) // batch_size)
        start_epoch, skip = start_batch // per_epoch, (start_batch % per_epoch) * batch_size
        self._sharding = sharding
        shard = (rank, world_size, batch_size) if world_size > 1 else None
        self._loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size // world_size,
            sampler=_EpochSampler(len(dataset), shuffle, seed, weights, epoch=start_epoch, skip=skip, shard=shard),
            num_workers=num_workers,
            collate_fn=_inputs.collate,
            drop_last=drop_last,
            persistent_workers=num_workers > 0,
            multiprocessing_context=worker_start_method if num_workers > 0 else None,
        )

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self._loader)

    def __iter__(self) -> Iterator[Any]:
        produced = 0
        while self._num_batches is None or produced < self._num_batches:
            for batch in self._loader:
                if self._num_batches is not None and produced >= self._num_batches:
                    return
                produced += 1
                if self._output == "observation":
                    yield _inputs.to_model_inputs(batch, self._framework, self._sharding)
                else:
                    yield _inputs.to_arrays(batch, self._framework, self._sharding)


def create_lerobot_data_loader(
    repo_id: str | None = None,
    *,
    root: pathlib.Path | str | None = None,
    transforms: Sequence[_transforms.DataTransformFn] = (),
    action_horizon: int,
    batch_size: int,
    camera_keys: Sequence[str] | None = None,
    episodes: Sequence[int] | None = None,
    episode_filter: Callable[[int], bool] | None = None,
    preload_max_bytes: int = 2**30,
    action_key: str = "action",
    **loader_kwargs,
) -> DataLoader:
    """A `DataLoader` over a local LeRobot dataset; ``episodes`` and/or ``episode_filter`` select episodes,
    ``preload_max_bytes`` is passed to `LeRobotDataset`, other keyword arguments (shuffle, seed, num_workers,
    sample_weights, framework, ...) go to `DataLoader`."""
    meta = _lerobot_meta.LeRobotMetadata.load(_lerobot_meta.resolve_root(repo_id, root))
    chosen = meta.episode_indices if episodes is None else list(episodes)
    if episode_filter is not None:
        chosen = [e for e in chosen if episode_filter(e)]
    if not chosen:
        raise ValueError(f"No episodes of {meta.root} are left after the episode selection.")
    dataset = _lerobot.LeRobotDataset(
        root=meta.root,
        episodes=chosen,
        action_horizon=action_horizon,
        camera_keys=camera_keys,
        preload_max_bytes=preload_max_bytes,
        action_key=action_key,
    )
    return DataLoader(FrameDataset(dataset, transforms), batch_size=batch_size, **loader_kwargs)


def create_data_loader(
    config: Any,
    data_config: Any,
    *,
    framework: _inputs.Framework = "jax",
    sharding: Any = None,
    start_step: int = 0,
    shuffle: bool = True,
    num_batches: int | None = None,
    output: Literal["observation", "dict"] = "observation",
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """The training loader of a `TrainConfig` and its runtime `DataConfig` (openpi.training.config).

    Input pipeline: repack → data transforms → normalize (the config's norm stats, z-score or quantile) →
    model transforms. Decodes the video keys the repack structure uses; honours the episode list and the
    per-frame sample-weights file. The order is seeded by ``config.seed``; ``start_step`` continues it where a resumed run stopped.
    Under distributed training, rank ``rank`` of ``world_size`` gets its slice of each global batch of ``config.batch_size``.
    """
    transforms = [
        *data_config.repack_transforms.inputs,
        *data_config.data_transforms.inputs,
        _transforms.Normalize(data_config.norm_stats, use_quantiles=data_config.use_quantile_norm),
        *data_config.model_transforms.inputs,
    ]
    meta = _lerobot_meta.LeRobotMetadata.load(_lerobot_meta.resolve_root(data_config.repo_id, data_config.root))
    camera_keys = [k for k in meta.video_keys if k in data_config.input_keys]
    sample_weights = None
    if data_config.sample_weights_path:
        sample_weights = episode_files.sample_weight_fn(data_config.sample_weights_path)
    return create_lerobot_data_loader(
        data_config.repo_id,
        root=data_config.root,
        transforms=transforms,
        action_horizon=config.model.action_horizon,
        batch_size=config.batch_size,
        camera_keys=camera_keys,
        episodes=data_config.training_episodes(),
        action_key=data_config.action_key,
        sample_weights=sample_weights,
        shuffle=shuffle,
        seed=config.seed,
        start_batch=start_step,
        num_workers=config.num_workers,
        framework=framework,
        output=output,
        num_batches=num_batches,
        sharding=sharding,
        rank=rank,
        world_size=world_size,
    )
