"""Damaged files and malformed requests a user can produce: a string feature shape in ``info.json``, an episode
list written as a plain JSON list, a truncated metrics or episode-list file, a msgpack list or int sent to the
server, and images or a state the policy cannot read sent through the server. Each ends in one message that names
the file, key or field and what was expected (and the server keeps serving), never a traceback or a wrong answer."""

import json
import pathlib
import re

import msgpack
import numpy as np
import pytest
from websockets.sync import client as ws_client

from openpi.datasets import episode_files
from openpi.datasets import lerobot_meta
from openpi.policies import policy_config
from openpi.serving import behavior
from openpi.serving import msgpack_numpy
from openpi.serving import websocket_server
from openpi.training import config as _config
from openpi.training import preflight
from openpi.training import run_utils

# ---- meta/info.json: a feature shape written as a string -------------------------------------------------------


def _edit_info(root: pathlib.Path, edit) -> pathlib.Path:
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))
    return path


def test_a_string_feature_shape_names_file_feature_and_fix(dataset):
    path = _edit_info(dataset, lambda info: info["features"]["action"].update(shape="[23]"))
    with pytest.raises(lerobot_meta.DatasetFormatError) as error:
        lerobot_meta.LeRobotMetadata.load(dataset)
    message = str(error.value)
    assert str(path) in message and "'action'" in message and "'[23]'" in message
    assert '"shape": [23]' in message  # the fix: a JSON list of ints


@pytest.mark.parametrize("shape", [[23.0], [-1], [True], "23", [[23]]])
def test_other_bad_shapes_are_named(dataset, shape):
    _edit_info(dataset, lambda info: info["features"]["observation.state"].update(shape=shape))
    with pytest.raises(lerobot_meta.DatasetFormatError, match=r"feature 'observation\.state' has shape"):
        lerobot_meta.LeRobotMetadata.load(dataset)


def test_a_string_shape_stops_the_trainer_before_step_one(run, dataset):
    """Before: the data config swallowed ``int("]")`` (no action-dims check) and the loader's frame-size estimate
    died in ``np.prod`` on the string, a numpy traceback."""
    args, _ = run
    _edit_info(dataset, lambda info: info["features"]["action"].update(shape="[23]"))
    config = _config.cli(args)
    with pytest.raises(lerobot_meta.DatasetFormatError, match=r"info\.json: feature 'action' has shape '\[23\]'"):
        preflight.check_inputs(config, config.data_config(), progress=False)


# ---- episode lists ----------------------------------------------------------------------------------------------


def test_a_plain_list_of_episode_indices_is_accepted(tmp_path):
    """A list of ints says one thing only (LeRobot's own ``episodes=[...]``); the project's format adds provenance
    (criterion, per-episode details) that no reader needs to select episodes."""
    path = tmp_path / "episodes.json"
    path.write_text("[10, 12, 31]")
    assert episode_files.load_episode_list(path) == [10, 12, 31]


@pytest.mark.parametrize("content", ['["10", "12"]', "[10, 1.5]", "[10, true]", "[10, -1]", "[[10]]", '"10"', "10"])
def test_other_json_is_named_with_the_expected_format(tmp_path, content):
    path = tmp_path / "episodes.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=rf"{path} is not an episode list") as error:
        episode_files.load_episode_list(path)
    assert "openpi.episode_list" in str(error.value) and "[10, 12, 31]" in str(error.value)


def test_repeated_episodes_are_named(tmp_path):
    path = tmp_path / "episodes.json"
    path.write_text("[10, 12, 10]")
    with pytest.raises(ValueError, match=rf"{path} lists episode\(s\) \[10\] more than once"):
        episode_files.load_episode_list(path)


def test_a_truncated_episode_list_names_the_file(tmp_path):
    path = tmp_path / "episodes.json"
    path.write_text('{"format": "openpi.episode_list", "version": 1, "episodes": [10, 1')
    with pytest.raises(ValueError, match=rf"{path} is not valid JSON \(truncated\?\)"):
        episode_files.load_episode_list(path)


def test_a_plain_list_is_not_a_sample_weights_file(tmp_path):
    path = tmp_path / "weights.json"
    path.write_text("[1.0, 2.0]")
    with pytest.raises(ValueError, match=rf"{path} is not a openpi\.sample_weights file"):
        episode_files.load_sample_weights(path)


def test_a_plain_episode_list_selects_the_training_episodes(run, tmp_path):
    args, _ = run
    path = tmp_path / "mine.json"
    path.write_text("[10, 10020]")
    config = _config.cli([*args, f"--data.episodes-path={path}"])
    assert config.data_config().episodes == (10, 10020)
    preflight.check_inputs(config, config.data_config(), progress=False)  # the up-front check accepts it


# ---- metrics.jsonl ----------------------------------------------------------------------------------------------


def test_a_damaged_metrics_file_names_the_file_and_line(tmp_path):
    """A damaged line before good ones (a partial *last* line is the resume's to repair)."""
    path = tmp_path / run_utils.METRICS_FILE
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo\n{"step": 3, "loss": 0.3}\n')
    with pytest.raises(ValueError, match=rf"{path} line 2"):
        run_utils.truncate_metrics(tmp_path, 3)


