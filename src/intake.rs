//! What arrived, as bytes: a message taken in header by header and chunk by chunk within the
//! `[milter]` limits, with LF turned into CRLF and forged copies of our headers noted. The
//! milter feeds it from the MTA's callbacks; `spoofguard check` feeds it from a file, so both
//! hand `evaluate` the same [`Input`](crate::evaluate::Input) for the same message.
//!
//! Pure code: no I/O, no logging above debug, no milter types.

use crate::config::Config;
use crate::evaluate::Input;
use crate::header::{self, OWN_X_HEADERS};
use std::collections::HashMap;
use tracing::debug;

/// Forged copies of our headers remembered for deletion per message. Past it the message is
/// refused (550 5.7.1): no real message carries a thousand forged results, and leaving some
/// undeleted would let them through.
pub const MAX_FORGED: usize = 1000;

/// The limits a message is taken in with (from `[milter]` and `[auth]`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub max_dkim_signatures: usize,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &Config) -> Limits {
        Limits {
            max_message_bytes: config.milter.max_message_bytes,
            max_headers: config.milter.max_headers,
            max_header_bytes: config.milter.max_header_bytes,
            max_dkim_signatures: config.auth.max_dkim_signatures,
        }
    }
}

/// A forged header to delete: its name as received and its 1-based index among the fields
/// of that name (the numbering `change_header` uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forged {
    pub name: String,
    pub index: i32,
}

/// One message being taken in.
#[derive(Debug)]
pub struct Intake {
    limits: Limits,
    raw: Vec<u8>,
    /// Why the message is over a limit and will not be verified, once it is.
    oversize: Option<String>,
    /// Header fields and DKIM-Signature fields seen so far.
    headers: usize,
    dkim_signatures: usize,
    /// The body has started (headers were terminated with an empty line).
    in_body: bool,
    /// The previous body chunk ended in CR (for LF to CRLF across chunks).
    last_cr: bool,
    /// Occurrences seen so far, by lowercase header name: only the names we may delete or
    /// change (Authentication-Results, ours, Subject), so the map stays a few entries long.
    seen: HashMap<String, i32>,
    /// More than [`MAX_FORGED`] forged headers arrived; the message will be refused.
    forged_overflow: bool,
    forged: Vec<Forged>,
    /// The first Subject header's value (for the subject tag).
    subject: Option<String>,
}

impl Intake {
    pub fn new(limits: Limits) -> Intake {
        Intake {
            limits,
            raw: Vec::with_capacity(8192.min(limits.max_message_bytes)),
            oversize: None,
            headers: 0,
            dkim_signatures: 0,
            in_body: false,
            last_cr: false,
            seen: HashMap::new(),
            forged_overflow: false,
            forged: Vec::new(),
            subject: None,
        }
    }

    /// Takes in a whole message from its bytes (any line endings), as an MTA would hand it
    /// over: header fields one by one (value with its leading space), then the body.
    pub fn from_message(limits: Limits, raw: &[u8], authserv_id: &str) -> Intake {
        let mut intake = Intake::new(limits);
        let (fields, body) = split_header_fields(raw);
        for (name, value) in fields {
            intake.add_header(name, value, authserv_id, true);
        }
        intake.end_of_headers();
        if let Some(body) = body {
            intake.add_body(body);
        }
        intake
    }

