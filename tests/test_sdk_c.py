"""The C SDK (sdk/c/ruvector.h), its toolchain and the C examples.

Everything here is built from source with the real toolchain (ziglang's
`zig cc`, through authoring.build.build_plugin) and run in the real executor
against the real machine. The examples are built once per module, into
pytest's tmp directories: nothing built is kept between runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import importlib.util
import json
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

from authoring.build import Built, build_plugin
from authoring.lang_c import TOOLCHAIN
from authoring.toolchain import BuildFailed, ToolchainMissing
from executor.executor import Executor
from executor.spec import Limits, PluginSpec
from hostcalls.abi import HOST_FUNCTIONS, Status
from hostcalls.capabilities import parse
from reconciler.plugin_dir import load_plugin_dir
from tests.conftest import Children, Recorder

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = ("chrome-tab-limiter", "thinkpad-thermal", "docker-cleaner")

MakeExecutor = Callable[..., Executor]


def copy_example(name: str, into: Path) -> Path:
    """A copy of examples/NAME without any wasm built in place."""
    target = into / name
    shutil.copytree(REPO / "examples" / name, target, ignore=shutil.ignore_patterns("*.wasm"))
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Each example, copied and built once for this module."""
    root = tmp_path_factory.mktemp("examples")
    return {name: build_plugin(copy_example(name, root)) for name in EXAMPLES}


def pinned_sha256(name: str) -> str:
    manifest = tomlkit.parse((REPO / "examples" / name / "manifest.toml").read_text())
    return str(manifest["wasm_sha256"])


def metrics(ex: Executor, plugin: str) -> dict[str, float]:
    return {k: v["last"] for k, v in ex.plugins[plugin].state.metrics_snapshot().items()}


def counts(ex: Executor, plugin: str) -> dict[str, int]:
    return {k: v["count"] for k, v in ex.plugins[plugin].state.metrics_snapshot().items()}


def with_grant(spec: PluginSpec, *caps: str) -> PluginSpec:
    """The spec as if its manifest declared, and the user approved, `caps`."""
    granted = frozenset(parse(c) for c in caps)
    return dataclasses.replace(spec, declared=granted, approved=granted)


# -- the examples build to what their manifests pin ------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_builds_to_its_pinned_hash(built: dict[str, Built], name: str) -> None:
    # Built from a copy in another directory: the build does not depend on where it runs.
    assert built[name].language == "c"
    assert built[name].sha256 == pinned_sha256(name)
    assert hashlib.sha256(built[name].wasm_path.read_bytes()).hexdigest() == pinned_sha256(name)


# -- chrome-tab-limiter ----------------------------------------------------------


def start_named(children: Children, program: Path, count: int) -> None:
    """`count` copies of sleep running as `program`, each exec'd when this returns."""
    shutil.copy("/bin/sleep", program)
    procs = [children.start(str(program), "60") for _ in range(count)]
    deadline = time.monotonic() + 5
    for proc in procs:
        while time.monotonic() < deadline:
            try:
                if psutil.Process(proc.pid).name() == program.name:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.005)


@pytest.mark.skipif(sys.platform == "win32", reason="stand-ins are copies of /bin/sleep")
@pytest.mark.parametrize("max_tabs, over", [(2, True), (10, False)])
def test_chrome_tab_limiter_counts_stand_in_processes(
    built: dict[str, Built],
    make_executor: MakeExecutor,
    recorder: Recorder,
    children: Children,
    tmp_path: Path,
    max_tabs: int,
    over: bool,
) -> None:
    start_named(children, tmp_path / "fakechrome", 3)
    config = {"process_name": "fakechrome", "max_tabs": max_tabs}
    ex = make_executor()
    ex.load(load_plugin_dir(built["chrome-tab-limiter"].wasm_path.parent, config=config))
    ex.tick()
    ex.tick()

    assert recorder.violations == []
    name = "chrome-tab-limiter"
    assert metrics(ex, name)["processes"] == 3
    if over:
        assert metrics(ex, name)["tabs_over_limit"] == 1
        assert counts(ex, name)["tabs_over_limit"] == 2  # every tick while over
        # once per episode, not every tick
        assert [(t, m) for p, t, m in recorder.notes] == [
            (
                "Too many fakechrome processes",
                "3 fakechrome processes are running; the limit is 2. "
                "Closing tabs you do not need frees their memory.",
            )
        ]
    else:
        assert "tabs_over_limit" not in metrics(ex, name)
        assert recorder.notes == []


