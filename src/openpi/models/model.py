"""Model-independent pieces: the ``Observation`` a model consumes, image preprocessing, the base config and model
classes, and restoring parameters from an openpi (orbax) params checkpoint."""

import abc
from collections.abc import Sequence
import dataclasses
import enum
import pathlib
from typing import Any
from typing import TypeAlias

import flax.nnx as nnx
import flax.struct
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from openpi.shared import array_typing as at

Array: TypeAlias = at.Array
# Normalized, padded action chunk [B, action_horizon, action_dim].
Actions: TypeAlias = at.Float[Array, "*b ah ad"]
Params: TypeAlias = dict[str, Any]

# Camera names in the order the model sees them; wrist cameras are not geometrically augmented.
IMAGE_KEYS: tuple[str, ...] = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
IMAGE_RESOLUTION: tuple[int, int] = (224, 224)


class ModelType(enum.Enum):
    PI0 = "pi0"
    PI05 = "pi05"


@flax.struct.dataclass
class Observation:
    """One batch of model inputs (a frozen pytree).

    ``images[name]`` is float32 [B, H, W, 3] in [-1, 1]; ``image_masks[name]`` bool [B] says whether that camera
    is present; ``state`` float32 [B, action_dim]; ``tokenized_prompt`` int32 [B, L] with bool mask [B, L];
    ``token_ar_mask`` / ``token_loss_mask`` are only used by autoregressive (FAST) models.
    """

    images: dict[str, at.Float[Array, "*b h w c"]]
    image_masks: dict[str, at.Bool[Array, "*b"]]
    state: at.Float[Array, "*b s"]
    tokenized_prompt: at.Int[Array, "*b l"] | None = None
    tokenized_prompt_mask: at.Bool[Array, "*b l"] | None = None
    token_ar_mask: at.Int[Array, "*b l"] | None = None
    token_loss_mask: at.Bool[Array, "*b l"] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Observation":
        """Builds an observation from the data pipeline's dict (keys ``image``, ``image_mask``, ``state``, ...).

        uint8 images are converted to float32 in [-1, 1].
        """
        if ("tokenized_prompt" in data) != ("tokenized_prompt_mask" in data):
            raise ValueError("tokenized_prompt and tokenized_prompt_mask must be given together (or neither).")
        for key in ("image", "image_mask", "state"):
            if key not in data:
                raise ValueError(f"Observation dict is missing {key!r}; got keys {sorted(data)}.")
        images = {}
        for name, image in data["image"].items():
            if image.dtype == np.uint8:
                image = image.astype(np.float32) / 255.0 * 2.0 - 1.0
            images[name] = image
        return cls(
            images=images,
            image_masks=dict(data["image_mask"]),
            state=data["state"],
            tokenized_prompt=data.get("tokenized_prompt"),
            tokenized_prompt_mask=data.get("tokenized_prompt_mask"),
            token_ar_mask=data.get("token_ar_mask"),
            token_loss_mask=data.get("token_loss_mask"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The inverse of ``from_dict`` (images stay float); ``None`` fields are left out."""
        out = {"image": dict(self.images), "image_mask": dict(self.image_masks), "state": self.state}
        for key in ("tokenized_prompt", "tokenized_prompt_mask", "token_ar_mask", "token_loss_mask"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def resize_with_pad(images: Array, height: int, width: int) -> Array:
    """Bilinear resize of float images [..., H, W, C] keeping the aspect ratio, padded with -1 (black) to size."""
    cur_h, cur_w = images.shape[-3:-1]
    if (cur_h, cur_w) == (height, width):
        return images
    ratio = max(cur_h / height, cur_w / width)
    new_h, new_w = int(cur_h / ratio), int(cur_w / ratio)
    resized = jax.image.resize(images, (*images.shape[:-3], new_h, new_w, images.shape[-1]), method="bilinear")
    pad_h, pad_w = height - new_h, width - new_w
    pads = [(0, 0)] * (images.ndim - 3) + [(pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)]
    return jnp.pad(resized, pads, constant_values=-1.0)


def _random_crop_resize(rng: Array, image: Array, scale: float = 0.95) -> Array:
    h, w, c = image.shape
    ch, cw = int(h * scale), int(w * scale)
    ky, kx = jax.random.split(rng)
    y0 = jax.random.randint(ky, (), 0, h - ch + 1)
    x0 = jax.random.randint(kx, (), 0, w - cw + 1)
    crop = jax.lax.dynamic_slice(image, (y0, x0, 0), (ch, cw, c))
    return jax.image.resize(crop, (h, w, c), method="bilinear")


def _random_rotate(rng: Array, image: Array, max_degrees: float = 5.0) -> Array:
    h, w, c = image.shape
    angle = jnp.deg2rad(jax.random.uniform(rng, (), minval=-max_degrees, maxval=max_degrees))
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    # Inverse rotation: sample the source pixel that lands on each output pixel; edges are replicated.
    src_y = cy + (yy - cy) * jnp.cos(angle) - (xx - cx) * jnp.sin(angle)
    src_x = cx + (yy - cy) * jnp.sin(angle) + (xx - cx) * jnp.cos(angle)
    channels = [
        jax.scipy.ndimage.map_coordinates(image[..., i], [src_y, src_x], order=1, mode="nearest") for i in range(c)
    ]
    return jnp.stack(channels, axis=-1)


def _color_jitter(rng: Array, image: Array, brightness=0.3, contrast=0.4, saturation=0.5) -> Array:
    kb, kc, ks = jax.random.split(rng, 3)
    image = image * jax.random.uniform(kb, (), minval=1 - brightness, maxval=1 + brightness)
    gray = image @ jnp.asarray([0.299, 0.587, 0.114], dtype=image.dtype)
    mean = jnp.mean(gray)
    image = (image - mean) * jax.random.uniform(kc, (), minval=1 - contrast, maxval=1 + contrast) + mean
    gray = (image @ jnp.asarray([0.299, 0.587, 0.114], dtype=image.dtype))[..., None]
    image = (image - gray) * jax.random.uniform(ks, (), minval=1 - saturation, maxval=1 + saturation) + gray
    return jnp.clip(image, 0.0, 1.0)


def augment_image(rng: Array, image: Array, *, geometric: bool) -> Array:
    """Train-time augmentation of one image [H, W, 3] in [-1, 1]: crop + rotate (if ``geometric``), colour jitter."""
    k_crop, k_rot, k_color = jax.random.split(rng, 3)
    x = (image + 1.0) / 2.0
    if geometric:
        x = _random_rotate(k_rot, _random_crop_resize(k_crop, x))
    x = _color_jitter(k_color, x)
    return x * 2.0 - 1.0


def preprocess_observation(
    rng: Array | None,
    observation: Observation,
    *,
    train: bool = False,
    image_keys: Sequence[str] = IMAGE_KEYS,
    image_resolution: tuple[int, int] = IMAGE_RESOLUTION,
) -> Observation:
    """Resizes (with padding) every image to ``image_resolution``, augments when ``train``, fills missing masks.

    Wrist cameras (names containing ``"wrist"``) only get colour jitter, others also a random crop and rotation.
    """
    missing = [k for k in image_keys if k not in observation.images]
    if missing:
        raise ValueError(
            f"Observation images are missing {missing}; expected {list(image_keys)}, got {list(observation.images)}."
        )
    if train and rng is None:
        raise ValueError("preprocess_observation(train=True) needs an rng for the augmentation.")
    batch_shape = observation.state.shape[:-1]
    images, masks = {}, {}
    for i, key in enumerate(image_keys):
        image = resize_with_pad(observation.images[key], *image_resolution)
        if train:
            flat = image.reshape(-1, *image.shape[-3:])
            keys = jax.random.split(jax.random.fold_in(rng, i), flat.shape[0])
            augment = jax.vmap(lambda k, x, g="wrist" not in key: augment_image(k, x, geometric=g))
            image = augment(keys, flat).reshape(image.shape)
        images[key] = image
        mask = observation.image_masks.get(key)
        masks[key] = jnp.ones(batch_shape, dtype=bool) if mask is None else jnp.asarray(mask)
    return dataclasses.replace(observation, images=images, image_masks=masks)


@dataclasses.dataclass(frozen=True)
class BaseModelConfig(abc.ABC):
    """What every model config provides: sizes, the model type, construction, input specs and loading."""

    action_dim: int
    action_horizon: int
    max_token_len: int

    @property
    @abc.abstractmethod
    def model_type(self) -> ModelType: ...

    @abc.abstractmethod
    def create(self, rng: Array) -> "BaseModel":
        """A new model with freshly initialised parameters."""

    @abc.abstractmethod
    def inputs_spec(self, *, batch_size: int = 1) -> tuple[Observation, Actions]:
        """``jax.ShapeDtypeStruct`` trees of one batch of observation and actions."""

    def load(self, params: Params, *, remove_extra_params: bool = True) -> "BaseModel":
        """A model holding ``params`` (a pure dict tree). Extra keys are dropped (if allowed); a missing key or a
        shape mismatch raises ``ValueError`` naming the leaf."""
        model = nnx.eval_shape(self.create, jax.random.key(0))
        graphdef, state = nnx.split(model)
        expected = state.to_pure_dict()
        check_params(expected, params, allow_extra=remove_extra_params)
        flat_params = traverse_util.flatten_dict(params)
        state.replace_by_pure_dict(
            traverse_util.unflatten_dict({k: flat_params[k] for k in traverse_util.flatten_dict(expected)})
        )
        return nnx.merge(graphdef, state)

    def fake_obs(self, batch_size: int = 1) -> Observation:
        obs_spec, _ = self.inputs_spec(batch_size=batch_size)
        return jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), obs_spec)

    def fake_act(self, batch_size: int = 1) -> Actions:
        _, act_spec = self.inputs_spec(batch_size=batch_size)
        return jnp.ones(act_spec.shape, act_spec.dtype)


def _path(key: tuple) -> str:
    return "/".join(str(k) for k in key)


def check_params(expected: Params, got: Params, *, allow_extra: bool = True) -> None:
    """Raises ``ValueError`` listing missing leaves, unexpected leaves (unless allowed) and shape mismatches."""
    exp_flat = traverse_util.flatten_dict(expected)
    got_flat = traverse_util.flatten_dict(got)
    problems = []
    missing = [_path(k) for k in exp_flat if k not in got_flat]
    if missing:
        problems.append(f"missing leaves: {missing}")
    extra = [_path(k) for k in got_flat if k not in exp_flat]
    if extra and not allow_extra:
        problems.append(f"unexpected leaves: {extra}")
    for key, exp in exp_flat.items():
        if key in got_flat and tuple(np.shape(got_flat[key])) != tuple(exp.shape):
            problems.append(
                f"shape mismatch at {_path(key)}: checkpoint has {tuple(np.shape(got_flat[key]))}, "
                f"model expects {tuple(exp.shape)}"
            )
    if problems:
        raise ValueError("Parameters do not fit the model: " + "; ".join(problems))


class BaseModel(nnx.Module, abc.ABC):
    """A model mapping observations to action chunks; subclasses implement the loss and the sampler."""

    def __init__(self, action_dim: int, action_horizon: int, max_token_len: int):
        self.action_dim = action_dim
        self.action_horizon = action_horizon
        self.max_token_len = max_token_len

    @abc.abstractmethod
    def compute_loss(
        self, rng: at.KeyArrayLike, observation: Observation, actions: Actions, *, train: bool = False
    ) -> at.Float[Array, "*b ah"]:
        """Per-sample, per-step loss [B, action_horizon]."""

    @abc.abstractmethod
    def sample_actions(self, rng: at.KeyArrayLike, observation: Observation, **kwargs) -> Actions:
        """An action chunk [B, action_horizon, action_dim]."""


def restore_params(
    params_path: str | pathlib.Path,
    *,
    restore_type: type[np.ndarray] | type[jax.Array] = np.ndarray,
    dtype: Any = None,
    sharding: jax.sharding.Sharding | None = None,
) -> Params:
    """Reads an openpi params checkpoint (orbax tree ``{"params": ...}``) as a pure dict.

    A trailing ``value`` key on every leaf (trees written by training) is stripped. ``restore_type`` is
    ``np.ndarray`` or ``jax.Array``; ``dtype`` casts every leaf when given.
    """
    params_path = pathlib.Path(params_path).expanduser().resolve()
    if not params_path.exists():
        raise FileNotFoundError(
            f"No params checkpoint at {params_path}; pass the '.../params' directory of a "
            "checkpoint (e.g. $OPENPI_DATA_HOME/openpi-assets/checkpoints/pi0_base/params)."
        )
    if restore_type is jax.Array and sharding is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    with ocp.PyTreeCheckpointer() as checkpointer:
        metadata = checkpointer.metadata(params_path).item_metadata
        if "params" not in metadata:
            raise ValueError(
                f"{params_path} is not an openpi params checkpoint: top-level keys {list(metadata)}, expected 'params'."
            )
        item = {"params": metadata["params"]}
        restore_args = jax.tree.map(
            lambda _: ocp.ArrayRestoreArgs(sharding=sharding, restore_type=restore_type, dtype=dtype), item
        )
        params = checkpointer.restore(params_path, ocp.args.PyTreeRestore(item=item, restore_args=restore_args))
    flat = traverse_util.flatten_dict(params["params"])
    if flat and all(key[-1] == "value" for key in flat):
        flat = {key[:-1]: value for key, value in flat.items()}
    return traverse_util.unflatten_dict(flat)