    /// Appends one header field as received and notes forged copies of ours: our X-headers
    /// always, Authentication-Results when it claims `authserv_id` (RFC 8601, section 5).
    /// `leading_space`: `value` starts with the space after the colon (SMFIP_HDR_LEADSPC).
    pub fn add_header(
        &mut self,
        name: &[u8],
        value: &[u8],
        authserv_id: &str,
        leading_space: bool,
    ) {
        let lname = String::from_utf8_lossy(name).to_ascii_lowercase();
        let is_ar = lname == "authentication-results";
        let is_ours = OWN_X_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(&lname));
        let is_subject = lname == "subject";
        if is_ar || is_ours || is_subject {
            let index = {
                let n = self.seen.entry(lname.clone()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            };
            let value_text = String::from_utf8_lossy(value);
            let forged = is_ours
                || (is_ar && header::authserv_id_of(&value_text).as_deref() == Some(authserv_id));
            if forged {
                if self.forged.len() < MAX_FORGED {
                    self.forged.push(Forged {
                        name: String::from_utf8_lossy(name).into_owned(),
                        index,
                    });
                } else {
                    self.forged_overflow = true;
                }
            } else if is_subject && self.subject.is_none() {
                self.subject = Some(value_text.trim_start().to_owned());
            }
        }
        self.headers += 1;
        if self.oversize.is_some() {
            return;
        }
        let limits = self.limits;
        if self.headers > limits.max_headers {
            self.mark_oversize(format!("more than {} header fields", limits.max_headers));
            return;
        }
        if name.len() + value.len() > limits.max_header_bytes {
            self.mark_oversize(format!(
                "a header field larger than {} bytes",
                limits.max_header_bytes
            ));
            return;
        }
        if lname == "dkim-signature" {
            self.dkim_signatures += 1;
            if self.dkim_signatures > limits.max_dkim_signatures {
                // Bounds the crypto and DNS work one message can cause; the field is still
                // delivered, it is only left out of what we verify.
                debug!(
                    signature = self.dkim_signatures,
                    max_dkim = limits.max_dkim_signatures,
                    "DKIM signature not verified: over the limit"
                );
                return;
            }
        }
        let mut line = Vec::with_capacity(name.len() + value.len() + 4);
        line.extend_from_slice(name);
        line.push(b':');
        if !leading_space {
            line.push(b' ');
        }
        // The MTA joins folded lines with LF; DKIM hashes them as CRLF.
        push_crlf(&mut line, value, &mut false);
        line.extend_from_slice(b"\r\n");
        let max = limits.max_message_bytes;
        if self.raw.len() + line.len() > max {
            self.mark_oversize(format!("larger than {max} bytes"));
        } else {
            reserve_capped(&mut self.raw, line.len(), max);
            self.raw.extend_from_slice(&line);
        }
    }

    /// The empty line after the header section.
    pub fn end_of_headers(&mut self) {
        if self.oversize.is_none() && !self.in_body {
            self.raw.extend_from_slice(b"\r\n");
            self.in_body = true;
        }
    }

    /// Appends a body chunk. Returns `true` once the message is over a limit: the rest of
    /// the body is not needed (the milter may then ask the MTA to skip it).
    pub fn add_body(&mut self, chunk: &[u8]) -> bool {
        let max = self.limits.max_message_bytes;
        if !self.in_body && self.oversize.is_none() {
            self.raw.extend_from_slice(b"\r\n");
            self.in_body = true;
        }
        if self.oversize.is_none() && self.raw.len() + chunk.len() > max {
            self.mark_oversize(format!("larger than {max} bytes"));
        }
        if self.oversize.is_some() {
            return true;
        }
        let mut last_cr = self.last_cr;
        reserve_capped(&mut self.raw, chunk.len(), max);
        push_crlf(&mut self.raw, chunk, &mut last_cr);
        self.last_cr = last_cr;
        // Bare LFs grow by one byte each: check the limit on what was buffered.
        if self.raw.len() > max {
            self.mark_oversize(format!("larger than {max} bytes"));
            return true;
        }
        false
    }

    /// What arrived, for `evaluate`: a forged-header overflow, an oversize message or the
    /// message itself (CRLF line endings).
    pub fn input(&self) -> Input<'_> {
        if self.forged_overflow {
            Input::ForgedOverflow
        } else if let Some(why) = &self.oversize {
            Input::Oversize(why)
        } else {
            Input::Message(&self.raw)
        }
    }

    /// Takes the buffered bytes out (for a task that must own them); `input` then sees an
    /// empty message.
    pub fn take_raw(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.raw)
    }

    /// Forged copies of our headers, in arrival order.
    pub fn forged(&self) -> &[Forged] {
        &self.forged
    }

    /// The first Subject's value as received (leading space removed), if any arrived.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Whether any Subject header field arrived (forged or not).
    pub fn has_subject(&self) -> bool {
        self.seen.contains_key("subject")
    }

    fn mark_oversize(&mut self, why: String) {
        self.oversize = Some(why);
        // The bytes so far are useless without the rest: give the memory back now.
        self.raw = Vec::new();
    }
}

