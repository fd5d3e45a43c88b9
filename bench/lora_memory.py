"""What a LoRA run leaves in memory: adapter tensors resident after the run, and host memory held to restore.

For each tiny family (LTX-2 19B and LTX-2.3 stand-ins, written under their official file names and loaded from the
file as a user's model is) the chain camera LoRA (where the family has one) + the family's distilled LoRA runs the
way the sampler runs it (`lora.active_loras`), fused and then unfused (fp8 weights run unfused). Inside and after
each run the script counts:

* adapter bytes: LoRA tensors held by the shared transformer and connectors (`lora.adapter_bytes`);
* held bytes: every live CPU tensor's storage (found through the garbage collector, each storage once) that is not
  a weight of the model, against the same count before the run: what the run keeps in host memory, e.g. copies of
  weights to restore them. A fused run restores by reading the changed weights again from the memory-mapped
  checkpoint, so it holds nothing; a copy of the weights it changes is the reference, printed beside it;
* restore: the seconds the fused run takes to read the changed weights back, and whether the base weights come
  back bit for bit.

The real size is computed, not run: the layers the official 19B distilled LoRA changes (attention and feed-forward
of every block, and the text projection), from the shipped 19B config on the meta device, in bf16.

    python bench/lora_memory.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import re
import tempfile
import time
from pathlib import Path

from _common import footer, header, say, table

# The layers of the official distilled LoRA (Lightricks' trainer targets): attention, feed-forward, text projection.
DISTILLED_LAYERS = r"^transformer\..*\.(to_q|to_k|to_v|to_out\.0|net\.0\.proj|net\.2)$|^connectors\..*text_proj_in$"


def live_cpu_bytes(exclude: set[int]) -> int:
    """Bytes of every live CPU tensor storage (each once) whose storage pointer is not in `exclude`."""
    import torch

    gc.collect()
    seen: dict[int, int] = {}
    for obj in gc.get_objects():
        try:
            if not issubclass(type(obj), torch.Tensor) or obj.device.type != "cpu" or obj.is_meta:
                continue
            storage = obj.untyped_storage()
        except (RuntimeError, ReferenceError):
            continue
        pointer = storage.data_ptr()
        if pointer and pointer not in exclude:
            seen[pointer] = storage.nbytes()
    return sum(seen.values())


def weight_pointers(model) -> set[int]:
    return {p.untyped_storage().data_ptr() for module in (model.transformer, model.connectors, model.vae,
                                                          model.audio_vae, model.vocoder) for p in module.parameters()}


def weights(model) -> dict:
    """The base weights by their plain names (PEFT moves a wrapped layer's weight under `base_layer`)."""
    return {f"{name}.{k.replace('.base_layer.', '.')}": v.detach().clone() for name in ("transformer", "connectors")
            for k, v in getattr(model, name).state_dict().items() if ".lora_" not in k}


def run_chain(model, chain) -> dict:
    """One LoRA run on `chain` (a copy of `model` with LoRAs): the figures inside and after it."""
    import torch

    from ltx2_anywhere.pipelines import lora

    before = weights(model)
    own = weight_pointers(model)
    base_held = live_cpu_bytes(own)
    started = time.perf_counter()
    with lora.active_loras(chain):
        inside = {"adapter": lora.adapter_bytes(model), "held": live_cpu_bytes(own) - base_held,
                  "changed": sum(v.numel() * v.element_size() for k, v in weights(model).items()
                                 if not torch.equal(before[k], v)),
                  "note": lora.lora_note(chain)}
        fused_at = time.perf_counter()
    restore_s = time.perf_counter() - fused_at
    left = {"adapter_after": lora.adapter_bytes(model), "held_after": live_cpu_bytes(own) - base_held}
    after = weights(model)
    return {**inside, **left, "apply_s": fused_at - started, "restore_s": restore_s,
            "exact": all(torch.equal(before[k], after[k]) for k in before)}


def full_size_copy_bytes() -> int:
    """bf16 bytes of the LTX-2 19B layers the official distilled LoRA changes (meta modules of the shipped config)."""
    import torch

    from ltx2_anywhere.pipelines.families import LTX2_19B
    from ltx2_anywhere.pipelines.lora import meta_modules

    total = 0
    for component, module in meta_modules(LTX2_19B.config()).items():
        for name, layer in module.named_modules():
            if isinstance(layer, torch.nn.Linear) and re.search(DISTILLED_LAYERS, f"{component}.{name}"):
                total += sum(p.numel() for p in layer.parameters(recurse=False)) * 2
    return total


def size(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 2.0 stand-in only: checks the script")
    args = parser.parse_args(argv)

    import torch

    from ltx2_anywhere.pipelines import loading, lora, tiny

    torch.set_num_threads(1)
    header("LoRA runs: adapter tensors left resident and host memory held to restore the base weights")
    rows, worst = [], 0
    with tempfile.TemporaryDirectory() as folder:
        for name in ("2.0",) if args.quick else ("2.0", "2.3"):
            written = tiny.write_models_dir(Path(folder) / name, name)
            family = tiny.tiny_family(name)
            for weights_kind, fp8 in (("bf16", False), ("fp8", True)):
                model = loading.load_model(written["checkpoint_dev"], dtype="bf16", fp8=fp8)
                chain = model
                for key in ("lora_dolly_in", "lora_distilled"):
                    if key in written:
                        chain = lora.add_lora(chain, written[key], 0.8)
                runs = [("auto", chain)]
                if not fp8:
                    runs.append(("unfused", dataclasses.replace(chain, source_stamps=())))
                for label, run in runs:
                    found = run_chain(model, run)
                    mode = "fused" if found["note"].endswith("(fused)") else "unfused"
                    worst = max(worst, found["adapter_after"], found["held_after"], found["held"] if mode == "fused"
                                else 0)
                    rows.append([family.label, weights_kind, label, mode, size(found["adapter"]),
                                 size(found["adapter_after"]), size(found["held"]), size(found["changed"]),
                                 f"{found['restore_s'] * 1000:.1f}", "yes" if found["exact"] else "NO"])
                    if not found["exact"]:
                        worst = max(worst, 1)
    say()
    table(["model", "weights", "run", "mode", "adapters during", "adapters after", "held during",
           "a copy of the changed weights", "restore / release ms", "base exact"], rows)
    copy = full_size_copy_bytes()
    say()
    say(f"LTX-2 19B (computed from its config): the layers its distilled LoRA changes are {size(copy)} in bf16, the "
        "host memory a copy kept to restore them would take; the fused run reads them back from the checkpoint.")
    footer()
    verdict = "holds" if worst == 0 else "MISSED"
    say(f"LoRA runs: {size(worst)} of adapters or restore copies left in memory; 19B copy avoided {size(copy)} "
        f"(target 0 B: {verdict})")


if __name__ == "__main__":
    main()
