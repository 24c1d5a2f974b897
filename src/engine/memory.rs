//! Memory figures: bytes allocated through the global allocator (INFO used_memory) and the
//! process's resident set size (used_memory_rss).
//!
//! The counter wraps the system allocator and adds/subtracts each allocation's requested size
//! with one relaxed atomic operation — exact for everything the process allocates (keyspace,
//! buffers, indexes), at the cost of one uncontended atomic per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The process's allocator: the system allocator plus a byte count.
pub struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's layout unchanged, so System's
// guarantees carry over; the counters never influence what is returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
            add(new_size);
        }
        p
    }
}

#[inline]
fn add(n: usize) {
    let now = ALLOCATED.fetch_add(n, Ordering::Relaxed) + n;
    // Peak is advisory; a racy max is fine and avoids a CAS loop on every allocation.
    if now > PEAK.load(Ordering::Relaxed) {
        PEAK.store(now, Ordering::Relaxed);
    }
}

/// Bytes currently allocated by the process.
pub fn used() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// Highest `used()` seen.
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed).max(used())
}

/// Resident set size in bytes, from /proc/self/statm (0 where unavailable).
pub fn rss() -> usize {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else { return 0 };
    let pages: usize = s.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).unwrap_or(4096)
}

/// Total RAM of the machine in bytes.
pub fn total_system() -> usize {
    // SAFETY: sysconf has no memory effects.
    let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    usize::try_from(pages).unwrap_or(0) * usize::try_from(page).unwrap_or(0)
}

/// Redis's human-readable byte figure (`943.66K`, `1.50M`, `0B`).
pub fn human(n: usize) -> String {
    let n = n as f64;
    const UNITS: [(&str, f64); 5] = [
        ("P", 1024f64 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("T", 1024f64 * 1024.0 * 1024.0 * 1024.0),
        ("G", 1024f64 * 1024.0 * 1024.0),
        ("M", 1024f64 * 1024.0),
        ("K", 1024f64),
    ];
    for (u, size) in UNITS {
        if n >= size {
            return format!("{:.2}{u}", n / size);
        }
    }
    format!("{n}B")
}