/// A header field's name and value as an MTA hands them over.
type Field<'a> = (&'a [u8], &'a [u8]);

/// Splits a message into header fields (name, value with its leading whitespace and inner
/// line breaks) and the body after the empty line, as an MTA hands them to a milter.
/// A header section that never ends leaves no body; a line without a colon ends the headers.
fn split_header_fields(raw: &[u8]) -> (Vec<Field<'_>>, Option<&[u8]>) {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let line_end = next_line(raw, pos);
        let line = trim_eol(&raw[pos..line_end]);
        if line.is_empty() {
            return (fields, Some(&raw[line_end..]));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            // Not a header field: the body starts here (as Postfix treats it).
            return (fields, Some(&raw[pos..]));
        };
        let name = &line[..colon];
        let value_start = pos + colon + 1;
        let mut end = line_end;
        while end < raw.len() && matches!(raw[end], b' ' | b'\t') {
            end = next_line(raw, end);
        }
        fields.push((name, trim_eol(&raw[value_start..end])));
        pos = end;
    }
    (fields, None)
}

/// Index just past the LF ending the line that starts at `from` (or the end of `raw`).
fn next_line(raw: &[u8], from: usize) -> usize {
    raw[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |i| from + i + 1)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// LF line endings to CRLF, as an MTA hands a message over (existing CRLF kept).
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    push_crlf(&mut out, raw, &mut false);
    out
}

/// Appends `data`, turning bare LF into CRLF; `last_cr` carries a trailing CR across calls.
/// Copies whole lines at a time (the MTA normally sends CRLF already).
pub fn push_crlf(out: &mut Vec<u8>, data: &[u8], last_cr: &mut bool) {
    let Some(&last) = data.last() else { return };
    out.reserve(data.len());
    let mut prev_cr = *last_cr;
    let mut rest = data;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let cr_before = if i == 0 {
            prev_cr
        } else {
            rest[i - 1] == b'\r'
        };
        out.extend_from_slice(&rest[..i]);
        if !cr_before {
            out.push(b'\r');
        }
        out.push(b'\n');
        prev_cr = false;
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    *last_cr = last == b'\r';
}

