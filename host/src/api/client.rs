//! A blocking client for the daemon socket.

use std::io::{self, BufReader, BufWriter};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::server::{read_frame, write_frame};
use super::{Request, RequestFrame, Response, ResponseFrame};

pub struct Client {
    reader: BufReader<UnixStream>,
    writer: BufWriter<UnixStream>,
    next_id: u64,
}

impl Client {
    /// Connects to a running daemon; fails (ENOENT, ECONNREFUSED) if none.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: BufWriter::new(stream),
            next_id: 1,
        })
    }

    /// Sends a request without waiting; returns its id.
    pub fn send(&mut self, req: Request) -> io::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let body = serde_json::to_vec(&RequestFrame { id, req }).map_err(io::Error::other)?;
        write_frame(&mut self.writer, &body)?;
        Ok(id)
    }

    /// The next response frame, in completion order.
    pub fn recv(&mut self) -> io::Result<ResponseFrame> {
        let body = read_frame(&mut self.reader)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection",
            )
        })?;
        serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// One request, one response.
    pub fn call(&mut self, req: Request) -> io::Result<Response> {
        let id = self.send(req)?;
        loop {
            let f = self.recv()?;
            if f.id == id || f.id == 0 {
                return Ok(f.resp);
            }
        }
    }
}
