"""Image decoding and letterbox cropping (artlens.imaging)."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.errors import ArtlensError, ImageDecodeError
from artlens.imaging import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    crop_letterbox,
    image_size,
    is_image_path,
    letterbox_box,
    load_image,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ARTLENS_DATA", "../shared/data"))
DATA = DATA if DATA.is_absolute() else REPO / DATA  # relative to the repo root


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _texture(w: int, h: int, seed: int = 0, lo: int = 60, hi: int = 230) -> np.ndarray:
    """A painting-like RGB texture: smooth gradients plus noise, nowhere near black or white."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(w + h - 2, 1)], axis=-1)
    a = lo + (hi - lo) * (0.7 * base + 0.3 * rng.random((h, w, 3)))
    return a.astype(np.uint8)


# ----------------------------------------------------------------------------------- constants


def test_constants():
    assert DEFAULT_MAX_PIXELS == Image.MAX_IMAGE_PIXELS == 89_478_485
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"} == IMAGE_SUFFIXES
    assert is_image_path("a/B.JPG") and not is_image_path("notes.txt")


# ----------------------------------------------------------------------------------- decoding


def test_rgb_png_from_path_bytes_and_stream(tmp_path):
    arr = _texture(7, 5)
    data = _encode(Image.fromarray(arr), "PNG")
    p = tmp_path / "a.png"
    p.write_bytes(data)
    for src in (p, str(p), data, bytearray(data), io.BytesIO(data)):
        im = load_image(src)
        assert im.mode == "RGB" and im.size == (7, 5)
        assert np.array_equal(np.asarray(im), arr)


def test_stream_not_at_start_and_unseekable():
    arr = _texture(6, 4)
    data = _encode(Image.fromarray(arr), "PNG")
    buf = io.BytesIO(b"junk" + data)
    buf.seek(4)
    assert np.array_equal(np.asarray(load_image(buf)), arr)

    class Pipe(io.RawIOBase):
        def __init__(self, payload):
            self._b = io.BytesIO(payload)

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, b):
            chunk = self._b.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    assert np.array_equal(np.asarray(load_image(io.BufferedReader(Pipe(data)))), arr)


def test_exif_orientation_6_rotates_and_swaps_size(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :] = (0, 0, 255)
    arr[:10, :10] = (255, 0, 0)  # stored top-left corner is red
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    data = _encode(Image.fromarray(arr), "JPEG", quality=95, exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size == (40, 20)
    im = load_image(data)
    assert im.size == (20, 40)
    assert image_size(data) == (20, 40)
    out = np.asarray(im).astype(int)
    assert out[2, -3, 0] > 200 and out[2, -3, 2] < 60  # red now top-right
    assert out[-3, 2, 2] > 200  # bottom-left is blue
    assert "exif" not in im.info and not im.getexif().get(0x0112)  # orientation is not applied twice


def test_cmyk_jpeg_to_rgb():
    cmyk = Image.new("CMYK", (16, 8), (255, 0, 0, 0))  # pure cyan
    cmyk.paste((0, 0, 0, 255), (8, 0, 16, 8))  # black on the right half
    im = load_image(_encode(cmyk, "JPEG", quality=95))
    assert im.mode == "RGB" and im.size == (16, 8)
    a = np.asarray(im).astype(int)
    r, g, b = a[4, 2]
    assert r < 40 and g > 200 and b > 200
    assert a[4, 13].max() < 40


def test_16bit_png_gradient_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 256).astype(np.uint16)
    grey16 = Image.fromarray(np.tile(ramp, (4, 1)))
    assert grey16.mode.startswith("I;16")
    p = tmp_path / "g16.png"
    grey16.save(p)
    assert Image.open(p).mode.startswith("I")
    im = load_image(p)
    assert im.mode == "RGB" and im.size == (256, 4)
    row = np.asarray(im)[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)  # monotonic
    assert len(np.unique(row)) > 200  # not clipped to a few values
    assert abs(row[128] - 128) <= 2


