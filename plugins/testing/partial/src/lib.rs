//! A component that speaks `lattice:plugin@0.1.0` but exports no `apply`
//! (world `partial` in ./wit): the host must refuse it, and `plugin check`
//! must name the missing export and how to add it. Written without the SDK
//! (whose world has every export), so it carries its own tiny runtime.
#![no_std]
#![allow(clippy::too_many_arguments)] // generated code
extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

wit_bindgen::generate!({ path: "wit", world: "partial" });

struct Partial;

impl Guest for Partial {
    fn describe() -> Info {
        Info {
            name: "partial".to_string(),
            version: "0.0.0".to_string(),
            descriptor_set: Vec::new(),
            service: "none".to_string(),
            op_type: "none".to_string(),
            state_version: 1,
        }
    }
    fn prepare(_: Context, _: String, _: Vec<u8>) -> Result<Vec<u8>, String> {
        Err("no".to_string())
    }
    fn query(_: String, _: Vec<u8>) -> Result<Vec<u8>, String> {
        Err("no".to_string())
    }
}

export!(Partial);

/// A bump allocator over a static arena: every call runs in a fresh
/// instance, so nothing needs freeing.
struct Bump(UnsafeCell<(usize, [u8; 1 << 16])>);
unsafe impl Sync for Bump {}

#[global_allocator]
static HEAP: Bump = Bump(UnsafeCell::new((0, [0; 1 << 16])));

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let (used, arena) = unsafe { &mut *self.0.get() };
        let start =
            (arena.as_ptr() as usize + *used).next_multiple_of(l.align()) - arena.as_ptr() as usize;
        if start + l.size() > arena.len() {
            return core::ptr::null_mut();
        }
        *used = start + l.size();
        unsafe { arena.as_mut_ptr().add(start) }
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// # Safety
/// Called by the host per the canonical ABI only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    if new_len == 0 {
        return align as *mut u8;
    }
    let p = unsafe { HEAP.alloc(Layout::from_size_align_unchecked(new_len, align)) };
    if p.is_null() {
        core::arch::wasm32::unreachable()
    }
    if old_len > 0 {
        unsafe { core::ptr::copy_nonoverlapping(old, p, old_len.min(new_len)) };
    }
    p
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    unsafe { memcmp(a, b, n) }
}
