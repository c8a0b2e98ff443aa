"""Images of an invite code: the plain QR (PNG, SVG) and the share poster (PNG). Pure rendering:
bytes in, bytes out, no database and no network. Rendering is CPU work: callers in the event loop
run it in a thread.

The poster needs a font with Chinese glyphs. Debian's ``fonts-noto-cjk`` or
``fonts-wqy-microhei`` provide one (``apt-get install fonts-wqy-microhei``); without any, the
poster is drawn with a Latin font and English wording rather than with empty boxes where the
Chinese characters should be (``poster_png`` never fails for want of a font).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import qrcode
import qrcode.image.svg
from PIL import Image, ImageDraw, ImageFont

ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M
BOX_SIZE = 10
BORDER = 4

POSTER_SIZE = (750, 1334)  # WeChat's usual share-image proportions (iPhone 8 screen at 2x)

CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)

GREEN_TOP, GREEN_BOTTOM = (6, 96, 70), (20, 150, 118)
INK, MUTED, ACCENT, WHITE = (33, 37, 41), (108, 117, 125), (196, 124, 20), (255, 255, 255)


# ---- plain QR ------------------------------------------------------------------------------------


def _qr(data: str, *, border: int = BORDER, **options) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, box_size=BOX_SIZE, border=border, **options)
    code.add_data(data)
    code.make(fit=True)
    return code


def qr_png(data: str) -> bytes:
    buffer = io.BytesIO()
    _qr(data).make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(data: str) -> bytes:
    """One path of unit squares over a ``viewBox`` in modules: scales to any size."""
    image = _qr(data, image_factory=qrcode.image.svg.SvgPathImage).make_image()
    return image.to_string(encoding="unicode").encode("utf-8")


# ---- fonts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fonts:
    path: str | None
    cjk: bool

    def get(self, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        if self.path is None:
            return ImageFont.load_default(size=size)
        return ImageFont.truetype(self.path, size=size)


@lru_cache(maxsize=4)
def find_fonts(preferred: str | None = None) -> Fonts:
    """A font with Chinese glyphs if the machine has one (``preferred`` first, then the usual
    Debian paths, then fontconfig), else a Latin one."""
    for path in (preferred, *CJK_FONTS, *_fontconfig_cjk()):
        if path and Path(path).is_file():
            return Fonts(path, cjk=True)
    for path in LATIN_FONTS:
        if Path(path).is_file():
            return Fonts(path, cjk=False)
    return Fonts(None, cjk=False)


def _fontconfig_cjk() -> list[str]:
    if shutil.which("fc-list") is None:
        return []
    try:
        listed = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(line.split(":")[0].strip() for line in listed.splitlines() if line.strip())


# ---- the poster ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosterText:
    """What a poster says, in Chinese and in the English used when no Chinese font exists."""

    product: str
    product_en: str
    bank: str | None
    inviter: str | None  # the inviter's masked name
    by_staff: bool
    code: str
    wechat_code: bool  # the image is a mini-program code (long-press to open) rather than a plain QR


def poster_png(text: PosterText, code_image: bytes, *, fonts: Fonts | None = None) -> bytes:
    fonts = fonts or find_fonts()
    lines = _wording(text, fonts.cjk)
    width, height = POSTER_SIZE
    poster = _gradient(POSTER_SIZE, GREEN_TOP, GREEN_BOTTOM)
    draw = ImageDraw.Draw(poster)

    # Header: the bank, the product, a promise kept short.
    if lines["bank"]:
        _centred(draw, lines["bank"], 96, fonts.get(30), WHITE)
    _fitted(draw, lines["product"], 150, fonts, start=84, max_width=width - 120, fill=WHITE, bold=True)
    _centred(draw, lines["tagline"], 270, fonts.get(30), (220, 240, 232))

    # The card: who invites, the code image, the code itself.
    card = (60, 350, width - 60, 1190)
    draw.rounded_rectangle(card, radius=28, fill=WHITE)
    _fitted(draw, lines["inviter"], 392, fonts, start=36, max_width=card[2] - card[0] - 60, fill=INK)
    side = 440
    image = Image.open(io.BytesIO(code_image)).convert("RGB")
    image = image.resize((side, side), Image.Resampling.LANCZOS if text.wechat_code else Image.Resampling.NEAREST)
    top = 470
    poster.paste(image, ((width - side) // 2, top))
    _centred(draw, lines["hint"], top + side + 28, fonts.get(28), MUTED)
    _centred(draw, lines["code_label"], top + side + 92, fonts.get(26), MUTED)
    _centred(draw, " ".join(text.code), top + side + 130, fonts.get(46), ACCENT, bold=True)

    _centred(draw, lines["disclaimer"], 1240, fonts.get(22), (210, 232, 224))
    buffer = io.BytesIO()
    poster.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _wording(text: PosterText, cjk: bool) -> dict[str, str]:
    if cjk:
        who = text.inviter or ("您的客户经理" if text.by_staff else "您的好友")
        inviter = f"客户经理 {who} 邀请您" if text.by_staff and text.inviter else f"{who} 邀请您"
        return {
            "bank": text.bank or "",
            "product": text.product,
            "tagline": "线上申请 · 实时审批",
            "inviter": inviter,
            "hint": "长按识别小程序码，立即申请" if text.wechat_code else "微信扫一扫，立即申请",
            "code_label": "邀请码",
            "disclaimer": "贷款额度与利率以银行审批结果为准",
        }
    # No Chinese glyphs: a masked Chinese name cannot be drawn, so the line names the relation.
    name = text.inviter if text.inviter and text.inviter.isascii() else None
    relation = "your account manager" if text.by_staff else "a friend"
    return {
        "bank": text.bank if text.bank and text.bank.isascii() else "",
        "product": text.product if text.product.isascii() else text.product_en,
        "tagline": "Apply online, decided at once",
        "inviter": f"Invited by {name}" if name else f"Invited by {relation}",
        "hint": "Press and hold to open in WeChat" if text.wechat_code else "Scan with WeChat to apply",
        "code_label": "Invite code",
        "disclaimer": "Credit limits and rates are subject to the bank's approval",
    }


def _gradient(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _centred(draw: ImageDraw.ImageDraw, text: str, y: int, font, fill, *, bold: bool = False) -> None:
    if not text:
        return
    stroke = 1 if bold else 0  # CJK fonts often come in one weight: a hairline stroke bolds them
    width = draw.textlength(text, font=font) + 2 * stroke
    draw.text(((POSTER_SIZE[0] - width) / 2, y), text, font=font, fill=fill, stroke_width=stroke, stroke_fill=fill)


def _fitted(draw, text: str, y: int, fonts: Fonts, *, start: int, max_width: int, fill, bold: bool = False) -> None:
    """Centred at the largest size up to ``start`` that fits ``max_width`` (long product names)."""
    size = start
    while size > 18 and draw.textlength(text, font=fonts.get(size)) > max_width:
        size -= 4
    _centred(draw, text, y, fonts.get(size), fill, bold=bold)
