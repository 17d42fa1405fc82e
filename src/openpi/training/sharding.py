"""Device mesh and FSDP sharding for the JAX trainer.

The mesh has axes ``("batch", "fsdp")``: the batch is split over all devices, and each large parameter is
split along one of its dims over the ``fsdp`` axis (ZeRO-3 style); small arrays are replicated.
"""

import jax
import numpy as np

BATCH_AXES = ("batch", "fsdp")


def make_mesh(fsdp_devices: int) -> jax.sharding.Mesh:
    """A ``(num_devices / fsdp_devices, fsdp_devices)`` mesh over all devices."""
    devices = jax.devices()
    if fsdp_devices < 1 or len(devices) % fsdp_devices:
        raise ValueError(f"fsdp_devices={fsdp_devices} must divide the number of devices ({len(devices)}).")
    grid = np.asarray(devices).reshape(len(devices) // fsdp_devices, fsdp_devices)
    return jax.sharding.Mesh(grid, ("batch", "fsdp"))


def data_sharding(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
    """Leading (batch) dim split over every device."""
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(BATCH_AXES))


def replicated(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def fsdp_sharding(tree, mesh: jax.sharding.Mesh, *, min_size: int = 2**12):
    """Per leaf: split the largest dim divisible by the fsdp size over ``fsdp``; replicate small leaves."""
    fsdp = mesh.shape["fsdp"]

    def leaf_sharding(leaf):
        shape = getattr(leaf, "shape", ())
        if fsdp == 1 or len(shape) < 2 or int(np.prod(shape)) < min_size:
            return replicated(mesh)
        for axis in np.argsort(shape)[::-1]:
            if shape[axis] % fsdp == 0:
                spec = [None] * len(shape)
                spec[axis] = "fsdp"
                return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))
        return replicated(mesh)

    return jax.tree.map(leaf_sharding, tree)
