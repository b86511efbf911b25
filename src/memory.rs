//! Giving memory back to the system after a burst of work.
//!
//! Reading a large store, compiling a table of thousands of routes, or probing a thousand
//! upstreams leaves megabytes of freed memory scattered between live allocations; glibc's
//! allocator keeps it (resident) until told otherwise. After such work the control loop and
//! discovery call `give_back`, so a console or gateway idles at its live size, not its peak.

/// Returns free heap pages to the system (glibc's `malloc_trim`); a no-op elsewhere.
#[allow(unsafe_code)]
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases memory that glibc's allocator already holds as
        // free; it touches no live allocation and is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
