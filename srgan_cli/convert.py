"""Converting state dicts from other PyTorch projects into our weights files.

Files are read with ``torch.load(weights_only=True)`` (tensors and plain containers only;
no pickled code runs) or as safetensors, and checkpoint wrappers (``model``,
``state_dict``, ``params_ema``, ``generator``, ...) and a ``module.`` prefix (DataParallel)
are unwrapped, as for community models (:func:`srgan_cli.foreign.read_state_dict`). The layouts, and how each maps onto our names, belong to the architectures
(:func:`srgan_cli.arch.layouts`; SRResNet's ``twtygqyy`` and ``srgan`` are documented in
:mod:`srgan_cli.arch.srresnet`). Every source tensor must be used and every shape must
match the network rebuilt from them; anything else is refused with a message naming the
first offender.
"""

from __future__ import annotations

import os
from pathlib import Path

from srgan_cli import arch
from srgan_cli.errors import ConvertError

LAYOUTS = tuple(arch.layouts())  # the built-in ones; arch.layouts() is asked at call time


def _load_state(path: Path) -> dict:
    """The tensors of ``path``, read as community model files are
    (:func:`srgan_cli.foreign.read_state_dict`), refusals as :class:`ConvertError`."""
    from srgan_cli.foreign import read_state_dict

    return read_state_dict(path, error=ConvertError)


def detect_layout(state: dict) -> str | None:
    """The first registered layout that recognises ``state``, or None."""
    from srgan_cli import arch

    found = arch.recognise(state)
    return found[1] if found and found[1] in arch.layouts() else None


def convert(src: str | os.PathLike, dst: str | os.PathLike, layout: str = "auto",
            overwrite: bool = False) -> tuple[str, "object"]:
    """Convert ``src`` to our safetensors format at ``dst``; returns ``(layout, ModelInfo)``."""
    from srgan_cli.hub import sha256_file
    from srgan_cli.weights import read_info, save_generator

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ConvertError(f"{src}: no such file")
    if dst.exists() and not overwrite:
        raise ConvertError(f"{dst}: exists (pass --overwrite)")
    if dst.suffix != ".safetensors":
        raise ConvertError(f"{dst}: the output must be a .safetensors file")
    state = _load_state(src)
    known = arch.layouts()
    found = detect_layout(state)
    if layout == "auto":
        if found is None:
            other = arch.recognise(state)
            if other is not None:  # e.g. an ESRGAN file: nothing to convert
                raise ConvertError(
                    f"{src}: a {other[1]} model ({other[0].name}), not a convertible layout; "
                    f"it runs as it is: srgan upscale --model {src}")
            keys = ", ".join(sorted(state)[:4])
            raise ConvertError(
                f"{src}: unrecognised state-dict layout (first keys: {keys}, ...); supported: "
                f"{', '.join(known)} (see `srgan models convert --help`)")
        layout = found
    elif layout not in known:
        raise ConvertError(f"unknown layout {layout!r} (supported: {', '.join(known)})")
    elif found != layout:
        raise ConvertError(f"{src}: does not look like the {layout} layout")
    architecture = known[layout]
    spec, mapped, used = architecture.convert_state(state, layout, str(src))
    unused = sorted(k for k in set(state) - used if not k.endswith("num_batches_tracked"))
    if unused:
        raise ConvertError(f"{src}: {len(unused)} tensors the {layout} layout does not use "
                           f"(e.g. {unused[0]}); refusing a partial conversion")
    expected = architecture.expected_state(spec)
    missing = sorted(set(expected) - set(mapped))
    extra = sorted(set(mapped) - set(expected))
    if missing or extra:
        raise ConvertError(f"{src}: does not map onto {spec}: "
                           + (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"))
    for k, shape in expected.items():
        if tuple(mapped[k].shape) != shape:
            raise ConvertError(f"{src}: tensor for {k} has shape {tuple(mapped[k].shape)}, "
                               f"expected {shape} for {spec}")
    model = architecture.load(spec, mapped, src)
    save_generator(model, dst, {
        "stage": "converted",
        "source_layout": layout,
        "source_file": src.name,
        "source_sha256": sha256_file(src),
    })
    return layout, read_info(dst)
