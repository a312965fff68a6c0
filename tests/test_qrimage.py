from __future__ import annotations

import io
import os
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from qrgate.core.codes import CodeType, decode_code, encode_code
from qrgate.core.keyring import KeyRing, SigningKey
from qrgate.errors import InvalidField, Malformed, PayloadTooLarge
from qrgate.qrimage import decode_image, qr_version, render_png, render_svg

NOW = 1_700_000_000
RING = KeyRing(active=SigningKey.generate(now=NOW))


def _real_code() -> str:
    return encode_code(
        code_type=CodeType.CONFIRM,
        code_id=os.urandom(16),
        issued_at=NOW,
        expires_at=NOW + 120,
        issuer="qrgate",
        claims={10: os.urandom(16), 11: "alice", 12: 1234},
        keyring=RING,
    )


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_png_round_trip_of_a_real_code() -> None:
    code = _real_code()
    png = render_png(code)
    assert png.startswith(b"\x89PNG")
    found = decode_image(png)
    assert [qr.text for qr in found] == [code]
    assert found[0].ec_level == "M"
    assert found[0].version == qr_version(code)
    assert len(found[0].position) == 4
    decode_code(found[0].text, keys=RING, now=NOW, expected_type=CodeType.CONFIRM)


@pytest.mark.parametrize("ecc", ["L", "M", "Q", "H"])
def test_ecc_levels(ecc: str) -> None:
    found = decode_image(render_png("QG1:HELLO", ecc=ecc, scale=3))
    assert found[0].ec_level == ecc


def test_higher_ecc_needs_a_bigger_symbol() -> None:
    code = _real_code()
    assert qr_version(code, ecc="L") <= qr_version(code, ecc="M") < qr_version(code, ecc="H")


def test_scale_and_quiet_zone() -> None:
    text = "QG1:HELLO"  # version 1: 21 modules
    with Image.open(io.BytesIO(render_png(text, scale=2, quiet_zone=False))) as image:
        assert image.size == (42, 42)
    with Image.open(io.BytesIO(render_png(text, scale=2))) as image:
        assert image.size == (58, 58)  # 4 modules of quiet zone each side
        assert image.getpixel((0, 0)) == 255


# ISO/IEC 18004:2015, Table 7 (alphanumeric mode): version 1 holds 25 (L) / 20 (M)
# characters, version 2 47 / 38, version 7 224 (L), version 8 221 (M), version 10 221 (Q).
@pytest.mark.parametrize(("text", "ecc", "version"), [
    ("QG1:HELLO", "M", 1),
    ("A" * 20, "M", 1), ("A" * 21, "M", 2), ("A" * 38, "M", 2), ("A" * 39, "M", 3),
    ("A" * 25, "L", 1), ("A" * 26, "L", 2),
    ("A" * 200, "L", 7), ("A" * 200, "M", 8), ("A" * 200, "Q", 10),
])
def test_qr_version_is_the_standards_and_the_symbols(text: str, ecc: str, version: int) -> None:
    assert qr_version(text, ecc=ecc) == version
    # The symbol drawn: the version its own format information declares to a decoder, and
    # its side, 17 + 4 * version modules.
    (found,) = decode_image(render_png(text, ecc=ecc, scale=3))
    assert (found.text, found.version, found.ec_level) == (text, version, ecc)
    with Image.open(io.BytesIO(render_png(text, ecc=ecc, scale=3, quiet_zone=False))) as image:
        assert image.size == ((17 + 4 * version) * 3,) * 2


def test_svg() -> None:
    svg = render_svg("QG1:HELLO")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


@pytest.mark.parametrize("ecc", ["", "m", "X"])
def test_bad_ecc(ecc: str) -> None:
    with pytest.raises(InvalidField):
        render_png("QG1:X", ecc=ecc)
    with pytest.raises(InvalidField):
        render_svg("QG1:X", ecc=ecc)


def test_empty_and_oversized_text() -> None:
    with pytest.raises(InvalidField):
        render_png("")
    with pytest.raises(PayloadTooLarge):
        render_png("A" * 5000)
    with pytest.raises(InvalidField):
        render_png("QG1:X", scale=0)


def test_decode_from_a_cluttered_photo_like_image() -> None:
    code = _real_code()
    qr = Image.open(io.BytesIO(render_png(code, scale=4))).convert("RGB")
    rng = np.random.default_rng(1234)
    noise = rng.integers(0, 256, size=(900, 1200, 3), dtype=np.uint8)
    scene = Image.fromarray(noise, mode="RGB")
    draw = ImageDraw.Draw(scene)
    for _ in range(25):
        x, y = (int(v) for v in rng.integers(0, 1100, size=2))
        w, h = (int(v) for v in rng.integers(20, 160, size=2))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.rectangle((x, y, x + w, y + h), fill=colour)
    # A slightly smaller, slightly tilted code, like a phone held at an angle.
    tilted = qr.resize((int(qr.width * 0.9), int(qr.height * 0.9)), Image.Resampling.BILINEAR)
    tilted = tilted.rotate(7, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")
    scene.paste(tilted, (350, 180))
    # Sensor noise and a little defocus over everything, the code included.
    grain = rng.normal(0, 18, size=(900, 1200, 3))
    noisy = np.clip(np.asarray(scene, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
    photo = Image.fromarray(noisy, mode="RGB").filter(ImageFilter.GaussianBlur(0.8))
    found = decode_image(_png(photo, "JPEG"))
    assert [qr.text for qr in found] == [code]
    xs = [x for x, _ in found[0].position]
    assert min(xs) >= 340 and max(xs) <= 350 + tilted.width


def test_several_codes_in_one_image() -> None:
    scene = Image.new("L", (800, 400), 255)
    scene.paste(Image.open(io.BytesIO(render_png("QG1:LEFT", scale=5))), (20, 50))
    scene.paste(Image.open(io.BytesIO(render_png("QG1:RIGHT", scale=5))), (450, 50))
    assert sorted(qr.text for qr in decode_image(_png(scene))) == ["QG1:LEFT", "QG1:RIGHT"]


def test_image_without_a_code_is_empty() -> None:
    assert decode_image(_png(Image.new("RGB", (200, 100), "white"))) == []


@pytest.mark.parametrize(
    "data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, b"GIF89a" + bytes(10)]
)
def test_non_images_are_unreadable(data: bytes) -> None:
    with pytest.raises(Malformed) as caught:
        decode_image(data)
    assert caught.value.code == "unreadable_image"


def test_truncated_png_is_unreadable() -> None:
    png = render_png("QG1:HELLO")
    with pytest.raises(Malformed) as caught:
        decode_image(png[: len(png) // 2])
    assert caught.value.code == "unreadable_image"


def _png_claiming_size(width: int, height: int) -> bytes:
    """A valid tiny PNG whose header (with a correct CRC) claims another size."""
    png = _png(Image.new("L", (1, 1)))
    start = png.index(b"IHDR")
    header = (
        b"IHDR"
        + width.to_bytes(4, "big")
        + height.to_bytes(4, "big")
        + png[start + 12 : start + 17]
    )
    crc = zlib.crc32(header).to_bytes(4, "big")
    return png[:start] + header + crc + png[start + 21 :]


def test_pixel_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_image(_png_claiming_size(10_000, 10_000))
    # The same trick within the limit opens, then fails on the missing pixel data.
    with pytest.raises(Malformed) as caught:
        decode_image(_png_claiming_size(100, 100))
    assert caught.value.code == "unreadable_image"


def test_oversized_file_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_image(b"\x00" * (33 * 1024 * 1024))
