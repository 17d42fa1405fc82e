"""The server on the 2-step JAX demo checkpoint: openpi's protocol through the real openpi-client package (run
in its own numpy<2 interpreter, ``.venv-client``), and BEHAVIOR's protocol through a client written here from
OmniGibson's ``network_utils`` (health check, metadata, torch-tensor frames, reset without reply)."""

import itertools
import logging
import math
import os
import pathlib
import subprocess
import urllib.request

import msgpack
import numpy as np
import pytest
import torch
from websockets.sync import client as ws_client

from openpi.datasets import lerobot
from openpi.policies import policy_config
from openpi.serving import behavior
from openpi.serving import chunking
from openpi.serving import msgpack_numpy
from openpi.serving import websocket_server

REPO = pathlib.Path(__file__).parents[2]
CLIENT_PYTHON = pathlib.Path(os.environ.get("OPENPI_CLIENT_PYTHON", REPO / ".venv-client" / "bin" / "python"))
REPLAN = 10
MODES = {
    "receding": chunking.ChunkingConfig(mode="receding", replan_every=REPLAN),
    "ensemble": chunking.ChunkingConfig(mode="ensemble", replan_every=REPLAN, ensemble_decay=0.1),
    "prefix": chunking.ChunkingConfig(mode="prefix", replan_every=REPLAN, prefix_hard=2, prefix_soft=True),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def frames(mini_v21):
    dataset = lerobot.LeRobotDataset(root=mini_v21)
    keys = [*behavior.CAMERA_LINKS, "observation.state", "task", "task_index"]
    return [{k: dataset[i][k] for k in keys} for i in (5, 70, 130, 190)]


@pytest.fixture(scope="module")
def policy(jax_demo_checkpoint):
    return policy_config.create_trained_policy(jax_demo_checkpoint, jax_demo_checkpoint.checkpoint_dir)


@pytest.fixture(scope="module")
def ports(policy, mini_v21):
    observations = behavior.BehaviorObservations(behavior.load_task_prompts(mini_v21))
    servers = [websocket_server.PolicyServer(policy, protocol="openpi", host="127.0.0.1", port=0)]
    servers += [
        websocket_server.PolicyServer(
            policy, protocol="behavior", host="127.0.0.1", port=0, chunking=config, observations=observations
        )
        for config in MODES.values()
    ]
    with websocket_server.running(*servers) as bound:
        yield dict(zip(["openpi", *MODES], bound))


def sample(frame):
    return {k: v for k, v in frame.items() if k != "task_index"}


def test_openpi_client_gets_metadata_raw_chunks_batches_and_errors(ports, policy, frames, tmp_path):
    assert CLIENT_PYTHON.exists(), (
        f"No openpi-client interpreter at {CLIENT_PYTHON}: `make test` builds .venv-client; by hand: "
        "python3 -m venv .venv-client && .venv-client/bin/pip install openpi-client==0.1.2"
    )
    obs, other = sample(frames[0]), sample(frames[1])
    (tmp_path / "requests").write_bytes(msgpack_numpy.packb({"obs": obs, "other": other}))
    subprocess.run(
        [str(CLIENT_PYTHON), str(pathlib.Path(__file__).parent / "_openpi_client_session.py"), str(ports["openpi"]),
         str(tmp_path / "requests"), str(tmp_path / "replies")],
        check=True, timeout=300,
    )  # fmt: skip
    replies = msgpack_numpy.unpackb((tmp_path / "replies").read_bytes())
    assert replies["metadata"]["checkpoint"] == policy.metadata["checkpoint"]
    assert replies["metadata"]["action_horizon"] == policy.action_horizon
    expected = policy.infer(obs)["actions"]
    assert expected.shape == (policy.action_horizon, 23)
    for name in ("first", "second", "after_error"):
        np.testing.assert_allclose(replies[name]["actions"], expected, atol=1e-5, err_msg=name)
    assert replies["first"]["policy_timing"]["infer_ms"] > 0 and "prev_total_ms" not in replies["first"]["server_timing"]
    assert replies["second"]["server_timing"]["prev_total_ms"] > 0
    batch = policy.infer_batch([obs, other])["actions"]
    np.testing.assert_allclose(replies["batch"]["actions"], batch, atol=1e-5)
    assert "Traceback" in replies["error"] and "KeyError" in replies["error"]
    assert replies["close_code"] == 1011


def behavior_obs(frame):
    """An OmniGibson evaluator observation: RGBA uint8 tensors, proprio tensor, task_id int64 tensor [1]."""
    obs = {}
    for key, link in behavior.CAMERA_LINKS.items():
        rgb = np.asarray(frame[key])
        rgb = np.transpose(rgb, (1, 2, 0)) if rgb.shape[0] == 3 else rgb
        rgb = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
        obs[behavior.camera_key(link)] = torch.from_numpy(np.concatenate([rgb, np.full_like(rgb[..., :1], 255)], -1))
    obs["robot_r1::proprio"] = torch.from_numpy(np.asarray(frame["observation.state"], np.float32))
    obs["task_id"] = torch.tensor([int(frame["task_index"])], dtype=torch.int64)
    return obs


def pack_like_omnigibson(obj):
    """OmniGibson's encoder: tensors as ``__torch__`` maps with the dtype's name."""
    if isinstance(obj, torch.Tensor):
        array = obj.numpy()
        return {b"__torch__": True, b"data": array.tobytes(), b"dtype": array.dtype.name, b"shape": tuple(obj.shape)}
    return obj


def rtc_weights(overlap, hard):
    return np.array([1.0 if i < hard else (c := (overlap - i) / (overlap - hard + 1)) * (math.exp(c) - 1) / (math.e - 1)
                     for i in range(overlap)], np.float32)  # fmt: skip


def expected_actions(mode, policy, inputs):
    """Per-step actions computed here from ``Policy.infer`` for a step sequence of policy inputs, and every
    (start step, chunk) queried."""
    horizon, config = policy.action_horizon, MODES[mode]
    chunks, actions, history = [], [], []  # chunks: the live (start step, chunk) pairs
    for t, obs in enumerate(inputs):
        if t % REPLAN == 0:
            if mode == "prefix" and chunks:
                start, previous = chunks[-1]
                rest = previous[t - start :]
                chunk = policy.infer(obs, prefix=rest, prefix_weights=rtc_weights(len(rest), config.prefix_hard))
                chunks = [(t, chunk["actions"])]
            elif mode == "ensemble":
                chunks.append((t, policy.infer(obs)["actions"]))
            else:
                chunks = [(t, policy.infer(obs)["actions"])]
            history.append(chunks[-1])
        live = [(s, c) for s, c in chunks if t - s < horizon]
        w = np.exp(-config.ensemble_decay * np.arange(len(live))) if mode == "ensemble" else np.array([1.0])
        live = live if mode == "ensemble" else live[-1:]
        actions.append(sum(wi * c[t - s] for wi, (s, c) in zip(w, live)) / w.sum())
    return np.stack(actions), history


@pytest.mark.parametrize("mode", list(MODES))
def test_behavior_client_steps_through_the_chunks(mode, ports, policy, frames, mini_v21, caplog):
    port = ports[mode]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        assert response.status == 200 and response.read() == b"OK\n"
    prompts = behavior.load_task_prompts(mini_v21)
    steps = 2 * policy.action_horizon
    schedule = [frames[(t // REPLAN) % len(frames)] for t in range(steps)]  # the scene changes at every replan
    inputs = [{**sample(f), "task": prompts[int(f["task_index"])]} for f in schedule]
    expected, history = expected_actions(mode, policy, inputs)
    with caplog.at_level(logging.INFO, logger="openpi.serving"):
        with ws_client.connect(
            f"ws://127.0.0.1:{port}", compression=None, max_size=None, ping_interval=60, ping_timeout=300
        ) as ws:
            metadata = msgpack.unpackb(ws.recv(), strict_map_key=False)
            assert metadata["protocol"] == "behavior" and metadata["chunking"]["mode"] == mode
            ws.send(msgpack.packb({"reset": True}))  # no reply
            actions = []
            for frame in schedule:
                ws.send(msgpack.packb(behavior_obs(frame), default=pack_like_omnigibson))
                reply = msgpack_numpy.unpackb(ws.recv())
                assert reply["server_timing"]["infer_ms"] > 0
                actions.append(reply["action"])
            ws.send(msgpack.packb({"reset": True}))
            ws.send(msgpack.packb(behavior_obs(schedule[-1]), default=pack_like_omnigibson))
            after_reset = msgpack_numpy.unpackb(ws.recv())["action"]
    actions = np.stack(actions)
    assert actions.shape == (steps, 23)
    np.testing.assert_allclose(actions, expected, atol=1e-4)
    np.testing.assert_allclose(after_reset, policy.infer(inputs[-1])["actions"][0], atol=1e-4)  # fresh episode
    if mode == "prefix":  # the committed rows carry over: at every replan the next actions are the old chunk's
        for (start, previous), (t, _) in itertools.pairwise(history):
            hard = MODES[mode].prefix_hard
            np.testing.assert_allclose(actions[t : t + hard], previous[t - start : t - start + hard], atol=1e-4)
    assert "episode 1 of" in caplog.text and "(reset): 100 requests, 10 policy calls" in caplog.text


def test_behavior_errors_name_the_missing_key(ports):
    with ws_client.connect(f"ws://127.0.0.1:{ports['receding']}", compression=None, max_size=None) as ws:
        ws.recv()
        ws.send(msgpack.packb({"robot_r1::proprio": np.zeros(3).tolist(), "task_id": 0}))
        error = ws.recv()
        assert isinstance(error, str) and "robot_r1::robot_r1:zed_link:Camera:0::rgb" in error
        with pytest.raises(Exception) as closed:
            ws.recv()
        assert closed.value.rcvd.code == 1011
