"""Memory and speed options for a loaded LTX-2 model: offload, attention backend, regional compile, VAE tiling.

The 19B transformer alone is 37.8 GB in bf16 (18.9 B parameters), more than most cards hold, so a `MemoryPolicy`
says where weights wait and how the model computes:

* offload "none": every component stays on the model's device.
* "model": a component moves to the device when it runs and the one before it goes back to system memory, so the
  peak is the largest component (the transformer) plus activations, and the VAE decode never shares the card with
  the transformer (ostris/ai-toolkit#659 is that OOM).
* "group": diffusers' block-level group offload of the transformer (`blocks_per_group` blocks on the device at a
  time, the next group optionally prefetched on a CUDA stream) and leaf-level offload of the other components.
* "sequential": leaf-level group offload everywhere, one layer on the device at a time: what diffusers'
  `enable_sequential_cpu_offload` does (diffusers documents leaf level as its equivalent), without needing
  accelerate. The least memory and the slowest.

The policy travels on the model as `configs["memory"]`, a plain dict: `LTX2Model` needs no new field and the
shallow copies the LoRA nodes make (`dataclasses.replace`) keep it. The modules themselves are shared, because
ComfyUI hands one loaded model to every branch of a graph, so a policy changes them in place. `apply_policy` records
per transformer what it applied and undoes a different earlier policy first: the policy applied last wins, and
applying the same one again does nothing.

This module also holds fp8 storage with a per-tensor scale, used for the transformer's `fp8` loading option, the
official pre-quantized checkpoints (see `loading`) and Gemma in fp8 (see `conditioning`).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import asdict, dataclass, replace

from . import convert
from .choices import ATTENTION_BACKENDS, OFFLOAD_MODES, VAE_TILING
from .errors import L2AError

MEMORY_KEY = "memory"
GPU_ONLY_BACKENDS = ("_native_efficient", "_native_cudnn", "xformers")
_MASKLESS_BACKENDS = ("flash", "flash_varlen", "_flash_3", "_flash_varlen_3", "_native_flash", "sage", "sage_varlen")
_SCALED_FP8_HOOK = "l2a_scaled_fp8"


@dataclass(frozen=True)
class MemoryPolicy:
    """Where the model's weights wait and how it computes; the defaults change nothing."""

    offload: str = "none"
    blocks_per_group: int = 1  # group offload: transformer blocks on the device at a time
    cuda_streams: bool = False  # group / sequential offload: prefetch the next weights while computing
    attention_backend: str = "native"
    compile_blocks: bool = False  # torch.compile each transformer block (regional compile)
    vae_tiling: str = "off"  # forced on for every decode, whatever the decode node says (decoding.decode_video)

    def check(self, device, num_layers: int | None = None) -> None:
        """Refuse unknown values and what `device` cannot run, before any weight moves."""
        if self.offload not in OFFLOAD_MODES:
            raise L2AError(f"offload = {self.offload!r} is unknown: use one of {', '.join(OFFLOAD_MODES)}.")
        if self.vae_tiling not in VAE_TILING:
            raise L2AError(f"vae_tiling = {self.vae_tiling!r} is unknown: use one of {', '.join(VAE_TILING)}.")
        backend = self.attention_backend
        if backend in _MASKLESS_BACKENDS:
            raise L2AError(
                f"attention backend {backend!r} cannot take the attention mask LTX-2 uses for its text "
                f"cross-attention: use one of {', '.join(ATTENTION_BACKENDS)} ('native' picks PyTorch's fastest)."
            )
        if backend not in ATTENTION_BACKENDS:
            raise L2AError(f"attention backend {backend!r} is unknown: use one of {', '.join(ATTENTION_BACKENDS)}.")
        if not 1 <= self.blocks_per_group <= (num_layers or self.blocks_per_group):
            raise L2AError(
                f"offload_blocks_per_group = {self.blocks_per_group} is out of range: use 1 to {num_layers} "
                "(the model's transformer blocks)."
            )
        if device.type != "cpu":
            return
        if self.offload in ("model", "sequential"):
            raise L2AError(
                f"offload = '{self.offload}' needs a GPU: on a CPU-only machine the weights already live in system "
                "memory. Use offload 'none' (or 'group', which runs CPU to CPU)."
            )
        if self.cuda_streams and self.offload == "group":
            raise L2AError("group offload with CUDA streams needs a GPU: turn use_cuda_streams off on this machine.")
        if backend in GPU_ONLY_BACKENDS:
            raise L2AError(
                f"attention backend {backend!r} needs a GPU: use 'native' (or '_native_math' / 'flex') on the CPU."
            )

    @property
    def offloads(self) -> bool:
        return self.offload != "none"


_resident: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id(transformer) -> model on a GPU


def track(model) -> None:
    """Remember a model loaded onto an accelerator, so release_all can free it when ComfyUI asks."""
    import torch

    if torch.device(model.device).type != "cpu":
        _resident[id(model.transformer)] = model


