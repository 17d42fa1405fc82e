"""Mobile-manipulator simulator speed: env steps/s without cameras, with the two cameras as the environment
builds them (anti-aliasing, shadows and reflections off), and the expert's episodes per minute.

Run: ``MUJOCO_GL=egl python benchmarks/mobile_sim_speed.py`` (software OpenGL on a CPU machine).
"""

import dataclasses
import time

import numpy as np
import tyro

from openpi.sim import mobile_env
from openpi.sim import mobile_expert


@dataclasses.dataclass(frozen=True)
class Args:
    task: str = "lift"
    steps: int = 100
    """Timed steps per setting (a slow drive with the arm held)."""
    image_size: int = 64
    episodes: int = 3
    """Expert episodes timed with cameras."""


def _steps_per_second(env: mobile_env.MobileEnv, steps: int) -> float:
    env.reset(0)
    action = np.concatenate([[0.3, 0.0, 0.1], env.arm_qpos, [-1.0]])
    start = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    return steps / (time.perf_counter() - start)


def main(args: Args) -> None:
    start = time.perf_counter()
    env = mobile_env.MobileEnv(args.task, image_size=args.image_size)
    print(f"environment built in {time.perf_counter() - start:.1f} s")
    try:
        env.cameras = False
        print(f"no cameras:        {_steps_per_second(env, args.steps):6.1f} steps/s")
        env.cameras = True
        print(f"2 cameras {args.image_size} px: {_steps_per_second(env, args.steps):6.1f} steps/s")
        expert, steps = mobile_expert.Expert(env), 0
        start = time.perf_counter()
        for seed in range(args.episodes):
            obs, done = env.reset(seed), False
            expert.reset()
            while not done:
                obs, _, done = env.step(expert.act(obs))
            steps += env.steps
        elapsed = time.perf_counter() - start
        print(f"expert with cameras: {steps / elapsed:6.1f} steps/s, {60 * args.episodes / elapsed:.1f} episodes/min")
    finally:
        env.close()


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__.split("\n\n")[0]))
