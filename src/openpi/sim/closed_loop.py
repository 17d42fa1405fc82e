"""Closed-loop evaluation in the simulator: success rate per task with a 95% Wilson interval, steps to
success, a filmstrip of a success and a failure, JSON + markdown.

Layouts are ``EVAL_SEED_START + k`` (k = 0 .. episodes − 1, the same for every policy), disjoint from every
training layout (see ``openpi.sim.dataset``).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import json
import math
import pathlib
from typing import Any

import numpy as np
from PIL import Image
import tqdm

from openpi.sim import dataset as _dataset
from openpi.sim import metaworld_env
from openpi.sim import rollout

WILSON_Z = 1.959964  # two-sided 95%


def wilson_interval(successes: int, trials: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927, JASA 22:209); (0, 1) without trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate(
    make_policy: Callable[[str], rollout.StepPolicy],
    tasks: Sequence[str],
    episodes: int,
    *,
    image_size: int = 64,
    max_steps: int = 150,
    output_dir: pathlib.Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Runs ``make_policy(task)`` for ``episodes`` held-out layouts of every task; writes eval.json, eval.md and
    filmstrips to ``output_dir`` when given. Returns the JSON report."""
    report: dict[str, Any] = {"tasks": {}, "episodes": episodes, "max_steps": max_steps,
                              "layout_seeds": [_dataset.EVAL_SEED_START + k for k in range(episodes)]}
    bar = tqdm.tqdm(total=len(tasks) * episodes, desc="Closed-loop episodes", disable=not progress)
    for task_name in tasks:
        env = metaworld_env.MetaWorldEnv(task_name, image_size=image_size, max_steps=max_steps)
        policy = make_policy(task_name)
        results, shown = [], {}
        try:
            for seed in report["layout_seeds"]:
                # Keep frames until a success and a failure were seen (for the filmstrips), then stop keeping.
                keep = output_dir is not None and len(shown) < 2
                episode = rollout.run_episode(env, policy, seed, keep_frames=keep)
                if keep and episode.success not in shown:
                    shown[episode.success] = episode
                results.append({"seed": seed, "success": episode.success, "steps": episode.steps})
                bar.update()
                bar.set_postfix(task=task_name, success=sum(r["success"] for r in results))
        finally:
            env.close()
        successes = sum(r["success"] for r in results)
        steps = [r["steps"] for r in results if r["success"]]
        low, high = wilson_interval(successes, len(results))
        entry = {
            "success_rate": successes / len(results),
            "successes": successes,
            "wilson95": [low, high],
            "mean_steps_to_success": float(np.mean(steps)) if steps else None,
            "episodes": results,
        }
        if output_dir is not None:
            entry["filmstrips"] = {
                ("success" if ok else "failure"): str(
                    write_filmstrip(ep, output_dir / f"filmstrip_{task_name}_{'success' if ok else 'failure'}.png")
                )
                for ok, ep in shown.items()
            }
        report["tasks"][task_name] = entry
    bar.close()
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "eval.json").write_text(json.dumps(report, indent=1))
        (output_dir / "eval.md").write_text(markdown(report))
    return report


def write_filmstrip(episode: rollout.Episode, path: pathlib.Path, frames: int = 8) -> pathlib.Path:
    """Evenly spaced scene and wrist frames of an episode, one column per time (PNG)."""
    picks = np.linspace(0, len(episode.frames) - 1, frames).round().astype(int)
    rows = [np.concatenate([episode.frames[i][key] for i in picks], axis=1) for key in episode.frames[0]]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Closed loop: {report['episodes']} held-out layouts per task (seeds {report['layout_seeds'][0]}..."
        f"{report['layout_seeds'][-1]}), at most {report['max_steps']} steps.",
        "",
        "| task | success | 95% Wilson interval | mean steps to success |",
        "|---|---|---|---|",
    ]
    for name, entry in report["tasks"].items():
        low, high = entry["wilson95"]
        steps = entry["mean_steps_to_success"]
        lines.append(
            f"| {name} | {entry['successes']}/{len(entry['episodes'])} ({entry['success_rate']:.0%}) | "
            f"[{low:.2f}, {high:.2f}] | {'n/a' if steps is None else f'{steps:.0f}'} |"
        )
    return "\n".join(lines) + "\n"
