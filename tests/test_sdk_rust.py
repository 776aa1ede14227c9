"""The Rust SDK (sdk/rust/ruvector-plugin-sdk), its toolchain and the Rust examples.

Everything is built from source with the real toolchain (Debian's cargo and
rustc, through authoring.build.build_plugin) and run in the real executor
against the real machine. Cargo is slow to start, so each plugin is built
once per session, from a copy of the SDK and the examples in pytest's tmp
directories laid out as in the repository: nothing is built in the checkout,
and a copy elsewhere building to the pinned hashes shows that the build does
not depend on where it runs.

Without the toolchain the builds raise ToolchainMissing, whose message says
what to install: these tests fail then, they are not skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import tomlkit
import wasmtime

import authoring.lang_rust as lang_rust
from authoring.build import Built, build_plugin
from authoring.lang_rust import TOOLCHAIN
from authoring.toolchain import BuildFailed, ToolchainMissing, run_tool
from executor.executor import Executor
from executor.spec import PluginSpec
from hostcalls import sensors
from hostcalls.capabilities import parse
from reconciler.handoff import resolve_env
from reconciler.plugin_dir import load_plugin_dir
from tests.conftest import Children, Recorder
from tests.http_server import serve

REPO = Path(__file__).resolve().parent.parent
SDK = Path("sdk/rust/ruvector-plugin-sdk")
EXAMPLES = ("nvidia-oc", "home-assistant")
NOT_BUILT = shutil.ignore_patterns("target", "*.wasm")

MakeExecutor = Callable[..., Executor]


@pytest.fixture(scope="session")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDK and the Rust examples, copied with the repository's layout."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(REPO / SDK, root / SDK, ignore=NOT_BUILT)
    for name in EXAMPLES:
        shutil.copytree(REPO / "examples" / name, root / "examples" / name, ignore=NOT_BUILT)
    return root


@pytest.fixture(scope="session")
def built(checkout: Path) -> dict[str, Built]:
    """Each example, built once per session."""
    return {name: build_plugin(checkout / "examples" / name) for name in EXAMPLES}


def pinned_sha256(name: str) -> str:
    manifest = tomlkit.parse((REPO / "examples" / name / "manifest.toml").read_text())
    return str(manifest["wasm_sha256"])


def metrics(ex: Executor, plugin: str) -> dict[str, float]:
    return {k: v["last"] for k, v in ex.plugins[plugin].state.metrics_snapshot().items()}


def counts(ex: Executor, plugin: str) -> dict[str, int]:
    return {k: v["count"] for k, v in ex.plugins[plugin].state.metrics_snapshot().items()}


def approving(spec: PluginSpec, *caps: str) -> PluginSpec:
    return dataclasses.replace(spec, approved=frozenset(parse(c) for c in caps))


# -- the SDK ------------------------------------------------------------------------


def test_sdk_unit_tests_pass(checkout: Path, tmp_path: Path) -> None:
    # The JSON parser's own tests (hostile input, limits) and the doc examples,
    # natively: they need no host.
    rustdoc = lang_rust.RUSTC.with_name("rustdoc")
    env = {**os.environ, "RUSTC": str(lang_rust.RUSTC), "RUSTDOC": str(rustdoc)}
    env["CARGO_TARGET_DIR"] = str(tmp_path / "target")
    output = run_tool(
        [str(lang_rust.CARGO), "test", "--offline"], cwd=checkout / SDK, what="the SDK", env=env
    )  # BuildFailed, with cargo's report, if a test fails
    assert "test json::tests::bounds_nesting_without_recursing_deeper ... ok" in output
    assert output.count("test result: ok.") == 2, output  # unit tests, doc tests


# -- the examples build to what their manifests pin ------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_builds_to_its_pinned_hash(built: dict[str, Built], name: str) -> None:
    # Built in another directory, with a fresh target dir: the bytes do not
    # depend on where the checkout is.
    assert built[name].language == "rust"
    assert built[name].sha256 == pinned_sha256(name)


def test_a_rebuild_gives_the_same_bytes(built: dict[str, Built]) -> None:
    directory = built["nvidia-oc"].wasm_path.parent
    again = TOOLCHAIN.build(directory)  # now incremental: target/ is warm
    assert hashlib.sha256(again).hexdigest() == built["nvidia-oc"].sha256


README_SDK_PATH = "/path/to/ruvector/sdk/rust/ruvector-plugin-sdk"


def test_the_readme_plugin_builds_and_runs(
    checkout: Path, make_executor: MakeExecutor, recorder: Recorder, tmp_path: Path
) -> None:
    # Each file of the README's example is a "`name`:" line, a blank line, a fence.
    readme = (REPO / SDK / "README.md").read_text()
    block = r"^`([^`\n]+)`(?: \([^)\n]*\))?:\n\n```\w+\n(.*?)^```"
    files = dict(re.findall(block, readme, re.MULTILINE | re.DOTALL))
    assert set(files) == {"Cargo.toml", ".cargo/config.toml", "src/lib.rs", "manifest.toml"}
    files["Cargo.toml"] = files["Cargo.toml"].replace(README_SDK_PATH, (checkout / SDK).as_posix())
    directory = tmp_path / "memory-watch"
    for relative, text in files.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    build_plugin(directory)

    ex = make_executor(memory_high_percent=0.0)
    ex.load(load_plugin_dir(directory, config={"threshold_percent": 0}))
    ex.tick()
    ex.tick()
    assert recorder.violations == []
    assert recorder.messages("memory-watch") == [
        "warning above 0% of memory in use",
        "memory pressure is now High",
    ]
    assert [t for _, t, _ in recorder.notes] == ["Memory is filling up"]  # once
    assert 0 < metrics(ex, "memory-watch")["memory_percent"] <= 100


# -- every wrapper of the SDK, once ---------------------------------------------

EVERY_LIB = r"""
//! Calls every wrapper of the SDK and logs "name=result" lines for the test.
use ruvector_plugin_sdk::{
    self as rv, json, ruvector_plugin, Error, Global, HttpRequest, Level, PressureLevel, Priority,
    RegistryValue,
};

