"""3D neighborhood attention (NATTEN's `na3d` window rule) with PyTorch's scaled_dot_product_attention.

The LTX-2.5 diffusion video decoder attends every token to a (kt, kh, kw) window that is centred on it and shifted
inward at the borders of the grid, so that it always holds kt*kh*kw tokens. The official code calls NATTEN's CUDA
kernels; diffusers fetches them from the Hub at run time, or falls back to FlexAttention, which without
`torch.compile` builds the whole query-by-key mask and score matrix (17 GiB seen at 720p). Neither is acceptable
offline and on 16 GB cards, so this module computes the same attention exactly with plain SDPA:

* the grid is cut into query blocks of (bt, bh, bw) tokens, half a kernel per axis (rounded up);
* the keys any query of a block can see lie in one box of (bt+kt-1, bh+kh-1, bw+kw-1) tokens, starting at the
  window start of the block's first query (window starts never decrease along an axis);
* SDPA runs on each block against its box with a boolean mask that keeps exactly each query's window, all blocks of
  a (t, h) row at once.

The box holds at most about 3x the window's keys, SDPA never sees more than one row of blocks, and on CUDA it picks
the fastest kernel that accepts a mask (memory-efficient or cuDNN attention). No kernel is downloaded or compiled.
"""

from __future__ import annotations

import math


