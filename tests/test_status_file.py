"""The status file's writer: off the tick thread, newest snapshot wins, never raises."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from executor.status_file import StatusWriter


def test_the_newest_snapshot_is_written(tmp_path: Path) -> None:
    writer = StatusWriter(tmp_path / "executor.json")
    try:
        for tick in range(50):
            writer.submit({"ticks": tick})
        assert writer.flush()
        assert json.loads((tmp_path / "executor.json").read_text()) == {"ticks": 49}
    finally:
        writer.close()


def test_close_writes_what_is_pending(tmp_path: Path) -> None:
    writer = StatusWriter(tmp_path / "executor.json")
    writer.submit({"ticks": 7})
    writer.close()
    assert json.loads((tmp_path / "executor.json").read_text()) == {"ticks": 7}


def test_a_failed_write_is_logged_and_the_writer_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the state dir should be")
    writer = StatusWriter(blocked / "executor.json")
    try:
        with caplog.at_level(logging.WARNING):
            writer.submit({"ticks": 1})
            assert writer.flush()
        assert "cannot write" in caplog.text
        writer.path = tmp_path / "executor.json"  # the disk is back
        writer.submit({"ticks": 2})
        assert writer.flush()
        assert json.loads(writer.path.read_text()) == {"ticks": 2}
    finally:
        writer.close()


def test_the_executor_publishes_through_it(make_executor, tmp_path: Path) -> None:
    ex = make_executor()
    ex.tick()
    ex.publish_status(force=True)
    assert ex.status_writer.flush()
    published = json.loads((tmp_path / "state" / "executor.json").read_text())
    assert published["ticks"] == 1 and published["call_api"] in ("fast", "reference")
