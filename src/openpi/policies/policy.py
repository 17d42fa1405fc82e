"""A trained model behind openpi's ``Policy`` interface: observation dict in, robot action chunk out.

``infer(obs)`` runs the input transforms (repack → robot inputs → normalize → model transforms) on the
observation, samples an action chunk with the model (JAX or PyTorch) and runs the output transforms
(unnormalize → robot outputs). ``infer_batch`` does the same for many observations in one model call.

Sampling starts from fixed noise drawn from ``seed`` (one [horizon, action_dim] draw, shared by every
observation), so the same observation always gives the same chunk, batched or not, in either framework.

A committed ``prefix`` (raw robot actions already executed or promised) is inpainted into the flow sampling
(see ``Pi0.sample_actions``). It enters the pipeline as the repacked sample's ``actions``, so the config's own
transforms map it to model space: delta actions relative to the *current* state, normalization, padding.
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
def _jax_sample(
    graphdef: nnx.GraphDef, state: nnx.State, observation, noise: jax.Array, prefix=None, weights=None, *, num_steps: int
):
    """Compiled once per model structure and batch size, shared by every policy of that structure."""
    return nnx.merge(graphdef, state).sample_actions(
        None, observation, num_steps=num_steps, noise=noise, prefix_actions=prefix, prefix_weights=weights
    )


class Policy:
    """``model`` is a JAX ``Pi0`` (sampling jitted) or a PyTorch ``PI0Pytorch``;
    ``input_transform`` / ``output_transform`` are the composed pipelines around it (``repack_transforms`` then
    ``transforms``; a committed prefix joins the sample between the two)."""

    def __init__(
        self,
        model: Any,
        *,
        repack_transforms: Sequence[_transforms.DataTransformFn] = (),
        transforms: Sequence[_transforms.DataTransformFn] = (),
        output_transforms: Sequence[_transforms.DataTransformFn] = (),
        num_steps: int = 10,
        seed: int = 0,
        metadata: dict[str, Any] | None = None,
    ):
        self._repack = _transforms.compose(repack_transforms)
        self._transforms = _transforms.compose(transforms)
        self.input_transform = _transforms.compose([*repack_transforms, *transforms])
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

    @property
    def action_horizon(self) -> int:
        return self._horizon

    def _sample(self, batch: dict, noise: np.ndarray, prefix: np.ndarray | None, weights: np.ndarray | None):
        observation, _ = _inputs.to_model_inputs(batch, self.framework)
        if self.framework == "jax":
            return np.asarray(
                _jax_sample(self._graphdef, self._state, observation, noise, prefix, weights, num_steps=self._num_steps)
            )
        device = next(self.model.parameters()).device
        observation = jax.tree.map(lambda x: x.to(device) if isinstance(x, torch.Tensor) else x, observation)
        prefix, weights = (None if x is None else torch.from_numpy(x).to(device) for x in (prefix, weights))
        chunks = self.model.sample_actions(
            observation,
            torch.from_numpy(noise).to(device),
            num_steps=self._num_steps,
            prefix_actions=prefix,
            prefix_weights=weights,
        )
        return chunks.float().cpu().numpy()

    def _with_prefix(self, obs: dict, prefix: np.ndarray) -> dict:
        """The model inputs of ``obs`` with the raw prefix [k, robot_dim] as model-space ``actions`` [H, action_dim].

        Rows past k repeat the last committed action (their weight is 0; they only keep the transforms' shapes)."""
        prefix = np.asarray(prefix, dtype=np.float32)
        k = prefix.shape[0]
        if prefix.ndim != 2 or not 0 < k <= self._horizon:
            raise ValueError(
                f"A committed prefix must be [k, action_dim] with 1 <= k <= {self._horizon} (the action horizon), "
                f"got shape {prefix.shape}."
            )
        data = self._repack(dict(obs))
        data["actions"] = np.concatenate([prefix, np.repeat(prefix[-1:], self._horizon - k, axis=0)])
        return self._transforms(data)

    def infer_batch(
        self,
        observations: Sequence[dict],
        *,
        noise: np.ndarray | None = None,
        prefix: np.ndarray | None = None,
        prefix_weights: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Action chunks for many observations: ``{"actions": [B, H, robot_dim], ...}`` (every output stacked).

        ``noise`` ([H, action_dim] for all, or [B, H, action_dim]) replaces the seed's noise. ``prefix`` (raw robot
        actions [B, k, robot_dim], or [k, robot_dim] for all) is inpainted into the first k rows with
        ``prefix_weights`` ([k] or [B, k] in [0, 1]; default 1: the chunk starts exactly with the prefix).
        """
        batch_size = len(observations)
        if prefix is None:
            inputs, model_prefix, weights = [self.input_transform(dict(obs)) for obs in observations], None, None
        else:
            prefix = np.broadcast_to(np.asarray(prefix, np.float32), (batch_size, *np.shape(prefix)[-2:]))
            inputs = [self._with_prefix(obs, p) for obs, p in zip(observations, prefix)]
            model_prefix = np.stack([x.pop("actions") for x in inputs]).astype(np.float32)
            k = prefix.shape[1]
            weights = np.zeros((batch_size, self._horizon), np.float32)
            weights[:, :k] = 1.0 if prefix_weights is None else np.broadcast_to(prefix_weights, (batch_size, k))
        batch = _inputs.collate(inputs)
        noise = self.default_noise() if noise is None else np.asarray(noise, dtype=np.float32)
        noise = np.array(np.broadcast_to(noise, (batch_size, self._horizon, self._action_dim)))
        chunks = self._sample(batch, noise, model_prefix, weights)
        outputs = [
            self.output_transform({"state": x["state"], "actions": chunk}) for x, chunk in zip(inputs, chunks)
        ]
        return {key: np.stack([np.asarray(o[key]) for o in outputs]) for key in outputs[0]}

    def infer(
        self,
        obs: dict,
        *,
        noise: np.ndarray | None = None,
        prefix: np.ndarray | None = None,
        prefix_weights: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The action chunk for one observation: ``{"actions": [H, robot_dim]}`` (prefix as in ``infer_batch``)."""
        outputs = self.infer_batch([obs], noise=noise, prefix=prefix, prefix_weights=prefix_weights)
        return {key: value[0] for key, value in outputs.items()}
