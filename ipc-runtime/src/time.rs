//! Timestamps comparable across processes.

/// Nanoseconds on the system's monotonic clock: comparable between processes on one machine
/// (it is the same clock for all of them), not across machines or reboots.
///
/// ```
/// let a = ipc_runtime::timestamp();
/// let b = ipc_runtime::timestamp();
/// assert!(b >= a);
/// ```
pub fn timestamp() -> i64 {
    imp::now()
}

#[cfg(all(unix, not(miri)))]
mod imp {
    pub fn now() -> i64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        t.tv_sec as i64 * 1_000_000_000 + t.tv_nsec as i64
    }
}

#[cfg(all(windows, not(miri)))]
mod imp {
    use std::sync::OnceLock;
    use windows_sys::Win32::System::Performance::{
        QueryPerformanceCounter, QueryPerformanceFrequency,
    };

    pub fn now() -> i64 {
        static FREQ: OnceLock<i64> = OnceLock::new();
        let freq = *FREQ.get_or_init(|| {
            let mut f = 0i64;
            // SAFETY: writes one i64 through a valid pointer.
            unsafe { QueryPerformanceFrequency(&mut f) };
            f.max(1)
        });
        let mut ticks = 0i64;
        // SAFETY: writes one i64 through a valid pointer.
        unsafe { QueryPerformanceCounter(&mut ticks) };
        ((ticks as i128 * 1_000_000_000) / freq as i128) as i64
    }
}

#[cfg(miri)]
mod imp {
    use std::sync::OnceLock;
    use std::time::Instant;

    pub fn now() -> i64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as i64
    }
}
