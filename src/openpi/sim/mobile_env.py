"""A mobile manipulator on the CPU with R1Pro's action semantics: robosuite's PandaOmron (a Panda arm on an
Omron base) driving to a table and manipulating a cube.

Action (11 dims, physical units, as BEHAVIOR-1K's R1Pro data stores them):
  0:3   base velocity (vx, vy, wz) in the robot frame, m/s and rad/s (limits ±1 m/s, ±1.5 rad/s);
  3:10  absolute arm joint positions, rad;
  10    gripper, -1 open .. +1 closed.
The torso stays at its initial height and robosuite's base_mode stays at -1 (at +1 the arm would keep chasing
an old target while the base drives). Groups: ``base 0:3``, ``arm 3:10``, ``gripper [10]``.

Two robosuite facts are corrected here so the base does what the action says: its controller rotates x/y
commands by -(yaw - yaw at reset), so commands are pre-rotated into what it expects; and the base joints'
friction (frictionloss 250 against a velocity servo of gain 1000) swallows the first 0.25 m/s of every command,
so it is removed. The base velocity is that of the base's yaw pivot, which the base's x/y joints move.

State (18 dims, R1Pro-like proprio in action order first): base velocity in the robot frame (3), arm joint
positions (7), gripper opening in m (1), torso height (1), then the end effector's and the cube's positions
in the robot frame (3 + 3; the cube's, like Meta-World's goal position, tells a small model where to go).

Each layout is a pure function of its seed: the base starts 1.5-2.5 m from its pre-grasp pose, up to 0.6 rad
off in heading and bearing, so driving is a large share of every episode; the cube's place on the table and
the arm's start are drawn by robosuite from the same seed (its cube size is drawn once, when the model is
built, from a fixed seed). Cameras (``head``: forward-looking on
the base; ``wrist``: the hand camera) render at 64 px with anti-aliasing, shadows and reflections off, which
software OpenGL needs to reach ~20 steps/s. robosuite and MuJoCo are imported on first use.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # headless: must be set before mujoco is imported

ACTION_DIM = 11
STATE_DIM = 18
ACTION_GROUPS = {"base": (0, 3), "arm": (3, 10), "gripper": (10, 11)}
CAMERAS = ("head", "wrist")
BASE_LIMITS = np.array([1.0, 1.0, 1.5])  # the base servos' control ranges: m/s, m/s, rad/s
CONTROL_FREQ = 10  # Hz
TABLE_TOP = 0.825  # m: robosuite Lift's table height (0.8) + half its thickness
# Navigation succeeds when the base comes this close to its pre-grasp pose (the arm reaches the cube from there).
NAV_POSITION_TOLERANCE = 0.10  # m
NAV_YAW_TOLERANCE = 0.15  # rad
# Layouts: start distance and angles of the base from its pre-grasp pose, and the cube's range on the table.
START_DISTANCE = (1.5, 2.5)
START_BEARING = 0.6  # rad either side of straight behind
START_YAW = 0.6  # rad either side of facing the table
CUBE_X, CUBE_Y = (-0.06, 0.06), (-0.15, 0.15)
HEAD_CAMERA = "robot0_robotview"  # moved onto the base, looking forward and down at the table
# In the arm mount's frame (m), pitched down (rad), wide (deg): it sees the table from the start and up close.
HEAD_POSE = {"pos": (0.0, 0.0, 0.5), "pitch": 0.75, "fovy": 80.0}
WRIST_CAMERA = "robot0_eye_in_hand"


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    instruction: str
    grasp: bool  # the gripper decides success (close on the cube and lift it)


TASKS: dict[str, Task] = {
    # The gripper decides success: the cube must be grasped and lifted 4 cm (robosuite's Lift check).
    "lift": Task("lift", "drive to the table and pick up the cube", grasp=True),
    # Driving and reaching decide success: the closed gripper must touch the cube.
    "touch": Task("touch", "drive to the table and touch the cube", grasp=False),
}
DEFAULT_TASKS = tuple(TASKS)


def task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"Unknown mobile task {name!r}; choose from {', '.join(TASKS)}.")
    return TASKS[name]


def _require_robosuite():
    try:
        import mujoco
        import robosuite
    except ImportError as error:
        raise ImportError(
            f"The mobile simulator needs the sim extra ({error}): pip install -e '.[sim]' (robosuite==1.5.2)."
        ) from None
    return robosuite, mujoco


def rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _yaw(matrix: np.ndarray) -> float:
    return float(np.arctan2(matrix[1, 0], matrix[0, 0]))


def _camera_quat(pitch: float) -> np.ndarray:
    """A MuJoCo camera (looking along its -z, up +y) looking along the body's +x, pitched down by ``pitch``."""
    forward = np.array([np.cos(pitch), 0.0, -np.sin(pitch)])
    up = np.array([np.sin(pitch), 0.0, np.cos(pitch)])
    x = np.cross(up, -forward)
    matrix = np.stack([x, up, -forward], axis=1)
    from scipy.spatial.transform import Rotation

    qx, qy, qz, qw = Rotation.from_matrix(matrix).as_quat()
    return np.array([qw, qx, qy, qz])