#[derive(Default)]
struct State {
    ticked: bool,
}

static STATE: Global<State> = Global::new();

fn out(name: &str, value: impl std::fmt::Display) {
    rv::info(&format!("{}={}", name, value));
}

fn res<T: std::fmt::Display>(r: Result<T, Error>) -> String {
    match r {
        Ok(v) => v.to_string(),
        Err(e) => e.name().to_string(),
    }
}

fn done(r: Result<(), Error>) -> String {
    res(r.map(|()| "ok"))
}

fn cfg(key: &str) -> String {
    rv::get_config(key).ok().flatten().unwrap_or_default()
}

fn pid(key: &str) -> u32 {
    cfg(key).parse().unwrap_or(0)
}

fn init() {
    out("set_config", done(rv::set_config("k", "persisted")));
    out("greeting", cfg("greeting"));
}

fn tick(_interval_ms: u32) {
    if cfg("panic") == "true" {
        let empty: Vec<u32> = Vec::new();
        out("never", empty[pid("index") as usize]);
    }
    if STATE.with(|s| std::mem::replace(&mut s.ticked, true)) != Some(false) {
        return; // everything once, on the first tick
    }
    out("log", done(rv::log(Level::Info, "via log")));
    rv::trace("via trace");
    rv::debug("via debug");
    rv::warn("via warn");
    rv::error("via error");
    out("config.k", cfg("k"));
    out("config.missing", format!("{:?}", rv::get_config("missing")));
    out("config_json", res(rv::get_config_json("numbers").map(|v| format!("{:?}", v.map(|v| v.to_json())))));
    out("report_metric", done(rv::report_metric("m", 1.5)));
    out("learned", res(rv::get_learned_pattern("m").map(|p| match p {
        Some(hours) => format!("{} {}", hours.len(), hours.contains(&Some(1.5))),
        None => "none".to_string(),
    })));
    out("learned.unknown", res(rv::get_learned_pattern("never").map(|p| p.is_none())));
    out("memory.total_bytes", res(rv::get_memory_status().map(|m| m.total_bytes)));
    out("cpu", res(rv::get_cpu_usage()));
    out("temperature.sensors", res(rv::get_temperature().map(|t| t.sensors.len())));
    out("gpu.gpus", res(rv::get_gpu_status().map(|g| g.gpus.len())));
    out("battery.present", res(rv::get_battery_status().map(|b| b.present)));
    let target = pid("target");
    out("processes.has_target", res(rv::get_process_list().map(|list| {
        list.iter().any(|p| p.pid == target && p.name == "sleep")
    })));
    out("process_memory", res(rv::get_process_memory(target)));
    out("set_process_priority", done(rv::set_process_priority(target, Priority::BelowNormal)));
    out("trim_process_memory", res(rv::trim_process_memory(target)));
    out("show_notification", done(rv::show_notification("Title", "Message")));
    out("read_file", res(rv::read_file(&cfg("read_path")).map(|b| String::from_utf8_lossy(&b).into_owned())));
    out("write_file", done(rv::write_file(&cfg("write_path"), b"written by rust")));
    let request = HttpRequest::get(cfg("http_url")).header("X-Test", "1");
    out("http_request", res(rv::http_request(&request).map(|r| {
        format!("{} {} {}", r.status, r.body, r.header("Content-Length").unwrap_or("-"))
    })));
    out("registry_read", res(rv::registry_read("HKCU\\Software\\x").map(|v| format!("{:?}", v))));
    out("registry_write", done(rv::registry_write("HKCU\\Software\\x", &RegistryValue::Dword(1))));
    out("kill_process", done(rv::kill_process(pid("victim"))));
    // What would be violations is refused or cut before the host sees it.
    out("long_metric_name", done(rv::report_metric(&"m".repeat(200), 1.0)));
    out("huge_pid", res(rv::get_process_memory(u32::MAX)));
    out("huge_file", done(rv::write_file(&cfg("write_path"), &vec![0u8; (1 << 20) + 1])));
    rv::info(&"é".repeat(5000)); // 10000 bytes: cut to 8192, at a character
    // f64::ln links libm's `log`, which must not meet the host's `log`.
    out("ln", res(cfg("ln_of").parse::<f64>().map(f64::ln).map_err(|_| Error::InvalidArgument)));
    let cases = rv::get_config_json("json_cases").ok().flatten().unwrap_or(json::Value::Null);
    for (i, case) in cases.as_array().unwrap_or(&[]).iter().enumerate() {
        let verdict = match json::parse(case.as_str().unwrap_or("")) {
            Ok(v) => format!("ok {}", v.to_json()),
            Err(e) => format!("err {}", e.reason),
        };
        out(&format!("json{}", i), verdict);
    }
}

