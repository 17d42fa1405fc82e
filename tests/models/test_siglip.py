"""SigLIP variants: big_vision sizes, one token per patch, the same parameter names at every size."""

import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from openpi.models import siglip


def _param_shapes(variant: str, image_size: int, num_classes: int = 48) -> dict:
    module = siglip.Module(num_classes=num_classes, variant=variant)
    image = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
    params = jax.eval_shape(module.init, jax.random.key(0), image)["params"]
    return {k: v.shape for k, v in traverse_util.flatten_dict(params, sep="/").items()}


def test_variants_share_parameter_names_and_follow_the_size_table():
    small = _param_shapes("mu/16", 32)
    large = _param_shapes("So400m/14", 224)
    assert small.keys() == large.keys()
    assert large["pos_embedding"] == (1, 256, 1152)
    assert large["Transformer/encoderblock/MlpBlock_0/Dense_0/kernel"] == (27, 1152, 4304)
    assert large["Transformer/encoderblock/MultiHeadDotProductAttention_0/query/kernel"] == (27, 1152, 16, 72)
    assert small["embedding/kernel"] == (16, 16, 3, 32)
    assert small["head/kernel"] == (32, 48)
    assert siglip.decode_variant("B/16") == {"width": 768, "depth": 12, "mlp_dim": 3072, "num_heads": 12, "patch": 16}


def test_every_patch_becomes_a_token():
    module = siglip.Module(num_classes=48, variant="mu/16")
    images = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 32, 48, 3)), jnp.float32)
    params = module.init(jax.random.key(0), images)
    tokens = module.apply(params, images)
    assert tokens.shape == (2, 2 * 3, 48)
    # Tokens depend on the image content (no pooling, no constant output).
    assert not np.allclose(tokens[0], tokens[1])


@pytest.mark.parametrize("variant", ["So400m", "XL/14", "mu/x"])
def test_bad_variant_names_the_format(variant):
    with pytest.raises(ValueError, match="NAME/PATCH"):
        siglip.decode_variant(variant)
