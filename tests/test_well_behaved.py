"""A well-behaved plugin that uses every host function, against the real machine."""

from __future__ import annotations

import http.server
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hostcalls.abi import HOST_FUNCTIONS, Status
from tests.plugins import Strings, module, spec

HELPERS = """
  (func $hi (param $p i64) (result i32) (i32.wrap_i64 (i64.shr_u (local.get $p) (i64.const 32))))
  (func $lo (param $p i64) (result i32) (i32.wrap_i64 (local.get $p)))
  ;; a packed result: log "name" then the content; a status: metric "name"
  (func $show (param $np i32) (param $nl i32) (param $p i64)
    (if (i64.gt_s (local.get $p) (i64.const 0))
      (then (drop (call $log (i32.const 2) (local.get $np) (local.get $nl)))
            (drop (call $log (i32.const 2) (call $hi (local.get $p)) (call $lo (local.get $p)))))
      (else (drop (call $report_metric (local.get $np) (local.get $nl)
                                       (f64.convert_i64_s (local.get $p)))))))
  (func $status (param $np i32) (param $nl i32) (param $s i32)
    (drop (call $report_metric (local.get $np) (local.get $nl) (f64.convert_i32_s (local.get $s)))))
  (func $atoi (param $p i64) (result i32)
    (local $ptr i32) (local $end i32) (local $n i32)
    (if (i64.le_s (local.get $p) (i64.const 0)) (then (return (i32.const -1))))
    (local.set $ptr (call $hi (local.get $p)))
    (local.set $end (i32.add (local.get $ptr) (call $lo (local.get $p))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $ptr) (local.get $end)))
      (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10))
                             (i32.sub (i32.load8_u (local.get $ptr)) (i32.const 48))))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
      (br $l)))
    (local.get $n))
"""


def everything_plugin() -> bytes:
    s = Strings()

    def cfg(key: str) -> str:
        return f"(call $get_config {s(key)})"

    body = f"""
  (func (export "on_init")
    (drop (call $set_config {s("k")} {s("persisted")}))
    (call $show {s("greeting")} (call $get_config {s("greeting")})))
  (func (export "on_tick") (param i32)
    (drop (call $log (i32.const 2) {s("tick")}))
    (call $show {s("config.k")} (call $get_config {s("k")}))
    (call $status {s("status.report_metric")} (call $report_metric {s("m")} (f64.const 1.5)))
    (call $show {s("get_learned_pattern")} (call $get_learned_pattern {s("m")}))
    (call $show {s("get_memory_status")} (call $get_memory_status))
    (drop (call $report_metric {s("cpu")} (call $get_cpu_usage)))
    (call $show {s("get_temperature")} (call $get_temperature))
    (call $show {s("get_gpu_status")} (call $get_gpu_status))
    (call $show {s("get_battery_status")} (call $get_battery_status))
    ;; Saved, not logged: a busy machine's list is over the 8 KiB log line cap.
    (call $status {s("saved get_process_list")}
      (call $write_file (call $hi {cfg("list_path")}) (call $lo {cfg("list_path")})
                        (call $hi (call $get_process_list)) (call $lo (call $get_process_list))))
    (drop (call $report_metric {s("get_process_memory")}
            (f64.convert_i64_s (call $get_process_memory (call $atoi {cfg("target")})))))
    (call $status {s("set_process_priority")}
      (call $set_process_priority (call $atoi {cfg("target")}) (i32.const 1)))
    (drop (call $report_metric {s("trim_process_memory")}
            (f64.convert_i64_s (call $trim_process_memory (call $atoi {cfg("target")})))))
    (call $status {s("show_notification")} (call $show_notification {s("Title")} {s("Message")}))
    (call $show {s("read_file")} (call $read_file (call $hi {cfg("read_path")}) (call $lo {cfg("read_path")})))
    (call $status {s("write_file")} (call $write_file (call $hi {cfg("write_path")}) (call $lo {cfg("write_path")})
                                                       {s("written by wasm")}))
    (call $show {s("http_request")} (call $http_request (call $hi {cfg("http")}) (call $lo {cfg("http")})))
    (call $show {s("registry_read")} (call $registry_read {s("HKCU/Software/x")}))
    (call $status {s("registry_write")} (call $registry_write {s("HKCU/Software/x")} {s("{{}}")}))
    (call $status {s("kill_process")} (call $kill_process (call $atoi {cfg("victim")}))))
"""
    return module(HELPERS + s.data() + body, imports=sorted(HOST_FUNCTIONS))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"pong"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def logged(recorder, plugin: str) -> dict[str, str]:
    """Pairs of (name line, content line) logged by $show."""
    lines = recorder.messages(plugin)
    return {lines[i]: lines[i + 1] for i in range(len(lines) - 1) if lines[i] in WANTED}


