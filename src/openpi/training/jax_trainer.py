"""The JAX backend of ``training.loop``, behind ``scripts/train.py``: AdamW + warmup-cosine, global-norm clipping,
EMA, orbax checkpoints, an FSDP mesh over the devices of one or several processes (``multihost``). Step metrics stay
on the device until the loop asks for them at a log or save interval, so the host never waits for a step.

Exact resume: the step's randomness is ``fold_in(seed, step)`` and the data order is a function of
(seed, step), so a run resumed from step k computes the same losses as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
import shutil
from typing import Any

import flax.nnx as nnx
import flax.struct
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax

from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.models import pi0_loss_utils as _loss_utils
from openpi.shared import checkpoint_files as _files
from openpi.shared import loss_weighting as _lw
from openpi.training import checkpoints as _checkpoints
from openpi.training import config as _config
from openpi.training import loop as _loop
from openpi.training import multihost
from openpi.training import optimizer as _optimizer
from openpi.training import run_utils
from openpi.training import sharding as _sharding
from openpi.training import weight_loaders as _weight_loaders

logger = logging.getLogger("openpi")


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: nnx.State
    opt_state: optax.OptState
    ema_params: nnx.State | None
    model_def: nnx.GraphDef = flax.struct.field(pytree_node=False)
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
    # The ``adaptive`` strategy's per-group loss history (None otherwise); checkpointed with the rest.
    loss_balance: dict | None = None


def trainable_filter(model_config) -> nnx.filterlib.Filter:
    return nnx.All(nnx.Param, nnx.Not(model_config.get_freeze_filter()))


def load_params(config: _config.TrainConfig, source: pathlib.Path | str | None) -> dict | None:
    """Weights from a step directory, an openpi params checkpoint or a PaliGemma ``.npz`` (pure dict, only the
    leaves that were loaded), or None for random init."""
    if source is None:
        return None
    if isinstance(source, pathlib.Path):  # a step directory of another experiment
        loader = _weight_loaders.CheckpointWeightLoader(str(source / _files.JAX_PARAMS))
    else:  # loaders resolve ~ and gs:// (openpi's local cache) themselves
        loader = (
            _weight_loaders.PaliGemmaWeightLoader(source)
            if source.endswith(".npz")
            else _weight_loaders.CheckpointWeightLoader(source)
        )
    abstract = nnx.state(nnx.eval_shape(lambda: config.model.create(jax.random.key(0)))).to_pure_dict()
    try:
        loaded = traverse_util.flatten_dict(loader.load(abstract))
    except ValueError as error:  # a shape or tree mismatch: weights of another model
        raise run_utils.InputError(f"The weights to start from do not fit config {config.name!r}: {error}") from None
    return traverse_util.unflatten_dict(
        {k: v for k, v in loaded.items() if not isinstance(v, jax.ShapeDtypeStruct)}
    )


def init_train_state(
    config: _config.TrainConfig, mesh: jax.sharding.Mesh, *, init_params: dict | None = None
) -> tuple[TrainState, Any]:
    """A sharded train state; ``init_params`` (pure dict) replaces matching initial weights."""
    tx = _optimizer.create_optimizer(config.optimizer, config.schedule)
    trainable = trainable_filter(config.model)

    def init(rng: jax.Array, partial_params: dict | None) -> TrainState:
        model = config.model.create(rng)
        graphdef, params = nnx.split(model)
        if partial_params is not None:
            params.replace_by_pure_dict(partial_params)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params.filter(trainable)),
            ema_params=None if config.ema_decay is None else params,
            model_def=graphdef,
            tx=tx,
            loss_balance=_initial_loss_balance(config.model.loss_weighting),
        )

    rng = jax.random.key(config.seed)
    shape = jax.eval_shape(init, rng, init_params)
    state_sharding = _sharding.fsdp_sharding(shape, mesh)
    state = jax.jit(init, out_shardings=state_sharding)(rng, init_params)
    return state, state_sharding


def _initial_loss_balance(weighting) -> dict | None:
    if weighting.strategy != "adaptive":
        return None
    return {k: jnp.asarray(v) for k, v in _lw.adaptive_init(weighting).items()}


def train_step(config: _config.TrainConfig, rng: jax.Array, state: TrainState, batch) -> tuple[TrainState, dict]:
    observation, actions = batch
    model = nnx.merge(state.model_def, state.params)
    model.train()
    trainable = trainable_filter(config.model)
    weighting = config.model.loss_weighting
    balance = state.loss_balance
    balance_weights = None if balance is None else _loss_utils.adaptive_balance_weights(weighting, balance)

    def loss_fn(model, rng, observation, actions):
        loss, metrics = model.compute_loss_and_metrics(
            rng, observation, actions, train=True, balance_weights=balance_weights
        )
        return jnp.mean(loss), metrics

    step_rng = jax.random.fold_in(rng, state.step)
    (loss, metrics), grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, trainable), has_aux=True)(
        model, step_rng, observation, actions
    )
    params = state.params.filter(trainable)
    updates, opt_state = state.tx.update(grads, state.opt_state, params)
    nnx.update(model, optax.apply_updates(params, updates))
    new_params = nnx.state(model)
    ema = state.ema_params
    if ema is not None:
        ema = jax.tree.map(lambda old, new: config.ema_decay * old + (1 - config.ema_decay) * new, ema, new_params)
    kernels = [x for path, x in jax.tree_util.tree_flatten_with_path(new_params)[0] if "bias" not in str(path)]
    info = {
        "loss": loss,
        "grad_norm": optax.global_norm(grads),
        "param_norm": optax.global_norm(kernels),
        "learning_rate": _optimizer.learning_rate(config.schedule, state.step, xp=jnp),
        **metrics,
    }
    if balance is not None:  # metrics are means over the global batch, so every device computes the same update
        group_losses = jnp.stack([metrics[f"loss/{name}"] for name in weighting.groups.names])
        balance = _loss_utils.adaptive_update(weighting, balance, group_losses)
    return dataclasses.replace(
        state, step=state.step + 1, params=new_params, opt_state=opt_state, ema_params=ema, loss_balance=balance
    ), info


def _save(mgr, state: TrainState, data_config: _config.DataConfig) -> None:
    """Saves the step and waits for orbax's background write, so a failed save (e.g. a full disk) stops training
    at this step, with the partial checkpoint removed and the previous one kept."""
    step = int(state.step)
    params = state.ema_params if state.ema_params is not None else state.params
    directory = pathlib.Path(mgr.directory)
    run_utils.check_space(directory, _expected_bytes(directory, params), step)
    try:
        _checkpoints.save(
            mgr,
            step,
            params=params.to_pure_dict(),  # jax arrays: orbax writes each process's shards
            train_state=state,
            asset_id=data_config.asset_id,
            norm_stats=data_config.norm_stats,
        )
        mgr.wait_until_finished()
    except Exception as error:  # orbax wraps the writer's OSError in its own errors
        _settle(mgr)
        for partial in directory.glob(f"{step}.orbax-checkpoint-tmp*"):
            shutil.rmtree(partial, ignore_errors=True)
        raise run_utils.save_failure(error, directory, step) from error


def _expected_bytes(directory: pathlib.Path, params) -> int:
    """What the next save will write: the previous step's size on disk, else the weights alone. Not the arrays'
    bytes: orbax skips all-zero chunks (frozen weights' optimizer moments), so those would overstate it 2x and
    stop runs that fit."""
    steps = run_utils.step_dirs(directory)
    if steps:
        return sum(f.stat().st_size for f in (directory / str(steps[-1])).rglob("*") if f.is_file())
    return sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(params) if hasattr(leaf, "nbytes"))


def _settle(mgr, attempts: int = 10) -> None:
    """Waits until orbax's background writers of a failed save have all stopped (the first failure is raised while
    the others still write), so the partial step can be removed without being recreated behind our back."""
    for _ in range(attempts):
        try:
            mgr.wait_until_finished()
            return
        except Exception:  # the remaining writers' failures: the first one is already being reported
            continue


def _process_local(x: jax.Array) -> np.ndarray:
    """The rows of a batch-sharded array held by this process (all of them in a single-process run)."""
    return np.concatenate([np.asarray(shard.data) for shard in x.addressable_shards])


def _fingerprint(config: _config.TrainConfig, data_config: _config.DataConfig) -> dict[str, Any]:
    """What every process of a multi-host job must share: the resolved config (but the process id), the dataset's
    metadata and episode selection, and the norm stats."""
    run_config = config.run_config()
    del run_config["process_id"]
    meta = _lerobot_meta.LeRobotMetadata.load(_lerobot_meta.resolve_root(data_config.repo_id, data_config.root))
    return {
        **{f"config.{key}": value for key, value in run_config.items()},
        "dataset.info": meta.info,
        "dataset.episodes": meta.episode_indices if data_config.episodes is None else list(data_config.episodes),
        "norm_stats": data_config.norm_stats,
    }


class JaxBackend:
    """The JAX side of ``loop``: a sharded ``TrainState`` over an FSDP mesh of every process's devices, a jitted
    step with donated state, orbax checkpoints written by all processes together."""

    framework = "jax"
    preflight_on_every_process = True  # each process reads its own data

    def __init__(self, config: _config.TrainConfig):
        self.config = config
        self.rank, self.world_size = jax.process_index(), jax.process_count()
        self.state: TrainState | None = None

    def agree(self, data_config: _config.DataConfig) -> None:
        multihost.check_agreement(_fingerprint(self.config, data_config))

    def init(self, weights: pathlib.Path | str | None) -> None:
        config = self.config
        if config.batch_size % jax.device_count():
            raise ValueError(f"batch_size={config.batch_size} must be divisible by the {jax.device_count()} devices.")
        self.mesh = _sharding.make_mesh(config.fsdp_devices)
        logger.info("Mesh %s over %d devices of %d processes.", dict(self.mesh.shape), jax.device_count(),
                    jax.process_count())
        self.state, state_sharding = init_train_state(config, self.mesh, init_params=load_params(config, weights))
        self._step_fn = jax.jit(
            functools.partial(train_step, config),
            in_shardings=(_sharding.replicated(self.mesh), state_sharding, _sharding.data_sharding(self.mesh)),
            out_shardings=(state_sharding, _sharding.replicated(self.mesh)),
            donate_argnums=(1,),
        )
        self._rng = jax.random.key(config.seed)

    def loader_options(self) -> dict[str, Any]:
        # Each process reads its slice of every global batch; the loader assembles the global array from the slices.
        return dict(framework="jax", sharding=_sharding.data_sharding(self.mesh), rank=self.rank,
                    world_size=self.world_size)

    def any_failed(self, failed: bool) -> bool:
        return multihost.any_failed(failed)

    def barrier(self) -> None:
        multihost.barrier("end of training")

    def open(self, checkpoint_dir: pathlib.Path) -> None:
        self._mgr = _checkpoints.manager(checkpoint_dir, keep_period=self.config.keep_period)

    def restore(self, step: int) -> int:
        self.state = _checkpoints.restore_train_state(self._mgr, step, self.state)
        return int(self.state.step)

    def step(self, step: int, batch) -> tuple[dict, jax.Array]:
        self.state, info = self._step_fn(self._rng, self.state, batch)
        return info, batch[1]

    def to_host(self, infos: list[dict]) -> list[dict[str, float]]:
        return [{k: float(v) for k, v in info.items()} for info in jax.device_get(infos)]

    def local_targets(self, targets: jax.Array) -> np.ndarray:
        return _process_local(targets)

    def save(self, step: int, data_config: _config.DataConfig) -> None:
        _save(self._mgr, self.state, data_config)

    def close(self) -> None:
        if hasattr(self, "_mgr"):
            self._mgr.wait_until_finished()

    def sampling_model(self):
        params = self.state.ema_params if self.state.ema_params is not None else self.state.params
        return nnx.merge(self.state.model_def, params)  # what _save writes as params


def train(config: _config.TrainConfig, *, progress: bool = True) -> TrainState:
    """Runs (or resumes) training as configured, in one process or as one process of a multi-host job (see
    ``multihost``); returns the final state."""
    multihost.initialize(config.coordinator_address, config.num_processes, config.process_id)
    return _loop.run(config, JaxBackend(config), progress=progress).state