def _controller_config() -> dict:
    from robosuite.controllers import load_composite_controller_config

    config = load_composite_controller_config(robot="PandaOmron")
    # Absolute arm joint positions (R1Pro's arm action); robosuite's GRIP gripper stays inside the arm part.
    config["body_parts"]["right"] = {
        "type": "JOINT_POSITION",
        "input_type": "absolute",
        "kp": 150,
        "damping_ratio": 1,
        "impedance_mode": "fixed",
        "qpos_limits": None,
        "interpolation": None,
        "gripper": {"type": "GRIP"},
    }
    return config


class MobileEnv:
    """One mobile task with seeded layouts. ``reset(seed)`` and ``step(action)`` return observation dicts
    ``{"state": float32[18], "images": {"head", "wrist"}: uint8[S, S, 3], "prompt": str}``; ``step`` also
    returns the task's success flag and whether the episode is done. ``navigated`` says whether the base has
    reached its pre-grasp region in this episode. ``render=False`` builds no cameras (experts read the state);
    setting ``cameras = False`` skips them for a while, ``step(action, render=False)`` for one observation
    (observations then carry no images). Physics never depends on rendering."""

    def __init__(self, task_name: str, *, image_size: int = 64, max_steps: int = 200, render: bool = True):
        robosuite, mujoco = _require_robosuite()
        from robosuite import macros

        macros.IMAGE_CONVENTION = "opencv"
        self.task = task(task_name)
        self.image_size, self.max_steps = image_size, max_steps
        self._env = robosuite.make(
            "Lift", robots="PandaOmron", controller_configs=_controller_config(), has_renderer=False,
            has_offscreen_renderer=False, use_camera_obs=False, use_object_obs=True, control_freq=CONTROL_FREQ,
            horizon=10**9, ignore_done=True, hard_reset=False,  # a hard reset rebuilds the model (and its edits)
            seed=0,  # the cube's size is drawn once, when the model is built: the same in every environment
        )
        self._env.placement_initializer.x_range, self._env.placement_initializer.y_range = CUBE_X, CUBE_Y
        robot = self._env.robots[0]
        self._robot = robot
        self.model, self.data = self._env.sim.model._model, self._env.sim.data._data
        self._base_qpos = np.array(robot._ref_base_joint_pos_indexes)
        base_joints = [int(np.flatnonzero(self.model.jnt_qposadr == a)[0]) for a in self._base_qpos]
        self._base_qvel = self.model.jnt_dofadr[base_joints]
        self._arm_qpos = np.array(robot._ref_joint_pos_indexes)
        self._torso_qpos = np.array(robot._ref_torso_joint_pos_indexes)
        self._finger_qpos = np.array(robot._ref_gripper_joint_pos_indexes["right"])
        self.model.dof_frictionloss[self._base_qvel] = 0.0
        self._mount = self.model.body("manipulator_mount").id
        self.grip_site = self.model.site(robot.gripper["right"].important_sites["grip_site"]).id
        self._cube_body = self._env.sim.model.body_name2id(self._env.cube.root_body)
        camera = self.model.camera(HEAD_CAMERA)
        camera.pos[:] = HEAD_POSE["pos"]
        camera.quat[:] = _camera_quat(HEAD_POSE["pitch"])
        camera.fovy[:] = HEAD_POSE["fovy"]
        self._renderer = None
        if render:
            self.model.vis.quality.offsamples = 0  # before the render context exists (it sizes its buffers)
            self._renderer = mujoco.Renderer(self.model, image_size, image_size)
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                self._renderer.scene.flags[flag] = False
        self.cameras = render
        self.steps, self.navigated, self.seed = 0, False, None
        self.target, self._start = np.zeros(3), np.zeros(3)

    # --- layout -----------------------------------------------------------------------------------------
    def reset(self, seed: int) -> dict:
        """Starts layout ``seed`` (see the module docstring)."""
        layout_rng = np.random.default_rng([seed, 1])
        distance = layout_rng.uniform(*START_DISTANCE)
        bearing = layout_rng.uniform(-START_BEARING, START_BEARING)
        yaw = layout_rng.uniform(-START_YAW, START_YAW)
        # robosuite's own draws (cube, arm start): its cube sampler keeps the generator it was built with.
        self._env.rng = self._env.placement_initializer.rng = np.random.default_rng([seed, 2])
        self._env.reset()  # soft (hard_reset=False): a hard reset would rebuild the model and drop the camera edits
        # The pre-grasp pose faces the table with the cube straight ahead (base x/y/yaw joint coordinates). It
        # depends on where reset put the cube, so the base is placed afterwards (robosuite's own start pose,
        # robot_model.init_base_qpos, is read before the cube is placed), and its controller re-referenced.
        cube = self.cube_position
        mount0 = self.data.xpos[self._mount][:2] - self.data.qpos[self._base_qpos[:2]]
        self.target = np.array([0.0, cube[1] - mount0[1], 0.0])
        self._start = self.target + np.array([-distance * np.cos(bearing), distance * np.sin(bearing), yaw])
        self.data.qpos[self._base_qpos] = self._start
        self.data.qvel[self._base_qvel] = 0.0
        self._env.sim.forward()
        self._robot.composite_controller.update_state()
        self._robot.composite_controller.reset()  # the base controller's reference yaw: the start's
        self.seed, self.steps, self.navigated = seed, 0, False
        self._update_navigated()
        return self._observation()

    @property
    def layout(self) -> np.ndarray:
        """The base's start and pre-grasp poses (x, y, yaw joint coordinates) and the cube's position."""
        return np.concatenate([self._start, self.target, self.cube_position])

    # --- robot state ------------------------------------------------------------------------------------
    @property
    def base_pose(self) -> np.ndarray:
        """The base joints (x, y in the world-aligned start frame of the base, yaw)."""
        return self.data.qpos[self._base_qpos].copy()

    @property
    def base_velocity(self) -> np.ndarray:
        """(vx, vy) of the yaw pivot in the robot frame and wz."""
        qvel = self.data.qvel[self._base_qvel]
        return np.concatenate([rotation(-self.base_pose[2]) @ qvel[:2], qvel[2:]])

    @property
    def arm_qpos(self) -> np.ndarray:
        return self.data.qpos[self._arm_qpos].copy()

    @property
    def cube_position(self) -> np.ndarray:
        return self.data.xpos[self._cube_body].copy()

    def to_robot_frame(self, point: np.ndarray) -> np.ndarray:
        """A world point in the frame of the arm's mount (x forward, z up)."""
        return self.data.xmat[self._mount].reshape(3, 3).T @ (point - self.data.xpos[self._mount])

    def _state(self) -> np.ndarray:
        fingers = self.data.qpos[self._finger_qpos]
        return np.concatenate([
            self.base_velocity, self.arm_qpos, [fingers[0] - fingers[1]], self.data.qpos[self._torso_qpos],
            self.to_robot_frame(self.data.site_xpos[self.grip_site]), self.to_robot_frame(self.cube_position),
        ]).astype(np.float32)

    def _observation(self, render: bool = True) -> dict:
        images = {}
        if self._renderer is not None and self.cameras and render:
            for key, camera in zip(CAMERAS, (HEAD_CAMERA, WRIST_CAMERA), strict=True):
                self._renderer.update_scene(self.data, camera=camera)
                images[key] = self._renderer.render().copy()
        return {"state": self._state(), "images": images, "prompt": self.task.instruction}

    # --- success ----------------------------------------------------------------------------------------
    def _update_navigated(self) -> None:
        error = self.base_pose - self.target
        if np.hypot(*error[:2]) < NAV_POSITION_TOLERANCE and abs(error[2]) < NAV_YAW_TOLERANCE:
            self.navigated = True

    def task_success(self) -> bool:
        """The task's own check: the cube lifted 4 cm (lift), or the gripper touching the cube (touch)."""
        if self.task.grasp:
            return bool(self.cube_position[2] > TABLE_TOP + 0.04)
        return bool(self._env.check_contact(self._robot.gripper["right"], self._env.cube))

    # --- acting -----------------------------------------------------------------------------------------
    def robosuite_action(self, action: np.ndarray) -> np.ndarray:
        """The 13-dim robosuite action for an 11-dim R1Pro-style action (see the module docstring)."""
        base = np.clip(action[0:3], -BASE_LIMITS, BASE_LIMITS)
        # The x/y joints move in the start frame: world-aligned velocity = R(yaw) · robot-frame velocity. The
        # controller then applies R(-θ), θ = its base yaw - its reference yaw; pre-rotating by R(θ) undoes it.
        controller = self._robot.composite_controller.part_controllers["base"]  # rebuilt by every reset
        theta = _yaw(controller.get_base_pose()[1]) - _yaw(controller.init_ori)
        velocity = rotation(theta) @ rotation(self.base_pose[2]) @ base[:2]
        out = np.zeros(13)
        out[0:7] = action[3:10]
        out[7] = 0.0  # torso: hold (its controller is relative)
        out[8:10] = velocity / BASE_LIMITS[:2]
        out[10] = base[2] / BASE_LIMITS[2]
        out[11] = np.clip(action[10], -1.0, 1.0)
        out[12] = -1.0  # base_mode
        return out

    def step(self, action: np.ndarray, render: bool = True) -> tuple[dict, bool, bool]:
        """(observation, task success, done): done on success or after ``max_steps`` steps; ``render=False``: no
        images in the observation."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"A mobile action has {ACTION_DIM} dims (base 3, arm 7, gripper 1), got {action.shape}.")
        self._env.step(self.robosuite_action(action))  # a fresh array: robosuite rotates its base part in place
        self.steps += 1
        self._update_navigated()
        success = self.task_success()
        return self._observation(render), success, success or self.steps >= self.max_steps

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()
