//! Typed forms of the host's arguments and JSON results.
//!
//! Each result type reads the keys docs/abi.md documents and ignores any
//! other (newer hosts may add keys within v1). A figure the host reports as
//! `null` is `None`: nothing here fills in a value the OS did not give.

use crate::json::{self, Value};

/// A log line's level, as `log` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

/// A process priority for `set_process_priority` (POSIX nice / Windows class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// nice 19, `IDLE_PRIORITY_CLASS`
    Idle = 0,
    /// nice 10, `BELOW_NORMAL_PRIORITY_CLASS`
    BelowNormal = 1,
    /// nice 0, `NORMAL_PRIORITY_CLASS`
    Normal = 2,
    /// nice -5, `ABOVE_NORMAL_PRIORITY_CLASS`
    AboveNormal = 3,
    /// nice -10, `HIGH_PRIORITY_CLASS`
    High = 4,
}

/// The argument of `on_memory_pressure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PressureLevel {
    Normal,
    High,
    Critical,
    /// A level this crate does not know (from a newer host).
    Other(i32),
}

impl PressureLevel {
    pub fn from_raw(level: i32) -> PressureLevel {
        match level {
            0 => PressureLevel::Normal,
            1 => PressureLevel::High,
            2 => PressureLevel::Critical,
            other => PressureLevel::Other(other),
        }
    }
}

/// `get_memory_status`: the machine's memory, from this tick's reading.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryStatus {
    pub total_bytes: u64,
    /// Available to new work without swapping.
    pub available_bytes: u64,
    pub used_bytes: u64,
    /// `(total - available) / total`, 0 to 100: what drives `on_memory_pressure`.
    pub percent: f64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
}

/// One process of `get_process_list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Valid UTF-8; bytes that were not are U+FFFD.
    pub name: String,
    /// Resident set size; `None` where the OS refused.
    pub memory_bytes: Option<u64>,
    /// CPU since the previous reading, 100.0 being one full core.
    pub cpu_percent: Option<f64>,
    /// The nice value; on Windows the priority class constant.
    pub nice: Option<i64>,
}

/// Whether `name` (a process name) is `wanted`, ignoring case and a trailing
/// `.exe` (in any case) on either, as the host's protected list compares names
/// and as the C and AssemblyScript SDKs' `rv_process_name_is` and
/// `processNameIs` do: `Chrome.EXE` is `chrome`. ASCII names are compared
/// without allocating; others are lower-cased as Unicode. Only one `.exe` is
/// dropped from each: `a.exe.exe` is not `a`.
///
/// ```
/// use ruvector_plugin_sdk::process_name_is;
///
/// assert!(process_name_is("Chrome.exe", "chrome"));
/// assert!(!process_name_is("chromium", "chrome"));
/// ```
pub fn process_name_is(name: &str, wanted: &str) -> bool {
    let (name, wanted) = (without_exe(name), without_exe(wanted));
    if name.eq_ignore_ascii_case(wanted) {
        return true;
    }
    !(name.is_ascii() && wanted.is_ascii()) && name.to_lowercase() == wanted.to_lowercase()
}

/// `name` without a trailing `.exe` in any case.
fn without_exe(name: &str) -> &str {
    match name.len().checked_sub(4) {
        Some(cut) if name.get(cut..).map_or(false, |end| end.eq_ignore_ascii_case(".exe")) => {
            &name[..cut]
        }
        _ => name,
    }
}

/// `get_temperature`: every sensor the OS reports (none in most VMs).
#[derive(Debug, Clone, PartialEq)]
pub struct ThermalSnapshot {
    pub sensors: Vec<TemperatureSensor>,
}

impl ThermalSnapshot {
    /// The sensor with the highest reading, if there is any sensor.
    pub fn hottest(&self) -> Option<&TemperatureSensor> {
        self.sensors
            .iter()
            .fold(None, |best: Option<&TemperatureSensor>, s| match best {
                Some(b) if b.celsius >= s.celsius => Some(b),
                _ => Some(s),
            })
    }
}

/// One temperature sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TemperatureSensor {
    pub chip: String,
    pub label: String,
    pub celsius: f64,
    pub high: Option<f64>,
    pub critical: Option<f64>,
}

/// `get_gpu_status`: the GPUs the host found (sysfs DRM devices, `nvidia-smi`).
///
/// ABI v1 reports utilization, memory and temperature; it has no clock
/// speeds and no function that changes a GPU's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuStatus {
    pub gpus: Vec<Gpu>,
}

