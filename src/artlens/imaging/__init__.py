"""Images as artlens reads them: robust decoding (:mod:`.decode`) and letterbox cropping
(:mod:`.letterbox`)."""

from artlens.imaging.decode import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageSource,
    image_size,
    is_image_path,
    load_image,
)
from artlens.imaging.letterbox import crop_letterbox, letterbox_box

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageSource",
    "crop_letterbox",
    "image_size",
    "is_image_path",
    "letterbox_box",
    "load_image",
]