def block_size(kernel: int, length: int) -> int:
    """Queries per block along one axis: half the kernel, rounded up (never more than the axis)."""
    return max(1, min(length, -(-kernel // 2)))


def window_starts(positions, length: int, kernel: int):
    """Where each query's window starts along one axis (NATTEN: centred, shifted inward at the borders)."""
    import torch

    return torch.clamp(positions - kernel // 2, 0, length - kernel)


def _axis_mask(queries, keys, length: int, kernel: int):
    """[queries, keys]: which key positions lie in each query position's window."""
    start = window_starts(queries, length, kernel)[:, None]
    return (keys[None, :] >= start) & (keys[None, :] < start + kernel)


def _box(start: int, length: int, kernel: int, block: int) -> tuple[int, int, int]:
    """One block of queries along an axis from `start`: how many queries, where its key box starts, how long the box
    is (plain ints, so slicing never waits on the device)."""
    first = max(0, min(start - kernel // 2, length - kernel))
    return min(block, length - start), first, min(block + kernel - 1, length - first)


def _axis(start: int, length: int, kernel: int, block: int, device):
    """`_box` of a block of queries, with its [queries, keys] window mask."""
    import torch

    count, first, size = _box(start, length, kernel, block)
    queries = torch.arange(start, start + count, device=device)
    keys = torch.arange(first, first + size, device=device)
    return count, first, size, _axis_mask(queries, keys, length, kernel)


def neighborhood_attention(query, key, value, kernel_size: tuple[int, int, int]):
    """Attention of every token over its 3D neighbourhood; q, k, v are (B, T, H, W, heads, head_dim) with the
    scale already applied to q (as the LTX-2.5 decoder does). Returns (B, T, H, W, heads * head_dim)."""
    import torch
    import torch.nn.functional as F

    batch, frames, height, width, heads, dim = query.shape
    kt, kh, kw = (min(k, n) for k, n in zip(kernel_size, (frames, height, width)))
    bt, bh, bw = block_size(kt, frames), block_size(kh, height), block_size(kw, width)
    box_w = bw + kw - 1
    blocks_w = math.ceil(width / bw)
    device = query.device

    # Along W all blocks of a row run together: queries padded to whole blocks, keys gathered into one box per block
    # (box keys past the end never fall in a window; padded queries are dropped).
    w_starts = window_starts(torch.arange(blocks_w * bw, device=device), width, kw).view(blocks_w, bw)
    w_keys = w_starts[:, :1] + torch.arange(box_w, device=device)[None, :]  # [blocks_w, box_w]
    w_mask = (w_keys[:, None, :] >= w_starts[:, :, None]) & (w_keys[:, None, :] < w_starts[:, :, None] + kw)
    w_index = w_keys.clamp(max=width - 1).reshape(-1)

    def row(tensor, t_box, h_box):
        """The key boxes of a row of blocks: [B * blocks_w, heads, keys per box, dim]."""
        (t_first, t_size), (h_first, h_size) = t_box, h_box
        rows = tensor[:, t_first:t_first + t_size, h_first:h_first + h_size].index_select(3, w_index)
        rows = rows.view(batch, t_size, h_size, blocks_w, box_w, heads, dim).permute(0, 3, 5, 1, 2, 4, 6)
        return rows.reshape(batch * blocks_w, heads, -1, dim)

    out = query.new_empty(batch, frames, height, width, heads * dim)
    for t0 in range(0, frames, bt):
        nt, *t_box, t_mask = _axis(t0, frames, kt, bt, device)
        for h0 in range(0, height, bh):
            nh, *h_box, h_mask = _axis(h0, height, kh, bh, device)
            q = F.pad(query[:, t0:t0 + nt, h0:h0 + nh], (0, 0, 0, 0, 0, blocks_w * bw - width))
            q = q.view(batch, nt, nh, blocks_w, bw, heads, dim).permute(0, 3, 5, 1, 2, 4, 6)
            q = q.reshape(batch * blocks_w, heads, nt * nh * bw, dim)
            mask = (t_mask[None, :, None, None, :, None, None] & h_mask[None, None, :, None, None, :, None]
                    & w_mask[:, None, None, :, None, None, :])
            mask = mask.reshape(1, blocks_w, 1, nt * nh * bw, -1).expand(batch, -1, -1, -1, -1)
            mask = mask.reshape(batch * blocks_w, 1, nt * nh * bw, -1)
            hidden = F.scaled_dot_product_attention(q, row(key, t_box, h_box), row(value, t_box, h_box),
                                                    attn_mask=mask, scale=1.0)
            hidden = hidden.view(batch, blocks_w, heads, nt, nh, bw, dim).permute(0, 3, 4, 1, 5, 2, 6)
            out[:, t0:t0 + nt, h0:h0 + nh] = hidden.reshape(batch, nt, nh, blocks_w * bw, heads * dim)[:, :, :, :width]
    return out


class NeighborhoodSDPAProcessor:
    """Attention processor for diffusers' LTX2VideoVaeNeighborhoodAttention built on `neighborhood_attention`
    (it takes no FlexAttention block mask, so the decoder never builds one)."""

    def __call__(self, attn, hidden_states, block_mask=None):
        query, key, value = attn.project_qkv(hidden_states)
        hidden = neighborhood_attention(query, key, value, attn.kernel_size)
        return attn.to_out[0](hidden.to(hidden_states.dtype))


def attention_flops(grid: tuple[int, int, int], kernel_size: tuple[int, int, int], heads: int, dim: int
                    ) -> tuple[int, int]:
    """(FLOPs `neighborhood_attention` spends on a (T, H, W) grid, FLOPs of the windows alone): 4 x queries x keys
    x head_dim per head (scores and weighted sum), over the key boxes as it runs, or over each query's window as
    NATTEN's kernel computes it."""
    kernels = [min(k, n) for k, n in zip(kernel_size, grid)]
    pairs = 1
    for axis, (length, kernel) in enumerate(zip(grid, kernels)):
        block = block_size(kernel, length)
        if axis == 2:  # W: all blocks of a row together, queries padded to whole blocks, boxes of equal size
            pairs *= math.ceil(length / block) * block * (block + kernel - 1)
            continue
        total = 0
        for start in range(0, length, block):
            count, _first, size = _box(start, length, kernel, block)
            total += count * size
        pairs *= total
    window = math.prod(grid) * math.prod(kernels)
    return 4 * pairs * heads * dim, 4 * window * heads * dim