# -- thinkpad-thermal ------------------------------------------------------------


def test_thinkpad_thermal_on_this_machine(
    built: dict[str, Built], make_executor: MakeExecutor, recorder: Recorder
) -> None:
    chips: dict[str, object] = getattr(psutil, "sensors_temperatures", dict)()
    ex = make_executor()
    ex.load(load_plugin_dir(built["thinkpad-thermal"].wasm_path.parent))
    for _ in range(3):
        ex.tick()

    assert recorder.violations == []
    lines = recorder.messages("thinkpad-thermal")
    if "thinkpad" in chips:  # a real ThinkPad: it acts on real readings
        assert "fan_target_level" in metrics(ex, "thinkpad-thermal")
        return
    # Most machines, and every VM: said once, nothing reported, nothing made up.
    assert len(lines) == 1
    assert lines[0].startswith("no ThinkPad thermal sensors: the host's snapshot has ")
    assert metrics(ex, "thinkpad-thermal") == {}
    assert recorder.notes == []


@dataclasses.dataclass(frozen=True)
class Reading:
    """A sensor as psutil.sensors_temperatures() gives it."""

    label: str
    current: float
    high: float | None = None
    critical: float | None = None


def fake_sensors(
    monkeypatch: pytest.MonkeyPatch, readings: dict[str, list[tuple[str, float]]]
) -> None:
    """What psutil reports, for the one thing a VM lacks: a ThinkPad's sensors."""
    chips = {
        chip: [Reading(label, celsius) for label, celsius in temps]
        for chip, temps in readings.items()
    }
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: chips, raising=False)


@pytest.mark.parametrize(
    "profile, celsius, level, alert",
    [
        ("quiet", 60.0, 1, False),
        ("balanced", 60.0, 2, False),
        ("performance", 60.0, 6, False),
        ("performance", 30.0, 1, False),
        ("quiet", 85.0, 7, False),  # quiet alerts only at 88
        ("balanced", 85.0, 7, True),
        ("performance", 75.0, 7, True),
    ],
)
def test_thinkpad_thermal_applies_the_profile_to_thinkpad_sensors(
    built: dict[str, Built],
    make_executor: MakeExecutor,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    profile: str,
    celsius: float,
    level: int,
    alert: bool,
) -> None:
    # The hottest ThinkPad sensor counts; another chip's hotter reading does not.
    fake_sensors(
        monkeypatch,
        {"thinkpad": [("CPU", celsius), ("GPU", celsius - 10)], "coretemp": [("Core 0", 99.0)]},
    )
    ex = make_executor()
    directory = built["thinkpad-thermal"].wasm_path.parent
    ex.load(load_plugin_dir(directory, config={"profile": profile}))
    ex.tick()
    ex.tick()

    assert recorder.violations == []
    got = metrics(ex, "thinkpad-thermal")
    assert (got["temperature_celsius"], got["fan_target_level"]) == (celsius, level)
    titles = [t for _, t, _ in recorder.notes]
    assert titles == (["ThinkPad running hot"] if alert else [])  # once, not every tick
    assert f"fan target level {level} for {celsius:.1f} °C ({profile} profile)" in (
        recorder.messages("thinkpad-thermal")
    )


# -- docker-cleaner --------------------------------------------------------------


def sha256_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Docker's layer chain ids: the first diff id, then sha256("<parent> <diff>")."""
    chains = [diff_ids[0]]
    for diff in diff_ids[1:]:
        chains.append(sha256_digest(f"{chains[-1]} {diff}"))
    return chains


