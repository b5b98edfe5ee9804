//! The runtime a `no_std` component needs and wasi-libc would otherwise
//! provide. Linking wasi-libc (std) would add 13 `wasi:*` imports, which the
//! host refuses; these few functions are all that is missing without it.

use core::alloc::{GlobalAlloc, Layout};

use crate::heap::ALLOC;

/// A panic (a bug, an out-of-bounds index...) becomes a wasm trap: the host
/// discards the call's state writes and reports an error. There is nowhere
/// to print the message, and formatting it would only grow the binary.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocator: the host calls it to place lists and
/// strings in guest memory. wit-bindgen expects libc to export it on wasip2.
///
/// # Safety
/// Called by the host per the component-model canonical ABI only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    if new_len == 0 {
        // A zero-sized allocation needs no memory, only a well-aligned,
        // non-null pointer.
        return align as *mut u8;
    }
    let ptr = unsafe {
        if old_len == 0 {
            ALLOC.alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            ALLOC.realloc(
                old_ptr,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable()
    }
    ptr
}

// Byte-slice comparison (`==` on `[u8]`, `Ord` on strings and keys) lowers
// to `memcmp`/`bcmp`, which libc provides. Written as plain loops: they are
// only reached for comparisons the optimizer could not inline.

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    unsafe { memcmp(a, b, n) }
}