/// One GPU. Every figure is `None` while the GPU is runtime-suspended.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    /// Position in the host's list, not a driver number.
    pub index: u32,
    pub name: String,
    /// `AMD`, `NVIDIA`, `Intel`, or the PCI vendor id.
    pub vendor: String,
    pub utilization_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub temperature_celsius: Option<f64>,
}

impl Gpu {
    pub fn is_nvidia(&self) -> bool {
        self.vendor == "NVIDIA"
    }
}

/// `get_battery_status`: the battery, if the machine has one.
#[derive(Debug, Clone, PartialEq)]
pub struct BatteryStatus {
    /// `false` on desktops and VMs; every other field is then `None`.
    pub present: bool,
    pub percent: Option<f64>,
    /// On mains power; `None` where the OS does not tell.
    pub plugged: Option<bool>,
    /// `None` while charging or when unknown.
    pub seconds_left: Option<u64>,
}

/// An HTTP method `http_request` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
        }
    }
}

/// A request for `http_request`. Redirects are not followed; the host's
/// NetworkAccess grant must name the URL's host.
///
/// ```
/// use ruvector_plugin_sdk::HttpRequest;
///
/// let request = HttpRequest::post("http://homeassistant.local:8123/api/states/sensor.pc")
///     .header("Authorization", "Bearer abc")
///     .header("Content-Type", "application/json")
///     .body(r#"{"state":"on"}"#);
/// assert!(request.to_json().starts_with(r#"{"method":"POST","url":"http://"#));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    /// Sent as a JSON object: give each name once. `Host`, `Content-Length`,
    /// `Transfer-Encoding`, `Connection` and a few more are refused by the
    /// host (`INVALID_ARGUMENT`).
    pub headers: Vec<(String, String)>,
    /// Sent as UTF-8.
    pub body: Option<String>,
}

impl HttpRequest {
    pub fn new(method: Method, url: impl Into<String>) -> HttpRequest {
        HttpRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(url: impl Into<String>) -> HttpRequest {
        HttpRequest::new(Method::Get, url)
    }

    pub fn post(url: impl Into<String>) -> HttpRequest {
        HttpRequest::new(Method::Post, url)
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpRequest {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> HttpRequest {
        self.body = Some(body.into());
        self
    }

    /// The request as the JSON object `http_request` takes.
    pub fn to_json(&self) -> String {
        let headers = Value::Object(
            self.headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        );
        let mut members = vec![
            ("method", Value::from(self.method.as_str())),
            ("url", Value::from(self.url.as_str())),
            ("headers", headers),
        ];
        if let Some(body) = &self.body {
            members.push(("body", Value::from(body.as_str())));
        }
        json::object(members).to_json()
    }
}

/// What `http_request` returns: any status code, 3xx and 4xx included.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: Vec<(String, String)>,
    /// Decoded as UTF-8 with bad bytes replaced: binary bodies do not survive.
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A Windows registry value as `registry_read` gives it and `registry_write`
/// takes it (on Linux and macOS both answer `UNSUPPORTED`).
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryValue {
    Sz(String),
    ExpandSz(String),
    MultiSz(Vec<String>),
    Dword(u32),
    Qword(u64),
    /// Binary data as lower-case hex text, as the host reads it (read only).
    Binary(String),
    /// Any other type the host reports, e.g. `REG_UNKNOWN_11` (read only).
    Other {
        kind: String,
        value: Value,
    },
}

impl RegistryValue {
    /// The JSON object `registry_write` takes: `{"type":...,"value":...}`.
    pub fn to_json(&self) -> String {
        let (kind, value) = match self {
            RegistryValue::Sz(s) => ("REG_SZ", Value::from(s.as_str())),
            RegistryValue::ExpandSz(s) => ("REG_EXPAND_SZ", Value::from(s.as_str())),
            RegistryValue::MultiSz(items) => ("REG_MULTI_SZ", Value::from(items.clone())),
            RegistryValue::Dword(n) => ("REG_DWORD", Value::from(*n)),
            RegistryValue::Qword(n) => ("REG_QWORD", Value::from(*n)),
            RegistryValue::Binary(hex) => ("REG_BINARY", Value::from(hex.as_str())),
            RegistryValue::Other { kind, value } => (kind.as_str(), value.clone()),
        };
        json::object(vec![("type", Value::from(kind)), ("value", value)]).to_json()
    }
}

// -- reading the host's JSON ----------------------------------------------------

pub(crate) type Parsed<T> = Result<T, String>;

fn field<'a>(obj: &'a Value, key: &str) -> Parsed<&'a Value> {
    match obj {
        Value::Object(_) => obj
            .get(key)
            .ok_or_else(|| format!("key '{}' is missing", key)),
        _ => Err(format!("expected an object holding '{}'", key)),
    }
}

fn wrong(key: &str, what: &str) -> String {
    format!("key '{}' is not {}", key, what)
}

fn req_u64(obj: &Value, key: &str) -> Parsed<u64> {
    field(obj, key)?
        .as_u64()
        .ok_or_else(|| wrong(key, "a whole number"))
}

fn req_u32(obj: &Value, key: &str) -> Parsed<u32> {
    u32::try_from(req_u64(obj, key)?).map_err(|_| wrong(key, "a 32-bit number"))
}

fn req_f64(obj: &Value, key: &str) -> Parsed<f64> {
    field(obj, key)?
        .as_f64()
        .ok_or_else(|| wrong(key, "a number"))
}

fn req_str(obj: &Value, key: &str) -> Parsed<String> {
    field(obj, key)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| wrong(key, "a string"))
}

