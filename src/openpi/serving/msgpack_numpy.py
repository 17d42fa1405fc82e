"""msgpack with numpy arrays, the wire format of openpi-client and of OmniGibson's ``network_utils``.

Arrays travel as maps ``{b"__ndarray__": True, b"data": raw bytes, b"dtype": dtype.str, b"shape": shape}``, numpy
scalars as ``{b"__npgeneric__": True, b"data": item, b"dtype": dtype.str}``. OmniGibson also sends torch tensors as
``{b"__torch__": True, b"data", b"dtype": name such as "float32", b"shape"}``; they decode to numpy arrays here (the
policy runs on numpy). Object, void and complex dtypes are refused: no pickle, nothing executable on the wire.
"""

from __future__ import annotations

import functools
from typing import Any

import msgpack
import numpy as np

_REFUSED_KINDS = ("O", "V", "c")


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind in _REFUSED_KINDS:
        raise ValueError(f"Cannot send dtype {obj.dtype} (object, void and complex arrays are refused).")
    if isinstance(obj, np.ndarray):
        obj = np.ascontiguousarray(obj)
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    if type(obj).__module__ == "torch" and type(obj).__name__ == "Tensor":  # no torch import for numpy-only users
        array = obj.detach().cpu().float().numpy() if str(obj.dtype) == "torch.bfloat16" else obj.detach().cpu().numpy()
        return {b"__torch__": True, b"data": array.tobytes(), b"dtype": array.dtype.name, b"shape": array.shape}
    return obj


def _decode(obj: dict) -> Any:
    if b"__ndarray__" in obj or b"__torch__" in obj:
        dtype = np.dtype(obj[b"dtype"])
        if dtype.kind in _REFUSED_KINDS:
            raise ValueError(f"Refusing an array of dtype {dtype} (object, void and complex arrays are refused).")
        return np.ndarray(buffer=obj[b"data"], dtype=dtype, shape=tuple(obj[b"shape"]))
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


packb = functools.partial(msgpack.packb, default=_encode)
# strict_map_key=False: OmniGibson observations may use non-string map keys.
unpackb = functools.partial(msgpack.unpackb, object_hook=_decode, strict_map_key=False)