def release_all() -> int:
    """ComfyUI asked to free memory: park in system memory the weights that every tracked model keeps on the GPU
    between runs. A model placed whole (or left half placed by a failure) goes to model offload: each component
    comes back while it runs, and the model's own policy returns the next time it samples. Under model offload,
    the component that ran last leaves. Returns how many models released something."""
    released = 0
    for model in list(_resident.values()):
        state = _applied.get(model.transformer)
        if state is None or state.policy.offload in ("none", _UNPLACED):
            apply_policy(model, replace(policy_of(model), offload="model"))
            released += 1
        elif state.residency is not None:
            with _lock:
                released += state.residency.park()
    return released


def make_room(model) -> None:
    """Before weights that are not the model's run on its device (LTX-2.5's diffusion decoder): under model offload,
    the component resident there goes back to system memory (the others place nothing between their calls)."""
    apply_policy(model)
    with _lock:
        state = _applied.get(model.transformer)
        if state is not None and state.residency is not None:
            state.residency.park()


def policy_of(model) -> MemoryPolicy:
    """The policy a model carries (the defaults when it carries none)."""
    return MemoryPolicy(**model.configs.get(MEMORY_KEY, {}))


def with_policy(model, policy: MemoryPolicy):
    """Apply `policy` to the model's (shared) modules and return a shallow copy that carries it."""
    apply_policy(model, policy)
    return replace(model, configs={**model.configs, MEMORY_KEY: asdict(policy)})


# ---- applying a policy to the shared modules ---------------------------------------------------------------------


@dataclass
class _Applied:
    policy: MemoryPolicy
    residency: _Residency | None = None  # model offload's record of what is on the device, and its hooks


_lock = threading.Lock()
_applied: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # transformer -> _Applied
# The offload a failed placement records: no real mode equals it, so the next apply clears and places again.
_UNPLACED = "unplaced"


def apply_policy(model, policy: MemoryPolicy | None = None) -> None:
    """Make the model's modules follow `policy` (default: the one the model carries); a no-op if they already do.

    Called with the model alone right before its modules run, it gives each branch of a graph its own policy.
    """
    import torch

    policy = policy_of(model) if policy is None else policy
    device = torch.device(model.device)
    policy.check(device, model.transformer.config.num_layers)
    with _lock:
        state = _applied.get(model.transformer) or _Applied(MemoryPolicy())
        old = state.policy
        modules = {name: getattr(model, name) for name in convert.COMPONENTS}
        residency = state.residency
        placement = ("offload", "blocks_per_group", "cuda_streams")
        if any(getattr(old, k) != getattr(policy, k) for k in placement):
            try:
                _undo_offload(modules, old, residency)
                residency = _offload(modules, policy, device)
            except BaseException:
                # Halfway (out of memory while moving weights), the modules follow neither policy.
                _applied[model.transformer] = _Applied(replace(old, offload=_UNPLACED))
                raise
        if old.attention_backend != policy.attention_backend:
            _set_attention_backend(model.transformer, policy.attention_backend)
        if old.compile_blocks != policy.compile_blocks:
            _set_compiled(model.transformer, policy.compile_blocks)
        _applied[model.transformer] = _Applied(policy, residency)


def _undo_offload(modules: dict, old: MemoryPolicy, residency: _Residency | None) -> None:
    """Remove the hooks of an earlier offload and park every component in system memory."""
    if old.offload == "none":
        return
    from diffusers.hooks import HookRegistry
    from diffusers.hooks.group_offloading import (
        _GROUP_OFFLOADING,
        _LAYER_EXECUTION_TRACKER,
        _LAZY_PREFETCH_GROUP_OFFLOADING,
    )

    if residency is not None:
        residency.remove_hooks()
    for module in modules.values():
        registry = HookRegistry.check_if_exists_or_initialize(module)
        # diffusers has no public "disable group offload"; these are the three hooks it installs.
        for name in (_LAZY_PREFETCH_GROUP_OFFLOADING, _LAYER_EXECUTION_TRACKER, _GROUP_OFFLOADING):
            registry.remove_hook(name, recurse=True)
        module.to("cpu")


def _offload(modules: dict, policy: MemoryPolicy, device) -> _Residency | None:
    """Place the components for `policy`; returns model offload's residency (None for the other modes)."""
    import torch

    cpu = torch.device("cpu")
    if policy.offload == "none":
        for module in modules.values():
            module.to(device)
        return None
    if policy.offload == "model":
        return _model_offload(modules, device)
    streams = policy.cuda_streams and device.type != "cpu"
    for name, module in modules.items():
        if name == "transformer" and policy.offload == "group":
            module.enable_group_offload(device, cpu, offload_type="block_level",
                                        num_blocks_per_group=policy.blocks_per_group, use_stream=streams)
        else:
            # Streams only on the transformer: diffusers warns that they misbehave with a tiled VAE, and the
            # other components run once per generation, so prefetching gains little there.
            module.enable_group_offload(device, cpu, offload_type="leaf_level",
                                        use_stream=streams and name == "transformer")
    return None


