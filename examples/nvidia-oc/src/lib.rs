//! nvidia-oc: GPU overclocking profiles per application, as far as the host allows.
//!
//! ABI v1 can read a GPU (`get_gpu_status`: utilization, memory, temperature)
//! but has no function that changes one. So this plugin does what can be
//! done honestly:
//!
//! - each tick it reports every NVIDIA GPU's readings as metrics, only the
//!   figures the driver gives (no clocks: the host does not read them);
//! - it follows the configured applications (process launch and exit
//!   events) and logs, when the application in front changes, the profile
//!   it would apply and that it did not apply it;
//! - it shows a notification when a configured application starts.
//!
//! Without an NVIDIA GPU it says so once and does nothing else.

use ruvector_plugin_sdk::{self as rv, json::Value, ruvector_plugin, Global, Gpu};

/// One application's profile, from the config's `profiles` table.
#[derive(Debug, Clone)]
struct Profile {
    app: String, // as the user wrote it
    key: String, // compared with process names: lower case, no ".exe"
    core_clock_offset_mhz: Option<i64>,
    memory_clock_offset_mhz: Option<i64>,
    power_limit_percent: Option<i64>,
}

impl Profile {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(mhz) = self.core_clock_offset_mhz {
            parts.push(format!("core clock {:+} MHz", mhz));
        }
        if let Some(mhz) = self.memory_clock_offset_mhz {
            parts.push(format!("memory clock {:+} MHz", mhz));
        }
        if let Some(percent) = self.power_limit_percent {
            parts.push(format!("power limit {}%", percent));
        }
        if parts.is_empty() {
            "no changes".to_string()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GpuSeen {
    NotYet,
    NoNvidia,
    Nvidia,
    Unreadable,
}

impl Default for GpuSeen {
    fn default() -> GpuSeen {
        GpuSeen::NotYet
    }
}

#[derive(Default)]
struct State {
    profiles: Vec<Profile>,
    notify: bool,
    gpu: GpuSeen,
    scanned: bool,               // applications already running have been looked for
    running: Vec<(u32, usize)>,  // (pid, profile) of configured applications, oldest first
    launched: Vec<(u32, usize)>, // launches not yet announced
    // The profile last reported as in front (an inner None: no application);
    // None until the first report.
    in_front: Option<Option<usize>>,
}

static STATE: Global<State> = Global::new();

const NOT_APPLIED: &str = concat!(
    "not applied: RuVector's plugin API (ABI v1) reads GPUs ",
    "but cannot change their clocks or power limit"
);

fn app_key(name: &str) -> String {
    let lower = name.to_lowercase();
    match lower.strip_suffix(".exe") {
        Some(stem) => stem.to_string(),
        None => lower,
    }
}

fn read_profiles(doc: &Value) -> Result<Vec<Profile>, String> {
    let table = doc.as_object().ok_or("`profiles` is not a table")?;
    let offset = |v: &Value, key: &str| -> Result<Option<i64>, String> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_i64()
                .map(Some)
                .ok_or(format!("`{}` is not a whole number", key)),
        }
    };
    table
        .iter()
        .map(|(app, settings)| {
            Ok(Profile {
                app: app.clone(),
                key: app_key(app),
                core_clock_offset_mhz: offset(settings, "core_clock_offset_mhz")?,
                memory_clock_offset_mhz: offset(settings, "memory_clock_offset_mhz")?,
                power_limit_percent: offset(settings, "power_limit_percent")?,
            })
        })
        .collect()
}

fn init() {
    let profiles = match rv::get_config_json("profiles") {
        Ok(Some(doc)) => read_profiles(&doc).unwrap_or_else(|e| {
            rv::error(&format!("config: {}; no profiles in force", e));
            Vec::new()
        }),
        Ok(None) => Vec::new(),
        Err(e) => {
            rv::error(&format!(
                "config `profiles` unreadable: {}; no profiles in force",
                e
            ));
            Vec::new()
        }
    };
    let notify = !matches!(rv::get_config("notify"), Ok(Some(v)) if v == "false");
    let names: Vec<&str> = profiles.iter().map(|p| p.app.as_str()).collect();
    if names.is_empty() {
        rv::info("no application profiles configured: GPU readings only");
    } else {
        rv::info(&format!("profiles for {}", names.join(", ")));
    }
    STATE.with(|s| {
        s.profiles = profiles;
        s.notify = notify;
    });
}

fn profile_of(s: &State, name: &str) -> Option<usize> {
    let key = app_key(name);
    s.profiles.iter().position(|p| p.key == key)
}

fn launched(name: &str, pid: u32) {
    STATE.with(|s| {
        if let Some(i) = profile_of(s, name) {
            s.running.push((pid, i));
            s.launched.push((pid, i));
        }
    });
}

