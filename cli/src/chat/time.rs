//! Times as a reader expects them: local wall-clock time from the C
//! library's time zone rules (`TZ`, `/etc/localtime`), never a table of our own.

use lattice_kernel::{now_ms, wall_ms};

/// The parts of a local time the client shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Local {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
}

/// `localtime_r` is the thread-safe form; it reads the zone once per process.
fn local(ms: u64) -> Option<Local> {
    let secs = libc::time_t::try_from(ms / 1000).ok()?;
    // SAFETY: `tm` is plain old data that `localtime_r` fills in; both pointers
    // are valid for the call, and a null return (out of range) is checked.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return None;
        }
        tm
    };
    Some(Local {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
    })
}

/// `HH:MM` for today, `YYYY-MM-DD HH:MM` for any other day, so an old
/// message is never mistaken for one from this morning.
pub fn stamp(hlc: u64) -> String {
    stamp_at(wall_ms(hlc), now_ms())
}

fn stamp_at(ms: u64, now: u64) -> String {
    let (Some(t), Some(today)) = (local(ms), local(now)) else {
        return "--:--".into();
    };
    if (t.year, t.month, t.day) == (today.year, today.month, today.day) {
        format!("{:02}:{:02}", t.hour, t.minute)
    } else {
        format!(
            "{}-{:02}-{:02} {:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute
        )
    }
}

/// Unix milliseconds as RFC 3339 UTC (`2026-12-01T19:20:33Z`): what a
/// script parses, where epoch milliseconds would need a unit to be guessed.
pub fn rfc3339_utc(ms: u64) -> String {
    let Ok(secs) = libc::time_t::try_from(ms / 1000) else {
        return String::new();
    };
    // SAFETY: as in `local`: `tm` is filled by `gmtime_r`, null is checked.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::gmtime_r(&secs, &mut tm).is_null() {
            return String::new();
        }
        tm
    };
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// How long ago, in the one unit that matters at a glance ("now", "5m", "3h", "2d").
pub fn ago_ms(ms: u64) -> String {
    ago_at(ms, now_ms())
}

fn ago_at(ms: u64, now: u64) -> String {
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..60 => "now".into(),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_hours_and_minutes_other_days_carry_the_date() {
        let now = 1_700_000_000_000;
        let s = stamp_at(now, now);
        assert_eq!(s.len(), 5, "{s}");
        assert_eq!(&s[2..3], ":");
        let old = stamp_at(now - 3 * 86_400_000, now);
        assert_eq!(old.len(), 16, "{old}");
        assert!(
            old.ends_with(&s),
            "same clock time, other day: {old} vs {s}"
        );
    }

    #[test]
    fn utc_is_rfc3339() {
        assert_eq!(rfc3339_utc(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn ago_uses_one_unit() {
        let now = 10_000_000_000;
        assert_eq!(ago_at(now - 5_000, now), "now");
        assert_eq!(ago_at(now - 300_000, now), "5m");
        assert_eq!(ago_at(now - 3 * 3_600_000, now), "3h");
        assert_eq!(ago_at(now - 2 * 86_400_000, now), "2d");
        assert_eq!(ago_at(now + 1000, now), "now", "a clock ahead of ours");
    }
}
