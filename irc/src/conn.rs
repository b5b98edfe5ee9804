//! Sockets: one reader and one writer task per connection. The reader cuts
//! lines (at most 512 bytes; longer ones are dropped whole and answered
//! with 417), paces a flooding client instead of letting it monopolise the
//! core, and reports silence; the writer drains a bounded queue, so a
//! client that never reads fills it and is dropped, not buffered forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::Config;
use crate::core::Event;
use crate::line::MAX_LINE;
use crate::state::Line;

/// Longest we read without a line end, tags included (IRCv3 allows 8191
/// bytes of tags before the 512-byte line).
const MAX_RAW: usize = 8192 + MAX_LINE;

pub async fn accept_loop(listener: TcpListener, config: Arc<Config>, core: Sender<Event>) {
    let next = Arc::new(AtomicU64::new(1));
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait, keep serving.
                tracing::warn!(error = %e, "IRC accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        if open.load(Ordering::Relaxed) >= config.max_clients {
            tokio::spawn(refuse(sock));
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let id = next.fetch_add(1, Ordering::Relaxed);
        let (config, core, open) = (config.clone(), core.clone(), open.clone());
        tokio::spawn(async move {
            connection(sock, id, peer.ip().to_string(), &config, core).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Hands an event to the core, waiting (without blocking the runtime)
/// while its queue is full; `Err` once the core is gone.
async fn to_core(core: &Sender<Event>, ev: Event) -> Result<(), ()> {
    let mut ev = ev;
    loop {
        match core.try_send(ev) {
            Ok(()) => return Ok(()),
            Err(crossbeam_channel::TrySendError::Full(back)) => {
                ev = back;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => return Err(()),
        }
    }
}

async fn refuse(mut sock: TcpStream) {
    let _ = sock
        .write_all(b"ERROR :Closing link: too many connections\r\n")
        .await;
    let _ = sock.shutdown().await;
}

async fn connection(sock: TcpStream, id: u64, host: String, config: &Config, core: Sender<Event>) {
    let (mut rd, mut wr) = sock.into_split();
    let (out, mut queue) = mpsc::channel::<Line>(config.send_queue);
    let (kill, kill_rx) = watch::channel(false);
    let done = Arc::new(Notify::new());
    let hello = Event::Connected {
        id,
        out,
        kill,
        host,
    };
    if to_core(&core, hello).await.is_err() {
        return;
    }
    let writer_done = done.clone();
    let mut writer_kill = kill_rx.clone();
    let mut writer = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(4096);
        loop {
            tokio::select! {
                line = queue.recv() => {
                    let Some(line) = line else { break };
                    buf.clear();
                    buf.extend_from_slice(line.as_bytes());
                    buf.extend_from_slice(b"\r\n");
                    // Batch whatever else is already queued into one write.
                    while buf.len() < 16 * 1024 {
                        match queue.try_recv() {
                            Ok(l) => {
                                buf.extend_from_slice(l.as_bytes());
                                buf.extend_from_slice(b"\r\n");
                            }
                            Err(_) => break,
                        }
                    }
                    tokio::select! {
                        r = wr.write_all(&buf) => if r.is_err() { break },
                        _ = killed(&mut writer_kill) => break,
                    }
                }
                _ = killed(&mut writer_kill) => break,
            }
        }
        let _ = wr.shutdown().await;
        // Wake the reader: the core is done with this connection.
        writer_done.notify_one();
    });

    let mut reader_kill = kill_rx;
    let reason = read_lines(&mut rd, id, config, &core, &done, &mut reader_kill).await;
    let _ = to_core(&core, Event::Closed { id, reason }).await;
    // Let the writer flush what the core queued last (ERROR after QUIT);
    // a peer that does not read gets no longer than this.
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// Resolves once the core has dropped the connection.
async fn killed(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            // The core forgot the client without killing it: never.
            std::future::pending::<()>().await;
        }
    }
}

/// Reads until EOF, an error, or the writer ends; returns the QUIT reason.
async fn read_lines(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    id: u64,
    config: &Config,
    core: &Sender<Event>,
    done: &Notify,
    kill: &mut watch::Receiver<bool>,
) -> String {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut overlong = false;
    let (burst, rate) = (config.flood_burst, config.flood_rate.max(0.1));
    let mut tokens = burst;
    let mut refilled = Instant::now();
    let mut pinged = false;
    // Moved only by whole lines (see below), not by every read.
    let mut deadline = Instant::now() + config.ping_interval;
    loop {
        let n = tokio::select! {
            r = rd.read(&mut chunk) => match r {
                Ok(0) => return "Connection closed".into(),
                Ok(n) => n,
                Err(e) => return format!("Read error: {e}"),
            },
            _ = tokio::time::sleep_until(deadline) => {
                if pinged {
                    return format!("Ping timeout: {} seconds", config.ping_timeout.as_secs());
                }
                pinged = true;
                deadline = Instant::now() + config.ping_timeout;
                if to_core(core, Event::Idle { id }).await.is_err() {
                    return "Server shutting down".into();
                }
                continue;
            }
            _ = done.notified() => return "Connection closed".into(),
            _ = killed(kill) => return "Connection closed".into(),
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            // Only a whole line counts as a sign of life: a byte now and
            // then must not hold a connection open.
            pinged = false;
            deadline = Instant::now() + config.ping_interval;
            let mut line: Vec<u8> = buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if std::mem::take(&mut overlong) {
                continue; // the tail of a line already refused
            }
            if line.is_empty() {
                continue;
            }
            // Pace: a token per line, refilled at `rate` per second.
            let now = Instant::now();
            tokens = (tokens + now.duration_since(refilled).as_secs_f64() * rate).min(burst);
            refilled = now;
            if tokens < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - tokens) / rate);
                tokio::time::sleep(wait).await;
                tokens = 1.0;
                refilled = Instant::now();
            }
            tokens -= 1.0;
            let bytes = if untagged_len(&line) > MAX_LINE - 2 {
                None
            } else {
                Some(line)
            };
            if to_core(core, Event::Line { id, bytes }).await.is_err() {
                return "Server shutting down".into();
            }
        }
        if buf.len() > MAX_RAW {
            buf.clear();
            overlong = true;
            if to_core(core, Event::Line { id, bytes: None })
                .await
                .is_err()
            {
                return "Server shutting down".into();
            }
        }
    }
}

/// A line's length without its IRCv3 tags, which have their own budget.
fn untagged_len(line: &[u8]) -> usize {
    if line.first() == Some(&b'@') {
        match line.iter().position(|b| *b == b' ') {
            Some(sp) => line.len() - sp - 1,
            None => 0,
        }
    } else {
        line.len()
    }
}
