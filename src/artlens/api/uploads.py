"""Uploaded images: read within the size limit, recognised by their leading bytes (never by the
client's file name), decoded within the pixel limit. Nothing of an upload touches the file system
beyond the request parser's own spooling."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from fastapi import UploadFile
from PIL import Image

from artlens.api.errors import ApiError
from artlens.errors import ImageDecodeError
from artlens.features.extract import prepare_image
from artlens.imaging import image_size

FORMAT_NAMES = "JPEG, PNG, WebP, GIF, BMP or TIFF"

# Leading bytes of the formats the decoder accepts.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (8, b"WEBP", "WebP"),
    (4, b"ftypavif", "AVIF"),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG 2000"),
)


def sniff_format(head: bytes) -> str | None:
    """The image format named by the first bytes of a file, or None."""
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if name == "WebP" and head[:4] != b"RIFF":
                continue
            return name
    return None


@dataclass
class UploadedImage:
    """An upload's bytes and content hash; decoded and encoded on demand, at most once each."""

    data: bytes
    format: str
    max_pixels: int
    crop_letterbox: bool = True
    md5: str = field(init=False)
    _image: Image.Image | None = field(default=None, init=False, repr=False)
    vectors: dict[str, np.ndarray] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.md5 = hashlib.md5(self.data).hexdigest()

    def check_pixels(self) -> tuple[int, int]:
        """(width, height) from the header; 413 if the picture has more pixels than allowed."""
        w, h = image_size(self.data)
        if w * h > self.max_pixels:
            raise ApiError(413, f"the image has too many pixels ({w}x{h} = {w * h:,}; the limit is {self.max_pixels:,})",
                           "downscale it before uploading")
        return w, h

    def image(self) -> Image.Image:
        """Decoded RGB, the right way up, letterbox bands cropped as the collection does."""
        if self._image is None:
            self.check_pixels()
            self._image = prepare_image(self.data, self.max_pixels, self.crop_letterbox)
        return self._image


@dataclass(frozen=True)
class UploadRef:
    """An earlier upload named by its MD5 (``upload_id``): its query vectors may still be cached."""

    md5: str


async def read_upload(upload: UploadFile, max_bytes: int, max_pixels: int, crop_letterbox: bool = True) -> UploadedImage:
    """The upload's bytes, or an :class:`ApiError`: 413 too large, 415 not an image, 422 empty."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, f"the upload is larger than {max_bytes / 2**20:.0f} MiB", "send a smaller or more compressed image")
    if not data:
        raise ApiError(422, "the upload is empty (0 bytes)", "choose an image file")
    kind = sniff_format(data[:32])
    if kind is None:
        declared = upload.content_type or "unknown type"
        raise ApiError(415, f"the upload is not an image this service reads (sent as {declared})",
                       f"upload a {FORMAT_NAMES} file")
    return UploadedImage(data, kind, max_pixels, crop_letterbox)


def decode_or_422(upload: UploadedImage) -> Image.Image:
    try:
        return upload.image()
    except ImageDecodeError as exc:
        message = exc.message.replace("image bytes: ", "")
        if "too many pixels" in message:
            raise ApiError(413, f"the upload has {message}", "downscale it before uploading") from None
        raise ApiError(422, f"the {upload.format} upload cannot be decoded: {message}", exc.hint) from None