fn req_bool(obj: &Value, key: &str) -> Parsed<bool> {
    field(obj, key)?
        .as_bool()
        .ok_or_else(|| wrong(key, "true or false"))
}

/// A key that may be `null` or absent: `None` then, an error for a wrong type.
fn opt<T>(obj: &Value, key: &str, what: &str, get: fn(&Value) -> Option<T>) -> Parsed<Option<T>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => get(v).map(Some).ok_or_else(|| wrong(key, what)),
    }
}

fn list<'a>(obj: &'a Value, key: &str) -> Parsed<&'a [Value]> {
    field(obj, key)?
        .as_array()
        .ok_or_else(|| wrong(key, "a list"))
}

impl MemoryStatus {
    pub(crate) fn from_json(v: &Value) -> Parsed<MemoryStatus> {
        Ok(MemoryStatus {
            total_bytes: req_u64(v, "total_bytes")?,
            available_bytes: req_u64(v, "available_bytes")?,
            used_bytes: req_u64(v, "used_bytes")?,
            percent: req_f64(v, "percent")?,
            swap_total_bytes: req_u64(v, "swap_total_bytes")?,
            swap_used_bytes: req_u64(v, "swap_used_bytes")?,
        })
    }
}

impl ProcessInfo {
    pub(crate) fn from_json(v: &Value) -> Parsed<ProcessInfo> {
        Ok(ProcessInfo {
            pid: req_u32(v, "pid")?,
            ppid: req_u32(v, "ppid")?,
            name: req_str(v, "name")?,
            memory_bytes: opt(v, "memory_bytes", "a whole number", Value::as_u64)?,
            cpu_percent: opt(v, "cpu_percent", "a number", Value::as_f64)?,
            nice: opt(v, "nice", "a whole number", Value::as_i64)?,
        })
    }

    pub(crate) fn list_from_json(v: &Value) -> Parsed<Vec<ProcessInfo>> {
        let items = v.as_array().ok_or("expected a list of processes")?;
        items.iter().map(ProcessInfo::from_json).collect()
    }
}

impl ThermalSnapshot {
    pub(crate) fn from_json(v: &Value) -> Parsed<ThermalSnapshot> {
        let sensors = list(v, "sensors")?
            .iter()
            .map(|s| {
                Ok(TemperatureSensor {
                    chip: req_str(s, "chip")?,
                    label: req_str(s, "label")?,
                    celsius: req_f64(s, "celsius")?,
                    high: opt(s, "high", "a number", Value::as_f64)?,
                    critical: opt(s, "critical", "a number", Value::as_f64)?,
                })
            })
            .collect::<Parsed<Vec<_>>>()?;
        Ok(ThermalSnapshot { sensors })
    }
}

impl GpuStatus {
    pub(crate) fn from_json(v: &Value) -> Parsed<GpuStatus> {
        let gpus = list(v, "gpus")?
            .iter()
            .map(|g| {
                Ok(Gpu {
                    index: req_u32(g, "index")?,
                    name: req_str(g, "name")?,
                    vendor: req_str(g, "vendor")?,
                    utilization_percent: opt(g, "utilization_percent", "a number", Value::as_f64)?,
                    memory_used_bytes: opt(
                        g,
                        "memory_used_bytes",
                        "a whole number",
                        Value::as_u64,
                    )?,
                    memory_total_bytes: opt(
                        g,
                        "memory_total_bytes",
                        "a whole number",
                        Value::as_u64,
                    )?,
                    temperature_celsius: opt(g, "temperature_celsius", "a number", Value::as_f64)?,
                })
            })
            .collect::<Parsed<Vec<_>>>()?;
        Ok(GpuStatus { gpus })
    }
}