def test_float_tiff_scaled(tmp_path):
    ramp = np.linspace(-3.0, 1000.0, 64, dtype=np.float32)
    p = tmp_path / "f.tif"
    Image.fromarray(np.tile(ramp, (3, 1)), mode="F").save(p)
    row = np.asarray(load_image(p))[1, :, 1].astype(int)
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)


def test_greyscale_and_bilevel():
    a = np.asarray(load_image(_encode(Image.new("L", (3, 3), 77), "PNG")))
    assert a.shape == (3, 3, 3) and (a == 77).all()
    a = np.asarray(load_image(_encode(Image.new("1", (3, 3), 1), "PNG")))
    assert (a == 255).all()


def test_alpha_composited_on_white():
    rgba = Image.new("RGBA", (4, 2), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (255, 0, 0, 255))  # one opaque red pixel
    rgba.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black
    a = np.asarray(load_image(_encode(rgba, "PNG"))).astype(int)
    assert tuple(a[0, 0]) == (255, 0, 0)
    assert all(abs(v - 127) <= 2 for v in a[0, 1])
    assert (a[1] == 255).all()

    la = Image.new("LA", (2, 2), (0, 0))  # transparent black
    la.putpixel((0, 0), (0, 255))
    a = np.asarray(load_image(_encode(la, "PNG")))
    assert tuple(a[0, 0]) == (0, 0, 0) and (a[1] == 255).all()


def test_palette_with_transparency_on_white():
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)  # index 0 black, index 1 green
    pal.paste(1, (0, 0, 2, 4))
    data = _encode(pal, "PNG", transparency=0)
    a = np.asarray(load_image(data))
    assert tuple(a[0, 0]) == (0, 255, 0)
    assert (a[:, 2:] == 255).all()  # the transparent black is white, not black


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 3
    a = np.asarray(load_image(buf.getvalue())).astype(int)
    assert a[..., 0].min() > 200 and a[..., 2].max() < 50


def test_webp_and_bmp_and_tiff():
    arr = _texture(9, 6)
    for fmt in ("WEBP", "BMP", "TIFF"):
        im = load_image(_encode(Image.fromarray(arr), fmt, **({"lossless": True} if fmt == "WEBP" else {})))
        assert im.size == (9, 6) and im.mode == "RGB"
        assert np.abs(np.asarray(im).astype(int) - arr).max() <= 2, fmt


# ----------------------------------------------------------------------------------- failures


def _err(src, **kw) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as info:
        load_image(src, **kw)
    e = info.value
    assert isinstance(e, ArtlensError) and e.hint
    assert "\n" not in e.message
    return e


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    assert "empty" in _err(p).message
    assert "empty" in _err(b"").message
    assert "empty" in _err(io.BytesIO()).message


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n")
    e = _err(p)
    assert "not an image" in e.message and str(p) in e.message
    assert "not an image" in _err(b"<html><body>404</body></html>").message


