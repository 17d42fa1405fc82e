"""The wire format, checked against hand-built frames in openpi's and OmniGibson's layouts."""

import msgpack
import numpy as np
import pytest
import torch

from openpi.serving import msgpack_numpy


def test_arrays_scalars_and_tensors_round_trip():
    data = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.int64(7), "s": "text", "t": torch.ones(2, 2)}
    back = msgpack_numpy.unpackb(msgpack_numpy.packb(data))
    np.testing.assert_array_equal(back["a"], data["a"])
    assert back["a"].dtype == np.float32 and back["n"] == 7 and back["n"].dtype == np.int64 and back["s"] == "text"
    np.testing.assert_array_equal(back["t"], np.ones((2, 2), np.float32))


def test_decodes_the_documented_layouts():
    image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    frame = msgpack.packb({
        "img": {b"__ndarray__": True, b"data": image.tobytes(), b"dtype": image.dtype.str, b"shape": image.shape},
        "x": {b"__npgeneric__": True, b"data": 1.5, b"dtype": "<f4"},
        "tid": {b"__torch__": True, b"data": np.int64([3]).tobytes(), b"dtype": "int64", b"shape": (1,)},
        5: "int key",  # OmniGibson unpacks with strict_map_key=False
    })
    back = msgpack_numpy.unpackb(frame)
    np.testing.assert_array_equal(back["img"], image)
    assert back["x"] == np.float32(1.5) and back["tid"].tolist() == [3] and back[5] == "int key"
    packed = msgpack.unpackb(msgpack_numpy.packb({"a": image}))["a"]
    assert packed[b"__ndarray__"] and packed[b"dtype"] == "|u1" and packed[b"shape"] == [2, 4, 3]


def test_object_void_complex_are_refused():
    for bad in (np.array([object()]), np.zeros(2, np.complex64), np.zeros(1, "V4")):
        with pytest.raises(ValueError, match="refused"):
            msgpack_numpy.packb({"x": bad})
    frame = msgpack.packb({b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "|O", b"shape": (1,)})
    with pytest.raises(ValueError, match="Refusing"):
        msgpack_numpy.unpackb(frame)
