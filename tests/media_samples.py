"""Synthetic media shared by the media tests."""

import torch


def gradient_frames(count=17, height=64, width=96):
    """Smooth moving gradient: survives lossy codecs well enough to compare pixel values."""
    y = torch.linspace(0, 1, height)[:, None]
    x = torch.linspace(0, 1, width)[None, :]
    frames = torch.empty(count, height, width, 3)
    for i in range(count):
        frames[i, ..., 0] = x
        frames[i, ..., 1] = y
        frames[i, ..., 2] = (i + 1) / (count + 1)
    return frames


class ExplodingFrames:
    """Frames that fail on the fifth one, as a crash in the middle of an encode."""

    def __init__(self, frames):
        self.frames = frames

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, index):
        if index == 4:
            raise RuntimeError("boom")
        return self.frames[index]
