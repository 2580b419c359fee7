//! A counting global allocator, for tests that prove a path allocates nothing (the agent's
//! established-flow path: `crates/runtime/tests/no_alloc.rs`). A test binary installs it with
//! `#[global_allocator]`; it forwards to the system allocator and counts the allocations a
//! thread makes while that thread has armed it (see [`allocations_in`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Whether this thread's allocations are being counted.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Allocations (alloc, alloc_zeroed, realloc) made by this thread while armed.
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations of threads that armed it.
#[derive(Debug)]
pub struct CountingAllocator;

fn count() {
    // `try_with`: a thread being torn down has no thread-locals left; it is not measured.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY (the impl): every method forwards to `System` with the caller's arguments, so
// `System`'s contract is the caller's; counting touches only this thread's thread-locals and
// never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from this allocator, which is `System`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is `System`; forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations this thread makes while running `f`, when [`CountingAllocator`] is the global
/// allocator (otherwise 0).
pub fn allocations_in(f: impl FnOnce()) -> u64 {
    COUNT.with(|n| n.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(Cell::get)
}
