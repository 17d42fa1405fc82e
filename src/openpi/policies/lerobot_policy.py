"""Inputs and outputs for any LeRobot robot: repacked sample → model dict, model output → robot action.

The robot-specific part is only the state conversion (B1K turns a 256-dim proprio vector into its 23-dim
state, see ``b1k_policy``) and the choice of state dims the model sees; camera slots, masks, actions and prompt
are handled the same for every robot.
"""

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses

import numpy as np

from openpi.models import model as _model


def to_uint8_hwc(image: np.ndarray, camera: str = "'image'") -> np.ndarray:
    """Accepts uint8 HWC or float CHW/HWC in [0, 1] (what LeRobot tooling yields) and returns uint8 HWC. Anything
    else -- another shape or channel count, another integer type, floats in 0..255 or not finite -- is a
    ``ValueError`` naming ``camera`` (quoted as it should print): read as-is it would become a white, black or garbled picture."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = np.transpose(image, (1, 2, 0))
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"Camera {camera}: expected an RGB image [H, W, 3] (or [3, H, W]), got shape "
                         f"{image.shape}.")
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise ValueError(f"Camera {camera}: the image has NaN or infinite values.")
        if image.max(initial=0.0) > 1.0 + 1e-3 or image.min(initial=0.0) < -1e-3:
            raise ValueError(f"Camera {camera}: a float image must hold values in [0, 1], got "
                             f"{image.min():.3g}..{image.max():.3g}; send uint8 for 0..255 pixels.")
        return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    if image.dtype != np.uint8:
        raise ValueError(f"Camera {camera}: expected uint8 (0..255) or float ([0, 1]) pixels, got {image.dtype}.")
    return image


def select_state_dims(state: np.ndarray, dims: Sequence[int] | None) -> np.ndarray:
    """``state[..., dims]`` for one frame or a whole [N, D] column (the whole state when ``dims`` is None); an
    index outside the state is an error naming ``data.state_dims`` and the state's size."""
    if dims is None:
        return state
    size = state.shape[-1]
    outside = [d for d in dims if not 0 <= d < size]
    if outside:
        raise ValueError(
            f"data.state_dims {tuple(dims)} has indices {outside} outside the dataset's {size}-dim state (after the "
            f"robot's state conversion); use indices 0..{size - 1} in --data.state-dims."
        )
    return state[..., list(dims)]


@dataclasses.dataclass(frozen=True)
class LeRobotInputs:
    """``{"images": {slot: img}, "state", "actions", "prompt"}`` → model dict. Every model camera slot gets an
    image; a camera the robot lacks is black with its mask off. ``state_transform`` converts the stored state
    (identity when None), then ``state_dims`` picks the dims the model sees (all when None)."""

    state_transform: Callable[[np.ndarray], np.ndarray] | None = None
    state_dims: tuple[int, ...] | None = None
    # (model camera slot, the key the data or the client sends it under), so an error names the key the user wrote.
    camera_sources: tuple[tuple[str, str], ...] = ()

    def convert_state(self, state: np.ndarray) -> np.ndarray:
        """Stored state → model state, for one frame or a whole column (what norm statistics are taken over)."""
        state = np.asarray(state, dtype=np.float32)
        if not np.all(np.isfinite(state)):
            bad = np.argwhere(~np.isfinite(np.atleast_1d(state)))[:, -1]
            raise ValueError(f"The state has NaN or infinite values at dims {sorted(set(bad.tolist()))[:10]}.")
        return select_state_dims(state if self.state_transform is None else self.state_transform(state), self.state_dims)

    def _camera_label(self, slot: str) -> str:
        source = dict(self.camera_sources).get(slot)
        return f"'{slot}'" if source is None else f"'{source}' (model camera '{slot}')"

    def __call__(self, data: dict) -> dict:
        out = {"state": self.convert_state(data["state"])}
        images = {slot: img for slot, img in data.get("images", {}).items() if img is not None}
        if images:  # statistics over a dataset read without video have none
            converted = {slot: to_uint8_hwc(image, self._camera_label(slot)) for slot, image in images.items()}
            template = next(iter(converted.values()))
            out["image"], out["image_mask"] = {}, {}
            for slot in _model.IMAGE_KEYS:
                present = slot in converted
                out["image"][slot] = converted[slot] if present else np.zeros_like(template)
                out["image_mask"][slot] = np.bool_(present)
        if "actions" in data:
            out["actions"] = np.asarray(data["actions"], dtype=np.float32)
        if "prompt" in data:
            out["prompt"] = data["prompt"]
        return out


@dataclasses.dataclass(frozen=True)
class LeRobotOutputs:
    """Model output → robot action: the first ``action_dim`` of the padded action dims."""

    action_dim: int

    def __call__(self, data: dict) -> dict:
        return {"actions": np.asarray(data["actions"])[..., : self.action_dim]}