fn pressure(level: PressureLevel) {
    out("pressure", format!("{:?}", level));
}

fn launched(name: &str, pid: u32) {
    if name == cfg("watch") {
        out("launched", format!("{} {}", name, pid));
    }
}

fn exited(name: &str, pid: u32) {
    if name == cfg("watch") {
        out("exited", format!("{} {}", name, pid));
    }
}

fn profile(name: &str) {
    out("profile", name);
}

fn cleanup() {
    out("cleanup", "bye");
}

ruvector_plugin! {
    on_init: init,
    on_tick: tick,
    on_memory_pressure: pressure,
    on_process_launch: launched,
    on_process_exit: exited,
    on_profile_switch: profile,
    on_cleanup: cleanup,
}
"""

ALL_CAPS = (
    "ReadSystemInfo", "ReadProcessList", "ModifyProcessPriority", "TrimProcessMemory",
    "KillProcess", "ShowNotifications", "RegistryRead", "RegistryWrite",
)  # fmt: skip


def cargo_toml(name: str, sdk: Path) -> str:
    return f"""\
[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
ruvector-plugin-sdk = {{ path = {json.dumps(sdk.as_posix())} }}

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"

[workspace]
"""


def manifest(name: str, caps: list[str]) -> str:
    return f"""\
name = "{name}"
version = "0.1.0"
author = "tests"
description = "A test plugin."
license = "MIT"
capabilities = {json.dumps(caps)}
min_ruvector_version = "0.1.0"
platforms = ["linux", "macos", "windows"]
wasm_file = "plugin.wasm"
wasm_sha256 = "{"0" * 64}"
"""


@pytest.fixture(scope="session")
def every(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin that calls every wrapper, built once; its directory.

    Its manifest declares NetworkAccess and file access under one directory,
    made here: the test approves what it needs.
    """
    directory = tmp_path_factory.mktemp("every") / "every"
    data = directory.parent / "data"
    data.mkdir()
    (directory / "src").mkdir(parents=True)
    (directory / "src" / "lib.rs").write_text(EVERY_LIB)
    (directory / "Cargo.toml").write_text(cargo_toml("every", checkout / SDK))
    caps = [
        *ALL_CAPS,
        "NetworkAccess(127.0.0.1)",
        f"FileSystemRead({data})",
        f"FileSystemWrite({data})",
    ]
    (directory / "manifest.toml").write_text(manifest("every", caps))
    build_plugin(directory)
    return directory


def results(recorder: Recorder, plugin: str) -> list[tuple[str, str]]:
    """The "name=value" lines a plugin logged, in order."""
    lines = recorder.messages(plugin)
    return [(n, v) for n, _, v in (line.partition("=") for line in lines) if _]


JSON_CASES = [
    (r'{"a":[1,-2,3.5e2,true,null,"\u00e9\ud83d\ude00"]}', 'ok {"a":[1,-2,350,true,null,"é😀"]}'),
    ("18446744073709551615", "ok 18446744073709551615"),
    ("[" * 100 + "]" * 100, "err nested too deeply"),
    ("[" * 100_000, "err nested too deeply"),
    ('{"a":1', "err unexpected end of input"),
    (r'"\ud800"', "err lone surrogate in \\u escape"),
    ("1e999", "err number out of range"),
    ('"tab\there"', "err control character in a string"),
    ("01", "err unexpected text after the document"),
    ("", "err unexpected end of input"),
]


def test_every_wrapper_acts_on_the_real_machine(
    every: Path, make_executor: MakeExecutor, recorder: Recorder, children: Children
) -> None:
    target, victim = children.sleeper(), children.sleeper()
    data = every.parent / "data"
    (data / "in.txt").write_text("file contents")
    ex = make_executor(memory_high_percent=0.0)  # pressure is "high" from the first tick
    with serve({"/ping": b"pong"}) as server:
        config = {
            "greeting": "hello there", "target": str(target.pid), "victim": str(victim.pid),
            "read_path": str(data / "in.txt"), "write_path": str(data / "out.txt"),
            "http_url": server.url("/ping"), "numbers": [1, 2.5], "ln_of": "8", "watch": "sleep",
            "json_cases": [case for case, _ in JSON_CASES],
        }  # fmt: skip
        spec = load_plugin_dir(every, config=config)
        ex.load(approving(spec, *(str(c) for c in spec.declared)))
        ex.tick()
    assert victim.wait(timeout=5) is not None  # reaped: its exit is seen next tick
    watched = children.sleeper()
    ex.switch_profile("gaming")
    ex.tick()
    watched.kill()
    watched.wait()
    ex.tick()
    ex.shutdown()

    assert recorder.violations == []
    got = dict(results(recorder, "every"))
    assert got["set_config"] == "ok"
    assert got["greeting"] == "hello there"
    assert got["config.k"] == "persisted"
    assert got["config.missing"] == "Ok(None)"
    assert got["config_json"] == 'Some("[1,2.5]")'
    assert got["report_metric"] == "ok"
    assert (got["learned"], got["learned.unknown"]) == ("24 true", "true")
    assert int(got["memory.total_bytes"]) == psutil.virtual_memory().total
    assert 0 <= float(got["cpu"]) <= 100
    assert int(got["temperature.sensors"]) >= 0
    gpus = json.loads(sensors.read_gpu_status())["gpus"]
    assert int(got["gpu.gpus"]) == len(gpus)
    assert got["battery.present"] == str(psutil.sensors_battery() is not None).lower()
    assert got["processes.has_target"] == "true"
    assert int(got["process_memory"]) > 0
    assert got["set_process_priority"] == "ok"
    assert psutil.Process(target.pid).nice() == 10  # below normal
    assert got["show_notification"] == "ok"
    assert ("every", "Title", "Message") in recorder.notes
    assert got["read_file"] == "file contents"
    assert got["write_file"] == "ok"
    assert (data / "out.txt").read_text() == "written by rust"
    assert got["http_request"] == "200 pong 4"
    assert got["kill_process"] == "ok"
    if sys.platform != "win32":
        assert got["trim_process_memory"] == "UNSUPPORTED"
        assert got["registry_read"] == "UNSUPPORTED"
        assert got["registry_write"] == "UNSUPPORTED"
    # refused before the host saw them: each would have been a violation
    assert got["long_metric_name"] == "TOO_LONG"
    assert got["huge_pid"] == "INVALID_ARGUMENT"
    assert got["huge_file"] == "TOO_LONG"
    assert "é" * 4096 in recorder.messages("every")  # 8192 bytes, cut at a character
    assert float(got["ln"]) == pytest.approx(2.0794415416798357)
    for i, (_, verdict) in enumerate(JSON_CASES):
        assert got[f"json{i}"] == verdict, JSON_CASES[i][0][:40]
    # the lifecycle hooks, through the macro
    levels = {m: level for p, level, m in recorder.logs if p == "every"}
    for call, level in [("log", "info"), *((lv, lv) for lv in ("trace", "debug", "warn", "error"))]:
        assert levels[f"via {call}"] == level
    lines = results(recorder, "every")
    assert ("pressure", "High") in lines
    assert ("profile", "gaming") in lines
    assert ("launched", f"sleep {watched.pid}") in lines
    assert ("exited", f"sleep {victim.pid}") in lines
    assert ("exited", f"sleep {watched.pid}") in lines
    assert lines[-1] == ("cleanup", "bye")


def test_a_panic_is_logged_then_traps(
    every: Path, make_executor: MakeExecutor, recorder: Recorder
) -> None:
    spec = load_plugin_dir(every, config={"panic": "true"})
    ex = make_executor()
    ex.load(approving(spec, *(str(c) for c in spec.declared)))
    ex.tick()

    assert recorder.kinds("every") == ["TRAP"]
    errors = [m for p, level, m in recorder.logs if p == "every" and level == "error"]
    assert len(errors) == 1
    assert re.fullmatch(
        r"plugin panicked at 'index out of bounds: the len is 0 but the index is 0', "
        r"src/lib\.rs:\d+:\d+",
        errors[0],
    )


# -- nvidia-oc -----------------------------------------------------------------------

APP = "oc-game"  # a copy of sleep: no other process on the machine has its name
PROFILES = {
    APP: {
        "core_clock_offset_mhz": 150,
        "memory_clock_offset_mhz": 500,
        "power_limit_percent": 110,
    }
}
APP_PROFILE = "core clock +150 MHz, memory clock +500 MHz, power limit 110%"
NOT_APPLIED = (
    "not applied: RuVector's plugin API (ABI v1) reads GPUs but cannot change "
    "their clocks or power limit"
)
FIGURES = ("utilization_percent", "memory_used_bytes", "temperature_celsius")


def start_app(children: Children, tmp_path: Path) -> subprocess.Popen[bytes]:
    """The configured application: sleep, running as APP, exec'd when this returns."""
    program = tmp_path / APP
    if not program.exists():
        shutil.copy("/bin/sleep", program)
    proc = children.start(str(program), "60")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(proc.pid).name() == APP:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    return proc


def host_gpus() -> list[dict[str, object]]:
    """The GPUs as the host reads them (what get_gpu_status hands plugins)."""
    gpus: list[dict[str, object]] = json.loads(sensors.read_gpu_status())["gpus"]
    return gpus


@pytest.mark.skipif(sys.platform == "win32", reason="the application is a copy of /bin/sleep")
def test_nvidia_oc_without_an_nvidia_gpu_says_so_once(
    built: dict[str, Built],
    make_executor: MakeExecutor,
    recorder: Recorder,
    children: Children,
    tmp_path: Path,
) -> None:
    gpus = host_gpus()
    assert not [g for g in gpus if g["vendor"] == "NVIDIA"], "expects a machine without NVIDIA"
    start_app(children, tmp_path)  # a configured application, already running
    ex = make_executor()
    ex.load(load_plugin_dir(built["nvidia-oc"].wasm_path.parent, config={"profiles": PROFILES}))
    ex.tick()
    start_app(children, tmp_path)  # and one that starts
    ex.tick()
    ex.tick()

    assert recorder.violations == []
    assert recorder.messages("nvidia-oc") == [
        f"profiles for {APP}",
        f"no NVIDIA GPU on this machine (the host sees {len(gpus)} GPU(s)): nothing to do",
    ]
    assert metrics(ex, "nvidia-oc") == {}
    assert recorder.notes == []


# What nvidia-smi prints for the host's query, from a machine with two boards;
# the second publishes neither utilization nor temperature.
FAKE_NVIDIA_SMI = """#!/bin/sh
echo '0, NVIDIA GeForce RTX 4090, 37, 1024, 24564, 61'
echo '1, NVIDIA T400, [N/A], 10, 2048, [N/A]'
"""


@pytest.mark.skipif(sys.platform == "win32", reason="stand-ins: a shell script, a copy of sleep")
def test_nvidia_oc_reports_readings_and_the_profile_it_would_apply(
    built: dict[str, Built],
    make_executor: MakeExecutor,
    recorder: Recorder,
    children: Children,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No NVIDIA board here: a stand-in nvidia-smi on PATH, read by the real host.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (tmp_path / "bin" / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    nvidia = [g for g in host_gpus() if g["vendor"] == "NVIDIA"]
    assert [g["name"] for g in nvidia] == ["NVIDIA GeForce RTX 4090", "NVIDIA T400"]
    names = "NVIDIA GeForce RTX 4090, NVIDIA T400"

    first = start_app(children, tmp_path)  # running before the plugin: found by its scan
    ex = make_executor()
    ex.load(load_plugin_dir(built["nvidia-oc"].wasm_path.parent, config={"profiles": PROFILES}))
    ex.tick()
    # exactly the figures the host has; nothing for what a board does not publish
    assert metrics(ex, "nvidia-oc") == {
        f"gpu{g['index']}.{key}": g[key] for g in nvidia for key in FIGURES if g[key] is not None
    }
    assert len(metrics(ex, "nvidia-oc")) == 4
    assert recorder.messages("nvidia-oc") == [
        f"profiles for {APP}",
        f"NVIDIA GPU(s): NVIDIA GeForce RTX 4090 ({nvidia[0]['index']}), "
        f"NVIDIA T400 ({nvidia[1]['index']})",
        f"{APP} is in front: would apply {APP_PROFILE} to {names}; {NOT_APPLIED}",
    ]
    assert recorder.notes == []  # it was already running: no start to announce

    second = start_app(children, tmp_path)
    ex.tick()
    assert recorder.notes == [
        ("nvidia-oc", f"nvidia-oc: {APP} started", f"Profile: {APP_PROFILE}; {NOT_APPLIED}.")
    ]
    assert recorder.messages("nvidia-oc")[-1] == (
        f"{APP} started (pid {second.pid}): profile {APP_PROFILE}"
    )

    for proc in (first, second):
        proc.kill()
        proc.wait()
    ex.tick()
    assert recorder.violations == []
    assert recorder.messages("nvidia-oc")[-1] == (
        f"no configured application running: would keep the default clocks on {names}"
    )
    assert counts(ex, "nvidia-oc")["gpu0.temperature_celsius"] == 3  # every tick


# -- home-assistant --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class _HomeAssistantServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HomeAssistantHandler)
        self.posts: list[Post] = []


class _HomeAssistantHandler(http.server.BaseHTTPRequestHandler):
    """Records each POST and answers as Home Assistant's /api/states does."""

    def do_POST(self) -> None:
        assert isinstance(self.server, _HomeAssistantServer)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.posts.append(Post(self.path, headers, body))
        reply = b'{"entity_id":"sensor.ruvector_test","state":"ok"}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def home_assistant() -> Iterator[_HomeAssistantServer]:
    """A stand-in Home Assistant on loopback; `server_close()` makes it go away."""
    server = _HomeAssistantServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def ha_url(server: _HomeAssistantServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/api/states/sensor.ruvector_test"


def stop(server: _HomeAssistantServer) -> None:
    server.shutdown()
    server.server_close()  # the port now refuses connections


def load_home_assistant(built: dict[str, Built], config: dict[str, object]) -> PluginSpec:
    spec = load_plugin_dir(built["home-assistant"].wasm_path.parent, config=config)
    return approving(spec, "NetworkAccess(127.0.0.1)")


def test_home_assistant_posts_the_state_then_survives_its_absence(
    built: dict[str, Built],
    make_executor: MakeExecutor,
    recorder: Recorder,
    home_assistant: _HomeAssistantServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HA_TOKEN", "secret-token")
    url = ha_url(home_assistant)
    # the token as ruvector.toml gives it: env:NAME, resolved when the plugin loads
    config = resolve_env("home-assistant", {"url": url, "token": "env:HA_TOKEN"})
    ex = make_executor()
    ex.load(load_home_assistant(built, config))
    ex.tick()
    ex.switch_profile("gaming")
    ex.tick()

    posts = home_assistant.posts
    assert len(posts) == 2
    assert {p.path for p in posts} == {"/api/states/sensor.ruvector_test"}
    assert posts[0].headers["authorization"] == "Bearer secret-token"
    assert posts[0].headers["content-type"] == "application/json"
    body = json.loads(posts[0].body)
    attributes = body["attributes"]
    memory = attributes["memory"]
    assert body["state"] == f"{memory['percent']:.1f}"
    assert memory["total_bytes"] == psutil.virtual_memory().total
    assert 0 <= attributes["cpu_percent"] <= 100
    sensors_seen = attributes["thermal"]["sensors"]
    assert (attributes["thermal"]["hottest_celsius"] is None) == (sensors_seen == [])
    assert attributes["power"]["battery_present"] is (psutil.sensors_battery() is not None)
    if psutil.sensors_battery() is None:  # no battery: no charge made up
        assert attributes["power"]["battery_percent"] is None
    assert attributes["power"]["ruvector_profile"] is None  # not told of one yet
    assert json.loads(posts[1].body)["attributes"]["power"]["ruvector_profile"] == "gaming"
    assert metrics(ex, "home-assistant") == {"http_status": 201, "post_success": 1}

    stop(home_assistant)
    ex.tick()
    ex.tick()
    assert recorder.violations == []
    assert counts(ex, "home-assistant")["post_success"] == 4  # it keeps ticking
    assert metrics(ex, "home-assistant")["post_success"] == 0
    assert recorder.messages("home-assistant") == [
        f"posting to {url} every 1 tick(s), with a bearer token",
        f"posted to {url}: HTTP 201",
        f"posting to {url} failed, will keep trying: "
        "no connection (IO_ERROR: refused, TLS or protocol failure)",
    ]  # the failure once, not every tick
    assert not any("secret-token" in m for _, _, m in recorder.logs)


def test_home_assistant_posts_every_n_ticks(
    built: dict[str, Built], make_executor: MakeExecutor, home_assistant: _HomeAssistantServer
) -> None:
    ex = make_executor()
    ex.load(load_home_assistant(built, {"url": ha_url(home_assistant), "every_ticks": 3}))
    for _ in range(4):
        ex.tick()
    assert len(home_assistant.posts) == 2  # ticks 1 and 4
    assert "authorization" not in home_assistant.posts[0].headers  # no token configured


def test_home_assistant_on_a_host_not_approved_says_so(
    built: dict[str, Built], make_executor: MakeExecutor, recorder: Recorder
) -> None:
    # localhost is declared in the manifest but only 127.0.0.1 is approved
    url = "http://localhost:8123/api/states/sensor.x"
    ex = make_executor()
    ex.load(load_home_assistant(built, {"url": url}))
    ex.tick()
    assert recorder.violations == []
    assert recorder.messages("home-assistant")[-1] == (
        f"posting to {url} failed, will keep trying: denied: approve NetworkAccess for this "
        "host (and declare it in manifest.toml)"
    )


# -- what the examples import is what they declare -------------------------------


@pytest.mark.parametrize(
    "name, imports",
    [
        ("nvidia-oc", {"log", "get_config", "report_metric", "get_gpu_status",
                       "get_process_list", "show_notification"}),
        ("home-assistant", {"log", "get_config", "report_metric", "get_memory_status",
                            "get_cpu_usage", "get_temperature", "get_battery_status",
                            "http_request"}),
    ],
)  # fmt: skip
def test_examples_import_only_what_they_use(
    built: dict[str, Built], name: str, imports: set[str]
) -> None:
    module = wasmtime.Module(wasmtime.Engine(), built[name].wasm_path.read_bytes())
    assert {(i.module, i.name) for i in module.imports} == {("ruvector", n) for n in imports}
    exports = {e.name for e in module.exports}
    assert {"memory", "rv_alloc", "rv_abi_version", "on_init", "on_tick"} <= exports


# -- the toolchain ---------------------------------------------------------------


def test_skeleton_builds_and_ticks(
    make_executor: MakeExecutor, recorder: Recorder, tmp_path: Path
) -> None:
    directory = tmp_path / "demo"
    for relative, text in TOOLCHAIN.skeleton("demo").items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    (directory / "manifest.toml").write_text(manifest("demo", ["ReadSystemInfo"]))
    assert TOOLCHAIN.detect(directory)
    built = build_plugin(directory)
    assert built.language == "rust"
    assert (directory / "Cargo.lock").is_file()  # cargo's lock file, kept

    ex = make_executor()
    ex.load(load_plugin_dir(directory, config={"greeting": "hi from Rust"}))
    ex.tick()
    assert recorder.violations == []
    first, tick = recorder.messages("demo")
    assert first == "hi from Rust"
    assert re.fullmatch(r"tick 1: memory \d+\.\d% used, cpu \d+%", tick), tick


def test_detect_wants_a_cargo_toml(tmp_path: Path) -> None:
    assert not TOOLCHAIN.detect(tmp_path)
    (tmp_path / "Cargo.toml").write_text("")
    assert TOOLCHAIN.detect(tmp_path)


def test_the_callers_rustflags_do_not_change_the_bytes(
    built: dict[str, Built], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSTFLAGS", "-C opt-level=0")
    monkeypatch.setenv("CARGO_PROFILE_RELEASE_LTO", "false")
    again = TOOLCHAIN.build(built["nvidia-oc"].wasm_path.parent)
    assert hashlib.sha256(again).hexdigest() == built["nvidia-oc"].sha256


def lone_crate(directory: Path, source: str, crate_type: str = '["cdylib"]') -> Path:
    (directory / "src").mkdir(parents=True)
    (directory / "src" / "lib.rs").write_text(source)
    (directory / "Cargo.toml").write_text(
        f'[package]\nname = "lone"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f"[lib]\ncrate-type = {crate_type}\n"
    )
    return directory


def test_compiler_errors_fail_the_build(tmp_path: Path) -> None:
    lone_crate(tmp_path, 'pub fn broken() -> u32 { "text" }\n')
    with pytest.raises(BuildFailed, match=r"(?s)mismatched types.*src/lib\.rs:1"):
        TOOLCHAIN.build(tmp_path)


def test_a_crate_without_cdylib_is_refused(tmp_path: Path) -> None:
    lone_crate(tmp_path, "", crate_type='["rlib"]')
    with pytest.raises(BuildFailed, match=r'crate-type = \["cdylib"\]'):
        TOOLCHAIN.build(tmp_path)


def test_missing_cargo_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lang_rust, "CARGO", tmp_path / "no-cargo")
    with pytest.raises(
        ToolchainMissing, match="apt-get install rustc cargo libstd-rust-dev-wasm32"
    ):
        TOOLCHAIN.build(lone_crate(tmp_path / "p", ""))


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in rustc is a shell script")
def test_missing_wasm32_std_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rustc without the wasm32 target: its library directory holds no std.
    empty = tmp_path / "rustlib"
    empty.mkdir()
    rustc = tmp_path / "rustc"
    rustc.write_text(f"#!/bin/sh\necho {empty}\n")
    rustc.chmod(0o755)
    monkeypatch.setattr(lang_rust, "RUSTC", rustc)
    with pytest.raises(ToolchainMissing, match=r"no standard library for wasm32-unknown-unknown"):
        TOOLCHAIN.build(lone_crate(tmp_path / "p", ""))


def test_skeleton_needs_the_sdk_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lang_rust, "SDK_DIR", tmp_path / "nowhere")
    with pytest.raises(ToolchainMissing, match="needs a source checkout of ruvector"):
        TOOLCHAIN.skeleton("demo")


def test_staging_puts_path_dependencies_inside_the_copy(tmp_path: Path) -> None:
    # plugin -> helper (relative path) -> sdk (absolute path), as cargo resolves them
    sdk = tmp_path / "elsewhere" / "sdk"
    helper = tmp_path / "work" / "helper"
    plugin = tmp_path / "work" / "plugin"
    for directory, deps in [
        (sdk, ""),
        (helper, f"sdk = {{ path = {json.dumps(sdk.as_posix())} }}"),
        (plugin, 'helper = { path = "../helper" }\n[target.wasm32-unknown-unknown.dependencies]\n'
                 f"sdk = {{ path = {json.dumps(sdk.as_posix())} }}"),
    ]:  # fmt: skip
        (directory / "src").mkdir(parents=True)
        (directory / "Cargo.toml").write_text(
            f'[package]\nname = "{directory.name}"\nversion = "0.1.0"\n\n[dependencies]\n{deps}\n'
        )
    (plugin / "target").mkdir()  # never copied

    staged = lang_rust._stage(plugin, tmp_path / "stage")
    doc = tomlkit.parse((staged / "Cargo.toml").read_text())
    assert doc["dependencies"]["helper"]["path"] == ".path-deps/helper"
    assert doc["target"]["wasm32-unknown-unknown"]["dependencies"]["sdk"]["path"] == (
        ".path-deps/sdk"
    )  # one copy of the sdk, shared
    assert "workspace" in doc
    helper_doc = tomlkit.parse((staged / ".path-deps" / "helper" / "Cargo.toml").read_text())
    assert helper_doc["dependencies"]["sdk"]["path"] == "../sdk"
    assert "workspace" not in helper_doc  # a member of the plugin's workspace
    assert sorted(p.name for p in (staged / ".path-deps").iterdir()) == ["helper", "sdk"]
    assert not (staged / "target").exists()
