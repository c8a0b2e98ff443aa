"""The log formatters: one line per record, carrying the request id, and never personal data in clear
(with the served process's lean records and without)."""

from __future__ import annotations

import io
import json
import logging
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from infra.logs import JsonFormatter, ScrubbingTextFormatter, lean_log_records, log_config, request_id_var, utc_millis_text

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


def written(formatter: logging.Formatter, emit) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.infra.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
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