def fake_docker_store(root: Path, images: dict[str, list[tuple[str, int]]]) -> int:
    """Docker's overlay2 image store under `root`, as dockerd lays it out.

    `images` maps a tag to its layers (diff id seed, size in bytes). Returns
    the bytes of the distinct layers: what `docker_images_bytes` must be.
    """
    store = root / "image" / "overlay2"
    (store / "imagedb" / "content" / "sha256").mkdir(parents=True)
    repositories: dict[str, dict[str, str]] = {}
    sizes: dict[str, int] = {}
    for tag, layers in images.items():
        diff_ids = [sha256_digest(seed) for seed, _ in layers]
        config = {
            "architecture": "amd64",
            "config": {"Cmd": ["/bin/sh"], "Env": ['PATH="/usr/bin"']},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {seed}"} for seed, _ in layers],
        }
        raw = json.dumps(config, separators=(",", ":")).encode()
        image_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        (store / "imagedb" / "content" / "sha256" / image_id[7:]).write_bytes(raw)
        repo = tag.split(":")[0]
        refs = repositories.setdefault(repo, {})
        refs[tag] = image_id
        refs[f"{repo}@sha256:{hashlib.sha256(tag.encode()).hexdigest()}"] = image_id  # same image
        for chain, (_, size) in zip(chain_ids(diff_ids), layers, strict=True):
            layer = store / "layerdb" / "sha256" / chain[7:]
            layer.mkdir(parents=True, exist_ok=True)
            (layer / "size").write_text(str(size))
            sizes[chain] = size
    (store / "repositories.json").write_text(json.dumps({"Repositories": repositories}))
    return sum(sizes.values())


@pytest.mark.parametrize("threshold_gb, notified", [(0.00005, True), (1.0, False)])
def test_docker_cleaner_reports_the_image_store_size(
    built: dict[str, Built],
    make_executor: MakeExecutor,
    recorder: Recorder,
    tmp_path: Path,
    threshold_gb: float,
    notified: bool,
) -> None:
    docker = tmp_path / "docker"
    expected = fake_docker_store(
        docker,
        {
            "alpine:3.19": [("base", 7_340_032)],
            "app:1": [("base", 7_340_032), ("deps", 41_000), ("code", 2_345)],
            "app:2": [("base", 7_340_032), ("deps", 41_000), ("code v2", 3_001)],
        },
    )
    assert expected == 7_340_032 + 41_000 + 2_345 + 3_001  # shared layers count once
    spec = load_plugin_dir(
        built["docker-cleaner"].wasm_path.parent,
        config={"data_dir": str(docker), "threshold_gb": threshold_gb},
    )
    # The manifest declares FileSystemRead(/var/lib/docker); the stand-in lies elsewhere.
    ex = make_executor()
    ex.load(with_grant(spec, f"FileSystemRead({docker})", "ShowNotifications"))
    ex.tick()

    assert recorder.violations == []
    got = metrics(ex, "docker-cleaner")
    assert got["docker_images_bytes"] == expected
    assert got["docker_images"] == 3
    assert recorder.messages("docker-cleaner") == ["Docker images: 3 tagged, 0.01 GB in 4 layers"]
    if notified:
        assert [t for _, t, _ in recorder.notes] == ["Docker is using a lot of disk"]
        assert "docker system prune" in recorder.notes[0][2]
    else:
        assert recorder.notes == []


@pytest.mark.parametrize("exists", [False, True])
def test_docker_cleaner_without_an_image_store_says_so_once(
    built: dict[str, Built],
    make_executor: MakeExecutor,
    recorder: Recorder,
    tmp_path: Path,
    exists: bool,
) -> None:
    docker = tmp_path / "docker"
    if exists:
        docker.mkdir()  # a data root without image/overlay2/repositories.json
    spec = load_plugin_dir(
        built["docker-cleaner"].wasm_path.parent,
        config={"data_dir": str(docker), "scan_interval_s": 0},  # look again every tick
    )
    ex = make_executor()
    ex.load(with_grant(spec, f"FileSystemRead({tmp_path})", "ShowNotifications"))
    for _ in range(3):
        ex.tick()

    assert recorder.violations == []
    said = recorder.messages("docker-cleaner")
    if exists:
        assert len(said) == 1
        assert said[0].startswith(
            f"cannot read {docker}/image/overlay2/repositories.json: NOT_FOUND (no images yet"
        )
    else:
        assert said == [f"Docker is not installed here: {docker} does not exist; nothing to do"]
    assert metrics(ex, "docker-cleaner") == {}
    assert recorder.notes == []


# -- the toolchain ---------------------------------------------------------------

SKELETON_MANIFEST = """\
name = "demo"
version = "0.1.0"
author = "you"
description = "A new C plugin."
license = "MIT"
capabilities = ["ReadSystemInfo", "ShowNotifications"]
min_ruvector_version = "0.1.0"
platforms = ["linux", "macos", "windows"]
wasm_file = "plugin.wasm"
wasm_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"""


