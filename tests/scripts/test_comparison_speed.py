"""The roofline's FLOP count (benchmarks/comparison_speed.py) against FLOPs derived by hand."""

import importlib.util
import pathlib
import sys

import jax
import jax.numpy as jnp


def load_benchmark():
    path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "comparison_speed.py"
    spec = importlib.util.spec_from_file_location("comparison_speed", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_matmul_flops_counts_every_scan_iteration_and_convolutions():
    bench = load_benchmark()
    weights = jnp.ones((3, 5, 6))  # three layers, scanned

    def layers(x):
        y, _ = jax.lax.scan(lambda h, w: (jnp.tanh(h @ w[:, :5]), None), x, weights)
        return jax.jit(lambda a: a @ jnp.ones((5, 7)))(y)  # a product inside a nested jit

    x = jnp.ones((4, 5))
    # Each layer: [4, 5] x [5, 5] = 2 * 4 * 5 * 5 FLOPs; then [4, 5] x [5, 7].
    assert bench.matmul_flops(jax.make_jaxpr(layers)(x).jaxpr) == 3 * 2 * 4 * 5 * 5 + 2 * 4 * 7 * 5

    image, kernel = jnp.ones((2, 3, 8, 8)), jnp.ones((16, 3, 2, 2))  # NCHW, OIHW, stride 2 -> [2, 16, 4, 4]
    conv = jax.make_jaxpr(lambda i: jax.lax.conv(i, kernel, (2, 2), "VALID"))(image).jaxpr
    # Every output element multiplies and adds 3 * 2 * 2 kernel entries.
    assert bench.matmul_flops(conv) == 2 * (2 * 16 * 4 * 4) * (3 * 2 * 2)
