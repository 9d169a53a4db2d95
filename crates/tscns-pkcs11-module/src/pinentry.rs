//! Asks for the PIN through a pinentry program speaking the Assuan protocol, as gpg-agent does
//! (`pinentry-gnome3`, `pinentry-qt`, `pinentry-curses`, ...): `SETTITLE`, `SETDESC`,
//! `SETPROMPT`, `GETPIN`, `BYE` (GnuPG's "Assuan" manual and pinentry's documentation).
//!
//! The PIN comes back in a `D` line, percent-escaped; it is held in zeroized memory only.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use zeroize::Zeroizing;

/// How long the citizen has to type the PIN.
pub const PIN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a pinentry may take to answer a command other than GETPIN.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// GPG_ERR_CANCELED (libgpg-error code 99), in the low 16 bits of an Assuan `ERR` code.
const GPG_ERR_CANCELED: u32 = 99;

/// What the pinentry answered.
pub enum Answer {
    /// The PIN as typed.
    Pin(Zeroizing<String>),
    /// The citizen pressed Cancel (or closed the window).
    Cancelled,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Answer::Pin(_) => "Pin(<redacted>)",
            Answer::Cancelled => "Cancelled",
        })
    }
}

/// Percent-escapes a text for an Assuan command argument (`%`, CR and LF).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes Assuan's percent-escaping of a `D` line; `None` for a bad escape.
pub fn unescape(data: &str) -> Option<Zeroizing<String>> {
    let b = data.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(b.len()));
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let s = std::str::from_utf8(&out).ok()?.to_owned();
    Some(Zeroizing::new(s))
}

struct Session {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Zeroizing<String>>,
}

impl Session {
    fn start(program: &Path) -> Result<Session, String> {
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start pinentry {}: {e}", program.display()))?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, o),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("pinentry has no pipes".into());
            }
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = Zeroizing::new(String::new());
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Session {
            child,
            stdin,
            lines: rx,
        })
    }

    /// Reads lines up to `OK` or `ERR`; returns the data lines and the final line.
    fn answer(&mut self, timeout: Duration) -> Result<(Vec<Zeroizing<String>>, String), String> {
        let mut data = Vec::new();
        loop {
            let line = match self.lines.recv_timeout(timeout) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    return Err("pinentry did not answer in time".into())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("pinentry ended without answering".into())
                }
            };
            let l = line.trim_end_matches(['\r', '\n']);
            if l == "OK" || l.starts_with("OK ") || l.starts_with("ERR") {
                return Ok((data, l.to_owned()));
            }
            if let Some(d) = l.strip_prefix("D ") {
                data.push(Zeroizing::new(d.to_owned()));
            }
            // "S" status lines, "#" comments and INQUIRE are not used by GETPIN.
        }
    }

    fn command(
        &mut self,
        cmd: &str,
        timeout: Duration,
    ) -> Result<(Vec<Zeroizing<String>>, String), String> {
        writeln!(self.stdin, "{cmd}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("cannot talk to pinentry: {e}"))?;
        self.answer(timeout)
    }

    fn end(mut self) {
        let _ = writeln!(self.stdin, "BYE");
        let _ = self.stdin.flush();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `program` once and asks for the PIN with `description` (the holder and tries left).
/// One call, one question: the caller never loops on a wrong PIN.
pub fn ask(program: &Path, title: &str, description: &str) -> Result<Answer, String> {
    let mut s = Session::start(program)?;
    let r = (|| {
        let (_, greeting) = s.answer(COMMAND_TIMEOUT)?;
        if !greeting.starts_with("OK") {
            return Err(format!("pinentry greeted with {greeting:?}"));
        }
        for cmd in [
            format!("SETTITLE {}", escape(title)),
            format!("SETDESC {}", escape(description)),
            "SETPROMPT PIN:".to_owned(),
        ] {
            let (_, end) = s.command(&cmd, COMMAND_TIMEOUT)?;
            if !end.starts_with("OK") {
                return Err(format!("pinentry refused a command: {end}"));
            }
        }
        let (data, end) = s.command("GETPIN", PIN_TIMEOUT)?;
        if let Some(code) = end.strip_prefix("ERR ") {
            let code: u32 = code
                .split(' ')
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if code & 0xFFFF == GPG_ERR_CANCELED {
                return Ok(Answer::Cancelled);
            }
            return Err(format!("pinentry failed: {end}"));
        }
        let mut pin = Zeroizing::new(String::new());
        for d in &data {
            let part = unescape(d).ok_or("pinentry sent a malformed D line")?;
            pin.push_str(&part);
        }
        if pin.is_empty() {
            return Ok(Answer::Cancelled);
        }
        Ok(Answer::Pin(pin))
    })();
    s.end();
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes() {
        assert_eq!(escape("100% of\nyou"), "100%25 of%0Ayou");
        assert_eq!(unescape("12%2534").unwrap().as_str(), "12%34");
        assert!(unescape("12%2").is_none());
        assert!(unescape("%zz").is_none());
    }

    proptest! {
        #[test]
        fn escape_round_trips(s in ".*") {
            let back = unescape(&escape(&s)).unwrap();
            prop_assert_eq!(back.as_str(), s.as_str());
        }

        #[test]
        fn unescape_never_panics(s in ".*") {
            let _ = unescape(&s);
        }
    }
}