impl BatteryStatus {
    pub(crate) fn from_json(v: &Value) -> Parsed<BatteryStatus> {
        Ok(BatteryStatus {
            present: req_bool(v, "present")?,
            percent: opt(v, "percent", "a number", Value::as_f64)?,
            plugged: opt(v, "plugged", "true or false", Value::as_bool)?,
            seconds_left: opt(v, "seconds_left", "a whole number", Value::as_u64)?,
        })
    }
}

impl HttpResponse {
    pub(crate) fn from_json(v: &Value) -> Parsed<HttpResponse> {
        let status =
            u16::try_from(req_u64(v, "status")?).map_err(|_| wrong("status", "a status code"))?;
        let headers = field(v, "headers")?
            .as_object()
            .ok_or_else(|| wrong("headers", "an object"))?
            .iter()
            .map(|(k, value)| match value.as_str() {
                Some(s) => Ok((k.clone(), s.to_string())),
                None => Err(wrong(k, "a string header value")),
            })
            .collect::<Parsed<Vec<_>>>()?;
        Ok(HttpResponse {
            status,
            headers,
            body: req_str(v, "body")?,
        })
    }
}

impl RegistryValue {
    pub(crate) fn from_json(v: &Value) -> Parsed<RegistryValue> {
        let kind = req_str(v, "type")?;
        let value = field(v, "value")?;
        let text = || {
            value
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| wrong("value", "a string"))
        };
        Ok(match kind.as_str() {
            "REG_SZ" => RegistryValue::Sz(text()?),
            "REG_EXPAND_SZ" => RegistryValue::ExpandSz(text()?),
            "REG_BINARY" => RegistryValue::Binary(text()?),
            "REG_MULTI_SZ" => RegistryValue::MultiSz(
                value
                    .as_array()
                    .ok_or_else(|| wrong("value", "a list"))?
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| wrong("value", "a list of strings"))
                    })
                    .collect::<Parsed<Vec<_>>>()?,
            ),
            "REG_DWORD" => RegistryValue::Dword(
                value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| wrong("value", "a DWORD"))?,
            ),
            "REG_QWORD" => {
                RegistryValue::Qword(value.as_u64().ok_or_else(|| wrong("value", "a QWORD"))?)
            }
            _ => RegistryValue::Other {
                kind,
                value: value.clone(),
            },
        })
    }
}

/// `get_learned_pattern`'s list of 24 hourly means (`None`: nothing reported then).
pub(crate) fn pattern_from_json(v: &Value) -> Parsed<Vec<Option<f64>>> {
    let hours = v.as_array().ok_or("expected a list")?;
    if hours.len() != 24 {
        return Err(format!("expected 24 hourly values, got {}", hours.len()));
    }
    hours
        .iter()
        .map(|h| match h {
            Value::Null => Ok(None),
            other => other
                .as_f64()
                .map(Some)
                .ok_or_else(|| "an hourly value is not a number".to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::process_name_is;

    #[test]
    fn process_names_match_without_case_or_exe() {
        assert!(process_name_is("chrome", "chrome"));
        assert!(process_name_is("Chrome.exe", "chrome"));
        assert!(process_name_is("chrome", "CHROME.EXE"));
        assert!(process_name_is("chrome.Exe", "Chrome.exe"));
        assert!(process_name_is(".exe", ""));
        assert!(process_name_is("a.exe.exe", "A.EXE.exe"));
        assert!(!process_name_is("a.exe.exe", "a"));
        assert!(!process_name_is("chromium", "chrome"));
        assert!(!process_name_is("chrome.exe ", "chrome"));
        assert!(!process_name_is("chromeexe", "chrome"));
        assert!(!process_name_is("", "chrome"));
        // beyond ASCII, as the host's str.lower() and AssemblyScript's toLowerCase()
        assert!(process_name_is("ÉDITEUR.EXE", "éditeur"));
        assert!(!process_name_is("éditeur", "editeur"));
        // a multi-byte character where ".exe" would start: no panic
        assert!(!process_name_is("aé.exe", "aé.ex"));
        assert!(!process_name_is("ééé", "xx"));
    }
}
