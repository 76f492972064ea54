"""PNG image inputs (plan record ``image``): the one decoding rule every consumer follows.

A PNG becomes float32 ``[1, H, W, 3]``: NHWC, row-major (element ``[0, y, x, c]`` is the
pixel in row ``y``, column ``x``), channels R, G, B, values 0..255 unscaled. Greyscale is
replicated into R, G and B, alpha is dropped (not composited), palettes are expanded: what
pillow's ``convert("RGB")`` and the Rust ``image`` crate's ``to_rgb8`` both do.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import UserError


def decode_png(path: str | os.PathLike[str]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=["PNG"]) as image:
            if image.mode in ("I", "I;16", "I;16B", "F"):
                # pillow's convert("RGB") clips 16-bit samples instead of scaling them.
                raise UserError(f"{path}: 16-bit/float PNG ({image.mode}) is not supported")
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    except FileNotFoundError:
        raise UserError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{path} is not a readable PNG ({exc})") from None
    return rgb[np.newaxis]
