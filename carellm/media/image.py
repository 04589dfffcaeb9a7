"""Image loading: any picture input → RGB ``PIL.Image`` of at most ``image_max_pixels``.

Decoding uses Pillow only; headers are checked before decoding so that decompression bombs
are refused undecoded, and large JPEGs are decoded at reduced scale.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from carellm.errors import InputError
from carellm.media.common import MediaLimits, check_aspect, fit_to_grid, open_source


def load_image(source: Any, *, limits: MediaLimits = MediaLimits(), field: str = "image"):
    """Load an RGB ``PIL.Image`` with EXIF orientation applied, at most ``image_max_pixels``.

    ``source`` is a path, bytes, a PIL image, or a numpy array ``[H, W]`` / ``[H, W, 3|4]``
    (uint8, or float in [0, 1]). Larger images are downscaled (aspect kept, sides
    multiples of 28); smaller ones are returned at their size.
    """
    from PIL import Image, ImageOps

    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _image_from_array(source, field)
    else:
        image = _decode_image(open_source(source, limits.max_image_bytes, field), limits, field)
    if image.width < 1 or image.height < 1:
        raise InputError(
            field, f"the image is empty ({image.width}×{image.height}); pass a real picture"
        )
    check_aspect(image.height, image.width, field)  # the processor's resize refuses these
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGB", image.size, (255, 255, 255))  # transparent → white
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    image = image.convert("RGB")
    if image.width * image.height > limits.image_max_pixels:
        h, w = fit_to_grid(image.height, image.width, limits.image_max_pixels, field)
        image = image.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return image


def _decode_image(data: str | io.BytesIO, limits: MediaLimits, field: str):
    """Open (header only), refuse bombs, then decode."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # Our header check below is the authority; PIL's own warning (89 Mpx) is not.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(data)
        except Image.DecompressionBombError as e:
            raise InputError(
                field, f"image too large to decode safely ({e}); resize it first"
            ) from e
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(field, "not an image file; pass a PNG, JPEG or WebP picture") from e
        pixels = image.width * image.height
        if pixels > limits.image_bomb_pixels:
            raise InputError(
                field,
                f"image too large to decode safely: {image.width}×{image.height} = "
                f"{pixels / 1e6:.0f} Mpx > {limits.image_bomb_pixels / 1e6:.0f} Mpx; resize it first",
            )
        if image.format == "JPEG" and pixels > 4 * limits.image_max_pixels:
            h, w = fit_to_grid(image.height, image.width, limits.image_max_pixels, field)
            image.draft("RGB", (w, h))  # decode at 1/2, 1/4 or 1/8 scale: faster, less memory
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as e:
            raise InputError(
                field, f"the image is truncated or corrupt ({e}); upload it again"
            ) from e
    return image


def _image_from_array(array: np.ndarray, field: str):
    from PIL import Image

    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InputError(field, f"image array must be [H, W] or [H, W, 3], got shape {array.shape}")
    if array.size == 0:
        raise InputError(field, f"the image is empty (shape {array.shape}); pass a real picture")
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
            raise InputError(field, "float image values must lie in [0, 1]; scale it or pass uint8")
        array = np.round(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(field, f"image array must be uint8 or float in [0, 1], got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(array))
