"""The edits a duplicate finder must see through, applied to a PIL photo (for the tests)."""

from __future__ import annotations

import io

from PIL import Image, ImageEnhance, ImageOps


def resaved(img: Image.Image, quality: int = 40) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(buf).convert("RGB")


def downscaled(img: Image.Image, share: float = 0.4) -> Image.Image:
    return img.resize((round(img.width * share), round(img.height * share)), Image.BILINEAR)


def grey(img: Image.Image) -> Image.Image:
    return img.convert("L").convert("RGB")


def recoloured(img: Image.Image) -> Image.Image:
    img = ImageEnhance.Color(img).enhance(1.6)
    return ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(0.8)).enhance(1.3)


def turned(img: Image.Image) -> Image.Image:
    return img.rotate(90, expand=True)


def mirrored(img: Image.Image) -> Image.Image:
    return ImageOps.mirror(img)


def cropped(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((round(w * 0.2), round(h * 0.1), round(w * 0.85), round(h * 0.8)))


EDITS = {"resaved": resaved, "downscaled": downscaled, "grey": grey, "recoloured": recoloured,
         "turned": turned, "mirrored": mirrored, "cropped": cropped}
