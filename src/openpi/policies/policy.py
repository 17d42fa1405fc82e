"""A trained model behind openpi's ``Policy`` interface: observation dict in, robot action chunk out.

``infer(obs)`` runs the input transforms (repack → robot inputs → normalize → model transforms) on the
observation, samples an action chunk with the model (JAX or PyTorch) and runs the output transforms
(unnormalize → robot outputs). ``infer_batch`` does the same for many observations in one model call.

Sampling starts from fixed noise drawn from ``seed`` (one [horizon, action_dim] draw, shared by every
observation), so the same observation always gives the same chunk, batched or not, in either framework.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools
from typing import Any

import flax.nnx as nnx
import jax
import numpy as np
import torch

from openpi import transforms as _transforms
from openpi.models import model_inputs as _inputs


@functools.partial(jax.jit, static_argnames=("graphdef", "num_steps"))
def _jax_sample(graphdef: nnx.GraphDef, state: nnx.State, observation, noise: jax.Array, *, num_steps: int):
    """Compiled once per model structure and batch size, shared by every policy of that structure."""
    return nnx.merge(graphdef, state).sample_actions(None, observation, num_steps=num_steps, noise=noise)


class Policy:
    """``model`` is a JAX ``Pi0`` (sampling jitted) or a PyTorch ``PI0Pytorch``;
    ``input_transform`` / ``output_transform`` are the composed pipelines around it."""

    def __init__(
        self,
        model: Any,
        *,
        transforms: Sequence[_transforms.DataTransformFn] = (),
        output_transforms: Sequence[_transforms.DataTransformFn] = (),
        num_steps: int = 10,
        seed: int = 0,
        metadata: dict[str, Any] | None = None,
    ):
        self.input_transform = _transforms.compose(transforms)
        self.output_transform = _transforms.compose(output_transforms)
        self.model = model
        self.framework: _inputs.Framework = "pytorch" if isinstance(model, torch.nn.Module) else "jax"
        model.eval()
        if self.framework == "pytorch":
            self._horizon, self._action_dim = model.config.action_horizon, model.config.action_dim
        else:
            self._graphdef, state = nnx.split(model)
            self._state = jax.device_put(state)  # on the device once, not with every call
            self._horizon, self._action_dim = model.action_horizon, model.action_dim
        self._num_steps = num_steps
        self.seed = seed
        self.metadata = dict(metadata or {})

    def default_noise(self) -> np.ndarray:
        """The seed's starting noise [action_horizon, action_dim] (float32)."""
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal((self._horizon, self._action_dim)).astype(np.float32)

    def _sample(self, batch: dict, noise: np.ndarray) -> np.ndarray:
        observation, _ = _inputs.to_model_inputs(batch, self.framework)
        if self.framework == "jax":
            return np.asarray(_jax_sample(self._graphdef, self._state, observation, noise, num_steps=self._num_steps))
        device = next(self.model.parameters()).device
        observation = jax.tree.map(lambda x: x.to(device) if isinstance(x, torch.Tensor) else x, observation)
        chunks = self.model.sample_actions(observation, torch.from_numpy(noise).to(device), num_steps=self._num_steps)
        return chunks.float().cpu().numpy()

    def infer_batch(self, observations: Sequence[dict], *, noise: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Action chunks for many observations: ``{"actions": [B, H, robot_dim], ...}`` (every output stacked).

        ``noise`` ([H, action_dim] for all, or [B, H, action_dim]) replaces the seed's noise.
        """
        inputs = [self.input_transform(dict(obs)) for obs in observations]
        batch = _inputs.collate(inputs)
        noise = self.default_noise() if noise is None else np.asarray(noise, dtype=np.float32)
        noise = np.array(np.broadcast_to(noise, (len(inputs), self._horizon, self._action_dim)))
        chunks = self._sample(batch, noise)
        outputs = [
            self.output_transform({"state": x["state"], "actions": chunk}) for x, chunk in zip(inputs, chunks)
        ]
        return {key: np.stack([np.asarray(o[key]) for o in outputs]) for key in outputs[0]}

    def infer(self, obs: dict, *, noise: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The action chunk for one observation: ``{"actions": [H, robot_dim]}``."""
        return {key: value[0] for key, value in self.infer_batch([obs], noise=noise).items()}
