"""Image input: every format and mode a learner may have, and every file that must be refused."""
import numpy as np
import pytest
from PIL import Image

from minicnn.images import ImageError, fit, load_image

from fixtures import hostile_images, pattern



def test_exact_size_passes_unchanged(tmp_path, rng):
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    assert np.array_equal(load_image(str(tmp_path / "a.png"), 32), a.transpose(2, 0, 1) / np.float32(255))


def test_resize_shorter_side_then_centre_crop():
    img = Image.fromarray(pattern(80, 40))
    out = fit(img, 20)
    assert out.size == (20, 20)
    ref = img.resize((40, 20), Image.BICUBIC).crop((10, 0, 30, 20))
    assert np.array_equal(np.asarray(out), np.asarray(ref))


@pytest.mark.parametrize("fmt,ext", [("PNG", "png"), ("BMP", "bmp"), ("TIFF", "tif"),
                                     ("WEBP", "webp"), ("GIF", "gif"), ("JPEG", "jpg")])
def test_formats(tmp_path, fmt, ext):
    a = pattern(32, 32)
    path = tmp_path / f"p.{ext}"
    kwargs = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(a).save(path, format=fmt, **kwargs)
    got = load_image(str(path), 32) * 255
    tolerance = {"GIF": 40, "JPEG": 20}.get(fmt, 0.5)  # GIF: 256-colour palette; JPEG: lossy
    assert np.abs(got - a.transpose(2, 0, 1)).mean() < tolerance


def test_modes(tmp_path, rng):
    grey = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "l.png")
    got = load_image(str(tmp_path / "l.png"), 32)
    assert np.allclose(got, grey[None] / 255.0, atol=1e-6)        # grey -> R = G = B

    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :16, 3] = 255                                           # left half opaque red
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    got = load_image(str(tmp_path / "rgba.png"), 32)
    assert np.allclose(got[:, :, :16], np.array([1, 0, 0])[:, None, None])
    assert np.allclose(got[:, :, 16:], 128 / 255)                   # transparent -> neutral grey

    Image.fromarray(pattern(32, 32)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert load_image(str(tmp_path / "cmyk.jpg"), 32).shape == (3, 32, 32)

    deep = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    got = load_image(str(tmp_path / "deep.png"), 32)
    assert abs(got.max() - 1.0) < 0.01 and got.min() == 0 and np.allclose(got[0], got[1])

    Image.fromarray(pattern(32, 32)).convert("P", palette=Image.ADAPTIVE).save(tmp_path / "p.png")
    assert np.abs(load_image(str(tmp_path / "p.png"), 32) * 255 - pattern(32, 32).transpose(2, 0, 1)).mean() < 10


def test_exif_orientation_is_applied(tmp_path):
    a = pattern(40, 30)
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6          # "rotate 90 CW to display"
    img.save(tmp_path / "rot.png", exif=exif)
    got = load_image(str(tmp_path / "rot.png"), 30)
    expected = np.asarray(fit(Image.fromarray(np.rot90(a, k=-1).copy()), 30)).transpose(2, 0, 1) / 255.0
    assert np.allclose(got, expected, atol=1e-6)


def test_hostile_images_are_refused(tmp_path):
    for name, message in hostile_images(tmp_path).items():
        with pytest.raises(ImageError, match=message):
            load_image(str(tmp_path / name), 32)
