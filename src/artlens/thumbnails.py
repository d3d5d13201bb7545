"""Thumbnails of artworks, cached on disk by content (MD5) and size. The original file is read once
to make a thumbnail; what is served is always the re-encoded JPEG in the cache, never the original."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from artlens.errors import ArtlensError, ImageDecodeError
from artlens.files import atomic_path
from artlens.imaging import DEFAULT_MAX_PIXELS, load_image

_MD5 = re.compile(r"^[0-9a-f]{32}$")


class ThumbnailCache:
    """``folder/ab/abcdef...-320.jpg``: made on first request, written atomically, then reused."""

    def __init__(self, folder: str | Path, max_source_pixels: int = DEFAULT_MAX_PIXELS, quality: int = 85):
        self.folder = Path(folder)
        self.max_source_pixels = max_source_pixels
        self.quality = quality

    def path(self, md5: str, size: int) -> Path:
        if not _MD5.match(md5):
            raise ArtlensError(f"not an MD5 digest: {md5!r}", "thumbnails are keyed by the artwork's MD5")
        return self.folder / md5[:2] / f"{md5}-{int(size)}.jpg"

    def get(self, md5: str, source: str | Path, size: int) -> Path:
        """The cached thumbnail (longer side ``size`` pixels), made from ``source`` if missing."""
        target = self.path(md5, size)
        if target.exists():
            return target
        image = load_image(source, max_pixels=self.max_source_pixels)
        image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        with atomic_path(target) as tmp:
            image.save(tmp, "JPEG", quality=self.quality, optimize=True, progressive=True)
        return target

    def ensure(self, md5: str, source: str | Path, size: int) -> Path | None:
        """Like :meth:`get`, but None when the original is gone or unreadable."""
        try:
            return self.get(md5, source, size)
        except ImageDecodeError:
            return None