def test_skeleton_builds_and_ticks(
    make_executor: MakeExecutor, recorder: Recorder, tmp_path: Path
) -> None:
    directory = tmp_path / "demo"
    directory.mkdir()
    for relative, text in TOOLCHAIN.skeleton("demo").items():
        (directory / relative).write_text(text)
    (directory / "manifest.toml").write_text(SKELETON_MANIFEST)
    assert TOOLCHAIN.detect(directory)
    build_plugin(directory)

    ex = make_executor()
    ex.load(load_plugin_dir(directory, config={"greeting": "hi from C"}))
    ex.tick()
    assert recorder.violations == []
    first, tick = recorder.messages("demo")
    assert first == "hi from C"
    assert re.fullmatch(r"cpu \d+\.\d%", tick)
    assert 0 <= metrics(ex, "demo")["cpu_percent"] <= 100


def test_detect_wants_c_and_no_other_language(tmp_path: Path) -> None:
    assert not TOOLCHAIN.detect(tmp_path)
    (tmp_path / "plugin.c").write_text("")
    assert TOOLCHAIN.detect(tmp_path)
    (tmp_path / "Cargo.toml").write_text("")
    assert not TOOLCHAIN.detect(tmp_path)


def test_compiler_errors_fail_the_build(tmp_path: Path) -> None:
    (tmp_path / "plugin.c").write_text('#include "ruvector.h"\nint broken(void) { return }\n')
    with pytest.raises(BuildFailed, match=r"plugin\.c:2:.*error"):
        TOOLCHAIN.build(tmp_path)


def test_missing_ziglang_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ziglang" else real(name, *a)
    )
    (tmp_path / "plugin.c").write_text("")
    with pytest.raises(ToolchainMissing, match="pip install ziglang"):
        TOOLCHAIN.build(tmp_path)


# -- the header itself ------------------------------------------------------------

STRICT = ("-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion",
          "-Wstrict-prototypes", "-Wmissing-prototypes", "-Werror")  # fmt: skip


