"""The API for the mini-program's end-to-end test, served as ``python -m server.cli serve``
serves it (one process, embedded defaults, settings from the environment) with one addition:
every text the SMS sandbox sends is also appended to the file named by ``SMS_INBOX_FILE``.

The test runs in another process (Node) and must read the signing code as the customer reads it
on their phone; the sandbox keeps texts in the server's memory only. Nothing else differs: the
same ``create_app()``, routes, providers and outbox relay. Run from the repository root.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace

from sanic import Sanic

from infra.settings import Settings
from integrations.sms_sandbox import SandboxSms
from server.app import create_app


class InboxFileSms(SandboxSms):
    """The SMS sandbox, with a copy of each text in a JSON-lines file the test can read."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    async def send(self, phone: str, text: str) -> None:
        await super().send(phone, text)
        with open(self.path, "a", encoding="utf-8") as inbox:
            inbox.write(json.dumps({"phone": phone, "text": text}, ensure_ascii=False) + "\n")


def main() -> int:
    settings = Settings.from_env()
    app = create_app(settings, name="miniprogram_e2e")
    app.ctx.providers = replace(app.ctx.providers, sms=InboxFileSms(os.environ["SMS_INBOX_FILE"]))
    app.prepare(host=settings.host, port=settings.port, single_process=True, motd=False)
    Sanic.serve_single(primary=app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