def test_resume_repairs_a_partial_last_metrics_line_and_says_so(tmp_path, caplog):
    path = tmp_path / run_utils.METRICS_FILE
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n{"step": 3, "lo')
    with caplog.at_level("WARNING", logger="openpi"):
        run_utils.truncate_metrics(tmp_path, 3)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
    assert "dropped its damaged last line 3" in caplog.text


# ---- the server: requests that are not an observation dict, observations the policy cannot read ---------------


@pytest.fixture(scope="module")
def servers(jax_demo_checkpoint, mini_v21):
    """The session's 2-step demo checkpoint behind both protocols: ``{"openpi": port, "behavior": port}``."""
    policy = policy_config.create_trained_policy(jax_demo_checkpoint, jax_demo_checkpoint.checkpoint_dir)
    observations = behavior.BehaviorObservations(behavior.load_task_prompts(mini_v21))
    made = [
        websocket_server.PolicyServer(policy, protocol="openpi", host="127.0.0.1", port=0),
        websocket_server.PolicyServer(policy, protocol="behavior", host="127.0.0.1", port=0, observations=observations),
    ]
    with websocket_server.running(*made) as ports:
        yield dict(zip(["openpi", "behavior"], ports))


def _error_frame(port: int, frame) -> str:
    """Sends one frame on a fresh connection; returns the error text frame and checks the 1011 close."""
    with ws_client.connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as ws:
        metadata = msgpack_numpy.unpackb(ws.recv())
        assert "action_horizon" in metadata
        ws.send(frame)
        error = ws.recv(timeout=60)
        assert isinstance(error, str), "expected an error text frame"
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=60)
        assert closed.value.rcvd.code == 1011
    return error


@pytest.mark.parametrize("protocol", ["openpi", "behavior"])
@pytest.mark.parametrize("request_", [[1, 2, 3], 7, "obs", None])
def test_a_request_that_is_not_a_map_gets_an_error_saying_what_was_expected(servers, protocol, request_):
    error = _error_frame(servers[protocol], msgpack.packb(request_))
    assert f"A request must be a msgpack map (an observation dict), got {type(request_).__name__}" in error, error
    assert ("'batch'" if protocol == "openpi" else "'reset'") in error  # the other requests the protocol takes
    _error_frame(servers[protocol], msgpack.packb(5))  # the server kept serving


def test_a_text_frame_gets_an_error_saying_to_send_msgpack(servers):
    assert "A request must be a binary msgpack frame, got a text frame" in _error_frame(servers["openpi"], "{}")


def _openpi_observation(**changes):
    obs = {key: np.zeros((64, 64, 3), np.uint8) for key in behavior.CAMERA_LINKS}
    obs.update({"observation.state": np.zeros(256, np.float32), "task": "pick up the radio"})
    obs.update(changes)
    return obs


HEAD = "observation.images.rgb.head"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({HEAD: np.full((64, 64, 3), 200.0)}, rf"Camera '{HEAD}' \(model camera 'base_0_rgb'\): a float image must "
         r"hold values in \[0, 1\], got 200\.\.200"),
        ({HEAD: np.zeros((64, 64, 3), np.uint16)}, rf"Camera '{HEAD}' \(model camera 'base_0_rgb'\): expected uint8 .* "
         r"got uint16"),
        ({"observation.state": np.full(256, np.nan, np.float32)}, r"The state has NaN or infinite values at dims "
         r"\[0, 1, 2"),
    ],
)
def test_openpi_client_bad_observation_gets_an_error_frame_naming_the_camera_or_state(servers, changes, message):
    """The openpi protocol's observation goes through the config's repack: the camera is named by the key the client
    sent, with the model slot the config maps it to (``base_0_rgb`` is the head camera here)."""
    error = _error_frame(servers["openpi"], msgpack_numpy.packb(_openpi_observation(**changes)))
    assert re.search(message, error), error


def _behavior_observation(**changes):
    obs = {behavior.camera_key(link): np.zeros((64, 64, 4), np.uint8) for link in behavior.CAMERA_LINKS.values()}
    obs.update({behavior.proprio_key(): np.zeros(256, np.float32), behavior.TASK_ID_KEY: np.array([0])})
    obs.update(changes)
    return obs


ZED = behavior.camera_key("zed_link")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({ZED: np.full((64, 64, 4), 200.0)}, rf"'{ZED}' must be a uint8 \[H, W, 3\|4\] image, got float64"),
        ({ZED: np.zeros((64, 64, 4), np.uint16)}, rf"'{ZED}' must be a uint8 \[H, W, 3\|4\] image, got uint16"),
        ({behavior.proprio_key(): np.full(256, np.nan, np.float32)}, r"'robot_r1::proprio' has NaN or infinite "
         r"values at dims \[0, 1, 2"),
    ],
)
def test_behavior_client_bad_observation_gets_an_error_frame_naming_the_key(servers, changes, message):
    error = _error_frame(servers["behavior"], msgpack_numpy.packb(_behavior_observation(**changes)))
    assert re.search(message, error), error
