"""Image preprocessing of the PyTorch pi0 twin: resize-with-pad and the train-time augmentation of the JAX model
(``openpi.models.model.preprocess_observation``), on channels-last float images in [-1, 1]."""

from collections.abc import Sequence
import math

import torch
import torch.nn.functional as F


def resize_with_pad(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of [B, H, W, C] images keeping the aspect ratio, padded with -1 (black) to the size."""
    cur_h, cur_w = images.shape[-3:-1]
    if (cur_h, cur_w) == (height, width):
        return images
    ratio = max(cur_h / height, cur_w / width)
    new_h, new_w = int(cur_h / ratio), int(cur_w / ratio)
    resized = F.interpolate(
        images.permute(0, 3, 1, 2), size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
    )
    pad_h, pad_w = height - new_h, width - new_w
    padded = F.pad(resized, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=-1.0)
    return padded.permute(0, 2, 3, 1)


Generators = Sequence[torch.Generator] | None


def _uniform(batch: int, low: float, high: float, like: torch.Tensor, generators: Generators = None) -> torch.Tensor:
    """[B, 1, 1, 1] uniform draws: one from each image's generator, or from torch's global generator."""
    if generators is None:
        return torch.empty(batch, 1, 1, 1, device=like.device, dtype=like.dtype).uniform_(low, high)
    draws = torch.stack([torch.empty(()).uniform_(low, high, generator=g) for g in generators])
    return draws.reshape(batch, 1, 1, 1).to(device=like.device, dtype=like.dtype)


def _random_crop_resize(x: torch.Tensor, scale: float = 0.95, generators: Generators = None) -> torch.Tensor:
    """Per image, a random ``scale``-sized crop resized back to the full size ([B, C, H, W] in [0, 1])."""
    _, _, h, w = x.shape
    ch, cw = int(h * scale), int(w * scale)
    out = []
    for i, image in enumerate(x):
        gen = None if generators is None else generators[i]
        y0 = int(torch.randint(0, h - ch + 1, (), generator=gen))
        x0 = int(torch.randint(0, w - cw + 1, (), generator=gen))
        crop = image[None, :, y0 : y0 + ch, x0 : x0 + cw]
        out.append(F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False))
    return torch.cat(out)


def _random_rotate(x: torch.Tensor, max_degrees: float = 5.0, generators: Generators = None) -> torch.Tensor:
    """Per image, a rotation about the centre by up to ``max_degrees``; edges replicated ([B, C, H, W])."""
    degrees = _uniform(x.shape[0], -max_degrees, max_degrees, x.float(), generators).reshape(-1)
    angle = degrees * (math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _color_jitter(
    x: torch.Tensor, brightness=0.3, contrast=0.4, saturation=0.5, generators: Generators = None
) -> torch.Tensor:
    """Per image brightness, contrast and saturation factors, then clipped to [0, 1] ([B, C, H, W])."""
    luma = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)[None, :, None, None]
    b = x.shape[0]
    x = x * _uniform(b, 1 - brightness, 1 + brightness, x, generators)
    mean = (x * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = (x - mean) * _uniform(b, 1 - contrast, 1 + contrast, x, generators) + mean
    gray = (x * luma).sum(1, keepdim=True)
    x = (x - gray) * _uniform(b, 1 - saturation, 1 + saturation, x, generators) + gray
    return x.clamp(0.0, 1.0)


def augment_images(images: torch.Tensor, *, geometric: bool, generators: Generators = None) -> torch.Tensor:
    """Train-time augmentation of [B, H, W, 3] images in [-1, 1]: crop + rotate (if ``geometric``; the JAX model
    skips it for wrist cameras), then colour jitter. ``generators`` (one CPU generator per image) make the draws
    reproducible per sample, e.g. across a resume or a DDP split; None draws from torch's global generator."""
    x = (images.permute(0, 3, 1, 2) + 1.0) / 2.0
    if geometric:
        x = _random_rotate(_random_crop_resize(x, generators=generators), generators=generators)
    return (_color_jitter(x, generators=generators) * 2.0 - 1.0).permute(0, 2, 3, 1)