WANTED = {
    "greeting", "config.k", "get_learned_pattern", "get_memory_status", "get_temperature",
    "get_gpu_status", "get_battery_status", "read_file", "http_request", "registry_read",
}  # fmt: skip


def test_every_host_function_acts_on_the_real_machine(
    make_executor, recorder, tmp_path: Path, server: str, children
) -> None:
    target, victim = children.sleeper(), children.sleeper()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "in.txt").write_text("file contents")
    request = json.dumps({"method": "GET", "url": f"http://{server}/ping"})
    caps = [
        "ReadSystemInfo", "ReadProcessList", "ModifyProcessPriority", "TrimProcessMemory",
        "KillProcess", "ShowNotifications", f"NetworkAccess({server})",
        f"FileSystemRead({data_dir})", f"FileSystemWrite({data_dir})", "RegistryRead", "RegistryWrite",
    ]  # fmt: skip
    config = {
        "greeting": "hello there", "target": str(target.pid), "victim": str(victim.pid),
        "read_path": str(data_dir / "in.txt"), "write_path": str(data_dir / "out.txt"), "http": request,
        "list_path": str(data_dir / "processes.json"),
    }  # fmt: skip
    ex = make_executor()
    ex.load(spec("every", everything_plugin(), caps=caps, approved=caps, config=config))
    ex.tick()

    assert recorder.violations == []
    out = logged(recorder, "every")
    metrics = {k: v["last"] for k, v in ex.plugins["every"].state.metrics_snapshot().items()}
    assert out["greeting"] == "hello there"
    assert out["config.k"] == "persisted"
    assert json.loads(out["get_memory_status"])["total_bytes"] == psutil.virtual_memory().total
    assert isinstance(json.loads(out["get_temperature"])["sensors"], list)
    assert isinstance(json.loads(out["get_gpu_status"])["gpus"], list)
    battery = json.loads(out["get_battery_status"])
    assert battery["present"] is (psutil.sensors_battery() is not None)
    assert metrics["saved get_process_list"] == Status.OK
    pids = {p["pid"] for p in json.loads((data_dir / "processes.json").read_text())}
    assert target.pid in pids
    assert 0 <= metrics["cpu"] <= 100
    assert metrics["get_process_memory"] > 0
    assert metrics["set_process_priority"] == Status.OK
    assert psutil.Process(target.pid).nice() == 10  # level 1, below normal
    assert metrics["show_notification"] == Status.OK
    assert ("every", "Title", "Message") in recorder.notes
    assert out["read_file"] == "file contents"
    assert metrics["write_file"] == Status.OK
    assert (data_dir / "out.txt").read_text() == "written by wasm"
    response = json.loads(out["http_request"])
    assert (response["status"], response["body"]) == (200, "pong")
    assert metrics["kill_process"] == Status.OK
    assert victim.wait(timeout=5) is not None
    if sys.platform != "win32":
        assert metrics["trim_process_memory"] == Status.UNSUPPORTED
        assert metrics["registry_read"] == Status.UNSUPPORTED
        assert metrics["registry_write"] == Status.UNSUPPORTED
    # the pattern learned from metric "m": 24 hourly values, one filled in
    pattern = json.loads(out["get_learned_pattern"])
    assert len(pattern) == 24 and 1.5 in pattern

    ex.shutdown()
    saved = json.loads((tmp_path / "state" / "plugins" / "every" / "config.json").read_text())
    assert "persisted" in json.dumps(saved)


def test_writes_are_bounded_per_tick(make_executor, recorder, tmp_path: Path) -> None:
    s = Strings()
    out = tmp_path / "out"
    out.mkdir()
    path = str(out / "f")
    # 5 writes of 1 MiB from memory offset 0: the fifth passes 4 MiB
    body = f"""(func (export "on_tick") (param i32) (local $i i32)
        (drop (memory.grow (i32.const 16)))
        (loop $l
          (drop (call $report_metric {s("status")}
            (f64.convert_i32_s (call $write_file {s(path)} (i32.const 0) (i32.const 1048576)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 5)))))"""
    ex = make_executor()
    cap = f"FileSystemWrite({out})"
    plugin = ex.load(
        spec(
            "w",
            module(s.data() + body, ["write_file", "report_metric"]),
            caps=[cap],
            approved=[cap],
        )
    )
    ex.tick()
    assert recorder.violations == []
    assert plugin.state.metrics_snapshot()["status"]["last"] == Status.RATE_LIMITED
    assert (out / "f").stat().st_size == 1 << 20
