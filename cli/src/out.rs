//! Standard output that ends quietly when the reader goes away.
//!
//! `println!` panics when stdout is a closed pipe (`lattice store log | head`),
//! which prints a panic message and a backtrace hint for what is the normal
//! end of a pipeline. [`outln!`] writes the same line, and on a broken pipe
//! exits at once with 141 (128 + SIGPIPE), silently, as a process killed by
//! SIGPIPE would. SIGPIPE itself stays ignored: a daemon serving sockets
//! must survive a client that hangs up.

/// `println!` for command output; see the module docs.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            $crate::out::failed(e);
        }
    }};
}

/// Stdout could not be written: a closed pipe ends the process quietly;
/// anything else (a full disk behind a redirect) is reported once.
pub(crate) fn failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1);
}
