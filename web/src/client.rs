//! A small blocking HTTP/1.1 client for this API: what `lattice bench
//! --http`, the end-to-end tests and the WebDriver session of the browser
//! test speak. One request per connection unless kept alive by the caller
//! ([`Conn`]); `Content-Length` and chunked bodies; no TLS (the face is
//! plain HTTP on loopback).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection.
pub struct Conn {
    host: String,
    rd: BufReader<TcpStream>,
    wr: TcpStream,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            host: addr.to_string(),
            rd: BufReader::new(s.try_clone()?),
            wr: s,
        })
    }

    /// Sends a request; `headers` may override `Host`.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut req = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.host));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.wr.write_all(&bytes)
    }

    /// Status line and headers of the next reply.
    pub fn head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        let mut line = String::new();
        self.rd.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("status {line:?}"))
            })?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.rd.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        Ok((status, headers))
    }

    /// One whole request and reply.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Reply> {
        self.send(method, path, headers, body)?;
        let (status, headers) = self.head()?;
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            while let Some(chunk) = self.chunk()? {
                body.extend(chunk);
            }
            body
        } else {
            let n: usize = get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; n];
            self.rd.read_exact(&mut body)?;
            body
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// The next chunk of a chunked body; `None` after the last.
    pub fn chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = String::new();
        self.rd.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("chunk {line:?}")))?;
        let mut data = vec![0u8; size + 2];
        self.rd.read_exact(&mut data)?;
        data.truncate(size);
        Ok((size > 0).then_some(data))
    }

    /// Reads a Server-Sent Events body (after [`Conn::head`]) and returns
    /// each `(event, data)` to `f` until it returns false or the stream ends.
    pub fn events(&mut self, mut f: impl FnMut(&str, &str) -> bool) -> io::Result<()> {
        let mut buf = String::new();
        while let Some(chunk) = self.chunk()? {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(i) = buf.find("\n\n") {
                let block: String = buf.drain(..i + 2).collect();
                let (mut event, mut data) = ("message".to_string(), String::new());
                for l in block.lines() {
                    if let Some(e) = l.strip_prefix("event:") {
                        event = e.trim().to_string();
                    } else if let Some(d) = l.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if block.lines().all(|l| l.starts_with(':') || l.is_empty()) {
                    continue;
                }
                if !f(&event, &data) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// One request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Reply> {
    Conn::open(addr)?.request(method, path, headers, body)
}
