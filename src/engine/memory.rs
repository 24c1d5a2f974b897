//! Memory figures: bytes allocated through the global allocator (INFO used_memory) and the
//! process's resident set size (used_memory_rss).
//!
//! The counter wraps the system allocator and adds/subtracts what each allocation really costs
//! with one relaxed atomic operation: the usable size the allocator granted (its size class, not
//! the size asked for) plus the allocator's per-chunk header. That makes the figure agree with
//! the growth of the process's RSS for many small allocations (a 13-byte key costs a 32-byte
//! chunk in glibc), which is what a memory limit has to bound — at the cost of one
//! `malloc_usable_size` call and one uncontended atomic per allocation.
//!
//! The keyspace's record arena (`engine::db`) allocates 64 KB pages and hands out slots itself,
//! so the allocator count alone would move in page steps and an eviction would free nothing
//! until a whole page emptied. The arena therefore reports the bytes of its free slots
//! ([`arena_free`]), and [`used`] subtracts them: used memory is what records and other
//! allocations occupy, and a page's unused slots show as fragmentation (RSS above used), as
//! jemalloc's free region slots do for redis-server.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// The process's allocator: the system allocator plus a byte count.
pub struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Bytes of free slots in the record arena's pages (see the module documentation).
static ARENA_FREE: AtomicIsize = AtomicIsize::new(0);

/// glibc keeps a size word in front of every chunk it hands out.
const CHUNK_HEADER: usize = std::mem::size_of::<usize>();

/// What the live allocation `p` (from the system allocator, for `layout`) costs.
#[inline]
fn cost(p: *mut u8, layout: Layout) -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let _ = layout;
        // SAFETY: `p` is a live pointer returned by the system allocator (glibc malloc,
        // posix_memalign or realloc), which is exactly what malloc_usable_size accepts; it only
        // reads the chunk's header.
        unsafe { libc::malloc_usable_size(p.cast()) + CHUNK_HEADER }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = p;
        layout.size() + CHUNK_HEADER
    }
}

// SAFETY: every method forwards to `System` with the caller's layout unchanged, so System's
// guarantees carry over; the counters never influence what is returned, and `cost` is only
// called on pointers that are live at that moment (before dealloc, after alloc).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(cost(p, layout));
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(cost(p, layout));
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(cost(ptr, layout), Ordering::Relaxed);
        System.dealloc(ptr, layout);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = cost(ptr, layout);
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            ALLOCATED.fetch_sub(old, Ordering::Relaxed);
            // SAFETY (of the layout): realloc's contract makes `new_size` with the old alignment
            // a valid layout for the new block.
            add(cost(p, Layout::from_size_align_unchecked(new_size, layout.align())));
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

/// Bytes currently in use: allocated by the process, less the record arena's free slots.
pub fn used() -> usize {
    let free = usize::try_from(ARENA_FREE.load(Ordering::Relaxed)).unwrap_or(0);
    ALLOCATED.load(Ordering::Relaxed).saturating_sub(free)
}

/// Bytes of arena pages released since the allocator was last asked to return memory.
static RELEASED: AtomicUsize = AtomicUsize::new(0);

/// Every this many released bytes, free memory is handed back to the system.
const TRIM_EVERY: usize = 16 << 20;

/// The record arena released `n` bytes of pages. glibc keeps freed chunks below its mmap
/// threshold (a 64 KB page is one) in its heaps, so after large deletes and FLUSHALL the
/// resident set would not shrink; every [`TRIM_EVERY`] bytes, `malloc_trim` returns the free
/// pages of every heap to the system (a few milliseconds on a large heap, so not on every page).
pub fn released(n: usize) {
    if RELEASED.fetch_add(n, Ordering::Relaxed) + n >= TRIM_EVERY {
        RELEASED.store(0, Ordering::Relaxed);
        trim();
    }
}

/// Returns free allocator memory to the system (glibc's `malloc_trim`; nothing elsewhere).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and shrinks the allocator's own free lists under its locks;
    // it invalidates no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The record arena gained (`n > 0`) or lost free slot bytes.
#[inline]
pub fn arena_free(n: isize) {
    ARENA_FREE.fetch_add(n, Ordering::Relaxed);
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
