"""The staff console: static pages served at ``/console/``. Every page is plain HTML with an ES
module of its own; the modules call the same staff API as anything else (``/api/v1/...``) with
the signed-in member's bearer token, so the console can show nothing the API would not.

A strict Content-Security-Policy: scripts and styles from this origin only, no inline code and
no ``eval`` (the pages build their DOM with ``textContent``), images from this origin or from
blobs the page fetched with its token (charts, QR codes, posters).
"""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request, response

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Pages are small and change with each release; the browser checks back every time.
    "Cache-Control": "no-cache",
}

bp = Blueprint("console")
bp.static("/console/", str(CONSOLE_DIR), name="files", index="index.html")


@bp.get("/console", name="root")
async def root(request: Request):
    return response.redirect("/console/")


@bp.on_response
async def secure(request: Request, resp) -> None:
    if request.path.startswith("/console"):
        resp.headers.update(SECURITY_HEADERS)
