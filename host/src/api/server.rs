//! The daemon's Unix socket server. Each connection gets a small pool of
//! worker threads and one finisher, so a client may pipeline requests: a
//! worker prepares a command and hands its op to the kernel, the finisher
//! waits for it to be durable and answers. Many commands so share one group
//! commit (one fsync) without a blocked thread per command in flight.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{MAX_FRAME, Request, RequestFrame, Response, ResponseFrame, service};
use crate::node::Node;

/// Workers per connection: how many of one client's requests are prepared
/// at once (CPU work; waiting for the disk is the finisher's).
const WORKERS_PER_CONNECTION: usize = 4;
/// Commands of one connection waiting for their commit.
const IN_FLIGHT_PER_CONNECTION: usize = 1024;

pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {MAX_FRAME}"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

pub fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(body)?;
    w.flush()
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    node: Arc<Node>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("a lattice daemon is already serving {0}")]
    AlreadyRunning(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
}

impl Server {
    /// Binds the socket (mode 0600). A socket file left by a killed daemon
    /// is detected (nothing answers) and replaced.
    pub fn bind(node: Arc<Node>, path: &Path) -> Result<Server, ServeError> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(ServeError::AlreadyRunning(path.to_path_buf()));
            }
            let _ = std::fs::remove_file(path);
        }
        let bind = |source| ServeError::Bind {
            path: path.to_path_buf(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind)?;
        }
        listener.set_nonblocking(true).map_err(bind)?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            node,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `stop` is set; then removes the socket file.
    pub fn serve(self, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let node = self.node.clone();
                    let _ = stream.set_nonblocking(false);
                    std::thread::spawn(move || {
                        if let Err(e) = serve_connection(node, stream) {
                            tracing::debug!(error = %e, "client connection ended");
                        }
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn send(w: &Mutex<BufWriter<UnixStream>>, id: u64, resp: Response) -> bool {
    let body = match serde_json::to_vec(&ResponseFrame { id, resp }) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode response");
            return false;
        }
    };
    let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
    write_frame(&mut *w, &body).is_ok()
}

fn serve_connection(node: Arc<Node>, stream: UnixStream) -> io::Result<()> {
    let writer = Arc::new(Mutex::new(BufWriter::new(stream.try_clone()?)));
    let mut reader = BufReader::new(stream);
    let (tx, rx) = crossbeam_channel::bounded::<RequestFrame>(WORKERS_PER_CONNECTION * 4);
    let (to_finish, finish) =
        crossbeam_channel::bounded::<(u64, service::Finish)>(IN_FLIGHT_PER_CONNECTION);
    let mut workers: Vec<_> = (0..WORKERS_PER_CONNECTION)
        .map(|_| {
            let (rx, node, writer) = (rx.clone(), node.clone(), writer.clone());
            let to_finish = to_finish.clone();
            std::thread::spawn(move || {
                for frame in rx {
                    // A sync with progress answers one frame per session
                    // as it goes, then the result, on this worker.
                    let id = frame.id;
                    if let Some(resp) = service::with_progress(&node, &frame.req, &mut |p| {
                        send(&writer, id, p);
                    }) {
                        if !send(&writer, id, resp) {
                            break;
                        }
                        continue;
                    }
                    match service::begin(&node, frame.req, true) {
                        service::Begun::Done(resp) => {
                            if !send(&writer, frame.id, resp) {
                                break;
                            }
                        }
                        service::Begun::Pending(f) => {
                            if to_finish.send((frame.id, f)).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    drop((rx, to_finish));
    let w = writer.clone();
    workers.push(std::thread::spawn(move || {
        // Commits complete in submission order, so waiting in order costs
        // nothing; a closed socket only stops the answers, not the commits.
        for (id, f) in finish {
            send(&w, id, f());
        }
    }));
    let result = loop {
        let body = match read_frame(&mut reader) {
            Ok(Some(b)) => b,
            Ok(None) => break Ok(()),
            Err(e) => {
                send(&writer, 0, Response::error(format!("bad frame: {e}")));
                break Err(e);
            }
        };
        let frame: RequestFrame = match serde_json::from_slice(&body) {
            Ok(f) => f,
            Err(e) => {
                // One clear error; the connection stays usable.
                send(
                    &writer,
                    0,
                    Response::error(format!("malformed request: {e}")),
                );
                continue;
            }
        };
        if let Request::Watch { store } = &frame.req {
            // A watch takes over the connection until the client leaves.
            let id = frame.id;
            let w = writer.clone();
            let r = service::watch(&node, store.as_deref(), |resp| send(&w, id, resp));
            if let Err(e) = r {
                send(&writer, id, Response::error(e));
            }
            break Ok(());
        }
        if tx.send(frame).is_err() {
            break Ok(());
        }
    };
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
    result
}
