"""Speed and memory of the full-size LTX-2 19B (or, with `--family 2.5`, LTX-2.5 22B) on a CUDA GPU in each of the
pack's memory modes, with random weights.

At each size (default 768x512x121, the official two-stage recipe's stage 1, and 1280x704x121) and in each memory
mode the pack offers (`memory.MemoryPolicy`: offload none, model, group, sequential, and group with CUDA streams;
`--fp8` repeats them with the transformer blocks' Linear layers stored as scaled fp8, the loader's `fp8` option,
after the rest since it converts the model in place):

* seconds per step of `sampling.sample` with guidance off, so a step is one transformer call (as in distilled
  sampling and the refinement stage; a dev step with full guidance makes 3 calls over 4 sequences): the median of
  `--steps` steps after one warm-up step, which also holds the connectors and the first weight transfers;
* peak VRAM, `torch.cuda.max_memory_allocated` and `max_memory_reserved`, while sampling with the weights where the
  mode put them (so "none" counts them all). A mode that runs out of memory is a table entry, not a crash. The
  time to apply the mode is a column of its own: it includes moving back what the mode before left on the device;
* achieved TFLOP/s: the FLOPs of one transformer call at that size (torch's FlopCounterMode, matmuls and attention
  kernels, counted while the pack samples one step) over the seconds per step, against the card's bf16 dense peak
  from its spec sheet (`--peak-tflops` for a card missing from the table below).

Then the figure: the peak VRAM of the whole official two-stage generation (stage 1 at half size with the dev
model's full guidance, the x2 latent upsampler, stage 2 over the distilled sigmas, the video decode and the audio
decode) in the lowest-memory mode, sequential offload with VAE tiling in space and time, against the 16 GB target.
The default size is the official recipe's output, 1536x1024x121. Stage 1 runs `--stage1-steps` of its 40 steps:
every step is the same work, so the number moves the time, not the peak.

Assumptions:
* Weights are random and seeded: the modules are built from the shipped 19B config (`configs/ltx2-19b.json`) by
  `loading.build_empty` and filled as the loader fills them (`load_state_dict(assign=True)`), in bf16 (the audio
  VAE and vocoder in fp32), generated on the GPU for speed. They wait in plain system memory, where `load_model`
  leaves them for an offloading mode. Nothing is read from disk or downloaded.
* Gemma 3 is not run: the prompt is random Gemma hidden states of the real shape, [1, 1024, 3840 x 49], fed to the
  model's connectors as `conditioning.encode_text` would (for 2.5 random projected features, [1, 1024, 4096 + 2048],
  as its encoder with the text projection returns them). Gemma's own memory (about 24 GB in bf16) is out of scope.
* The latent upsampler waits in system memory, as the pack's loader leaves it, and follows the model's memory
  policy: on the device only while it runs. Stage 2 runs on the same weights: the official recipe adds the
  distilled LoRA there, whose memory is not counted.
* GB means 1e9 bytes. A "16 GB" card holds 16 GiB = 17.2 GB; the CUDA context (about 0.5 GB, which the allocator
  does not count) comes on top of these figures.

Expected duration on one H100 with the defaults: roughly 6 to 10 minutes, most of it the offload modes moving the
38 GB of transformer weights each step (an estimate from the transfer sizes and FLOPs, not a measurement: this
script was written on a machine without a GPU); `--modes` and `--sizes` shorten it, and `--modes` with no mode
measures only the two-stage figure (a device that limits a command to 10 minutes can take the table and the figure
in two runs).

    python bench/gpu.py [--sizes 768x512x121 1280x704x121] [--modes none model group sequential group+streams]
                        [--steps 3] [--fp8] [--two-stage 1536x1024x121] [--stage1-steps 2] [--peak-tflops T]
                        [--quick]

`--quick` runs the same code on the tiny config (`configs/tiny.json`) at toy sizes, on the CPU when there is no GPU
(the modes that need CUDA are listed as skipped and memory is the process's peak RSS), fp8 rows included: it checks
the script in well under a minute, not the figures.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from _common import footer, header, median, say, table

from ltx2_anywhere.pipelines import loading, memory, tiny
from ltx2_anywhere.pipelines.components import LTX2Model
from ltx2_anywhere.pipelines.conditioning import Conditioning
from ltx2_anywhere.pipelines.decoding import decode_audio, decode_video
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import FAMILIES, STAGE_2_DISTILLED_SIGMAS, Family, Guidance
from ltx2_anywhere.pipelines.memory import MemoryPolicy
from ltx2_anywhere.pipelines.sampling import SamplerSettings, sample, sample_multiscale
from ltx2_anywhere.pipelines.upsampler import Upsampler

TARGET_GB = 16
# Also the run order: group+streams comes last because diffusers pins the weights for it and torch keeps freed pinned
# memory cached, so from then on system memory holds the weights about twice.
MODES = {
    "none": MemoryPolicy(),
    "model": MemoryPolicy(offload="model"),
    "group": MemoryPolicy(offload="group"),
    "sequential": MemoryPolicy(offload="sequential"),
    "group+streams": MemoryPolicy(offload="group", cuda_streams=True),
}
LOWEST_MEMORY = ("sequential", "group")  # the first one the device accepts runs the two-stage generation
# Spec-sheet bf16 tensor-core peaks, dense (without 2:4 sparsity), in TFLOP/s; the first name found in the device
# name wins, so the variants come before their family.
BF16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.5),
    ("H100", 989.4),
    ("H200", 989.4),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("RTX 4090", 165.2),
    ("RTX 5090", 209.5),
)
FULL = dict(sizes=["768x512x121", "1280x704x121"], steps=3, two_stage="1536x1024x121", stage1_steps=2)
QUICK = dict(sizes=["128x128x17", "256x128x17"], steps=1, two_stage="256x128x17", stage1_steps=1)
SEED = 0
FPS = 24.0


class Size(NamedTuple):
    width: int
    height: int
    frames: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}x{self.frames}"


def parse_size(text: str) -> Size:
    try:
        return Size(*(int(part) for part in text.lower().split("x", 2)))
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHTxFRAMES, e.g. 1280x704x121") from None


# ---- the model, with random weights -------------------------------------------------------------------------------


def fill_random(module, dtype, generator) -> None:
    """Give a module built on the meta device seeded random weights in system memory, the way the loader fills one.

    Matrices and kernels get N(0, 1/fan-in), 1-D weights (norm scales) 1 and biases 0, so activations keep a usual
    scale. Values are drawn on the generator's device, the GPU when there is one (2 CPU cores take about 4.5 s per
    billion), then copied to system memory.
    """
    state = {}
    for key, tensor in module.state_dict().items():
        if tensor.is_meta:
            value = torch.empty(tensor.shape, dtype=dtype, device=generator.device)
            if tensor.ndim >= 2:
                value.normal_(0.0, tensor[0].numel() ** -0.5, generator=generator)
            else:
                value.fill_(1.0 if key.endswith("weight") else 0.0)
            tensor = value.cpu()
        state[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    module.load_state_dict(state, strict=True, assign=True)
    module.eval().requires_grad_(False)


def build_model(family: Family, config: dict, device) -> tuple[LTX2Model, Upsampler]:
    """The pack's model container (dev variant, bf16, computing on `device`) and x2 latent upsampler for `config`,
    with random weights waiting in system memory for a memory mode to place them."""
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    dtype = torch.bfloat16
    generator = torch.Generator(device).manual_seed(SEED)
    modules = loading.build_empty(config)
    for name, module in modules.items():
        fill_random(module, torch.float32 if name in loading.FP32_COMPONENTS else dtype, generator)
    with loading.parameters_on_meta():
        upsampler = LTX2LatentUpsamplerModel(**config["latent_upsampler"])
    fill_random(upsampler, dtype, generator)
    model = LTX2Model(**modules, scheduler_config=loading.scheduler_config_for(config, "dev"),
                      family=family, variant="dev", dtype=dtype, device=device,
                      source="random weights", configs=config)
    memory.track(model)
    return model, Upsampler(upsampler, config["latent_upsampler"], "random weights")


def random_conditioning(family: Family, config: dict, device) -> Conditioning:
    """What `conditioning.encode_text` returns, with random Gemma hidden states in system memory: a prompt filling a
    quarter of the context (left padding, as the tokenizer pads) and a negative prompt of the same length; for a
    family whose encoder holds the text projection (LTX-2.5), random projected features."""
    from ltx2_anywhere.pipelines.text_projection import in_text_encoder

    length = family.max_sequence_length
    connectors = config["connectors"]
    width = connectors["caption_channels"] * connectors["text_proj_in_factor"]
    if in_text_encoder(config):
        width = connectors["video_hidden_dim"] + connectors["audio_hidden_dim"]
    generator = torch.Generator(device).manual_seed(SEED + 1)
    embeds = [torch.empty((1, length, width), dtype=torch.bfloat16, device=device).normal_(generator=generator).cpu()
              for _ in range(2)]
    mask = torch.zeros((1, length), dtype=torch.long)
    mask[:, -(length // 4):] = 1
    return Conditioning("random", "random", embeds[0], mask, embeds[1], mask.clone(), FPS)


def store_in_fp8(model, device) -> None:
    """The loader's fp8 option on a built model: the Linear layers of every transformer block as scaled fp8
    (`memory.store_linears_in_fp8`), quantized on the device one block at a time, then back in system memory."""
    for block in model.transformer.transformer_blocks:
        block.to(device)
        memory.store_linears_in_fp8(block)
        block.to("cpu")


# ---- measuring ----------------------------------------------------------------------------------------------------


def _attention_flops(query, key, value, *_args, out_shape=None, **_kwargs) -> int:
    """FlopCounterMode counts the GPU attention kernels but not the CPU one: its two matmuls, as torch counts them."""
    batch, heads, queries, dim = query
    return 2 * batch * heads * queries * key[2] * (dim + value[3])


def transformer_flops(model, conditioning: Conditioning, size: Size) -> tuple[int, int]:
    """(all, attention) FLOPs of one transformer call at `size`, counted while the pack samples one step."""
    from torch.utils.flop_counter import FlopCounterMode

    settings = SamplerSettings(width=size.width, height=size.height, num_frames=size.frames, fps=FPS, steps=1,
                               seed=SEED, guidance=Guidance.off())
    cpu_attention = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}
    with FlopCounterMode(display=False, custom_mapping=cpu_attention) as counter:
        sample(model, conditioning, settings)
    counts = counter.get_flop_counts()[type(model.transformer).__name__]
    return sum(counts.values()), sum(n for op, n in counts.items() if "attention" in str(op))


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rss_gb() -> float:
    """This process's peak resident memory since it started (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


