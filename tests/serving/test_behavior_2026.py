"""The BEHAVIOR server and the 2026 evaluator's protocol, through a client written from the issue's facts
(OmniGibson ``eval/utils/network_utils.py``, tag v3.9.3): ``/healthz`` first; chunk requests carrying
``__action_chunk_size__: K`` answered with ``action`` and ``action_chunk`` [K, 23], ``action == action_chunk[0]``
exactly (else the client raises); the client replays the chunk, then asks again; ``reset`` gets no reply; a server
without ``action_chunk`` gets a warning and one request per step. Optional ``::depth_linear`` images ride along."""

import contextlib
import json
import pathlib
import runpy
import sys
import urllib.request
import warnings

import msgpack
import numpy as np
import pytest
import torch
from websockets.sync import client as ws_client

from openpi.datasets import lerobot
from openpi.datasets import mini_b1k
from openpi.datasets import mini_b1k_episode
from openpi.datasets import read_columns
from openpi.policies import policy_config
from openpi.serving import behavior
from openpi.serving import chunking
from openpi.serving import msgpack_numpy
from openpi.serving import websocket_server
from openpi.training import b1k_2026_configs
from openpi.training import config as _config

K = 10
QUERY_TIMEOUT_S = 600  # the evaluator's limit per action query

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pack(obj):
    """OmniGibson's encoder: torch tensors as ``__torch__`` maps with the dtype's name."""
    if isinstance(obj, torch.Tensor):
        array = obj.numpy()
        return {b"__torch__": True, b"data": array.tobytes(), b"dtype": array.dtype.name, b"shape": tuple(obj.shape)}
    return obj


class EvaluatorClient(contextlib.ExitStack):
    """The 2026 evaluator's client: per step ``act(obs)``; a chunk of ``chunk_size`` actions per request."""

    def __init__(self, port: int, chunk_size: int):
        super().__init__()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200 and response.read() == b"OK\n"
        url = f"ws://127.0.0.1:{port}"
        self._ws = self.enter_context(ws_client.connect(url, compression=None, max_size=None, ping_interval=None))
        self.metadata = msgpack.unpackb(self._ws.recv(timeout=QUERY_TIMEOUT_S), strict_map_key=False)
        self.chunk_size, self.requests, self.chunks, self._pending = chunk_size, 0, [], []
        self.one_step_fallbacks = 0

    def reset(self) -> None:
        self._ws.send(msgpack.packb({"reset": True}))
        self._pending = []

    def request(self, obs: dict, chunk_size: int | None) -> dict | str:
        """One query: the reply dict, or the server's error text frame."""
        extra = {} if chunk_size is None else {behavior.ACTION_CHUNK_SIZE_KEY: chunk_size}
        self._ws.send(msgpack.packb({**obs, **extra}, default=_pack))
        self.requests += 1
        message = self._ws.recv(timeout=QUERY_TIMEOUT_S)
        return message if isinstance(message, str) else msgpack_numpy.unpackb(message)

    def act(self, obs: dict) -> np.ndarray:
        if not self._pending:
            reply = self.request(obs, self.chunk_size)
            if isinstance(reply, str):
                raise RuntimeError(reply)
            if "action_chunk" not in reply:
                warnings.warn("The server sent no action_chunk: one request per step.", stacklevel=2)
                self.one_step_fallbacks += 1
                return reply["action"]
            chunk = reply["action_chunk"]
            if chunk.shape != (self.chunk_size, 23) or not np.array_equal(reply["action"], chunk[0]):
                raise ValueError(f"Bad chunk reply: action_chunk {chunk.shape}, action == action_chunk[0] failed.")
            self.chunks.append(chunk)
            self._pending = list(chunk)
        return self._pending.pop(0)



def evaluator_obs(frame: dict, proprio: np.ndarray, depth: bool) -> dict:
    """An evaluator observation of a dataset frame: RGBA tensors per camera (and depth), proprio, task_id."""
    obs = {}
    for key, link in behavior.CAMERA_LINKS.items():
        rgb = np.asarray(frame[key])
        obs[behavior.camera_key(link)] = torch.from_numpy(np.concatenate([rgb, np.full_like(rgb[..., :1], 255)], -1))
        if depth:
            obs[behavior.camera_key(link)[: -len("rgb")] + "depth_linear"] = torch.rand(rgb.shape[:2])
    obs[behavior.proprio_key()] = torch.from_numpy(np.asarray(proprio, np.float32))
    obs[behavior.TASK_ID_KEY] = torch.tensor([int(frame["task_index"])], dtype=torch.int64)
    return obs


