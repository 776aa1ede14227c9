//! home-assistant: posts this machine's power, thermal and memory state to
//! Home Assistant's REST API, every tick or every `every_ticks` ticks.
//!
//! The body is what `POST /api/states/<entity_id>` takes: the state is the
//! memory in use (percent); the attributes hold the memory, CPU, thermal and
//! power readings. A figure the host cannot read is `null`, never a guess.
//! The token (a long-lived access token) goes in the Authorization header.
//!
//! A Home Assistant that cannot be reached is logged (once, until it answers
//! again) and counted in the metric `post_success`; the plugin keeps ticking.

use ruvector_plugin_sdk::{
    self as rv,
    json::{self, Value},
    ruvector_plugin, Error, Global, HttpRequest, HttpResponse,
};

#[derive(Default)]
struct State {
    url: Option<String>,
    token: Option<String>,
    every_ticks: u64,
    ticks: u64,
    profile: Option<String>, // known once the host announces a switch
    posted_once: bool,
    failures: u64, // in a row
    timed_out: bool,
}

static STATE: Global<State> = Global::new();

fn init() {
    let url = match rv::get_config("url") {
        Ok(Some(url)) if url.starts_with("http://") || url.starts_with("https://") => Some(url),
        Ok(Some(_)) => {
            rv::error("config `url` must start with http:// or https://: nothing will be posted");
            None
        }
        Ok(None) => {
            rv::error("config `url` is not set: nothing will be posted");
            None
        }
        Err(e) => {
            rv::error(&format!("config `url` unreadable: {}", e));
            None
        }
    };
    let token = rv::get_config("token")
        .ok()
        .flatten()
        .filter(|t| !t.is_empty());
    let every_ticks = match rv::get_config("every_ticks") {
        Ok(Some(text)) => text.parse::<u64>().ok().filter(|&n| n > 0).unwrap_or(1),
        _ => 1,
    };
    if let Some(url) = &url {
        rv::info(&format!(
            "posting to {} every {} tick(s), {}",
            url,
            every_ticks,
            if token.is_some() {
                "with a bearer token"
            } else {
                "without a token"
            }
        ));
    }
    STATE.with(|s| {
        s.url = url;
        s.token = token;
        s.every_ticks = every_ticks;
    });
}

fn profile_switched(profile: &str) {
    STATE.with(|s| s.profile = Some(profile.to_string()));
}

fn tick(_interval_ms: u32) {
    STATE.with(|s| {
        s.ticks += 1;
        if s.timed_out {
            // Said now: the tick that timed out had no time left to say it.
            s.timed_out = false;
            failed(
                s,
                "timed out: the hook's deadline (max_tick_ms) ran out first",
            );
        }
        let url = match &s.url {
            Some(url) if (s.ticks - 1) % s.every_ticks.max(1) == 0 => url.clone(),
            _ => return,
        };
        let mut request = HttpRequest::post(url.as_str())
            .header("Content-Type", "application/json")
            .body(machine_state(s.profile.as_deref()).to_json());
        if let Some(token) = &s.token {
            request = request.header("Authorization", format!("Bearer {}", token));
        }
        match rv::http_request(&request) {
            Ok(response) => answered(s, &url, &response),
            // The call's time is used up: return at once, say so next tick.
            Err(Error::Timeout) => s.timed_out = true,
            Err(Error::Denied) => failed(
                s,
                "denied: approve NetworkAccess for this host (and declare it in manifest.toml)",
            ),
            Err(Error::IoError) => failed(
                s,
                "no connection (IO_ERROR: refused, TLS or protocol failure)",
            ),
            Err(e) => failed(s, &format!("{}", e)),
        }
    });
}

fn answered(s: &mut State, url: &str, response: &HttpResponse) {
    let _ = rv::report_metric("http_status", f64::from(response.status));
    if !response.is_success() {
        let body = rv::truncate(&response.body, 200);
        failed(
            s,
            &format!("Home Assistant answered HTTP {}: {}", response.status, body),
        );
        return;
    }
    let _ = rv::report_metric("post_success", 1.0);
    if s.failures > 0 {
        rv::info(&format!(
            "posting to {} works again (HTTP {}) after {} failed attempt(s)",
            url, response.status, s.failures
        ));
    } else if !s.posted_once {
        rv::info(&format!("posted to {}: HTTP {}", url, response.status));
    }
    s.posted_once = true;
    s.failures = 0;
}

/// Counts a failed post; logs only the first of a run of failures.
fn failed(s: &mut State, reason: &str) {
    let _ = rv::report_metric("post_success", 0.0);
    if s.failures == 0 {
        let url = s.url.as_deref().unwrap_or("");
        rv::warn(&format!(
            "posting to {} failed, will keep trying: {}",
            url, reason
        ));
    }
    s.failures += 1;
}

/// The body of `POST /api/states/<entity_id>`: state and attributes.
fn machine_state(profile: Option<&str>) -> Value {
    let memory = rv::get_memory_status().ok();
    let state = match &memory {
        Some(m) => Value::from(format!("{:.1}", m.percent)),
        None => Value::from("unknown"), // Home Assistant's word for it
    };
    let memory = memory.map(|m| {
        json::object(vec![
            ("percent", Value::from(m.percent)),
            ("total_bytes", Value::from(m.total_bytes)),
            ("available_bytes", Value::from(m.available_bytes)),
            ("used_bytes", Value::from(m.used_bytes)),
            ("swap_total_bytes", Value::from(m.swap_total_bytes)),
            ("swap_used_bytes", Value::from(m.swap_used_bytes)),
        ])
    });
    let thermal = rv::get_temperature().ok().map(|t| {
        let sensors: Vec<Value> = t
            .sensors
            .iter()
            .map(|s| {
                json::object(vec![
                    ("chip", Value::from(s.chip.as_str())),
                    ("label", Value::from(s.label.as_str())),
                    ("celsius", Value::from(s.celsius)),
                ])
            })
            .collect();
        json::object(vec![
            (
                "hottest_celsius",
                Value::from(t.hottest().map(|s| s.celsius)),
            ),
            ("sensors", Value::Array(sensors)),
        ])
    });
    let battery = rv::get_battery_status().ok();
    let power = json::object(vec![
        (
            "battery_present",
            Value::from(battery.as_ref().map(|b| b.present)),
        ),
        (
            "battery_percent",
            Value::from(battery.as_ref().and_then(|b| b.percent)),
        ),
        (
            "plugged_in",
            Value::from(battery.as_ref().and_then(|b| b.plugged)),
        ),
        (
            "battery_seconds_left",
            Value::from(battery.as_ref().and_then(|b| b.seconds_left)),
        ),
        ("ruvector_profile", Value::from(profile)),
    ]);
    json::object(vec![
        ("state", state),
        (
            "attributes",
            json::object(vec![
                ("friendly_name", Value::from("RuVector machine")),
                ("unit_of_measurement", Value::from("%")),
                ("memory", Value::from(memory)),
                ("cpu_percent", Value::from(rv::get_cpu_usage().ok())),
                ("thermal", Value::from(thermal)),
                ("power", power),
            ]),
        ),
    ])
}

ruvector_plugin! {
    on_init: init,
    on_tick: tick,
    on_profile_switch: profile_switched,
}
