"""Runs in the openpi-client interpreter (numpy<2, no openpi): one session against a running server.

argv: port, request file, reply file (both msgpack'd with openpi_client.msgpack_numpy)."""

import pathlib
import sys

import numpy as np
from openpi_client import msgpack_numpy
from openpi_client import websocket_client_policy
import websockets

port, requests_path, replies_path = int(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
requests = msgpack_numpy.unpackb(requests_path.read_bytes())
client = websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=port)
replies = {"metadata": client.get_server_metadata()}
replies["first"] = client.infer(requests["obs"])
replies["second"] = client.infer(requests["obs"])
replies["batch"] = client.infer({"batch": [requests["obs"], requests["other"]]})
try:
    client.infer({"observation.state": np.zeros(3, np.float32)})  # malformed: no cameras, wrong state size
    replies["error"] = ""
except RuntimeError as error:
    replies["error"] = str(error)
try:
    client._ws.recv()
except websockets.ConnectionClosed as closed:
    replies["close_code"] = closed.rcvd.code
replies["after_error"] = websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=port).infer(
    requests["obs"]
)
replies_path.write_bytes(msgpack_numpy.packb(replies))