/// Makes room for `additional` more bytes without letting the capacity grow past `max` plus
/// `additional` (a doubling `Vec` would reach up to twice `max_message_bytes`).
fn reserve_capped(buf: &mut Vec<u8>, additional: usize, max: usize) {
    let needed = buf.len() + additional;
    if needed > buf.capacity() {
        let target = (buf.capacity() * 2).max(needed).min(max.max(needed));
        buf.reserve_exact(target - buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_message_bytes: 10_000,
            max_headers: 50,
            max_header_bytes: 1000,
            max_dkim_signatures: 2,
        }
    }

    #[test]
    fn push_crlf_converts_bare_lf_across_chunks() {
        let mut out = Vec::new();
        let mut cr = false;
        push_crlf(&mut out, b"a\nb\r", &mut cr);
        push_crlf(&mut out, b"\nc\r\n", &mut cr);
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn to_crlf_keeps_existing_crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }

    /// The line-at-a-time copy gives the same bytes as the one-byte-at-a-time rule, for every
    /// way of cutting the input into two chunks.
    #[test]
    fn push_crlf_matches_bytewise_rule() {
        fn bytewise(data: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut last_cr = false;
            for &b in data {
                if b == b'\n' && !last_cr {
                    out.push(b'\r');
                }
                out.push(b);
                last_cr = b == b'\r';
            }
            out
        }
        let inputs: [&[u8]; 6] = [
            b"",
            b"\n\n\r\n\r\r\n",
            b"line one\r\nline two\nthree\r",
            b"\rabc\n\r\n\n",
            b"no newline at all",
            b"\r\n\r\n.\r\n",
        ];
        for input in inputs {
            for cut in 0..=input.len() {
                let mut out = Vec::new();
                let mut cr = false;
                push_crlf(&mut out, &input[..cut], &mut cr);
                push_crlf(&mut out, &input[cut..], &mut cr);
                assert_eq!(out, bytewise(input), "input {input:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn reserve_capped_never_exceeds_the_limit() {
        let max = 100_000;
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        while buf.len() + 1000 <= max {
            reserve_capped(&mut buf, 1000, max);
            buf.extend_from_slice(&[b'x'; 1000]);
            assert!(buf.capacity() <= max, "capacity {} > {max}", buf.capacity());
        }
        // A request past the limit still gets exactly what it asks for.
        reserve_capped(&mut buf, 5000, max);
        assert!(buf.capacity() >= buf.len() + 5000);
    }

    #[test]
    fn from_message_rebuilds_the_message_in_crlf() {
        let raw = b"From: a@example.org\nSubject: hello\n\tworld\nX-Empty:\n\nbody line\n";
        let intake = Intake::from_message(limits(), raw, "mx.test");
        let Input::Message(bytes) = intake.input() else {
            panic!("not a message: {:?}", intake.input());
        };
        assert_eq!(
            bytes,
            b"From: a@example.org\r\nSubject: hello\r\n\tworld\r\nX-Empty:\r\n\r\nbody line\r\n"
        );
        assert_eq!(intake.subject(), Some("hello\n\tworld"));
        assert!(intake.has_subject());
    }

    #[test]
    fn split_header_fields_handles_no_body_and_no_colon() {
        let (fields, body) = split_header_fields(b"A: 1\r\nB: 2");
        assert_eq!(
            fields,
            vec![(&b"A"[..], &b" 1"[..]), (&b"B"[..], &b" 2"[..])]
        );
        assert_eq!(body, None);
        let (fields, body) = split_header_fields(b"A: 1\nnot a header\nmore\n");
        assert_eq!(fields, vec![(&b"A"[..], &b" 1"[..])]);
        assert_eq!(body, Some(&b"not a header\nmore\n"[..]));
    }

    #[test]
    fn forged_headers_are_numbered_per_name_and_capped() {
        let mut intake = Intake::new(limits());
        intake.add_header(
            b"Authentication-Results",
            b" other.test; spf=pass",
            "mx.test",
            true,
        );
        intake.add_header(
            b"Authentication-Results",
            b" MX.test; spf=pass",
            "mx.test",
            true,
        );
        intake.add_header(b"X-Spoofguard-Score", b" 0.0", "mx.test", true);
        assert_eq!(
            intake.forged(),
            &[
                Forged {
                    name: "Authentication-Results".into(),
                    index: 2
                },
                Forged {
                    name: "X-Spoofguard-Score".into(),
                    index: 1
                }
            ]
        );
        let mut flood = Intake::new(Limits {
            max_headers: 5000,
            ..limits()
        });
        for _ in 0..=MAX_FORGED {
            flood.add_header(b"X-Spoofguard-Verdict", b" accept", "mx.test", true);
        }
        assert_eq!(flood.forged().len(), MAX_FORGED);
        assert!(matches!(flood.input(), Input::ForgedOverflow));
    }

    #[test]
    fn limits_make_the_message_oversize() {
        let mut intake = Intake::new(limits());
        for i in 0..3 {
            intake.add_header(
                b"DKIM-Signature",
                format!(" v=1; i={i}").as_bytes(),
                "",
                true,
            );
        }
        // The third signature is over max_dkim_signatures: kept out of what is verified.
        assert!(
            matches!(intake.input(), Input::Message(m) if m.windows(3).filter(|w| w == b"i=2").count() == 0)
        );
        intake.end_of_headers();
        assert!(!intake.add_body(&[b'x'; 5000]));
        assert!(intake.add_body(&[b'x'; 5000]));
        assert!(matches!(
            intake.input(),
            Input::Oversize("larger than 10000 bytes")
        ));
        let mut wide = Intake::new(limits());
        wide.add_header(b"X-Big", &[b'y'; 1200], "", true);
        assert!(matches!(
            wide.input(),
            Input::Oversize("a header field larger than 1000 bytes")
        ));
    }
}
