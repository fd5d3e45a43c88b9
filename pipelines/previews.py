"""Cheap step previews: a fixed linear projection of latent channels to RGB, no VAE decode."""

from __future__ import annotations


def latent_to_rgb(latent, factors=None, scale: int = 8):
    """The middle frame of a normalized video latent [1, C, F, H, W] as a PIL image.

    `factors` is a [C, 3] projection (from the model's config where one is known); without it the channels are
    split into three groups whose means become R, G and B, which shows layout and motion well enough.
    """
    import torch
    from PIL import Image

    frame = latent[0, :, latent.shape[2] // 2].float().cpu()
    if factors is not None:
        rgb = torch.einsum("chw,cr->rhw", frame, torch.as_tensor(factors, dtype=torch.float32))
    else:
        rgb = torch.stack([group.mean(0) for group in frame.chunk(3, dim=0)])
    rgb = (rgb - rgb.amin()) / (rgb.amax() - rgb.amin() + 1e-6)
    pixels = (rgb.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    image = Image.fromarray(pixels)
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)
