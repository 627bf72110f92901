"""Converting state dicts from other PyTorch projects into our weights files.

Files are read with ``torch.load(weights_only=True)`` (tensors and plain containers only;
no pickled code runs) or as safetensors, and checkpoint wrappers (``model``,
``state_dict``, ``params_ema``, ``generator``, ...) and a ``module.`` prefix (DataParallel)
are unwrapped, as for community models (:func:`srgan_cli.distribution.community_files.read_state_dict`). The
layouts, and how each maps onto an architecture's names, are :mod:`srgan_cli.distribution.layouts`
(one module per layout). Every source tensor must be used and every shape must match the
network rebuilt from them; anything else is refused with a message naming the first
offender.
"""

from __future__ import annotations

import os
from pathlib import Path

from srgan_cli import arch
from srgan_cli.distribution import layouts
from srgan_cli.errors import ConvertError


def _load_state(path: Path) -> dict:
    """The tensors of ``path``, read as community model files are
    (:func:`srgan_cli.distribution.community_files.read_state_dict`), refusals as :class:`ConvertError`."""
    from srgan_cli.distribution.community_files import read_state_dict

    return read_state_dict(path, error=ConvertError)


def _layout_of(state: dict, layout: str, src: Path) -> layouts.Layout:
    """The layout to convert ``state`` with: the one it has (``auto``) or the one named,
    which it must have."""
    found = layouts.recognise(state)
    if layout != "auto":
        named = layouts.get(layout)
        if found is not named:
            raise ConvertError(f"{src}: does not look like the {layout} layout")
        return named
    if found is not None:
        return found
    other = arch.recognise(state)
    if other is not None:  # e.g. an ESRGAN file: nothing to convert
        raise ConvertError(
            f"{src}: a {other[1]} model ({other[0].name}), not a convertible layout; "
            f"it runs as it is: srgan upscale --model {src}")
    keys = ", ".join(sorted(state)[:4])
    raise ConvertError(
        f"{src}: unrecognised state-dict layout (first keys: {keys}, ...); supported: "
        f"{', '.join(layouts.NAMES)} (see `srgan models convert --help`)")


def convert(src: str | os.PathLike, dst: str | os.PathLike, layout: str = "auto",
            overwrite: bool = False):
    """Convert ``src`` to our safetensors format at ``dst``; returns ``(layout name, the
    written file loaded as a Model)``."""
    from srgan_cli.distribution.hub import sha256_file
    from srgan_cli.distribution.loading import load_file
    from srgan_cli.distribution.modelfile import save_generator

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ConvertError(f"{src}: no such file")
    if dst.exists() and not overwrite:
        raise ConvertError(f"{dst}: exists (pass --overwrite)")
    if dst.suffix != ".safetensors":
        raise ConvertError(f"{dst}: the output must be a .safetensors file")
    if layout != "auto":
        layouts.get(layout)  # an unknown name is refused before the file is read
    state = _load_state(src)
    lay = _layout_of(state, layout, src)
    architecture = arch.get(lay.arch)
    spec, mapped, used = lay.convert(state, str(src))
    unused = sorted(k for k in set(state) - used if not k.endswith("num_batches_tracked"))
    if unused:
        raise ConvertError(f"{src}: {len(unused)} tensors the {lay.name} layout does not use "
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
        "source_layout": lay.name,
        "source_file": src.name,
        "source_sha256": sha256_file(src),
    })
    return lay.name, load_file(dst, ours_only=True)
