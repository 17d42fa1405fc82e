"""Learning-rate schedule and the JAX optimizer (AdamW with global-norm clipping), openpi's defaults.

The schedule is one formula for both trainers: optax evaluates it inside the jitted JAX step and the PyTorch
trainer calls ``learning_rate(schedule, step)`` with a Python int.
"""

import jax.numpy as jnp
import numpy as np
import optax

from openpi.training import config as _config


def check_schedule(schedule: _config.LRSchedule) -> None:
    """Raises ``ValueError`` naming the option when the schedule cannot train: a zero, negative or non-finite
    ``peak_lr``, a negative or non-finite ``decay_lr``, or negative step counts."""
    bad = []
    if not (np.isfinite(schedule.peak_lr) and schedule.peak_lr > 0):
        bad.append(f"--lr-schedule.peak-lr={schedule.peak_lr} must be a positive number")
    if not (np.isfinite(schedule.decay_lr) and schedule.decay_lr >= 0):
        bad.append(f"--lr-schedule.decay-lr={schedule.decay_lr} must be >= 0")
    if schedule.warmup_steps < 0:
        bad.append(f"--lr-schedule.warmup-steps={schedule.warmup_steps} must be >= 0")
    if schedule.decay_steps is not None and schedule.decay_steps < 1:
        bad.append(f"--lr-schedule.decay-steps={schedule.decay_steps} must be >= 1 (or unset: the run's length)")
    if bad:
        raise ValueError("; ".join(bad) + ".")


def learning_rate(schedule: _config.LRSchedule, step, xp=np):
    """Linear warmup from ``peak/(warmup+1)`` to ``peak``, then cosine decay to ``decay_lr`` at ``decay_steps``.

    ``xp`` is ``numpy`` for a Python step (PyTorch trainer) or ``jax.numpy`` for a traced one (optax).
    """
    init = schedule.peak_lr / (schedule.warmup_steps + 1)
    warm = init + (schedule.peak_lr - init) * step / max(schedule.warmup_steps, 1)
    span = max(schedule.decay_steps - schedule.warmup_steps, 1)
    progress = xp.minimum(xp.maximum(step - schedule.warmup_steps, 0), span) / span
    cosine = schedule.decay_lr + (schedule.peak_lr - schedule.decay_lr) * 0.5 * (1.0 + xp.cos(np.pi * progress))
    return xp.where(step < schedule.warmup_steps, warm, cosine)


def create_optimizer(config: _config.OptimizerConfig, schedule: _config.LRSchedule, weight_decay_mask=None):
    """AdamW on the trainable params, after clipping the global gradient norm."""
    return optax.chain(
        optax.clip_by_global_norm(config.clip_gradient_norm),
        optax.adamw(
            lambda step: learning_rate(schedule, step, xp=jnp),
            b1=config.b1,
            b2=config.b2,
            eps=config.eps,
            weight_decay=config.weight_decay,
            mask=weight_decay_mask,
        ),
    )