def test_header_compiles_without_warnings(tmp_path: Path) -> None:
    source = tmp_path / "strict.c"
    source.write_text(MAIN_C.replace("exercise();", ""))
    done = subprocess.run(
        [sys.executable, "-m", "ziglang", "cc", "--target=wasm32-freestanding", "-O2", *STRICT,
         "-I", str(REPO / "sdk" / "c"), "-c", "-o", str(tmp_path / "strict.o"), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


HEAP_C = r"""
#define RUVECTOR_IMPLEMENTATION
#define RV_HEAP_SIZE 64u
#include "ruvector.h"

static void tick(int32_t interval_ms)
{
    rv_memory_status mem; /* its JSON is over 64 bytes */
    (void)interval_ms;
    rv_report_metric("status", (double)rv_get_memory_status(&mem));
    rv_report_metric("malloc.fits", rv_malloc(40) != NULL);
    rv_report_metric("malloc.over", rv_malloc(40) != NULL);
    rv_report_metric("peak", rv_heap_peak());
}
RV_ON_TICK(tick)
"""


def test_a_full_heap_is_a_status_not_a_violation(
    make_executor: MakeExecutor, recorder: Recorder, tmp_path: Path
) -> None:
    directory = tmp_path / "heap"
    directory.mkdir()
    (directory / "plugin.c").write_text(HEAP_C)
    (directory / "manifest.toml").write_text(SKELETON_MANIFEST.replace('"demo"', '"heap"'))
    build_plugin(directory)
    ex = make_executor()
    ex.load(load_plugin_dir(directory))
    ex.tick()
    ex.tick()  # the heap was reset when the first tick's function returned

    assert recorder.violations == []
    got = metrics(ex, "heap")
    assert got["status"] == Status.NO_MEMORY
    assert (got["malloc.fits"], got["malloc.over"], got["peak"]) == (1, 0, 40)
    assert counts(ex, "heap")["malloc.fits"] == 2


# -- every wrapper of ruvector.h, against the real machine -------------------------

# Two translation units: the implementation is compiled once, in main.c.
MAIN_C = r"""
#define RUVECTOR_IMPLEMENTATION
#include "ruvector.h"

void exercise(void); /* calls.c */

static void init(void) { rv_log_info("init"); }
static void tick(int32_t interval_ms) { (void)interval_ms; exercise(); }
static void pressure(rv_pressure level) { (void)level; }
static void launched(rv_str name, int32_t pid) { (void)name; (void)pid; }
static void exited(rv_str name, int32_t pid) { (void)name; (void)pid; }
static void profile(rv_str name) { (void)name; }
static void cleanup(void) { rv_log_info("cleanup"); }

RV_ON_INIT(init)
RV_ON_TICK(tick)
RV_ON_MEMORY_PRESSURE(pressure)
RV_ON_PROCESS_LAUNCH(launched)
RV_ON_PROCESS_EXIT(exited)
RV_ON_PROFILE_SWITCH(profile)
RV_ON_CLEANUP(cleanup)
"""

CALLS_C = r"""
#include "ruvector.h"

void exercise(void);

static void metric(const char *name, double v) { rv_report_metric(name, v); }
static void status(const char *name, rv_status s) { rv_report_metric(name, (double)s); }

/* "name=value" as one log line */
static void show(const char *name, rv_str value)
{
    char text[1024];
    rv_buf b = rv_buf_init(text, sizeof text);
    rv_buf_strn(rv_buf_char(rv_buf_str(&b, name), '='), value.ptr, value.len);
    rv_log_info(text);
}

static void hex(rv_buf *b, const char *s, uint32_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (uint32_t i = 0; i < n; i++) {
        rv_buf_char(b, digits[(unsigned char)s[i] >> 4]);
        rv_buf_char(b, digits[(unsigned char)s[i] & 15]);
    }
}

/* One line per leaf: path=value, keys and strings in hex (see the test). */
static void flatten(rv_buf *out, rv_str v, rv_buf path, int depth)
{
    rv_json_iter it;
    rv_str k, x;
    bool any = false, flag;
    int64_t i;
    double d;
    uint32_t n = 0, plen = path.len;
    if (depth > 16) return;
    switch (rv_json_kind_of(v)) {
    case RV_JSON_OBJECT:
    case RV_JSON_ARRAY:
        rv_json_iter_init(&it, v);
        while (it.object ? rv_json_next_member(&it, &k, &x) : rv_json_next(&it, &x)) {
            any = true;
            path.len = plen;
            path.truncated = false;
            if (it.object) {
                char key[256];
                int32_t kn = rv_json_str(k, key, sizeof key);
                rv_buf_char(&path, '/');
                hex(&path, key, (uint32_t)kn);
            } else {
                rv_buf_char(&path, '[');
                rv_buf_u64(&path, n++);
                rv_buf_char(&path, ']');
            }
            flatten(out, x, path, depth + 1);
        }
        if (!any) {
            rv_buf_strn(out, path.ptr, plen);
            rv_buf_str(out, it.object ? "={}\n" : "=[]\n");
        }
        return;
    default: break;
    }
    rv_buf_strn(out, path.ptr, plen);
    rv_buf_char(out, '=');
    if (rv_json_is_null(v)) {
        rv_buf_str(out, "null");
    } else if (rv_json_bool(v, &flag)) {
        rv_buf_str(out, flag ? "true" : "false");
    } else if (rv_json_i64(v, &i)) {
        rv_buf_i64(rv_buf_str(out, "i:"), i);
    } else if (rv_json_f64(v, &d)) {
        rv_buf_f64(rv_buf_str(out, "f:"), d, 3);
    } else {
        char *s = (char *)rv_malloc(v.len + 1);
        int32_t sn = rv_json_str(v, s, v.len + 1);
        rv_buf_str(out, "s:");
        hex(out, s, (uint32_t)sn);
    }
    rv_buf_char(out, '\n');
}

static void json_round_trip(void)
{
    char in_path[512], out_path[512], path_mem[512];
    rv_str doc;
    rv_buf out;
    char *mem = (char *)rv_malloc(65536);
    rv_config_str("json_in", in_path, sizeof in_path, "");
    rv_config_str("json_out", out_path, sizeof out_path, "");
    status("read_file", rv_read_file(in_path, &doc));
    out = rv_buf_init(mem, 65536);
    flatten(&out, doc, rv_buf_init(path_mem, sizeof path_mem), 0);
    status("write_file", rv_write_file(out_path, out.ptr, out.len));
}

static void config_calls(void)
{
    rv_str v;
    char text[64];
    if (rv_get_config("greeting", &v) == RV_OK) show("greeting", v);
    status("set_config", rv_set_config("k", "persisted"));
    status("set_config_n", rv_set_config_n("k2", "a\0b", 3));
    if (rv_get_config("k", &v) == RV_OK) show("config.k", v);
    status("config.missing", rv_get_config("missing", &v));
    metric("config.f64", rv_config_f64("ratio", -1));
    metric("config.i64", (double)rv_config_i64("count", -1));
    metric("config.bool", rv_config_bool("flag", false));
    rv_config_str("absent", text, sizeof text, "fallback");
    show("config.str", rv_cstr(text));
}

static void system_calls(void)
{
    double hours[24], cpu;
    int filled = 0, hit = 0;
    rv_memory_status mem;
    rv_list list;
    rv_sensor sensor;
    rv_gpu gpu;
    rv_battery battery;
    int n;
    status("report_metric", rv_report_metric("m", 1.5));
    status("get_learned_pattern", rv_get_learned_pattern("m", hours));
    for (int h = 0; h < 24; h++) {
        filled += !rv_is_null_f64(hours[h]);
        hit += hours[h] == 1.5;
    }
    metric("pattern.filled", filled);
    metric("pattern.hit", hit);
    status("get_learned_pattern.none", rv_get_learned_pattern("never", hours));
    status("get_memory_status", rv_get_memory_status(&mem));
    metric("memory.total", (double)mem.total_bytes);
    metric("memory.percent", mem.percent);
    status("get_cpu_usage", rv_get_cpu_usage(&cpu));
    metric("cpu", cpu);
    status("get_temperature", rv_get_temperature(&list));
    for (n = 0; rv_sensor_next(&list, &sensor);) n++;
    metric("sensors", n);
    status("get_gpu_status", rv_get_gpu_status(&list));
    for (n = 0; rv_gpu_next(&list, &gpu);) n++;
    metric("gpus", n);
    status("get_battery_status", rv_get_battery_status(&battery));
    metric("battery.present", battery.present);
}

static void process_calls(void)
{
    int32_t target = (int32_t)rv_config_i64("target", -1);
    int32_t victim = (int32_t)rv_config_i64("victim", -1);
    int64_t bytes = 0, freed = 0;
    rv_list list;
    rv_process p;
    status("get_process_list", rv_get_process_list(&list));
    while (rv_process_next(&list, &p)) {
        if (p.pid != target) continue;
        metric("target.seen", 1);
        show("target.name", rv_cstr(p.name));
        metric("target.name_is", rv_process_name_is(p.name, "SLEEP.exe"));
    }
    status("get_process_memory", rv_get_process_memory(target, &bytes));
    metric("process_memory", (double)bytes);
    status("set_process_priority", rv_set_process_priority(target, RV_PRIORITY_BELOW_NORMAL));
    status("trim_process_memory", rv_trim_process_memory(target, &freed));
    status("kill_process", rv_kill_process(victim));
    status("kill_process.negative", rv_kill_process(-5));
}

static void http_calls(void)
{
    char url[256], text[256];
    const char *headers[] = {"X-Test", "quote \" and \\ backslash", NULL};
    rv_http_response r;
    rv_config_str("url", url, sizeof url, "");
    status("http_get", rv_http_get(url, &r));
    metric("http_get.code", r.status);
    rv_http_body(&r, text, sizeof text);
    show("http_get.body", rv_cstr(text));
    status("http_request", rv_http_request("POST", url, headers, "a \"b\"\nc\x01", 8, &r));
    metric("http_request.code", r.status);
    rv_http_body(&r, text, sizeof text);
    show("http_request.body", rv_cstr(text));
    metric("http_request.header", rv_http_header(&r, "x-echo-length", text, sizeof text));
    show("http_request.x-echo-length", rv_cstr(text));
    status("http_request_json", rv_http_request_json("{\"url\":1}", 9, &r));
}

static void other_calls(void)
{
    rv_registry_value reg;
    status("show_notification", rv_show_notification("Title", "Message"));
    status("registry_read", rv_registry_read("HKCU\\Software\\x\\v", &reg));
    status("registry_write_json",
           rv_registry_write_json("HKCU\\Software\\x\\v", "{\"type\":\"REG_SZ\",\"value\":\"x\"}", 29));
    status("registry_write_sz", rv_registry_write_sz("HKCU\\Software\\x\\v", "x"));
    status("registry_write_dword", rv_registry_write_dword("HKCU\\Software\\x\\v", 1));
    status("registry_write_qword", rv_registry_write_qword("HKCU\\Software\\x\\v", 1));
    status("log", rv_log(RV_LOG_INFO, "log"));
    status("log_n", rv_log_n(RV_LOG_INFO, "log_n and more", 5));
    status("log_trace", rv_log_trace("trace"));
    status("log_debug", rv_log_debug("debug"));
    status("log_warn", rv_log_warn("warn"));
    status("log_error", rv_log_error("error"));
    status("log.not_utf8", rv_log_info("\xff"));          /* refused here, not a violation */
    status("metric.name_too_long", rv_report_metric(
        "0123456789012345678901234567890123456789012345678901234567890123"
        "0123456789012345678901234567890123456789012345678901234567890123x", 1));
}

void exercise(void)
{
    config_calls();
    system_calls();
    process_calls();
    http_calls();
    json_round_trip();
    other_calls();
    metric("heap.peak", rv_heap_peak());
}
"""

EVERY_MANIFEST = """\
name = "every"
version = "0.1.0"
author = "tests"
description = "Calls every wrapper of ruvector.h."
license = "MIT"
capabilities = [{caps}]
min_ruvector_version = "0.1.0"
platforms = ["linux", "macos", "windows"]
wasm_file = "plugin.wasm"
wasm_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"""

# The JSON reader against Python's json: escapes, unicode, nesting, blanks, numbers.
JSON_DOC = {
    "escapes": 'quote " backslash \\ slash / \b\f\n\r\t \u0001 é 😀 日本語',
    "numbers": [0, -0, 7, -42, 1.5, -2.25e3, 3.14159, -0.001234, 1e-7, 12345678901234567, 2.0],
    "literals": [True, False, None],
    "nested": {"a": [[], {}, [[1, [2, {"deep": "x"}]]]], "": "empty key", "k\u00e9y": {}},
    "empty": "",
}


def flatten(value: object, path: str = "") -> Iterator[str]:
    """What the C plugin writes for `value`: the reader's view, line by line."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{path}/{key.encode().hex()}")
        if not value:
            yield f"{path}={{}}"
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from flatten(item, f"{path}[{i}]")
        if not value:
            yield f"{path}=[]"
    elif value is None:
        yield f"{path}=null"
    elif isinstance(value, bool):
        yield f"{path}={'true' if value else 'false'}"
    elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        yield f"{path}=i:{int(value)}"
    elif isinstance(value, float):
        yield f"{path}=f:{value:.3f}"
    else:
        assert isinstance(value, str)
        yield f"{path}=s:{value.encode().hex()}"


class _Echo(http.server.BaseHTTPRequestHandler):
    """GET: "pong". POST: the body back, and the X-Test header it got."""

    def do_GET(self) -> None:
        self._reply(b"pong", {})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        echo = {"X-Echo-Length": str(len(body)), "X-Echo-Test": self.headers.get("X-Test", "")}
        self._reply(body, echo)

    def _reply(self, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(200)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.server.seen.append(dict(headers))  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    srv.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_every_wrapper_acts_on_the_real_machine(
    make_executor: MakeExecutor,
    recorder: Recorder,
    children: Children,
    tmp_path: Path,
    server: http.server.ThreadingHTTPServer,
) -> None:
    target, victim = children.sleeper(), children.sleeper()
    host = f"127.0.0.1:{server.server_address[1]}"
    data = tmp_path / "data"
    data.mkdir()
    json_in, json_out = data / "doc.json", data / "flat.txt"
    json_in.write_text(json.dumps(JSON_DOC, indent=2, ensure_ascii=False))  # blanks included
    caps = [
        "ReadSystemInfo", "ReadProcessList", "ModifyProcessPriority", "TrimProcessMemory",
        "KillProcess", "ShowNotifications", f"NetworkAccess({host})", f"FileSystemRead({data})",
        f"FileSystemWrite({data})", "RegistryRead", "RegistryWrite",
    ]  # fmt: skip
    config = {
        "greeting": "hello there", "target": str(target.pid), "victim": str(victim.pid),
        "url": f"http://{host}/ping", "json_in": str(json_in), "json_out": str(json_out),
        "ratio": 0.25, "count": 12, "flag": True,
    }  # fmt: skip
    directory = tmp_path / "every"
    directory.mkdir()
    (directory / "main.c").write_text(MAIN_C)
    (directory / "calls.c").write_text(CALLS_C)
    (directory / "manifest.toml").write_text(
        EVERY_MANIFEST.format(caps=", ".join(json.dumps(c) for c in caps))
    )
    wasm = build_plugin(directory).wasm_path.read_bytes()

    # Every host function of ABI v1 is wrapped: the wrappers import them all.
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    assert {i.name for i in module.imports} == set(HOST_FUNCTIONS)
    exports = {e.name for e in module.exports}
    assert {"rv_alloc", "rv_abi_version", "on_init", "on_tick", "on_cleanup"} <= exports

    ex = make_executor()
    approved = frozenset(parse(c) for c in caps)
    limits = Limits(max_call_ms=2000)  # loopback HTTP and a process list on a busy CI host
    ex.load(load_plugin_dir(directory, approved=approved, config=config, limits=limits))
    ex.tick()
    got = metrics(ex, "every")
    ex.shutdown()

    assert recorder.violations == []
    lines = recorder.messages("every")
    shown = dict(line.split("=", 1) for line in lines if "=" in line)
    levels = {(level, m) for p, level, m in recorder.logs if p == "every"}
    ok = Status.OK

    # logging, config, metrics
    assert lines[0] == "init" and lines[-1] == "cleanup"
    assert {("trace", "trace"), ("debug", "debug"), ("warn", "warn"), ("error", "error")} <= levels
    assert ("info", "log") in levels and ("info", "log_n") in levels
    assert got["log.not_utf8"] == got["metric.name_too_long"] == Status.INVALID_ARGUMENT
    assert shown["greeting"] == "hello there"
    assert shown["config.k"] == "persisted"
    assert shown["config.str"] == "fallback"
    assert got["config.missing"] == 1  # RV_NONE
    assert (got["config.f64"], got["config.i64"], got["config.bool"]) == (0.25, 12, 1)
    assert got["set_config"] == got["set_config_n"] == got["report_metric"] == ok
    assert (got["get_learned_pattern"], got["pattern.filled"], got["pattern.hit"]) == (ok, 1, 1)
    assert got["get_learned_pattern.none"] == 1  # RV_NONE

    # system information
    assert got["get_memory_status"] == ok
    assert got["memory.total"] == psutil.virtual_memory().total
    assert 0 <= got["memory.percent"] <= 100
    assert got["get_cpu_usage"] == ok and 0 <= got["cpu"] <= 100
    from hostcalls import sensors

    assert got["sensors"] == len(json.loads(sensors.read_temperature())["sensors"])
    assert got["gpus"] == len(json.loads(sensors.read_gpu_status())["gpus"])
    assert got["battery.present"] == (psutil.sensors_battery() is not None)

    # processes
    assert (got["target.seen"], shown["target.name"], got["target.name_is"]) == (1, "sleep", 1)
    assert got["get_process_memory"] == ok and got["process_memory"] > 0
    assert got["set_process_priority"] == ok
    assert psutil.Process(target.pid).nice() == 10  # below normal
    assert got["kill_process"] == ok and victim.wait(timeout=5) is not None
    assert got["kill_process.negative"] == Status.INVALID_ARGUMENT

    # notifications, network, files, registry
    assert got["show_notification"] == ok and ("every", "Title", "Message") in recorder.notes
    assert (got["http_get"], got["http_get.code"], shown["http_get.body"]) == (ok, 200, "pong")
    assert (got["http_request"], got["http_request.code"]) == (ok, 200)
    assert shown["http_request.body"] == 'a "b"\nc\x01'  # escaped there, decoded back
    assert shown["http_request.x-echo-length"] == "8" and got["http_request.header"] == 1
    assert server.seen[1]["X-Echo-Test"] == 'quote " and \\ backslash'  # type: ignore[attr-defined]
    assert got["http_request_json"] == Status.INVALID_ARGUMENT  # the host refused {"url":1}
    assert got["read_file"] == got["write_file"] == ok
    assert json_out.read_text().splitlines() == list(flatten(JSON_DOC))
    if sys.platform != "win32":
        assert got["trim_process_memory"] == Status.UNSUPPORTED
        for name in ("registry_read", "registry_write_json", "registry_write_sz",
                     "registry_write_dword", "registry_write_qword"):  # fmt: skip
            assert got[name] == Status.UNSUPPORTED, name
    assert 0 < got["heap.peak"] <= 1 << 20
