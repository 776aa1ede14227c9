//! The two exports every plugin needs, and the buffers the host fills.
//!
//! `rv_alloc` hands out memory from Rust's global allocator with the layout
//! of a `Vec<u8>`'s buffer (alignment 1; the allocator gives 8 anyway). So a
//! buffer the host filled becomes an ordinary `Vec<u8>` ([`take_buffer`]) and
//! is freed when that `Vec` is dropped: no bump allocator to reset, nothing
//! to free by hand.

use std::alloc::Layout;

/// The ABI version this crate speaks; `rv_abi_version` returns it.
pub const ABI_VERSION: i32 = 1;

/// ABI v1's `rv_abi_version` export: the host calls it once per instance.
#[no_mangle]
pub extern "C" fn rv_abi_version() -> i32 {
    ABI_VERSION
}

/// ABI v1's `rv_alloc` export: a buffer of at least `size` bytes, or 0.
///
/// The host calls it from inside a host call, to place a result or a hook's
/// string argument. It never panics and never calls the host (either would
/// be a violation). It returns 0 when the allocator cannot grow memory; the
/// host call then returns `NO_MEMORY`. The host asks for `max(len, 1)`
/// bytes and [`take_buffer`] frees with that same size.
#[no_mangle]
pub extern "C" fn rv_alloc(size: i32) -> i32 {
    // The host reads sizes as unsigned; one too big for a Layout is refused.
    let size = (size as u32).max(1) as usize;
    match Layout::from_size_align(size, 1) {
        // Safety: the layout's size is not zero.
        Ok(layout) => unsafe { std::alloc::alloc(layout) as usize as i32 },
        Err(_) => 0,
    }
}

/// Takes ownership of a buffer the host filled: the `(ptr, len)` of a packed
/// result or of a hook's string argument.
///
/// # Safety
///
/// `ptr` must be what [`rv_alloc`] returned when the host asked for
/// `max(len, 1)` bytes, and it must not be taken twice. ABI v1 guarantees
/// both for a packed result (`r > 0`) and for a hook's string argument.
pub unsafe fn take_buffer(ptr: u32, len: u32) -> Vec<u8> {
    Vec::from_raw_parts(ptr as usize as *mut u8, len as usize, len.max(1) as usize)
}

/// A packed i64 result: `Ok(Some(buffer))`, `Ok(None)` for 0, or the status.
pub(crate) fn unpack(r: i64) -> Result<Option<Vec<u8>>, crate::Error> {
    if r > 0 {
        // Safety: a positive packed result is a buffer from rv_alloc (ABI v1, 3.4).
        Ok(Some(unsafe { take_buffer((r >> 32) as u32, r as u32) }))
    } else if r == 0 {
        Ok(None)
    } else {
        Err(crate::Error::from_status(r as i32))
    }
}
