"""Sigma schedules: the official LTX-2 fixed-shift schedule, diffusers' dynamic shift, and the distilled list.

Each returns a float32 tensor of N+1 sigmas ending in 0; the sampler steps sigma[i] -> sigma[i+1].
"""

from __future__ import annotations

import math

SCHEDULES = ("official", "diffusers")

# ltx-core LTX2Scheduler: the shift is computed for a fixed 4096 tokens (so always 2.05), terminal sigma 0.1.
OFFICIAL_SHIFT = 2.05
OFFICIAL_TERMINAL = 0.1


def official_sigmas(steps: int, shift: float = OFFICIAL_SHIFT, terminal: float = OFFICIAL_TERMINAL):
    """The official LTX-2 schedule: linspace(1, 0), exponential time shift, then stretched to end at `terminal`."""
    import torch

    sigmas = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    nonzero = sigmas != 0
    shifted = math.exp(shift) / (math.exp(shift) + (1.0 / sigmas[nonzero] - 1.0))
    if shifted[-1] < 1.0:  # a single step (sigmas 1, 0) has nothing to stretch
        shifted = 1.0 - (1.0 - shifted) / ((1.0 - shifted[-1]) / (1.0 - terminal))
    sigmas[nonzero] = shifted
    return sigmas.to(torch.float32)


def diffusers_sigmas(steps: int, video_tokens: int, scheduler_config: dict):
    """What diffusers' LTX-2 pipelines use: a shift from the real token count (unclamped), via the real scheduler.

    For a single step diffusers' terminal stretch divides 0 by 0; the only sensible schedule there is 1 -> 0.
    """
    import numpy as np
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    if steps == 1:
        return torch.tensor([1.0, 0.0])
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
    base_len = scheduler.config.get("base_image_seq_len", 1024)
    max_len = scheduler.config.get("max_image_seq_len", 4096)
    base_shift = scheduler.config.get("base_shift", 0.95)
    max_shift = scheduler.config.get("max_shift", 2.05)
    slope = (max_shift - base_shift) / (max_len - base_len)
    mu = video_tokens * slope + (base_shift - slope * base_len)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1.0 / steps, steps), mu=mu)
    return scheduler.sigmas


def fixed_sigmas(values):
    """A given sigma list (e.g. the distilled one), with the trailing 0 added if missing."""
    import torch

    values = [float(v) for v in values]
    if values[-1] != 0.0:
        values.append(0.0)
    return torch.tensor(values, dtype=torch.float32)
