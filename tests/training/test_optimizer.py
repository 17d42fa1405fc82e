import jax.numpy as jnp
import numpy as np
import optax

from openpi.training import config as _config
from openpi.training import optimizer


def test_schedule_matches_optax_and_is_the_same_in_numpy_and_jax():
    schedule = _config.LRSchedule(warmup_steps=10, peak_lr=1e-3, decay_steps=100, decay_lr=1e-4)
    reference = optax.warmup_cosine_decay_schedule(
        init_value=1e-3 / 11, peak_value=1e-3, warmup_steps=10, decay_steps=100, end_value=1e-4
    )
    for step in [0, 1, 5, 9, 10, 11, 50, 99, 100, 150]:
        expected = float(reference(step))
        assert abs(float(optimizer.learning_rate(schedule, step)) - expected) < 1e-9 * max(1.0, expected / 1e-6)
        assert abs(float(optimizer.learning_rate(schedule, jnp.asarray(step), xp=jnp)) - expected) < 1e-9
    assert float(optimizer.learning_rate(schedule, 10)) == 1e-3
    np.testing.assert_allclose(float(optimizer.learning_rate(schedule, 1000)), 1e-4)
