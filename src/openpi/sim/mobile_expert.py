"""Scripted experts of the mobile tasks: a phase machine (navigate, pre-grasp, descend, close, lift) that
emits the environment's R1Pro-style action (base velocity, absolute arm joint positions, gripper).

The expert reads the simulator (privileged, as a demonstrator may). Driving: a proportional controller on
the base's pose error in the robot frame, capped at 0.6 m/s and 1 rad/s, with the arm held at its start. Arm:
the gripper site follows a straight-line waypoint (at most ``ARM_SPEED``) to the phase's goal, with the hand's
start orientation relative to the base, and the joint targets come from damped-least-squares inverse
kinematics run on a copy of the robot's state (so the targets are smooth and independent of tracking lag).

    python scripts/eval_closed_loop.py --suite mobile --policy expert --episodes 20   # held-out success
"""

from __future__ import annotations

import numpy as np

from openpi.sim import mobile_env

BASE_GAIN, YAW_GAIN = 1.2, 1.5
BASE_SPEED, YAW_SPEED = 0.6, 1.0  # m/s, rad/s
ARRIVED = 0.03  # m and rad: the base is at its pre-grasp pose
ARM_SPEED = 0.3  # m/s of the gripper site's waypoint
REACHED = 0.015  # m: the gripper site is at its goal
ABOVE = 0.10  # m above the cube: the pre-grasp point
CLOSE_STEPS = 5  # steps the gripper closes on the cube before lifting
LIFT = 0.20  # m above the grasp
IK_ITERATIONS, IK_DAMPING = 10, 1e-3
PHASE_LIMIT = 80  # steps: a phase that does not reach its goal hands over anyway


class Expert:
    """The scripted expert of ``env``'s task, as ``reset()`` + ``act(obs) -> action[11]`` (``phase`` names the
    current phase)."""

    def __init__(self, env: mobile_env.MobileEnv):
        import mujoco

        self._mujoco = mujoco
        self.env = env
        self._ik = mujoco.MjData(env.model)
        model = env.model
        arm_joints = [int(np.flatnonzero(model.jnt_qposadr == a)[0]) for a in env._arm_qpos]
        self._arm_dofs = model.jnt_dofadr[arm_joints]
        self.reset()

    def reset(self) -> None:
        """Call after ``env.reset``: takes the arm's start as the driving pose and the hand's orientation."""
        env = self.env
        self.phase, self._phase_steps = "navigate", 0
        self._q = env.arm_qpos  # the arm's joint targets
        mount = env.data.xmat[env._mount].reshape(3, 3)
        self._hand = mount.T @ env.data.site_xmat[env.grip_site].reshape(3, 3)  # hand orientation in the base frame
        self._waypoint = None
        self._grasp = None

    # --- inverse kinematics -------------------------------------------------------------------------------
    def _forward(self, q: np.ndarray) -> None:
        data, env = self._ik, self.env
        data.qpos[:] = env.data.qpos
        data.qpos[env._arm_qpos] = q
        self._mujoco.mj_kinematics(env.model, data)
        self._mujoco.mj_comPos(env.model, data)

    def _solve(self, position: np.ndarray, orientation: np.ndarray) -> np.ndarray:
        """Joint targets near the current ones that put the gripper site at ``position`` / ``orientation``."""
        mujoco, env, data = self._mujoco, self.env, self._ik
        q = self._q.copy()
        jacp, jacr = np.zeros((3, env.model.nv)), np.zeros((3, env.model.nv))
        for _ in range(IK_ITERATIONS):
            self._forward(q)
            current = data.site_xmat[env.grip_site].reshape(3, 3)
            rotation_error = 0.5 * sum(np.cross(current[:, i], orientation[:, i]) for i in range(3))
            error = np.concatenate([position - data.site_xpos[env.grip_site], rotation_error])
            mujoco.mj_jacSite(env.model, data, jacp, jacr, env.grip_site)
            jac = np.concatenate([jacp, jacr])[:, self._arm_dofs]
            q = q + jac.T @ np.linalg.solve(jac @ jac.T + IK_DAMPING * np.eye(6), error)
        return q

    def _move_hand(self, goal: np.ndarray) -> bool:
        """Advances the waypoint toward ``goal``, solves for it, and says whether the hand reached the goal."""
        env = self.env
        if self._waypoint is None:
            self._waypoint = env.data.site_xpos[env.grip_site].copy()
        step = goal - self._waypoint
        limit = ARM_SPEED / mobile_env.CONTROL_FREQ
        self._waypoint = self._waypoint + step * min(1.0, limit / max(np.linalg.norm(step), 1e-9))
        orientation = env.data.xmat[env._mount].reshape(3, 3) @ self._hand
        self._q = self._solve(self._waypoint, orientation)
        return bool(np.linalg.norm(goal - env.data.site_xpos[env.grip_site]) < REACHED)

    # --- the phase machine --------------------------------------------------------------------------------
    def _drive(self) -> tuple[np.ndarray, bool]:
        env = self.env
        error = env.target - env.base_pose
        planar = mobile_env.rotation(-env.base_pose[2]) @ error[:2]
        velocity = BASE_GAIN * planar
        velocity *= min(1.0, BASE_SPEED / max(np.linalg.norm(velocity), 1e-9))
        yaw_rate = np.clip(YAW_GAIN * error[2], -YAW_SPEED, YAW_SPEED)
        arrived = np.linalg.norm(error[:2]) < ARRIVED and abs(error[2]) < ARRIVED
        return np.array([*velocity, yaw_rate]), arrived

    def _next(self, phase: str) -> None:
        self.phase, self._phase_steps = phase, 0

    def act(self, obs: dict) -> np.ndarray:
        del obs  # the expert reads the simulator
        env = self.env
        grasp = env.task.grasp
        base = np.zeros(3)
        gripper = -1.0 if grasp else 1.0  # the touch task keeps the gripper closed (a fingertip touch)
        self._phase_steps += 1
        timeout = self._phase_steps > PHASE_LIMIT
        cube = env.cube_position
        if self.phase == "navigate":
            base, arrived = self._drive()
            if arrived or timeout:
                self._next("pre-grasp")
        elif self.phase == "pre-grasp":
            if self._move_hand(cube + np.array([0.0, 0.0, ABOVE])) or timeout:
                self._next("descend")
        elif self.phase == "descend":
            # Lift: the fingers around the cube's middle; touch: the closed fingertips pressed onto its top.
            depth = 0.0 if grasp else 0.01
            if self._move_hand(cube + np.array([0.0, 0.0, depth])) or timeout:
                self._next("close" if grasp else "press")
        elif self.phase == "press":
            self._move_hand(cube)
        elif self.phase == "close":
            gripper = 1.0
            if self._phase_steps >= CLOSE_STEPS:
                self._grasp = cube.copy()
                self._next("lift")
        elif self.phase == "lift":
            gripper = 1.0
            self._move_hand(self._grasp + np.array([0.0, 0.0, LIFT]))
        return np.concatenate([base, self._q, [gripper]]).astype(np.float32)