class Phase(NamedTuple):
    name: str
    seconds: float
    allocated: float | None  # peak GB; None on the CPU
    reserved: float | None


class Meter:
    """Seconds and peak device memory of consecutive phases."""

    def __init__(self, device):
        self.device = device
        self.phases: list[Phase] = []
        self.start()

    def start(self) -> None:
        sync(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        self.began = time.perf_counter()

    def mark(self, name: str) -> None:
        sync(self.device)
        seconds = time.perf_counter() - self.began
        allocated = reserved = None
        if self.device.type == "cuda":
            allocated, reserved = torch.cuda.max_memory_allocated() / 1e9, torch.cuda.max_memory_reserved() / 1e9
        self.phases.append(Phase(name, seconds, allocated, reserved))
        self.start()

    def peak(self) -> tuple[float | None, float | None]:
        """(allocated, reserved) peak GB over all phases."""
        if self.device.type != "cuda":
            return None, None
        return max(p.allocated for p in self.phases), max(p.reserved for p in self.phases)


@dataclass
class Row:
    size: Size
    weights: str  # "bf16" or "fp8"
    mode: str
    status: str = "ok"  # or "OOM", "skipped: needs CUDA"
    apply_s: float = 0.0  # applying the mode: moving or pinning weights
    step_s: float = 0.0
    tflops: float = 0.0  # achieved, from the FLOPs of one transformer call at this size
    allocated: float | None = None
    reserved: float | None = None


def time_steps(model, policy: MemoryPolicy, conditioning: Conditioning, size: Size, steps: int, row: Row) -> None:
    """Apply the mode, sample one warm-up step and `steps` timed ones, and fill in the row."""
    device = torch.device(model.device)
    sync(device)
    began = time.perf_counter()
    run = memory.with_policy(model, policy)
    sync(device)
    row.apply_s = time.perf_counter() - began
    meter = Meter(device)
    marks = []

    def on_step(_step, _total, _preview):
        sync(meter.device)
        marks.append(time.perf_counter())

    settings = SamplerSettings(width=size.width, height=size.height, num_frames=size.frames, fps=FPS,
                               steps=steps + 1, seed=SEED, guidance=Guidance.off())
    sample(run, conditioning, settings, on_step=on_step)
    meter.mark("sample")
    row.step_s = median([b - a for a, b in zip(marks, marks[1:])])
    row.allocated, row.reserved = meter.peak()


def accepts(policy: MemoryPolicy, model) -> bool:
    """Whether the pack lets `policy` run on the model's device (on the CPU it refuses what needs CUDA)."""
    try:
        policy.check(torch.device(model.device), model.transformer.config.num_layers)
    except L2AError:
        return False
    return True


def release(device) -> None:
    """Between measurements: what ComfyUI's 'free memory' does (a model placed whole on the device goes back to
    system memory), then the caches emptied."""
    memory.release_all()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_mode(model, conditioning, size: Size, mode: str, weights: str, steps: int, flops: dict) -> Row:
    """One table row; counts the FLOPs at `size` with the first mode that runs there."""
    row = Row(size, weights, mode)
    policy = MODES[mode]
    device = torch.device(model.device)
    if not accepts(policy, model):
        row.status = "skipped: needs CUDA"
        return row
    try:
        time_steps(model, policy, conditioning, size, steps, row)
        if size not in flops:
            flops[size] = transformer_flops(memory.with_policy(model, policy), conditioning, size)
            total, attention = flops[size]
            say(f"{size}: one transformer call = {total / 1e12:.4g} TFLOP, {attention / total:.0%} of it attention "
                "(FlopCounterMode while the pack samples one step)")
        row.tflops = flops[size][0] / row.step_s / 1e12
    except torch.OutOfMemoryError:
        row.status = "OOM"  # the next mode's apply_policy clears what this one left half placed
    release(device)
    return row


def two_stage(model, upsampler, conditioning, size: Size, stage1_steps: int, policy: MemoryPolicy) -> tuple[Meter, bool]:
    """The official two-stage generation through the pack, phase by phase: sample_multiscale, then both decodes.

    Returns the phases and whether it finished (False: it ran out of memory, the last phase says where).
    """
    device = torch.device(model.device)
    run = memory.with_policy(model, policy)
    meter = Meter(device)
    half = f"{size.width // 2}x{size.height // 2}"
    phase = f"stage 1 at {half}: {stage1_steps} steps, full guidance (3 calls a step)"

    def on_step(step, _total, _preview):
        nonlocal phase
        if step == stage1_steps:
            meter.mark(phase)
            phase = f"x2 upsample + stage 2 at {size.width}x{size.height}: {len(STAGE_2_DISTILLED_SIGMAS) - 1} steps"

    settings = SamplerSettings(width=size.width, height=size.height, num_frames=size.frames, fps=FPS,
                               steps=stage1_steps, seed=SEED)
    finished = False
    try:
        latent = sample_multiscale(run, conditioning, settings, upsampler, run, on_step=on_step)
        meter.mark(phase)
        phase = "video decode (VAE tiled in space and time)"
        decode_video(run, latent)
        meter.mark(phase)
        phase = "audio decode (audio VAE + vocoder)"
        decode_audio(run, latent)
        meter.mark(phase)
        finished = True
    except torch.OutOfMemoryError:
        meter.mark(f"{phase}: out of memory")
    release(device)
    return meter, finished


# ---- reporting ----------------------------------------------------------------------------------------------------


def bf16_peak(device, given: float | None) -> tuple[float | None, str]:
    """(TFLOP/s, where the figure comes from) of the device's bf16 dense peak."""
    if given:
        return given, "given with --peak-tflops"
    if device.type != "cuda":
        return None, "no GPU"
    name = torch.cuda.get_device_name(device)
    for key, tflops in BF16_PEAK_TFLOPS:
        if key in name:
            return tflops, f"spec sheet, {key}"
    return None, f"{name} is not in the table: pass --peak-tflops"


def gb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def measure_modes(model, conditioning, sizes: list[Size], modes: list[str], weights: str, steps: int,
                  flops: dict) -> list[Row]:
    """Every size in every mode, each row printed as soon as it is measured (a cut-off run keeps what it did)."""
    rows = []
    for size in sizes:
        for mode in modes:
            row = run_mode(model, conditioning, size, mode, weights, steps, flops)
            rows.append(row)
            result = row.status
            if row.status == "ok":
                result = (f"{row.step_s:.3f} s/step, {row.tflops:.3g} TFLOP/s, peak {gb(row.allocated)} / "
                          f"{gb(row.reserved)} GB allocated / reserved")
            say(f"{size} {weights} {mode}: {result}")
    return rows


def mode_table(rows: list[Row], peak: float | None) -> None:
    """All rows, with each one's time against the fastest mode at its size, measured in the same run."""
    fastest: dict = {}
    for row in rows:
        if row.status == "ok":
            fastest[row.size] = min(fastest.get(row.size, row.step_s), row.step_s)

    def cells(row: Row) -> list:
        if row.status != "ok":
            return [row.size, row.weights, row.mode, row.status, *["-"] * 6]
        share = "peak unknown" if peak is None else f"{row.tflops / peak:.0%}"
        return [row.size, row.weights, row.mode, f"{row.step_s:.3f}", f"{row.step_s / fastest[row.size]:.2f}",
                f"{row.tflops:.3g}", share, gb(row.allocated), gb(row.reserved), f"{row.apply_s:.1f}"]

    table(["size", "weights", "mode", "s/step", "x fastest", "TFLOP/s", "of bf16 peak", "peak allocated GB",
           "peak reserved GB", "apply s"], [cells(row) for row in rows])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_size, nargs="+", help="WIDTHxHEIGHTxFRAMES each (default 768x512x121 "
                        "1280x704x121)")
    parser.add_argument("--modes", nargs="*", choices=list(MODES), default=list(MODES), help="memory modes to time "
                        "(none given: only the two-stage figure)")
    parser.add_argument("--steps", type=int, help="timed steps after the warm-up step (default 3)")
    parser.add_argument("--fp8", action="store_true", help="then time the modes again with fp8 weight storage (it "
                        "converts the model in place, so it runs last)")
    parser.add_argument("--two-stage", type=parse_size, help="two-stage output size (default 1536x1024x121)")
    parser.add_argument("--stage1-steps", type=int, help="stage-1 steps of the two-stage run (default 2)")
    parser.add_argument("--peak-tflops", type=float, help="the card's bf16 dense peak, for a card not in the table")
    parser.add_argument("--family", choices=list(FAMILIES), default="2.0", help="the generation (default 2.0, the "
                        "19B; 2.5 for LTX-2.5 22B)")
    parser.add_argument("--quick", action="store_true", help="the tiny config at toy sizes: checks the script")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    sizes = args.sizes or [parse_size(s) for s in defaults["sizes"]]
    steps = args.steps or defaults["steps"]
    final = args.two_stage or parse_size(defaults["two_stage"])
    stage1_steps = args.stage1_steps or defaults["stage1_steps"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.quick:
        raise SystemExit("bench/gpu.py needs a CUDA GPU: the 19B transformer alone is 38 GB in bf16. To check the script "
                         "on this machine, run it with --quick (the tiny config on the CPU).")
    family = tiny.tiny_family(args.family) if args.quick else FAMILIES[args.family]
    config = family.config()

    header(f"{family.label + ' config (--quick)' if args.quick else family.label + ', random weights'}: seconds per step, "
           "TFLOP/s and peak VRAM per memory mode, and the peak VRAM of a two-stage generation")
    peak, peak_source = bf16_peak(device, args.peak_tflops)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        peak_label = "unknown" if peak is None else f"{peak:g} TFLOP/s"
        say(f"GPU: {props.name}, {props.total_memory / 1e9:.1f} GB, CUDA {torch.version.cuda}; bf16 dense peak "
            f"{peak_label} ({peak_source})")
    else:
        say("GPU: none, everything runs on the CPU: mode rows have no memory figures, the two-stage figure is the "
            "process's peak RSS")
    say(f"s/step: guidance off (one transformer call a step), median of {steps} step(s) after one warm-up step; "
        "TFLOP/s: the FLOPs of one transformer call over s/step. "
        "Prompt: random Gemma 3 hidden states through the model's connectors; Gemma is not run and its memory is out "
        "of scope. Peak: max_memory_allocated / max_memory_reserved while sampling, GB = 1e9 bytes, the CUDA context "
        "not included.")

    started = time.perf_counter()
    model, upsampler = build_model(family, config, device)
    conditioning = random_conditioning(family, config, device)
    count = sum(p.numel() for p in model.transformer.parameters())
    say(f"built {model.family.label} in {time.perf_counter() - started:.1f} s: transformer {count:,} parameters in "
        f"{model.transformer.config.num_layers} blocks")

    flops: dict = {}
    rows = measure_modes(model, conditioning, sizes, args.modes, "bf16", steps, flops)
    lowest = next(mode for mode in LOWEST_MEMORY if accepts(MODES[mode], model))
    policy = replace(MODES[lowest], vae_tiling="both")
    meter, finished = two_stage(model, upsampler, conditioning, final, stage1_steps, policy)
    top, unit = (meter.peak()[1], "VRAM") if device.type == "cuda" else (rss_gb(), "RSS")
    peak_text = f"peak {top:.2f} GB {unit}" if finished else f"out of memory at {top:.2f} GB {unit}"
    say(f"two-stage {final} in {sum(p.seconds for p in meter.phases):.1f} s: {peak_text}")
    if (args.fp8 or args.quick) and args.modes:
        started = time.perf_counter()
        store_in_fp8(model, device)
        say(f"the transformer blocks' Linear layers stored as scaled fp8 in {time.perf_counter() - started:.1f} s")
        rows += measure_modes(model, conditioning, sizes, args.modes, "fp8", steps, flops)

    if rows:
        mode_table(rows, peak)
    say()
    say(f"two-stage {final}, {lowest} offload + VAE tiling in space and time, bf16 weights; the upsampler on the "
        "device only while it runs:")
    table(["phase", "s", "peak allocated GB", "peak reserved GB"],
          [[p.name, f"{p.seconds:.1f}", gb(p.allocated), gb(p.reserved)] for p in meter.phases])
    footer()
    verdict = "holds" if finished and top <= TARGET_GB else "MISSED"
    say(f"two-stage {final}, {lowest} offload + VAE tiling: {peak_text} (target <= {TARGET_GB} GB: {verdict})")


if __name__ == "__main__":
    main()
