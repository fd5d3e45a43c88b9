"""Canny edge maps in pure torch: any clip becomes the control video of a canny IC-LoRA, with nothing to download.

The classic algorithm with OpenCV's `cv2.Canny` conventions (what LTX's IC-LoRA guide names for canny maps), on the
0-255 luminance of each frame (Rec. 601 weights, as cv2's RGB-to-gray):

1. an optional Gaussian blur (`blur` = sigma in pixels; 0 = none, as cv2.Canny itself);
2. 3x3 Sobel gradients with replicated borders, strength |gx| + |gy| (cv2's default L1 gradient);
3. non-maximum suppression across the edge, the gradient direction rounded to 0, 45, 90 or 135 degrees;
4. hysteresis: a pixel above `high` is an edge, one above `low` becomes an edge when it touches one (8-neighbours).

Thresholds are on cv2's scale, so the usual `cv2.Canny(image, 100, 200)` is low 100, high 200.
"""

from __future__ import annotations

import math

from .checks import check_number
from .errors import L2AError

_TAN_22_5 = math.tan(math.radians(22.5))
_TAN_67_5 = math.tan(math.radians(67.5))
_CHUNK = 8  # frames per pass: bounds the memory of long clips


def _gaussian(gray, sigma: float):
    import torch

    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=gray.dtype, device=gray.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = torch.nn.functional.pad(gray, (radius, radius, 0, 0), mode="replicate")
    gray = torch.nn.functional.conv2d(padded, kernel.view(1, 1, 1, -1))
    padded = torch.nn.functional.pad(gray, (0, 0, radius, radius), mode="replicate")
    return torch.nn.functional.conv2d(padded, kernel.view(1, 1, -1, 1))


def _sobel(gray):
    import torch

    padded = torch.nn.functional.pad(gray, (1, 1, 1, 1), mode="replicate")
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=gray.dtype, device=gray.device)
    gx = torch.nn.functional.conv2d(padded, kx.view(1, 1, 3, 3))
    gy = torch.nn.functional.conv2d(padded, kx.t().contiguous().view(1, 1, 3, 3))
    return gx, gy


def _thin(magnitude, gx, gy):
    """Non-maximum suppression: keep a pixel only where it is the ridge of its gradient (strictly above the
    neighbour on one side, at least the other, as cv2 does so a two-pixel ridge keeps one)."""
    import torch

    padded = torch.nn.functional.pad(magnitude, (1, 1, 1, 1))
    height, width = magnitude.shape[-2:]

    def shifted(dy: int, dx: int):
        return padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]

    ax, ay = gx.abs(), gy.abs()
    horizontal = ay <= ax * _TAN_22_5  # the gradient runs along x: compare left and right
    vertical = ay > ax * _TAN_67_5
    same_sign = (gx * gy) > 0  # down-right / up-left diagonal (y grows downwards)
    before = torch.where(horizontal, shifted(0, -1), torch.where(vertical, shifted(-1, 0),
                                                                 torch.where(same_sign, shifted(-1, -1),
                                                                             shifted(-1, 1))))
    after = torch.where(horizontal, shifted(0, 1), torch.where(vertical, shifted(1, 0),
                                                               torch.where(same_sign, shifted(1, 1),
                                                                           shifted(1, -1))))
    return torch.where((magnitude > before) & (magnitude >= after), magnitude, torch.zeros_like(magnitude))


def _hysteresis(thin, low: float, high: float):
    import torch

    candidate = thin > low
    edges = thin > high
    while True:
        grown = edges
        for _ in range(4):
            grown = (torch.nn.functional.max_pool2d(grown.float(), 3, stride=1, padding=1) > 0) & candidate
        if torch.equal(grown, edges):
            return edges
        edges = grown


def canny(frames, low: float = 100.0, high: float = 200.0, blur: float = 0.0):
    """Edge maps of IMAGE frames [F, H, W, C] (0..1; alpha ignored): white edges on black, [F, H, W, 3]."""
    import torch

    low = check_number("low threshold", low, 0.0, hint="cv2.Canny's scale, e.g. 100")
    high = check_number("high threshold", high, 0.0, hint="cv2.Canny's scale, e.g. 200")
    blur = check_number("blur", blur, 0.0, 20.0, "sigma in pixels, 0 = none")
    if low > high:
        raise L2AError(f"low threshold {low:g} is above high threshold {high:g}: use low <= high (e.g. 100 and 200).")
    frames = torch.as_tensor(frames).detach()
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4) or frames.shape[0] < 1:
        raise L2AError(f"the images are {list(frames.shape)}, not IMAGE frames [frames, height, width, channels].")
    out = []
    for chunk in frames.split(_CHUNK):
        pixels = chunk.to(torch.float32) * 255.0
        if pixels.shape[-1] == 1:
            gray = pixels[..., 0]
        else:
            gray = pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114
        gray = gray[:, None]
        if blur > 0:
            gray = _gaussian(gray, blur)
        gx, gy = _sobel(gray)
        edges = _hysteresis(_thin(gx.abs() + gy.abs(), gx, gy), low, high)
        out.append(edges[:, 0, :, :, None].expand(-1, -1, -1, 3).to(torch.float32).cpu())
    return torch.cat(out)