class _Residency:
    """Model offload: at most one component on the device, the one whose forward is about to run."""

    def __init__(self, device):
        self.device = device
        self.current = None
        self.hook_handles: list = []

    def enter(self, component) -> None:
        if self.current is component:
            return
        self.park()
        component.to(self.device)
        self.current = component

    def park(self) -> bool:
        """Send the component on the device back to system memory; False if none was there."""
        if self.current is None:
            return False
        self.current.to("cpu")
        self.current = None
        return True

    def remove_hooks(self) -> None:
        for handle in self.hook_handles:
            handle.remove()
        self.hook_handles.clear()


def _model_offload(modules: dict, device) -> _Residency:
    """Park every component in system memory and move each to `device` when it (or a direct child) runs.

    Direct children are hooked too because the VAEs' `encode` / `decode` are not `forward`: they call their
    encoder / decoder child, and that call is what brings the VAE in.
    """
    residency = _Residency(device)
    for component in modules.values():
        component.to("cpu")

        def enter(_module, _args, component=component):
            residency.enter(component)

        for sub in (component, *component.children()):
            residency.hook_handles.append(sub.register_forward_pre_hook(enter))
    return residency


def _set_attention_backend(transformer, backend: str) -> None:
    try:
        transformer.set_attention_backend(backend)
    except (RuntimeError, ValueError) as exc:  # a missing package (xformers) or an unusable kernel
        raise L2AError(f"attention backend {backend!r} cannot be used here: {exc}") from exc


def _set_compiled(transformer, compiled: bool) -> None:
    """Regional compile: torch.compile each repeated transformer block (compiled on the first run, then reused)."""
    if compiled:
        transformer.compile_repeated_blocks()
        return
    for module in transformer.modules():
        if type(module).__name__ in transformer._repeated_blocks:
            module._compiled_call_impl = None  # what nn.Module.compile set; None restores the eager call


# ---- fp8 Linear layers with a per-tensor scale ------------------------------------------------------------------


def quantize_fp8(weight) -> tuple:
    """(float8_e4m3fn weight, scale) with `weight ~= fp8 * scale`: the largest magnitude maps to e4m3's maximum.

    The official fp8 checkpoints use this per-tensor format. A plain cast (diffusers' layerwise casting) keeps no
    scale, so weights of typical magnitude (std ~0.02) lose precision in e4m3's subnormal range: on a 3840-wide
    random Linear the output error is 3.3 % cast vs 2.7 % scaled at std 0.02, and 11 % vs 2.7 % at std 0.005.
    """
    import torch

    fp8_max = torch.finfo(torch.float8_e4m3fn).max
    weight = weight.to(torch.float32)
    amax = float(weight.abs().amax())
    scale = amax / fp8_max if amax > 0 else 1.0
    return (weight / scale).clamp(-fp8_max, fp8_max).to(torch.float8_e4m3fn), scale


def _scaled_fp8_hook_class():
    from diffusers.hooks import ModelHook

    class ScaledFP8Hook(ModelHook):
        """A Linear stored as fp8 with a per-tensor scale: upcast and rescale the weight for each call.

        Only the fp8 bytes are kept (no second copy); the compute dtype is the input's.
        """

        def __init__(self, scale: float):
            super().__init__()
            self.scale = scale

        def new_forward(self, module, x, *args, **kwargs):
            import torch

            weight = module.weight.to(x.dtype) * self.scale
            bias = None if module.bias is None else module.bias.to(x.dtype)
            return torch.nn.functional.linear(x, weight, bias)

    return ScaledFP8Hook


def apply_scaled_fp8(module, scales: dict[str, float]) -> None:
    """Attach the scaled-fp8 forward to each Linear named in `scales` (module name -> scale); weights already fp8."""
    from diffusers.hooks import HookRegistry

    hook_class = _scaled_fp8_hook_class()
    for name, scale in scales.items():
        layer = module.get_submodule(name)
        HookRegistry.check_if_exists_or_initialize(layer).register_hook(hook_class(scale), _SCALED_FP8_HOOK)


def store_linears_in_fp8(module, skip: tuple[str, ...] = ()) -> None:
    """Quantize every Linear of `module` (but those whose name contains one of `skip`) to scaled fp8, in place."""
    import torch

    scales = {}
    for name, layer in module.named_modules():
        if isinstance(layer, torch.nn.Linear) and not any(part in name for part in skip):
            quantized, scales[name] = quantize_fp8(layer.weight.data)
            layer.weight.data = quantized.to(layer.weight.device)
    apply_scaled_fp8(module, scales)
