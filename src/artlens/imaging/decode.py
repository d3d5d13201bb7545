"""Decode artwork images robustly.

``load_image`` turns whatever an institution hands over (JPEG, PNG, WebP, TIFF, ...; CMYK, 16-bit,
greyscale, palette, alpha, animated, EXIF-rotated) into one predictable thing: an 8-bit RGB
``PIL.Image`` the right way up. Failures become :class:`~artlens.errors.ImageDecodeError` with a
one-line reason and a hint, never a bare Pillow exception.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from artlens.errors import ImageDecodeError

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default decompression-bomb limit
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]

# Formats we let Pillow try. Deliberately a closed list: it covers IMAGE_SUFFIXES (MPO is how
# Pillow labels many camera JPEGs) and keeps untrusted files away from plugins that shell out
# (EPS -> Ghostscript) or that nobody ingests paintings from.
_ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "DIB", "GIF", "TIFF", "JPEG2000", "AVIF")
_FORMAT_NAMES = "JPEG, PNG, WebP, BMP, GIF or TIFF"

# Leading bytes of formats we recognise, to tell "corrupt JPEG" from "not an image at all".
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {5, 6, 7, 8}

_HINT_REEXPORT = "re-export or re-download the file; if other files load, this one is damaged"


# --------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _allowed_formats() -> list[str]:
    Image.init()  # registers every plugin; idempotent and cheap after the first call
    return [f for f in _ALLOWED_FORMATS if f in Image.OPEN]


def _sniff(prefix: bytes) -> str | None:
    for magic, name in _MAGIC:
        if prefix.startswith(magic):
            return name
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP":
        return "WebP"
    return None


def _describe(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "image bytes"
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, (str, os.PathLike)) else "image stream"


@contextmanager
def _open_stream(source: ImageSource, label: str) -> Iterator[BinaryIO]:
    """Yield a seekable binary stream positioned at the start of the image data."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageDecodeError(f"{label}: empty (0 bytes)", "the upload or file has no content")
        yield io.BytesIO(data)
        return
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if path.is_dir():
                raise ImageDecodeError(f"{label}: is a folder, not an image file", "pass an image file")
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise ImageDecodeError(
                f"{label}: file not found", "check the path and that the file exists"
            ) from None
        except PermissionError:
            raise ImageDecodeError(
                f"{label}: unreadable file (permission denied)", "check the file's permissions"
            ) from None
        except OSError as e:
            raise ImageDecodeError(
                f"{label}: unreadable file ({e.strerror or e})", "check the disk or network share"
            ) from None
        try:
            try:
                size = os.fstat(fh.fileno()).st_size
            except OSError:
                size = None
            if size == 0:
                raise ImageDecodeError(
                    f"{label}: empty file (0 bytes)", "the file was probably not fully copied or downloaded"
                )
            yield fh
        finally:
            fh.close()
        return
    if not hasattr(source, "read"):
        raise TypeError(f"expected a path, bytes or a binary file object, got {type(source).__name__}")
    stream: BinaryIO = source
    seekable = False
    try:
        seekable = bool(stream.seekable())
    except Exception:  # noqa: BLE001 - exotic file objects
        seekable = False
    if seekable:
        try:
            start = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(start)
            if end <= start:
                raise ImageDecodeError(f"{label}: empty (0 bytes)", "the upload or file has no content")
            if start:
                # Pillow assumes the image starts at offset 0 of the stream it is given.
                data = stream.read()
                stream = io.BytesIO(data)
        except ImageDecodeError:
            raise
        except OSError as e:
            raise ImageDecodeError(
                f"{label}: unreadable stream ({e})", "pass the image as bytes or a path"
            ) from None
        yield stream
        return
    try:
        data = stream.read()
    except OSError as e:
        raise ImageDecodeError(
            f"{label}: unreadable stream ({e})", "pass the image as bytes or a path"
        ) from None
    if isinstance(data, str):
        raise ImageDecodeError(f"{label}: stream is opened in text mode", "open the file with mode 'rb'")
    if not data:
        raise ImageDecodeError(f"{label}: empty (0 bytes)", "the upload or file has no content")
    yield io.BytesIO(data)


_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def _too_many(label: str, size: tuple[int, int] | None, pixels: int | None, limit: int) -> ImageDecodeError:
    if size is not None:
        what = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels"
    elif pixels is not None:
        what = f"{pixels:,} pixels"
    else:
        what = "too many pixels"
    return ImageDecodeError(
        f"{label}: too many pixels ({what}, limit {limit:,})",
        "downscale the image first, or pass a larger max_pixels if you trust the file",
    )


