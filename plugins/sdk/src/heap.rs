//! The guest's heap: dlmalloc, seeded from an arena in `.bss`.
//!
//! The host runs every call in a fresh instance (see the host's
//! `runtime/instance.rs`), so each call starts with an empty heap. Stock
//! dlmalloc on wasip2 gets its first chunk from `memory.grow`, and in
//! wasmtime's pooling allocator a grown memory costs two `mprotect`s per call
//! (one to grow, one to shrink the slot back for the next instance), which
//! was most of the per-call overhead. An arena inside the module's initial
//! memory needs no syscall: the pool keeps it resident and resets only the
//! pages a call dirtied. Calls that need more than the arena still grow
//! memory, exactly as before, so what a call can allocate is unchanged (the
//! store's profile caps it).

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr;

/// Bytes of heap every call gets without growing memory. Most `apply`,
/// `prepare` and `query` calls of the shipped plugins stay well inside it.
const ARENA_BYTES: usize = 192 * 1024;
const WASM_PAGE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);
// SAFETY: a plugin instance is single-threaded (no wasm threads).
unsafe impl Sync for Arena {}
static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));

/// dlmalloc's source of memory: the arena once, then `memory.grow`.
struct System {
    arena_given: UnsafeCell<bool>,
}
// SAFETY: single-threaded guest.
unsafe impl Send for System {}

unsafe impl dlmalloc::Allocator for System {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        // SAFETY: a guest is single-threaded and dlmalloc never re-enters
        // its system allocator.
        let given = unsafe { &mut *self.arena_given.get() };
        if !*given && size <= ARENA_BYTES {
            *given = true;
            return (ARENA.0.get().cast(), ARENA_BYTES, 0);
        }
        let pages = size.div_ceil(WASM_PAGE);
        let prev = wasm32::memory_grow(0, pages);
        if prev == usize::MAX {
            return (ptr::null_mut(), 0, 0);
        }
        ((prev * WASM_PAGE) as *mut u8, pages * WASM_PAGE, 0)
    }
    fn remap(&self, _: *mut u8, _: usize, _: usize, _: bool) -> *mut u8 {
        ptr::null_mut()
    }
    fn free_part(&self, _: *mut u8, _: usize, _: usize) -> bool {
        false
    }
    fn free(&self, _: *mut u8, _: usize) -> bool {
        false
    }
    fn can_release_part(&self, _: u32) -> bool {
        false
    }
    fn allocates_zeros(&self) -> bool {
        // The arena is `.bss` and grown pages are fresh: both read as zero
        // when handed over (the arena is given out once per instance).
        true
    }
    fn page_size(&self) -> usize {
        WASM_PAGE
    }
}

pub(crate) struct Heap(UnsafeCell<dlmalloc::Dlmalloc<System>>);
// SAFETY: single-threaded guest.
unsafe impl Sync for Heap {}

impl Heap {
    const fn new() -> Self {
        Heap(UnsafeCell::new(dlmalloc::Dlmalloc::new_with_allocator(
            System {
                arena_given: UnsafeCell::new(false),
            },
        )))
    }
    #[allow(clippy::mut_from_ref)] // single-threaded, no reentrancy
    fn get(&self) -> &mut dlmalloc::Dlmalloc<System> {
        // SAFETY: a guest never runs two allocator calls at once.
        unsafe { &mut *self.0.get() }
    }
}

unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        unsafe { self.get().malloc(l.size(), l.align()) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { self.get().free(p, l.size(), l.align()) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        unsafe { self.get().calloc(l.size(), l.align()) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        unsafe { self.get().realloc(p, l.size(), l.align(), new) }
    }
}

#[global_allocator]
pub(crate) static ALLOC: Heap = Heap::new();
