"""The images: a plain QR that carries exactly the deep link (checked module by module against the
symbol ``qrcode`` encodes for that link: no QR decoder is installed here), an SVG of the same
symbol, and a share poster that is a PNG of the expected size with or without a Chinese font."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import pytest
import qrcode
from PIL import Image

from marketing import qr
from marketing.codes import InviteLinks

LINK = InviteLinks().deep_link("ACEFGH34")
HTTPS_LINK = InviteLinks(url_template="https://m.example-rcb.cn/i?scene={code}").deep_link("ACEFGH34")


def expected_modules(data: str) -> list[list[bool]]:
    """The symbol for ``data`` as qrcode builds it, independently of our rendering, without border."""
    symbol = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    symbol.add_data(data)
    symbol.make(fit=True)
    return symbol.get_matrix()


def modules_in_png(png: bytes) -> list[list[bool]]:
    """Read the dark/light modules back out of the image by sampling each module's centre."""
    image = Image.open(io.BytesIO(png)).convert("L")
    width, height = image.size
    assert width == height
    modules = width // qr.BOX_SIZE
    inner = modules - 2 * qr.BORDER
    return [
        [image.getpixel(((qr.BORDER + x) * qr.BOX_SIZE + qr.BOX_SIZE // 2, (qr.BORDER + y) * qr.BOX_SIZE + qr.BOX_SIZE // 2)) < 128 for x in range(inner)]
        for y in range(inner)
    ]


def modules_in_svg(svg: bytes) -> list[list[bool]]:
    root = ET.fromstring(svg)
    size = int(root.attrib["viewBox"].split()[2])
    inner = size - 2 * qr.BORDER
    dark = {(int(x), int(y)) for x, y in re.findall(r"M(\d+),(\d+)H", "".join(p.attrib["d"] for p in root.iter() if "d" in p.attrib))}
    return [[(qr.BORDER + x, qr.BORDER + y) in dark for x in range(inner)] for y in range(inner)]


@pytest.mark.parametrize("link", [LINK, HTTPS_LINK])
def test_the_png_qr_carries_exactly_the_deep_link(link):
    png = qr.qr_png(link)

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert modules_in_png(png) == expected_modules(link)
    assert modules_in_png(png) != expected_modules(link.replace("ACEFGH34", "ACEFGH37")), "the check must tell codes apart"


def test_the_svg_qr_is_the_same_symbol():
    svg = qr.qr_svg(LINK)

    assert ET.fromstring(svg).tag.endswith("svg")
    assert modules_in_svg(svg) == expected_modules(LINK)


def text(**overrides) -> qr.PosterText:
    values = dict(product="税易通", product_en="Tax-data personal loan", bank="河州农商银行", inviter="张*丰", by_staff=False, code="ACEFGH34", wechat_code=False)
    return qr.PosterText(**{**values, **overrides})


def opened(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.verify()
    return Image.open(io.BytesIO(png))


def test_the_poster_is_a_png_of_the_share_size_with_the_code_image_on_it():
    code_image = qr.qr_png(LINK)
    poster = opened(qr.poster_png(text(), code_image))

    assert poster.size == qr.POSTER_SIZE == (750, 1334)
    # The QR is pasted in the middle of the card: its top-left finder pattern is dark there.
    rgb = poster.convert("RGB")
    side, top = 440, 470
    left = (750 - side) // 2
    module = side / (len(expected_modules(LINK)) + 2 * qr.BORDER)
    finder = rgb.getpixel((int(left + module * (qr.BORDER + 0.5)), int(top + module * (qr.BORDER + 0.5))))
    assert max(finder) < 80, f"expected a dark finder module, got {finder}"


@pytest.mark.parametrize("fonts", [qr.Fonts(None, cjk=False), qr.Fonts("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", cjk=False)], ids=["no-font", "latin"])
def test_without_a_chinese_font_the_poster_is_still_drawn(fonts):
    if fonts.path and not __import__("pathlib").Path(fonts.path).exists():
        pytest.skip(f"{fonts.path} is not installed on this machine")
    poster = opened(qr.poster_png(text(by_staff=True), qr.qr_png(LINK), fonts=fonts))

    assert poster.size == qr.POSTER_SIZE


def test_without_a_chinese_font_the_wording_is_english_and_drops_a_chinese_name():
    words = qr._wording(text(by_staff=True), cjk=False)

    assert words["product"] == "Tax-data personal loan"
    assert words["inviter"] == "Invited by your account manager"
    assert all(value.isascii() for value in words.values())


def test_with_a_chinese_font_the_poster_names_the_masked_inviter():
    words = qr._wording(text(by_staff=True), cjk=True)

    assert words["inviter"] == "客户经理 张*丰 邀请您"
    assert words["product"] == "税易通"
