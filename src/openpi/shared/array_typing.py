"""Shape-annotated array types for the model interfaces, written the way upstream openpi writes them (jaxtyping):
``Float[Array, "b ah ad"]`` reads "float array of shape [batch, action_horizon, action_dim]".

Annotations only: nothing checks them on the training or serving path, so a step pays nothing. jaxtyping checks
them on demand (``isinstance(x, Float[Array, "b ah ad"])``, inside ``jaxtyping.jaxtyped("context")`` to bind the
dimension names across arrays), which is what the interface tests do.

Dimension names: ``b`` batch, ``ah`` action horizon, ``ad`` action dim, ``s`` state dim or token sequence,
``h w c`` image height, width, channels, ``l`` prompt length, ``emb`` token width; ``*b`` any batch dims.
"""

from typing import TypeAlias

import jax
from jaxtyping import Bool
from jaxtyping import Float
from jaxtyping import Int

__all__ = ["Array", "Bool", "Float", "Int", "KeyArrayLike"]

Array: TypeAlias = jax.Array
KeyArrayLike: TypeAlias = jax.typing.ArrayLike  # a PRNG key (typed or raw uint32[2])