@contextmanager
def our_pixel_limit() -> Iterator[None]:
    """Silence Pillow's soft-limit DecompressionBombWarning: artlens checks the caller's ``max_pixels``
    itself (and Pillow still refuses images over twice its own limit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


@contextmanager
def _open_image(source: ImageSource, max_pixels: int | None) -> Iterator[tuple[Image.Image, str]]:
    """Open (header only) and check the pixel count; yields (image, label). Decodes nothing."""
    label = _describe(source)
    with _open_stream(source, label) as stream:
        try:
            prefix = stream.read(16)
            stream.seek(0)
        except OSError as e:
            raise ImageDecodeError(f"{label}: unreadable ({e})", "check the disk or network share") from None
        kind = _sniff(prefix)
        try:
            with our_pixel_limit():
                im = Image.open(stream, formats=_allowed_formats())
        except Image.DecompressionBombError as e:
            m = _BOMB_PIXELS.search(str(e))
            pixels = int(m.group(1)) if m else None
            limit = max_pixels if max_pixels is not None else int(Image.MAX_IMAGE_PIXELS or 0)
            if pixels is not None and max_pixels is not None and pixels <= max_pixels:
                raise ImageDecodeError(
                    f"{label}: too many pixels ({pixels:,}) for Pillow's own limit "
                    f"({2 * int(Image.MAX_IMAGE_PIXELS or 0):,})",
                    "raise PIL.Image.MAX_IMAGE_PIXELS in your application if you trust such files",
                ) from None
            raise _too_many(label, None, pixels, limit) from None
        except UnidentifiedImageError:
            if kind is not None:
                raise ImageDecodeError(
                    f"{label}: corrupt {kind} (the header cannot be parsed)", _HINT_REEXPORT
                ) from None
            if prefix.lstrip()[:1] in (b"<", b"{") or prefix[:5] == b"%PDF-":
                what = "looks like HTML/XML/JSON/PDF" if prefix[:5] != b"%PDF-" else "is a PDF"
                raise ImageDecodeError(
                    f"{label}: not an image (it {what})",
                    f"supported formats: {_FORMAT_NAMES}; a download may have saved an error page",
                ) from None
            raise ImageDecodeError(
                f"{label}: not an image (unrecognised format)", f"supported formats: {_FORMAT_NAMES}"
            ) from None
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            text = str(e) or type(e).__name__
            if "truncated" in text.lower() or isinstance(e, EOFError):
                raise ImageDecodeError(
                    f"{label}: truncated ({text}): the file ends inside its header", _HINT_REEXPORT
                ) from None
            raise ImageDecodeError(f"{label}: corrupt image header ({text})", _HINT_REEXPORT) from None
        try:
            w, h = im.size
            if w <= 0 or h <= 0:
                raise ImageDecodeError(f"{label}: corrupt image (size {w}x{h})", _HINT_REEXPORT)
            if max_pixels is not None and w * h > max_pixels:
                raise _too_many(label, (w, h), None, max_pixels)
            yield im, label
        finally:
            im.close()


def _orientation(im: Image.Image, header_only: bool = False) -> int:
    if header_only and im.format == "PNG" and "exif" not in im.info:
        return 1  # a PNG eXIf chunk after the pixel data would need a full decode to find
    try:
        value = int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make the image unreadable
        return 1
    return value if value in _TRANSPOSE_FOR_ORIENTATION else 1


# --------------------------------------------------------------------------------------------
# Mode conversion
# --------------------------------------------------------------------------------------------


def _scale_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """Map one band of 16-bit, 32-bit or float samples onto 0..255 without clipping the range."""
    a = a.astype(np.float64, copy=False)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 0.0)
    if a.size == 0:
        return np.zeros(a.shape, np.uint8)
    lo, hi = float(a.min()), float(a.max())
    if mode.startswith("I;16"):
        out = a / 257.0  # full 16-bit range -> full 8-bit range (65535 / 257 == 255)
    elif mode == "F" and lo >= 0.0 and hi <= 1.0:
        out = a * 255.0  # normalised float data
    elif lo >= 0.0 and hi <= 255.0:
        out = a  # already 8-bit values stored wide (e.g. an 'I' made from 'L')
    elif mode == "I" and lo >= 0.0 and hi <= 65535.0:
        out = a / 257.0  # 16-bit data widened to 32-bit (older Pillow PNG/TIFF loaders)
    else:
        out = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _has_alpha(im: Image.Image) -> bool:
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    return "transparency" in im.info and im.mode in ("P", "L", "RGB", "1")


def _icc_to_srgb(im: Image.Image) -> Image.Image | None:
    """Colour-manage CMYK (or non-sRGB RGB) with its embedded ICC profile; None if not possible."""
    icc = im.info.get("icc_profile")
    if not icc:
        return None
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if im.mode == "RGB":
            desc = ImageCms.getProfileDescription(src) or ""
            if "srgb" in desc.lower():
                return None
        dst = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(
            im, src, dst, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB"
        )
    except Exception:  # noqa: BLE001 - bad or unsupported profile: fall back to Pillow's conversion
        return None


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if _has_alpha(im):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in ("I", "F") or mode.startswith("I;16"):
        grey = _scale_to_uint8(np.asarray(im), mode)
        return Image.fromarray(grey).convert("RGB")
    if mode == "CMYK":
        managed = _icc_to_srgb(im)
        return managed if managed is not None else im.convert("RGB")
    if mode == "RGB":
        managed = _icc_to_srgb(im)
        return managed if managed is not None else im
    if mode == "LAB":
        from PIL import ImageCms

        transform = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        return ImageCms.applyTransform(im, transform)
    return im.convert("RGB")  # 1, L, P, YCbCr, HSV, RGBX, ...


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``source`` to an 8-bit RGB image, the right way up.

    ``source`` is a path, the file's bytes, or a binary file object. Applies EXIF orientation;
    converts CMYK (with its ICC profile when present), greyscale ("1", L, I;16, I, F: 16-bit and
    float samples are scaled to 0..255, not clipped), palette and alpha images (composited on
    white); takes the first frame of animations. Images with more than ``max_pixels`` pixels are
    refused from their header, before any pixel is decoded.

    Raises :class:`ImageDecodeError` (one-line reason and a hint) for an empty file, a file that
    is not an image, truncated or corrupt data, too many pixels, or an unreadable file. Truncated
    images are errors: Pillow's ``LOAD_TRUNCATED_IMAGES`` is not used.
    """
    if max_pixels is None or max_pixels <= 0:
        raise ValueError("max_pixels must be a positive number of pixels")
    with _open_image(source, max_pixels) as (im, label):
        try:
            with our_pixel_limit():
                if getattr(im, "n_frames", 1) > 1:
                    im.seek(0)
                im.load()
        except Image.DecompressionBombError as e:  # a frame larger than the header said
            m = _BOMB_PIXELS.search(str(e))
            raise _too_many(label, None, int(m.group(1)) if m else None, max_pixels) from None
        except MemoryError:
            raise ImageDecodeError(
                f"{label}: not enough memory to decode it", "downscale the image first"
            ) from None
        except Exception as e:  # noqa: BLE001 - Pillow decoders raise OSError, SyntaxError, ValueError, zlib.error ...
            text = str(e) or type(e).__name__
            if "truncated" in text.lower() or isinstance(e, EOFError):
                reason = f"truncated ({text}): the file ends before the image data does"
            else:
                reason = f"corrupt image data ({text})"
            raise ImageDecodeError(f"{label}: {reason}", _HINT_REEXPORT) from None
        orientation = _orientation(im)
        try:
            out = _to_rgb(im)
        except Exception as e:  # noqa: BLE001
            raise ImageDecodeError(
                f"{label}: unsupported colour mode {im.mode!r} ({e})", "convert the file to RGB JPEG or PNG"
            ) from None
        if orientation != 1:
            out = out.transpose(_TRANSPOSE_FOR_ORIENTATION[orientation])
        elif out is im:
            out = im.copy()
    # Pixels are normalised now: drop EXIF (its orientation is applied), ICC (now sRGB), palette info.
    out.info = {}
    return out


def image_size(source: ImageSource) -> tuple[int, int]:
    """(width, height) as :func:`load_image` would return it, reading only the header.

    EXIF orientations that rotate by 90 degrees swap the two (except a PNG's eXIf chunk stored
    after the pixel data, which only a full decode finds). Raises :class:`ImageDecodeError` like
    :func:`load_image` for files that are missing, empty or not images. No pixel limit of its
    own, but Pillow refuses to open images over twice ``PIL.Image.MAX_IMAGE_PIXELS``.
    """
    with _open_image(source, None) as (im, _label):
        w, h = im.size
        if _orientation(im, header_only=True) in _SWAPS_AXES:
            w, h = h, w
        return int(w), int(h)