def run_episode(port, frames, proprio_of, prompts, policy, depth: bool, chunk_size: int = K) -> np.ndarray:
    """Drives one episode of ``len(frames) * chunk_size`` steps (the scene changes at every request) and checks every chunk
    against ``policy.infer`` on the same inputs; then reset and one more chunk from a fresh executor. Returns the
    executed actions."""
    with EvaluatorClient(port, chunk_size) as client:
        assert client.metadata["protocol"] == "behavior" and client.metadata["max_action_chunk_size"] >= chunk_size
        client.reset()  # no reply: the next message received is the first chunk
        scene = [frames[t // chunk_size] for t in range(len(frames) * chunk_size)]
        actions = [client.act(evaluator_obs(f, proprio_of(f), depth)) for f in scene]
        assert client.requests == len(frames) and len(client.chunks) == len(frames)
        for frame, chunk in zip(frames, client.chunks, strict=True):
            inputs = {k: frame[k] for k in behavior.CAMERA_LINKS} | {
                "observation.state": proprio_of(frame),
                "task": prompts[int(frame["task_index"])],
            }
            np.testing.assert_allclose(chunk, policy.infer(inputs)["actions"][:chunk_size], atol=1e-4)
        np.testing.assert_array_equal(np.stack(actions), np.concatenate(client.chunks))  # the replayed chunks
        client.reset()
        client.act(evaluator_obs(frames[0], proprio_of(frames[0]), depth))
        np.testing.assert_allclose(client.chunks[-1], client.chunks[0], atol=1e-5)  # fresh episode, same scene
        assert client.one_step_fallbacks == 0  # the server answered every request with a chunk
        return np.stack(actions)


def state_2026(frame: dict) -> np.ndarray:
    """The 2026 evaluator's 61-dim proprio of a miniature 2025 frame (same quantities, other layout)."""
    return mini_b1k_episode.proprio_2026(np.asarray(frame["observation.state"])[None])[0]


@pytest.fixture(scope="module")
def served(jax_demo_checkpoint, mini_v21):
    policy = policy_config.create_trained_policy(jax_demo_checkpoint, jax_demo_checkpoint.checkpoint_dir)
    prompts = behavior.load_task_prompts(mini_v21)
    server = websocket_server.PolicyServer(
        policy,
        protocol="behavior",
        host="127.0.0.1",
        port=0,
        chunking=chunking.ChunkingConfig(mode="receding", replan_every=K),
        observations=behavior.BehaviorObservations(prompts),
    )
    dataset = lerobot.LeRobotDataset(root=mini_v21)
    frames = [{k: dataset[i][k] for k in [*behavior.CAMERA_LINKS, "observation.state", "task_index"]} for i in (5, 130)]
    with websocket_server.running(server) as (port,):
        yield port, policy, prompts, frames


def test_chunks_for_the_2026_and_the_2025_proprio(served):
    port, policy, prompts, frames = served
    new = run_episode(port, frames, state_2026, prompts, policy, depth=True)
    old = run_episode(port, frames, lambda f: f["observation.state"], prompts, policy, depth=False)
    np.testing.assert_allclose(new, old, atol=1e-5)  # one model state from either proprio


def test_one_step_requests_and_refused_chunk_sizes(served):
    port, policy, _, frames = served
    with EvaluatorClient(port, K) as client:
        obs = evaluator_obs(frames[0], state_2026(frames[0]), depth=True)
        reply = client.request(obs, None)  # the 2025 client: one action, no chunk
        assert reply["action"].shape == (23,) and "action_chunk" not in reply
        error = client.request(obs, policy.action_horizon + 1)
        assert isinstance(error, str) and f"must be an integer in [1, {policy.action_horizon}]" in error
        with pytest.raises(Exception) as closed:
            client._ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1011
    with EvaluatorClient(port, K) as client:  # the server keeps serving
        error = client.request(evaluator_obs(frames[0], np.zeros(60, np.float32), depth=False), K)
        assert isinstance(error, str) and "256 dims (2025 edition) or 61 dims (2026 edition), got 60" in error


REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG = "pi05_b1k_2026_arm_focused_demo"
HORIZON = 4  # short chunks keep the end-to-end run fast


def _run(script: str, args: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
    runpy.run_path(str(REPO / "scripts" / f"{script}.py"), run_name="__main__")


def _model_state(proprio: np.ndarray) -> np.ndarray:
    """The 23-dim R1Pro state written out from the issue's 61-dim order (independent of the library's tables)."""
    unit = lambda fingers: np.clip(fingers.sum(1, keepdims=True) / 0.1, 0, 1) * 2 - 1  # noqa: E731
    p = proprio
    return np.concatenate([p[:, 0:3], p[:, 53:57], p[:, 3:10], unit(p[:, 24:26]), p[:, 28:35], unit(p[:, 49:51])], 1)


@pytest.mark.slow
def test_2026_layout_end_to_end(tmp_path, monkeypatch, capsys):
    """A miniature 2026-layout dataset (v3.0, 61-dim proprio): norm stats, 3 steps with each trainer,
    eval_policy.py, and the server answering the 2026 client."""
    monkeypatch.chdir(tmp_path)
    root = mini_b1k.write_mini_b1k(
        mini_b1k.MiniB1KConfig(
            root=tmp_path / "mini_2026", version="v3.0", edition="2026", num_tasks=2, episodes_per_task=2,
            frames_per_episode=24, image_size=32, codec="h264", episodes_per_file=2,
        ),
        progress=False,
    )  # fmt: skip
    overrides = ["--data.root", str(root), "--model.action-horizon", str(HORIZON)]
    name = CONFIG

    _run("compute_norm_stats", ["--config-name", CONFIG, *overrides], monkeypatch)
    stats = json.loads((tmp_path / "assets" / name / b1k_2026_configs.DEMO_REPO_ID / "norm_stats.json").read_text())["norm_stats"]
    proprio = read_columns(root, ["observation.state"])["observation.state"]
    assert proprio.shape[1] == 61
    np.testing.assert_allclose(stats["state"]["mean"], _model_state(proprio).mean(0), rtol=1e-5, atol=1e-6)

    train = ["--batch-size", "2", "--num-train-steps", "3", "--save-interval", "3", "--log-interval", "1"]
    for script, weights in (("train", "params"), ("train_pytorch", "model.safetensors")):
        _run(script, [CONFIG, *overrides, *train, "--no-wandb-enabled", "--exp-name", script], monkeypatch)
        run_dir = tmp_path / "checkpoints" / name / script
        assert (run_dir / "3" / weights).exists(), script
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [1, 2, 3] and np.isfinite(metrics[-1]["loss"])

    checkpoint = tmp_path / "checkpoints" / name / "train_pytorch" / "3"
    args = ["--config-name", CONFIG, "--checkpoint", str(checkpoint), "--num-episodes", "1", "--output-dir", "eval"]
    _run("eval_policy", [*args, *overrides], monkeypatch)
    evaluated = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert len(evaluated["episodes"]) == 2 and evaluated["overall"]["base_velocity_rmse"] is not None
    capsys.readouterr()

    config = _config.get_config(CONFIG, overrides)
    policy = policy_config.create_trained_policy(config, checkpoint)
    prompts = behavior.load_task_prompts(root)  # the dataset's own task list maps the task ids
    server = websocket_server.PolicyServer(
        policy,
        protocol="behavior",
        host="127.0.0.1",
        port=0,
        chunking=chunking.ChunkingConfig(mode="receding", replan_every=HORIZON),
        observations=behavior.BehaviorObservations(prompts),
    )
    dataset = lerobot.LeRobotDataset(root=root)
    frames = [{k: dataset[i][k] for k in [*behavior.CAMERA_LINKS, "observation.state", "task_index"]} for i in (3, 60)]
    assert {int(f["task_index"]) for f in frames} == {0, 1}
    with websocket_server.running(server) as (port,):
        actions = run_episode(port, frames, lambda f: f["observation.state"], prompts, policy, depth=True,
                              chunk_size=HORIZON)  # fmt: skip
    assert actions.shape == (2 * HORIZON, 23) and np.isfinite(actions).all()
