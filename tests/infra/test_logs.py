"""The log formatters: one line per record, carrying the request id, and never personal data in clear
(with the served process's lean records and without)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from infra.logs import BatchedInfoLog, JsonFormatter, ScrubbingTextFormatter, lean_log_records, log_config, request_id_var, utc_millis_text

ID_NUMBER = "320102199001011234"
PHONE = "13812345678"
CARD = "6222021234567890123"
REQUEST_ID = "0f3c5e7a9b1d2f4a6c8e0a2b4d6f8a1c"


@pytest.fixture(params=["as served", "default records"])
def records(request, monkeypatch):
    """Both ways a record is made: lean (what ``create_app`` switches on) and logging's default."""
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))
    if request.param == "as served":
        lean_log_records()
    token = request_id_var.set(REQUEST_ID)
    yield
    request_id_var.reset(token)


class CountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def written(formatter: logging.Formatter, emit, stream: io.StringIO | None = None) -> str:
    stream = stream if stream is not None else io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.infra.logs")
    # Ours alone (pytest's capture may have added its own): the configuration the server runs with.
    kept, logger.handlers = logger.handlers, [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        emit(logger)
    finally:
        logger.handlers = kept
    return stream.getvalue()


def test_the_request_line_has_its_fields_and_masks_the_path(records):
    path = f"/api/v1/customers/{ID_NUMBER}/phones/{PHONE}/cards/{CARD}"
    text = written(
        JsonFormatter(),
        lambda log: log.info("request", extra={"method": "GET", "path": path, "status": 200, "ms": 3.4}),
    )
    assert text.count("\n") == 1
    entry = json.loads(text)
    assert list(entry) == ["ts", "level", "logger", "message", "request_id", "method", "path", "status", "ms"]
    assert entry["path"] == "/api/v1/customers/3201**********1234/phones/138****5678/cards/622202*********0123"
    assert (entry["level"], entry["logger"], entry["message"]) == ("INFO", "tests.infra.logs", "request")
    assert (entry["request_id"], entry["method"], entry["status"], entry["ms"]) == (REQUEST_ID, "GET", 200, 3.4)
    assert entry["ts"].endswith("+00:00")


def test_an_exception_message_is_masked(records):
    def fail(log):
        try:
            raise ValueError(f"no customer with ID {ID_NUMBER} or phone 138 1234 5678")
        except ValueError:
            log.exception("lookup failed")

    entry = json.loads(written(JsonFormatter(), fail))
    assert "no customer with ID 3201**********1234 or phone 138****5678" in entry["exception"]
    assert ID_NUMBER not in entry["exception"] and "1234 5678" not in entry["exception"]


def test_a_line_without_personal_data_is_written_unchanged_as_compact_json(records):
    extra = {"amount": Decimal("12345.67"), "due": date(2026, 5, 9), "note": "放款成功\n第二行", "items": (1, None), "by_id": {7: "x"}}
    text = written(JsonFormatter(), lambda log: log.info("drawdown %s", 42, extra=extra)).rstrip("\n")
    entry = json.loads(text)
    assert text == json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
    assert entry["message"] == "drawdown 42"
    assert (entry["amount"], entry["due"], entry["note"], entry["items"], entry["by_id"]) == ("12345.67", "2026-05-09", "放款成功\n第二行", [1, None], {"7": "x"})


def test_a_value_orjson_refuses_is_still_written(records):
    entry = json.loads(written(JsonFormatter(), lambda log: log.info("big", extra={"n": 2**70})))
    assert entry["n"] == 2**70


def test_text_mode_masks_and_carries_the_request_id(records):
    text_format = log_config(json_lines=False, level="INFO")["formatters"]["text"]["format"]
    text = written(ScrubbingTextFormatter(text_format), lambda log: log.warning("request %s failed for %s", "/api/v1/me", PHONE))
    assert text.startswith(f"[{REQUEST_ID}] ")
    assert text.endswith(" WARNING tests.infra.logs: request /api/v1/me failed for 138****5678\n")


@settings(max_examples=2_000)
@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))  # up to 2100-01-01
def test_the_timestamp_is_what_datetime_writes(created):
    assert utc_millis_text(created) == datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds")


def test_the_timestamp_rounds_to_the_microsecond_before_it_cuts_to_the_millisecond():
    # 0.9999996 s rounds up to the next whole second, as datetime does; 0.1239 stays .123.
    assert utc_millis_text(1_764_563_460.9999996) == "2025-12-01T04:31:01.000+00:00"
    assert utc_millis_text(1_764_563_460.1239) == "2025-12-01T04:31:00.123+00:00"


def test_the_batched_request_line_is_the_formatters_line_and_a_loop_turn_is_one_write(records):
    paths = [f"/api/v1/customers/{ID_NUMBER}", "/api/v1/campaigns/7/red-packets/grab", f"/api/v1/phones/{PHONE}"]

    def through_logging(log):
        for status, path in enumerate(paths):
            log.info("request", extra={"method": "POST", "path": path, "status": status, "ms": 1.5})

    def batched(log):
        async def requests():
            lines = BatchedInfoLog(log)
            for status, path in enumerate(paths):
                lines.info("request", {"method": "POST", "path": path, "status": status, "ms": 1.5})
            await asyncio.sleep(0)  # the write is the loop's next turn

        asyncio.run(requests())

    stream = CountingStream()
    fast = [json.loads(line) for line in written(JsonFormatter(), batched, stream).splitlines()]
    slow = [json.loads(line) for line in written(JsonFormatter(), through_logging).splitlines()]
    assert stream.writes == 1
    assert len(fast) == len(slow) == 3
    for got, expected in zip(fast, slow):
        assert list(got) == list(expected)
        assert {**got, "ts": None} == {**expected, "ts": None}
    assert fast[0]["path"] == "/api/v1/customers/3201**********1234" and fast[2]["path"] == "/api/v1/phones/138****5678"
    assert fast[0]["request_id"] == REQUEST_ID


def test_the_batched_request_line_goes_through_logging_in_text_mode_and_outside_a_loop(records):
    text_format = log_config(json_lines=False, level="INFO")["formatters"]["text"]["format"]
    text = written(ScrubbingTextFormatter(text_format), lambda log: BatchedInfoLog(log).info("request", {"path": f"/p/{PHONE}"}))
    assert text.startswith(f"[{REQUEST_ID}] ") and text.endswith(" INFO tests.infra.logs: request\n")
    entry = json.loads(written(JsonFormatter(), lambda log: BatchedInfoLog(log).info("request", {"path": f"/p/{PHONE}"})))
    assert entry["path"] == "/p/138****5678"  # no running loop: written at once, by logging


def test_the_batched_request_line_respects_the_level(records):
    def at_warning(log):
        log.setLevel(logging.WARNING)
        BatchedInfoLog(log).info("request", {"path": "/"})

    assert written(JsonFormatter(), at_warning) == ""
