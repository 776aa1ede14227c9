//! What can go wrong in a host call, as one enum.

use std::fmt;

/// The error of every wrapper in this crate.
///
/// The first eleven variants are the host's status codes (docs/abi.md,
/// section 4): answers, not violations. The last three are this crate's own:
///
/// - [`Error::TooLong`]: an argument over its cap. Passing it would be a
///   violation (the host aborts the call and counts a strike), so the wrapper
///   refuses before calling the host.
/// - [`Error::Malformed`]: the host's result is not what ABI v1 says it is
///   (for example JSON that does not parse, or a key missing). It is reported
///   rather than guessed around.
/// - [`Error::UnknownStatus`]: a status this crate does not know, from a newer
///   host. Treat it as a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// -1: the granted capability does not cover this target (path, host).
    Denied,
    /// -2: no such process, file or key.
    NotFound,
    /// -3: a malformed argument (JSON, a path, a key, a value out of range).
    InvalidArgument,
    /// -4: this platform has no such thing.
    Unsupported,
    /// -5: too many calls of this kind (or bytes written) in this tick.
    RateLimited,
    /// -6: the target process is protected.
    Protected,
    /// -7: the result, or a stored value, would exceed its cap.
    TooLarge,
    /// -8: the OS refused or failed: permission, disk, network.
    IoError,
    /// -9: the operation ran out of the call's time.
    Timeout,
    /// -10: `rv_alloc` could not allocate the result.
    NoMemory,
    /// -11: a fault inside the host, not caused by the plugin.
    HostError,
    /// A negative status this version of the crate does not know.
    UnknownStatus(i32),
    /// An argument over the cap ABI v1 sets for it; the host was not called.
    TooLong {
        argument: &'static str,
        len: usize,
        cap: usize,
    },
    /// The host's result for `function` is not what ABI v1 describes.
    Malformed {
        function: &'static str,
        detail: String,
    },
}

impl Error {
    /// The error for a negative status code.
    pub fn from_status(status: i32) -> Error {
        match status {
            -1 => Error::Denied,
            -2 => Error::NotFound,
            -3 => Error::InvalidArgument,
            -4 => Error::Unsupported,
            -5 => Error::RateLimited,
            -6 => Error::Protected,
            -7 => Error::TooLarge,
            -8 => Error::IoError,
            -9 => Error::Timeout,
            -10 => Error::NoMemory,
            -11 => Error::HostError,
            other => Error::UnknownStatus(other),
        }
    }

    /// The host's status code, for the variants that are one.
    pub fn status(&self) -> Option<i32> {
        Some(match self {
            Error::Denied => -1,
            Error::NotFound => -2,
            Error::InvalidArgument => -3,
            Error::Unsupported => -4,
            Error::RateLimited => -5,
            Error::Protected => -6,
            Error::TooLarge => -7,
            Error::IoError => -8,
            Error::Timeout => -9,
            Error::NoMemory => -10,
            Error::HostError => -11,
            Error::UnknownStatus(code) => *code,
            Error::TooLong { .. } | Error::Malformed { .. } => return None,
        })
    }

    /// The status's name as docs/abi.md writes it (`IO_ERROR`...), or a short
    /// name for this crate's own variants.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Denied => "DENIED",
            Error::NotFound => "NOT_FOUND",
            Error::InvalidArgument => "INVALID_ARGUMENT",
            Error::Unsupported => "UNSUPPORTED",
            Error::RateLimited => "RATE_LIMITED",
            Error::Protected => "PROTECTED",
            Error::TooLarge => "TOO_LARGE",
            Error::IoError => "IO_ERROR",
            Error::Timeout => "TIMEOUT",
            Error::NoMemory => "NO_MEMORY",
            Error::HostError => "HOST_ERROR",
            Error::UnknownStatus(_) => "UNKNOWN_STATUS",
            Error::TooLong { .. } => "TOO_LONG",
            Error::Malformed { .. } => "MALFORMED",
        }
    }

    /// A status for a result that was not what the function promises.
    pub(crate) fn malformed(function: &'static str, detail: impl Into<String>) -> Error {
        Error::Malformed {
            function,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownStatus(code) => write!(f, "unknown status {}", code),
            Error::TooLong { argument, len, cap } => {
                write!(
                    f,
                    "{} is {} bytes; ABI v1 allows at most {}",
                    argument, len, cap
                )
            }
            Error::Malformed { function, detail } => {
                write!(f, "{} returned a malformed result: {}", function, detail)
            }
            other => match other.status() {
                Some(code) => write!(f, "{} ({})", other.name(), code),
                None => f.write_str(other.name()),
            },
        }
    }
}

impl std::error::Error for Error {}

/// The result of every wrapper in this crate. The error type has a default,
/// so `Result<T, E>` still means std's after `use ruvector_plugin_sdk::*`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