def test_truncated_jpeg():
    data = _encode(Image.fromarray(_texture(64, 64, seed=3)), "JPEG", quality=95)
    e = _err(data[: len(data) // 2])
    assert "truncated" in e.message


def test_truncated_png_and_corrupt_header():
    data = _encode(Image.fromarray(_texture(64, 64, seed=4)), "PNG")
    e = _err(data[: len(data) // 2])
    assert "truncated" in e.message or "corrupt" in e.message
    e = _err(b"\xff\xd8\xff" + b"\x00" * 40)
    assert "corrupt JPEG" in e.message


def test_too_many_pixels_refused_before_decoding():
    data = _encode(Image.fromarray(_texture(100, 80)), "JPEG")
    e = _err(data, max_pixels=5000)
    assert "too many pixels" in e.message and "100x80" in e.message
    assert "8,000" in e.message and "5,000" in e.message
    # a truncated file over the limit reports the limit: pixels are never decoded
    assert "too many pixels" in _err(data[: len(data) // 2], max_pixels=5000).message
    assert load_image(data, max_pixels=8000).size == (100, 80)


def test_pillow_soft_limit_warning_does_not_leak(monkeypatch):
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)  # 100x80 = 8,000 pixels: over Pillow's soft limit
    data = _encode(Image.fromarray(_texture(100, 80)), "PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert "too many pixels" in _err(data, max_pixels=6000).message  # refused by artlens, quietly
        image = load_image(data, max_pixels=8000)
        padded = Image.new("RGB", (120, 80), (0, 0, 0))
        padded.paste(image, (10, 0))
        assert crop_letterbox(padded).size == (100, 80)


def test_missing_and_folder(tmp_path):
    assert "not found" in _err(tmp_path / "nope.png").message
    assert "folder" in _err(tmp_path).message
    with pytest.raises(ImageDecodeError):
        image_size(tmp_path / "nope.png")


def test_pil_global_limit_untouched():
    before = Image.MAX_IMAGE_PIXELS
    load_image(_encode(Image.new("RGB", (4, 4)), "PNG"), max_pixels=10**9)
    assert before == Image.MAX_IMAGE_PIXELS


def test_image_size_header_only(tmp_path):
    p = tmp_path / "x.jpg"
    data = _encode(Image.fromarray(_texture(300, 200)), "JPEG")
    p.write_bytes(data[: len(data) // 2])  # truncated: the header still tells the size
    assert image_size(p) == (300, 200)
    assert "truncated" in _err(data[:200]).message  # cut inside the header


# ----------------------------------------------------------------------------------- letterbox


def _boxed(size, box, pad, seed=0) -> Image.Image:
    w, h = size
    a = np.empty((h, w, 3), np.uint8)
    a[:] = pad
    l, t, r, b = box
    a[t:b, l:r] = _texture(r - l, b - t, seed)
    return Image.fromarray(a)


def test_crop_black_bars_exact():
    im = _boxed((224, 224), (0, 40, 224, 184), (0, 0, 0))
    assert letterbox_box(im) == (0, 40, 224, 184)
    out = crop_letterbox(im)
    assert out.size == (224, 144)
    im = _boxed((224, 224), (31, 0, 190, 224), (0, 0, 0))
    assert letterbox_box(im) == (31, 0, 190, 224)


def test_crop_white_background_exact():
    im = _boxed((500, 500), (100, 5, 400, 495), (255, 255, 255))
    assert letterbox_box(im) == (100, 5, 400, 495)


def test_crop_survives_jpeg_noise():
    im = _boxed((224, 224), (0, 37, 224, 187), (0, 0, 0), seed=2)
    jpeg = load_image(_encode(im, "JPEG", quality=75))
    l, t, r, b = letterbox_box(jpeg)
    assert (l, r) == (0, 224)
    assert 35 <= t <= 37 and 187 <= b <= 189
    im = _boxed((500, 500), (80, 5, 420, 495), (255, 255, 255), seed=5)
    l, t, r, b = letterbox_box(load_image(_encode(im, "JPEG", quality=80)))
    assert 77 <= l <= 80 and 420 <= r <= 423 and 3 <= t <= 5 and 495 <= b <= 497


def test_crop_noisy_padding_pixels_tolerated():
    im = _boxed((200, 200), (0, 30, 200, 170), (0, 0, 0))
    a = np.array(im)
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, 30, 40), rng.integers(0, 200, 40)
    a[ys, xs] = 200  # about 0.7% bright specks in the bars
    a[0:30, :] += rng.integers(0, 8, (30, 200, 1)).astype(np.uint8)  # faint noise
    assert letterbox_box(Image.fromarray(a)) == (0, 30, 200, 170)


def test_no_crop_on_plain_painting():
    im = Image.fromarray(_texture(120, 90))
    assert crop_letterbox(im) is im
    flat = Image.new("RGB", (50, 50), (0, 0, 0))
    assert crop_letterbox(flat) is flat  # one colour: nothing to tell apart


def test_coloured_band_on_one_side_is_not_padding():
    # a flat blue sky along the top edge of a painting is content, not padding
    a = _texture(100, 100)
    a[:25] = (70, 110, 200)
    im = Image.fromarray(a)
    assert crop_letterbox(im) is im
    # ...but the same colour all around (a mat) is padding
    mat = _boxed((100, 100), (10, 20, 90, 80), (70, 110, 200))
    assert letterbox_box(mat) == (10, 20, 90, 80)


def test_neutral_band_on_one_side_is_not_padding():
    # a white sky above a photo, a black shadow below one: one-sided bands are content
    for rows, colour in ((slice(0, 6), (255, 255, 255)), (slice(26, 32), (0, 0, 0))):
        a = _texture(32, 32)
        a[rows] = colour
        im = Image.fromarray(a)
        assert crop_letterbox(im) is im
    # centred bars are padding, also when one side's scan stops a little early (a drawn line)
    im = _boxed((120, 100), (13, 0, 116, 100), (255, 255, 255))
    assert letterbox_box(im) == (13, 0, 116, 100)
    # ...but not a wide band facing a sliver (a sky over a one-pixel white rim)
    im = _boxed((100, 100), (0, 40, 100, 99), (255, 255, 255))
    assert crop_letterbox(im) is im


def test_min_keep_respected():
    im = _boxed((224, 224), (0, 100, 224, 124), (0, 0, 0))  # a 224x24 strip
    l, t, r, b = letterbox_box(im)
    assert (l, r) == (0, 224)
    assert b - t == 112 and t == 56  # half kept, bars shrunk in proportion (centred)
    l, t, r, b = letterbox_box(im, min_keep=0.8)
    assert b - t >= int(0.8 * 224) - 1
    assert crop_letterbox(im, min_keep=1.0) is im
    with pytest.raises(ValueError):
        crop_letterbox(im, min_keep=0)


def test_crop_other_modes():
    im = _boxed((64, 64), (0, 8, 64, 56), (0, 0, 0))
    assert crop_letterbox(im.convert("L")).size == (64, 48)
    assert crop_letterbox(im.convert("RGBA")).size == (64, 48)


# ----------------------------------------------------------------------------------- real data


def _sample(pattern: str, n: int) -> list[Path]:
    files = sorted(DATA.glob(pattern))
    if not files:
        pytest.skip(f"no images matching {pattern} in ARTLENS_DATA={DATA}")
    random.Random(0).shuffle(files)
    return files[:n]


@pytest.mark.data
def test_real_wikiart_black_letterbox():
    files = _sample("wikiart_styles/images/*/*.jpg", 150)
    boxes = []
    for f in files:
        im = load_image(f)
        assert im.size == (224, 224)
        boxes.append(letterbox_box(im))
    a = np.array(boxes)
    l, t, r, b = a[:, 0], a[:, 1], 224 - a[:, 2], 224 - a[:, 3]
    cropped = (a != (0, 0, 224, 224)).any(axis=1)
    assert cropped.mean() >= 0.95  # ~98% of the set is letterboxed
    # bars are centred: where an axis is cropped, its two bands differ by a few pixels at most
    vert, hor = (t + b) > 0, (l + r) > 0
    asym = np.concatenate([np.abs(t - b)[vert], np.abs(l - r)[hor]])
    assert np.mean(asym <= 3) >= 0.9
    assert ((a[:, 2] - a[:, 0]) >= 112).all() and ((a[:, 3] - a[:, 1]) >= 112).all()


@pytest.mark.data
def test_real_louvre_white_background():
    files = _sample("louvre_genre/*/*/*/*.jpg", 100)
    for f in files:
        im = load_image(f)
        assert im.size == (500, 500)
        box = letterbox_box(im)
        assert box != (0, 0, 500, 500), f
        kept = np.asarray(im.crop(box)).astype(int)
        # what is left is not a white band: its outermost rows/columns are mostly non-white
        # (unless min_keep stopped the crop: very wide or tall paintings keep some white)
        edges = []
        if kept.shape[0] > 250:
            edges += [kept[0], kept[-1]]
        if kept.shape[1] > 250:
            edges += [kept[:, 0], kept[:, -1]]
        for edge in edges:
            assert np.mean(edge.min(axis=-1) >= 243) < 0.98, f


def test_embedded_srgb_profile_leaves_pixels_alone():
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encode(Image.new("RGB", (4, 4), (200, 30, 90)), "PNG", icc_profile=srgb)
    im = load_image(data)
    assert tuple(np.asarray(im)[0, 0]) == (200, 30, 90)
    assert "icc_profile" not in im.info