fn exited(_name: &str, pid: u32) {
    STATE.with(|s| {
        s.running.retain(|&(p, _)| p != pid);
        s.launched.retain(|&(p, _)| p != pid);
    });
}

fn tick(_interval_ms: u32) {
    STATE.with(|s| {
        let nvidia = match nvidia_gpus(s) {
            Some(gpus) if !gpus.is_empty() => gpus,
            _ => {
                // Nothing to tune: launches seen meanwhile are not announced later.
                s.launched.clear();
                return;
            }
        };
        for gpu in &nvidia {
            report(gpu);
        }
        if !s.scanned {
            scan_running(s);
        }
        announce_launches(s);
        report_front(s, &nvidia);
    });
}

/// This tick's NVIDIA GPUs; `None` when the GPUs cannot be read. Says once
/// (and again on a change) what it found.
fn nvidia_gpus(s: &mut State) -> Option<Vec<Gpu>> {
    let status = match rv::get_gpu_status() {
        Ok(status) => status,
        Err(e) => {
            if s.gpu != GpuSeen::Unreadable {
                rv::warn(&format!("cannot read the GPUs: {}", e));
                s.gpu = GpuSeen::Unreadable;
            }
            return None;
        }
    };
    let all = status.gpus.len();
    let nvidia: Vec<Gpu> = status.gpus.into_iter().filter(Gpu::is_nvidia).collect();
    if nvidia.is_empty() && s.gpu != GpuSeen::NoNvidia {
        rv::info(&format!(
            "no NVIDIA GPU on this machine (the host sees {} GPU(s)): nothing to do",
            all
        ));
        s.gpu = GpuSeen::NoNvidia;
    } else if !nvidia.is_empty() && s.gpu != GpuSeen::Nvidia {
        let names: Vec<String> = nvidia
            .iter()
            .map(|g| format!("{} ({})", g.name, g.index))
            .collect();
        rv::info(&format!("NVIDIA GPU(s): {}", names.join(", ")));
        s.gpu = GpuSeen::Nvidia;
    }
    Some(nvidia)
}

/// The GPU's readings as metrics: only the figures the host has.
fn report(gpu: &Gpu) {
    let figures = [
        ("utilization_percent", gpu.utilization_percent),
        ("memory_used_bytes", gpu.memory_used_bytes.map(|b| b as f64)),
        ("temperature_celsius", gpu.temperature_celsius),
    ];
    for (name, value) in figures {
        if let Some(value) = value {
            let _ = rv::report_metric(&format!("gpu{}.{}", gpu.index, name), value);
        }
    }
}

/// Configured applications that were running before the plugin saw them start.
fn scan_running(s: &mut State) {
    match rv::get_process_list() {
        Ok(processes) => {
            for p in processes {
                if let Some(i) = profile_of(s, &p.name) {
                    if !s.running.iter().any(|&(pid, _)| pid == p.pid) {
                        s.running.push((p.pid, i));
                    }
                }
            }
            s.scanned = true;
        }
        Err(e) => rv::warn(&format!("cannot list processes (will retry): {}", e)),
    }
}

fn announce_launches(s: &mut State) {
    for (pid, i) in std::mem::take(&mut s.launched) {
        let profile = match s.profiles.get(i) {
            Some(p) => p,
            None => continue,
        };
        let line = format!(
            "{} started (pid {}): profile {}",
            profile.app,
            pid,
            profile.describe()
        );
        rv::info(&line);
        if s.notify {
            let title = format!("nvidia-oc: {} started", profile.app);
            let _ = rv::show_notification(
                &title,
                &format!("Profile: {}; {}.", profile.describe(), NOT_APPLIED),
            );
        }
    }
}

/// Logs the profile the newest running configured application calls for,
/// when that changes.
fn report_front(s: &mut State, nvidia: &[Gpu]) {
    let front = s.running.last().map(|&(_, i)| i);
    if s.in_front == Some(front) {
        return;
    }
    s.in_front = Some(front);
    let gpus: Vec<String> = nvidia.iter().map(|g| g.name.clone()).collect();
    match front.and_then(|i| s.profiles.get(i)) {
        Some(p) => rv::info(&format!(
            "{} is in front: would apply {} to {}; {}",
            p.app,
            p.describe(),
            gpus.join(", "),
            NOT_APPLIED
        )),
        None => rv::info(&format!(
            "no configured application running: would keep the default clocks on {}",
            gpus.join(", ")
        )),
    }
}

ruvector_plugin! {
    on_init: init,
    on_tick: tick,
    on_process_launch: launched,
    on_process_exit: exited,
}
