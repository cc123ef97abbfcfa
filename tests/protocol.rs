//! Protocol abuse and connection limits (issue 7): malformed and oversized packets, commands
//! out of order, disconnects, abort then continue, QUIT_NC, floods past `max_connections`, and
//! idle or slow clients past `connection_timeout_secs`.
//!
//! Where indymilter-test cannot express the abuse, raw packets go over a plain socket: a
//! 4-byte big-endian length (of the command byte and payload), the command byte, the payload.
//! Every test keeps another connection (a `Bystander`) in the middle of a message while the
//! abuse happens, and checks that it then completes with exactly the expected result.

use crate::common::*;
use indymilter::message::{self, reply::Reply};
use indymilter::{Actions, MacroStage, ProtoOpts};
use indymilter_test::{EomAction, Status, TestConnection};
use spoofguard::milter::SharedRuntime;
use std::ffi::CString;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

/// The bound on anything that should happen at once; generous for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// The largest packet indymilter reads: 1 MiB − 1 bytes of payload, plus the command byte.
const MAX_PACKET_LEN: u32 = 1024 * 1024;

/// Packets to send, and how many replies they get.
type Packets = (Vec<u8>, usize);

/// One packet: length (command byte + payload), command byte, payload.
fn frame(cmd: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len() + 1).unwrap();
    let mut packet = len.to_be_bytes().to_vec();
    packet.push(cmd);
    packet.extend_from_slice(payload);
    packet
}

/// NUL-terminated strings, one after the other.
fn cstrs(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p);
        out.push(0);
    }
    out
}

fn optneg(version: u32, actions: u32, opts: u32) -> Vec<u8> {
    let mut payload = version.to_be_bytes().to_vec();
    payload.extend_from_slice(&actions.to_be_bytes());
    payload.extend_from_slice(&opts.to_be_bytes());
    frame(b'O', &payload)
}

/// What an MTA such as Postfix offers: protocol 6, every action and option.
fn offer() -> Vec<u8> {
    optneg(6, Actions::all().bits(), ProtoOpts::all().bits())
}

fn conninfo(ip: &str) -> Vec<u8> {
    let mut payload = cstrs(&[b"client.example"]);
    payload.push(b'4');
    payload.extend_from_slice(&40000u16.to_be_bytes());
    payload.extend_from_slice(&cstrs(&[ip.as_bytes()]));
    frame(b'C', &payload)
}

fn helo(name: &str) -> Vec<u8> {
    frame(b'H', &cstrs(&[name.as_bytes()]))
}

fn mail(addr: &str) -> Vec<u8> {
    frame(b'M', &cstrs(&[format!("<{addr}>").as_bytes()]))
}

fn rcpt() -> Vec<u8> {
    frame(b'R', &cstrs(&[b"<bob@rcpt.example>"]))
}

fn header(name: &str, value: &str) -> Vec<u8> {
    frame(b'L', &cstrs(&[name.as_bytes(), value.as_bytes()]))
}

fn macros(stage: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![stage];
    p.extend_from_slice(payload);
    frame(b'D', &p)
}

/// The packets of one message after the envelope (headers as the MTA sends them with
/// SMFIP_HDR_LEADSPC, body in CRLF, end of message), and how many `Continue` replies come
/// before the end-of-message replies.
fn content(raw: &str) -> Packets {
    let (headers, body) = split_message(raw);
    let mut out = Vec::new();
    for (name, value) in &headers {
        out.extend(header(name, value));
    }
    out.extend(frame(b'N', b""));
    out.extend(frame(b'B', body.as_bytes()));
    out.extend(frame(b'E', b""));
    (out, headers.len() + 2)
}

/// A whole transaction from MAIL on, and how many `Continue` replies come before the
/// end-of-message replies.
fn transaction(mail_from: &str, raw: &str) -> Packets {
    let mut out = mail(mail_from);
    out.extend(rcpt());
    out.extend(frame(b'T', b""));
    let (rest, n) = content(raw);
    out.extend(rest);
    (out, n + 3)
}

/// The message every "it still works" check sends: plain.eml signed with Ed25519.
fn signed() -> String {
    sign(&eml("plain.eml"), "sender.example", "ed", true)
}

/// The first 8 characters of the `b=` tag of the first DKIM-Signature (RFC 6008).
fn b_tag(signed: &str) -> String {
    let (headers, _) = split_message(signed);
    let (_, value) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("DKIM-Signature"))
        .unwrap();
    let b = value
        .split(';')
        .map(|t| t.split_whitespace().collect::<String>())
        .find_map(|t| t.strip_prefix("b=").map(str::to_owned))
        .unwrap();
    b[..8].to_owned()
}

/// The end-of-message actions of `signed()` from 192.0.2.10, as the raw client sees them.
fn pass_replies(b: &str) -> Vec<Reply> {
    let c = |s: &str| CString::new(s).unwrap();
    vec![
        Reply::InsertHeader {
            index: 0,
            name: c("Authentication-Results"),
            value: c(&format!(
                " {AUTHSERV_ID};\n\tspf=pass smtp.mailfrom=alice@sender.example;\n\t\
                 dkim=pass header.d=sender.example header.s=ed header.a=ed25519-sha256 \
                 header.b={b};\n\tarc=none;\n\tdmarc=pass (p=reject dis=none) \
                 header.from=sender.example policy.dmarc=reject"
            )),
        },
        Reply::AddHeader {
            name: c("X-Spoofguard-Score"),
            value: c(" 0.0"),
        },
        Reply::AddHeader {
            name: c("X-Spoofguard-Verdict"),
            value: c(" accept"),
        },
        Reply::AddHeader {
            name: c("X-Spoofguard-Reasons"),
            value: c(" none"),
        },
        Reply::Continue,
    ]
}

/// The same actions as indymilter-test reports them.
fn pass_actions(b: &str) -> Vec<EomAction> {
    pass_replies(b)
        .into_iter()
        .filter_map(|r| match r {
            Reply::InsertHeader { index, name, value } => {
                Some(EomAction::InsertHeader { index, name, value })
            }
            Reply::AddHeader { name, value } => Some(EomAction::AddHeader { name, value }),
            _ => None,
        })
        .collect()
}

/// Sessions alive in `milter`: each holds the runtime it negotiated with, and so does the
/// shared slot (plus the clone taken here). The `spoofguard_connections_open` gauge lives and
/// dies with the same session, so this counts what it counts, without a global recorder
/// that the tests running in parallel would disturb.
fn sessions(shared: &SharedRuntime) -> usize {
    Arc::strong_count(&spoofguard::milter::current(shared)) - 2
}

/// Waits (at most `PATIENCE`) until exactly `n` sessions are alive.
async fn wait_sessions(shared: &SharedRuntime, n: usize) {
    let start = Instant::now();
    while sessions(shared) != n {
        assert!(
            start.elapsed() < PATIENCE,
            "{} sessions alive, expected {n}",
            sessions(shared)
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// A raw milter client on one TCP connection.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    /// Connected (the TCP handshake is done by the kernel even when the milter does not
    /// accept yet), nothing sent.
    async fn connect(milter: &Milter) -> Raw {
        let stream = timeout(PATIENCE, TcpStream::connect(milter.addr))
            .await
            .expect("connect in time")
            .expect("connection accepted by the kernel");
        stream.set_nodelay(true).unwrap();
        Raw { stream }
    }

    /// Connected and negotiated as Postfix does.
    async fn open(milter: &Milter) -> Raw {
        let mut raw = Raw::connect(milter).await;
        raw.send(&offer()).await;
        assert_our_optneg(&raw.reply().await, 6);
        raw
    }

    /// CONNECT and HELO for `ip`, both answered with Continue.
    async fn greet(&mut self, ip: &str) {
        self.send(&conninfo(ip)).await;
        self.send(&helo("mail.sender.example")).await;
        self.continues(2).await;
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    async fn reply(&mut self) -> Reply {
        let msg = timeout(PATIENCE, message::read(&mut self.stream))
            .await
            .expect("a reply in time")
            .expect("a reply, not a closed connection");
        Reply::parse_reply(msg).expect("a valid reply")
    }

    async fn continues(&mut self, n: usize) {
        for i in 0..n {
            assert_eq!(self.reply().await, Reply::Continue, "reply {i} of {n}");
        }
    }

    /// Sends `signed()` from MAIL to end of message and checks every reply.
    async fn pass(&mut self) {
        let msg = signed();
        let (packets, n) = transaction("alice@sender.example", &msg);
        self.send(&packets).await;
        self.continues(n).await;
        for expected in pass_replies(&b_tag(&msg)) {
            assert_eq!(self.reply().await, expected);
        }
    }

    /// Waits for the milter to close the connection and returns how long that took. Fails on
    /// any byte received (no reply may come first) or when nothing happens within `PATIENCE`.
    async fn closed(&mut self, what: &str) -> Duration {
        let start = Instant::now();
        let mut buf = [0u8; 256];
        match timeout(PATIENCE, self.stream.read(&mut buf)).await {
            Ok(Ok(0)) => start.elapsed(),
            Ok(Ok(n)) => panic!(
                "{what}: expected the connection closed, got {:?}",
                &buf[..n]
            ),
            Ok(Err(e)) => panic!("{what}: expected a clean close (EOF), got {e}"),
            Err(_) => panic!("{what}: connection still open after {PATIENCE:?}"),
        }
    }

    /// Asserts that nothing arrives (no reply, no close) for `d`.
    async fn silent_for(&mut self, d: Duration) {
        let mut buf = [0u8; 256];
        if let Ok(r) = timeout(d, self.stream.read(&mut buf)).await {
            panic!("expected silence for {d:?}, got {r:?}");
        }
    }

    /// Half-closes: the milter reads EOF, we can still read what it sends.
    async fn shutdown_write(&mut self) {
        self.stream.shutdown().await.unwrap();
    }
}

/// The negotiation reply spoofguard gives an MTA that offers everything.
fn assert_our_optneg(reply: &Reply, expected_version: u32) {
    let Reply::OptNeg {
        version,
        actions,
        opts,
        macros,
    } = reply
    else {
        panic!("expected an option negotiation reply, got {reply:?}");
    };
    assert_eq!(*version, expected_version);
    assert_eq!(
        *actions,
        Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::QUARANTINE
    );
    assert_eq!(*opts, ProtoOpts::LEADING_SPACE | ProtoOpts::SKIP);
    assert_eq!(
        macros.get(&MacroStage::Mail).map(|m| m.to_str().unwrap()),
        Some("i {auth_authen} {auth_type} {mail_addr}")
    );
}

/// A well-behaved connection, opened before the abuse and left in the middle of a message.
struct Bystander {
    conn: TestConnection,
    headers: Vec<(String, String)>,
    body: String,
    next: usize,
    b: String,
    started: Instant,
}

impl Bystander {
    /// Negotiated, greeted, envelope and DATA sent, and the first header fields. The message
    /// is `signed()` under sixty trace fields (not signed, as a relay would add them), so
    /// that `step` can keep the session busy for a while.
    async fn start(milter: &Milter) -> Bystander {
        Bystander::start_on(milter.connect().await).await
    }

    /// As `start`, on a connection opened elsewhere.
    async fn start_on(mut conn: TestConnection) -> Bystander {
        let msg = signed();
        let mut traced = String::new();
        for i in 0..60 {
            traced.push_str(&format!(
                "Received: from relay{i}.example by mx.example; Mon, 23 Nov 2026 09:00:{i:02} +0000\r\n"
            ));
        }
        traced.push_str(&msg);
        let (headers, body) = split_message(&traced);
        greet(&mut conn, &Envelope::default()).await;
        assert_eq!(
            conn.mail(["<alice@sender.example>"]).await.unwrap(),
            Status::Continue
        );
        assert_eq!(
            conn.rcpt(["<bob@rcpt.example>"]).await.unwrap(),
            Status::Continue
        );
        assert_eq!(conn.data().await.unwrap(), Status::Continue);
        let mut by = Bystander {
            conn,
            headers,
            body,
            next: 0,
            b: b_tag(&msg),
            started: Instant::now(),
        };
        by.step().await;
        by.step().await;
        by
    }

    /// Sends the next header field; false when none is left.
    async fn step(&mut self) -> bool {
        let Some((name, value)) = self.headers.get(self.next).cloned() else {
            return false;
        };
        self.next += 1;
        assert_eq!(
            self.conn.header(name, value).await.unwrap(),
            Status::Continue
        );
        true
    }

    /// Sends one header field every 200 ms until `until` completes, and returns its output:
    /// a client busy for longer than the idle time-out in total, but never idle that long.
    async fn busy_until<T>(&mut self, until: impl Future<Output = T>) -> T {
        tokio::pin!(until);
        loop {
            tokio::select! {
                out = &mut until => return out,
                () = sleep(Duration::from_millis(200)) => {
                    assert!(self.step().await, "the bystander ran out of header fields");
                }
            }
        }
    }

    /// The rest of the message; asserts the exact result and closes. Returns how long the
    /// session lasted.
    async fn finish(mut self) -> Duration {
        while self.step().await {}
        assert_eq!(self.conn.eoh().await.unwrap(), Status::Continue);
        assert_eq!(
            self.conn
                .body(self.body.clone().into_bytes())
                .await
                .unwrap(),
            Status::Continue
        );
        self.conn
            .macros(MacroStage::Eom, [("i", "BYSTANDER")])
            .await
            .unwrap();
        let (actions, status) = self.conn.eom().await.unwrap();
        assert_eq!(status, Status::Continue);
        assert_eq!(actions.actions, pass_actions(&self.b));
        let lasted = self.started.elapsed();
        self.conn.close().await.unwrap();
        lasted
    }
}

/// Packet lengths at and past indymilter's limit, a zero length, unknown command bytes:
/// each closes only its own connection.
#[tokio::test]
async fn oversized_zero_length_and_unknown_packets_close_only_their_connection() {
    let milter = Milter::spawn(&config("")).await;
    let by = Bystander::start(&milter).await;
    wait_sessions(&milter.shared, 1).await;

    // The largest packet indymilter reads (1 MiB − 1 bytes of payload) is answered.
    let mut raw = Raw::open(&milter).await;
    raw.greet("192.0.2.10").await;
    raw.send(&mail("alice@sender.example")).await;
    raw.send(&rcpt()).await;
    raw.send(&frame(b'T', b"")).await;
    raw.continues(3).await;
    let name = b"X-Big";
    let value = vec![b'v'; MAX_PACKET_LEN as usize - 1 - name.len() - 2];
    let big = frame(b'L', &cstrs(&[name, &value]));
    assert_eq!(big.len(), 4 + MAX_PACKET_LEN as usize);
    raw.send(&big).await;
    raw.continues(1).await;
    // One byte more: indymilter refuses it from the length alone and closes the connection
    // without reading the payload and without a reply.
    let mut over = (MAX_PACKET_LEN + 1).to_be_bytes().to_vec();
    over.push(b'L');
    raw.send(&over).await;
    raw.closed("length 1 MiB + 1").await;

    // The largest length there is, before negotiation.
    let mut raw = Raw::connect(&milter).await;
    let mut huge = u32::MAX.to_be_bytes().to_vec();
    huge.push(b'O');
    raw.send(&huge).await;
    raw.closed("length 2^32 - 1").await;

    // A zero length still reads the next byte as the command (as if the length were 1):
    // here DATA, answered. A zero length with nothing after it waits for that byte and ends
    // at the close.
    let mut raw = Raw::open(&milter).await;
    raw.greet("192.0.2.10").await;
    raw.send(&mail("alice@sender.example")).await;
    raw.send(&rcpt()).await;
    raw.continues(2).await;
    raw.send(b"\0\0\0\0T").await;
    raw.continues(1).await;
    raw.send(b"\0\0\0\0").await;
    raw.silent_for(Duration::from_millis(300)).await;
    raw.shutdown_write().await;
    raw.closed("zero length, then EOF").await;

    // Unknown command bytes, before and after negotiation, with and without payload.
    for (negotiated, packet) in [
        (false, frame(b'X', b"payload")),
        (true, frame(b'X', b"")),
        (true, frame(0, b"\0\0\0")),
        (true, frame(0xff, b"payload")),
        // Reply codes are not commands.
        (true, frame(b'c', b"")),
    ] {
        let mut raw = if negotiated {
            Raw::open(&milter).await
        } else {
            Raw::connect(&milter).await
        };
        raw.send(&packet).await;
        raw.closed(&format!("command byte {}", packet[4])).await;
    }

    wait_sessions(&milter.shared, 1).await;
    by.finish().await;
    let mut raw = Raw::open(&milter).await;
    raw.greet("192.0.2.10").await;
    raw.pass().await;
    milter.shutdown().await;
}

/// Payloads that do not parse close the connection without a reply; the message in progress
/// is dropped with its session.
#[tokio::test]
async fn malformed_payloads_close_the_connection_without_a_reply() {
    let milter = Milter::spawn(&config("")).await;
    let by = Bystander::start(&milter).await;
    wait_sessions(&milter.shared, 1).await;

    // (case, the packets that reach the state and how many replies they get, the bad packet)
    let in_message = || {
        let mut p = conninfo("192.0.2.10");
        p.extend(helo("mail.sender.example"));
        p.extend(mail("alice@sender.example"));
        p.extend(rcpt());
        p.extend(frame(b'T', b""));
        (p, 5)
    };
    let greeted = || {
        let mut p = conninfo("192.0.2.10");
        p.extend(helo("mail.sender.example"));
        (p, 2)
    };
    let negotiated = || (Vec::new(), 0);
    let connected = || (conninfo("192.0.2.10"), 1);
    let mut bad_family = cstrs(&[b"client.example"]);
    bad_family.push(b'Z');
    let mut bad_addr = cstrs(&[b"client.example"]);
    bad_addr.push(b'4');
    bad_addr.extend_from_slice(&25u16.to_be_bytes());
    bad_addr.extend_from_slice(&cstrs(&[b"not-an-address"]));
    let mut no_port = cstrs(&[b"client.example"]);
    no_port.push(b'6');
    let cases: Vec<(&str, Packets, Vec<u8>)> = vec![
        (
            "header without NUL terminators",
            in_message(),
            frame(b'L', b"Subject: hello"),
        ),
        (
            "header with one NUL",
            in_message(),
            frame(b'L', b"Subject\0hello"),
        ),
        (
            "header with no value",
            in_message(),
            frame(b'L', b"Subject\0"),
        ),
        (
            "header with empty name",
            in_message(),
            frame(b'L', b"\0hello\0"),
        ),
        ("header with empty payload", in_message(), frame(b'L', b"")),
        (
            "MAIL without NUL",
            greeted(),
            frame(b'M', b"<alice@sender.example>"),
        ),
        ("MAIL with empty payload", greeted(), frame(b'M', b"")),
        (
            "HELO without NUL",
            connected(),
            frame(b'H', b"mail.sender.example"),
        ),
        (
            "CONNECT with unknown family",
            negotiated(),
            frame(b'C', &bad_family),
        ),
        (
            "CONNECT with a bad address",
            negotiated(),
            frame(b'C', &bad_addr),
        ),
        (
            "CONNECT without a port",
            negotiated(),
            frame(b'C', &no_port),
        ),
        (
            "CONNECT without a family",
            negotiated(),
            frame(b'C', &cstrs(&[b"client.example"])),
        ),
        ("UNKNOWN without NUL", greeted(), frame(b'U', b"VRFY bob")),
        ("empty macro packet", in_message(), frame(b'D', b"")),
    ];
    for (case, (setup, replies), bad) in cases {
        let mut raw = Raw::open(&milter).await;
        raw.send(&setup).await;
        raw.continues(replies).await;
        raw.send(&bad).await;
        raw.closed(case).await;
    }

    // Negotiation that cannot succeed: too short, protocol versions 0 and 1, an MTA that
    // does not offer the change-header action we need (actions 0 means libmilter's minimum,
    // which lacks it too).
    let all_actions = Actions::all().bits();
    let all_opts = ProtoOpts::all().bits();
    for packet in [
        frame(b'O', &[0, 0, 0, 6, 0, 0, 0, 0x3f, 0, 0, 0]),
        frame(b'O', b""),
        optneg(0, all_actions, all_opts),
        optneg(1, all_actions, all_opts),
        optneg(6, Actions::ADD_HEADER.bits(), all_opts),
        optneg(6, 0, all_opts),
    ] {
        let mut raw = Raw::connect(&milter).await;
        raw.send(&packet).await;
        raw.closed(&format!("negotiation {:?}", &packet[4..])).await;
    }

    wait_sessions(&milter.shared, 1).await;
    by.finish().await;
    milter.shutdown().await;
}

/// Absurd but parseable negotiation values are clamped: any version above 6 gets 6, unknown
/// flag bits are ignored, trailing bytes too. A second negotiation is ignored.
#[tokio::test]
async fn option_negotiation_with_absurd_values_is_clamped() {
    let milter = Milter::spawn(&config("")).await;
    let by = Bystander::start(&milter).await;

    let mut raw = Raw::connect(&milter).await;
    raw.send(&optneg(u32::MAX, u32::MAX, u32::MAX)).await;
    assert_our_optneg(&raw.reply().await, 6);
    raw.greet("192.0.2.10").await;
    raw.pass().await;

    let mut raw = Raw::connect(&milter).await;
    let mut long = optneg(6, u32::MAX, u32::MAX)[5..].to_vec();
    long.extend_from_slice(b"trailing garbage");
    raw.send(&frame(b'O', &long)).await;
    assert_our_optneg(&raw.reply().await, 6);

    // Version 2 is the oldest indymilter speaks; the reply says 2.
    let mut raw = Raw::connect(&milter).await;
    raw.send(&optneg(2, u32::MAX, u32::MAX)).await;
    assert_our_optneg(&raw.reply().await, 2);

    // No options offered means libmilter's minimum: we request none.
    let mut raw = Raw::connect(&milter).await;
    raw.send(&optneg(6, u32::MAX, 0)).await;
    match raw.reply().await {
        Reply::OptNeg { opts, .. } => assert_eq!(opts, ProtoOpts::empty()),
        other => panic!("{other:?}"),
    }

    // A second negotiation gets no reply, and leaves the session where CONNECT is not
    // expected either (indymilter falls back to the HELO state): only HELO is answered.
    // Everything is sent at once and read to the close, so a reply too many would show.
    let mut raw = Raw::connect(&milter).await;
    let mut all = offer();
    all.extend(offer());
    all.extend(conninfo("192.0.2.10"));
    all.extend(helo("mail.sender.example"));
    all.extend(frame(b'Q', b""));
    raw.send(&all).await;
    assert_our_optneg(&raw.reply().await, 6);
    raw.continues(1).await;
    raw.closed("QUIT").await;

    by.finish().await;
    milter.shutdown().await;
}

/// Commands that the state of the session does not allow are dropped without a reply (a
/// command that leaves a message aborts it), and the next valid command is answered as usual.
/// Everything is sent at once, then the replies are read to the end: one reply too many or
/// too few would show.
#[tokio::test]
async fn commands_out_of_order_are_ignored_without_a_reply() {
    let milter = Milter::spawn(&config("")).await;
    let by = Bystander::start(&milter).await;

    let msg = signed();
    let mut raw = Raw::connect(&milter).await;
    let mut all = offer();
    all.extend(conninfo("192.0.2.10"));
    all.extend(helo("mail.sender.example"));
    // Before any MAIL: body, end of message, end of headers, a header, RCPT, DATA, and a
    // second negotiation.
    all.extend(frame(b'B', b"stray body"));
    all.extend(frame(b'E', b""));
    all.extend(frame(b'N', b""));
    all.extend(header(
        "Authentication-Results",
        " mx.spoofguard.test; dkim=pass",
    ));
    all.extend(rcpt());
    all.extend(frame(b'T', b""));
    all.extend(offer());
    // MAIL, then end of message at once: aborts that message, and the header after it is
    // outside any message.
    all.extend(mail("mallory@quarantine.example"));
    all.extend(frame(b'E', b""));
    all.extend(header("X-Spoofguard-Verdict", " accept"));
    let (message, continues) = transaction("alice@sender.example", &msg);
    all.extend(message);
    all.extend(frame(b'Q', b""));
    raw.send(&all).await;

    assert_our_optneg(&raw.reply().await, 6);
    // CONNECT, HELO, the first MAIL, then the message.
    raw.continues(3 + continues).await;
    for expected in pass_replies(&b_tag(&msg)) {
        assert_eq!(raw.reply().await, expected);
    }
    raw.closed("QUIT").await;

    by.finish().await;
    wait_sessions(&milter.shared, 0).await;
    milter.shutdown().await;
}

/// An SMTP command the MTA does not know (UNKNOWN) lets the protocol go on to DATA, headers,
/// body and end of message without MAIL: there is no message then, and the end of message is
/// answered with a tempfail. Nothing of it reaches the next message.
#[tokio::test]
async fn end_of_message_without_a_message_is_tempfailed() {
    let milter = Milter::spawn(&config("")).await;
    let by = Bystander::start(&milter).await;

    let mut raw = Raw::open(&milter).await;
    raw.greet("192.0.2.10").await;
    raw.send(&frame(b'U', &cstrs(&[b"VRFY bob"]))).await;
    raw.send(&frame(b'T', b"")).await;
    raw.send(&header(
        "Authentication-Results",
        " mx.spoofguard.test; dkim=pass",
    ))
    .await;
    raw.send(&header("From", " Mallory <m@quarantine.example>"))
        .await;
    raw.send(&frame(b'N', b"")).await;
    raw.send(&frame(b'B', b"no message\r\n")).await;
    raw.continues(6).await;
    raw.send(&frame(b'E', b"")).await;
    assert_eq!(raw.reply().await, Reply::Tempfail);
    // The next message gets exactly its own result: no deletion of the header above, no
    // second From.
    raw.pass().await;
    raw.send(&frame(b'Q', b"")).await;
    raw.closed("QUIT").await;

    by.finish().await;
    wait_sessions(&milter.shared, 0).await;
    milter.shutdown().await;
}

/// Macro packets that do not parse, or carry unknown stages, odd counts or non-UTF-8 values,
/// change nothing: the message is judged exactly as without them.
#[tokio::test]
async fn garbage_macros_are_ignored() {
    let milter = Milter::spawn(&config("")).await;
    let by = Bystander::start(&milter).await;

    let msg = signed();
    let mut raw = Raw::open(&milter).await;
    raw.greet("192.0.2.10").await;
    let mut all = Vec::new();
    for garbage in [
        // An unknown stage, with a macro that would skip the message if it counted.
        macros(b'Z', &cstrs(&[b"{auth_authen}", b"alice"])),
        // A key without a value, a key without NUL, an empty key and value.
        macros(b'M', &cstrs(&[b"{auth_authen}"])),
        macros(b'M', b"{auth_authen}"),
        macros(b'M', &cstrs(&[b"", b""])),
        // Non-UTF-8: not a valid login, so not an authenticated sender.
        macros(b'M', &cstrs(&[b"{auth_authen}", b"\xff\xfe"])),
        // The stage byte alone (Postfix sends this when it has no macros).
        macros(b'T', b""),
        macros(b'T', &cstrs(&[b"\xff\xfe", b"i"])),
        macros(b'E', &cstrs(&[b"i", b"\xff\xfe"])),
        macros(b'E', b"\xff\xff\xff\xff"),
    ] {
        all.extend(garbage);
    }
    let (message, continues) = transaction("alice@sender.example", &msg);
    // Garbage again between the message's packets would not be answered either.
    all.extend(message);
    raw.send(&all).await;
    raw.continues(continues).await;
    for expected in pass_replies(&b_tag(&msg)) {
        assert_eq!(raw.reply().await, expected);
    }

    by.finish().await;
    milter.shutdown().await;
}

/// A client gone at any point, even inside a packet or before reading the end-of-message
/// replies, takes only its own session with it.
#[tokio::test]
async fn disconnects_anywhere_free_the_session_and_nothing_else() {
    let milter = Milter::spawn(&config("")).await;
    let by = Bystander::start(&milter).await;
    wait_sessions(&milter.shared, 1).await;

    let msg = signed();
    let (headers, body) = split_message(&msg);
    // The packets before the cut, how many replies to read, and whether to half-close (the
    // milter then sees EOF while we can still see it close) or to drop the socket.
    let envelope = || {
        let mut p = conninfo("192.0.2.10");
        p.extend(helo("mail.sender.example"));
        p.extend(mail("alice@sender.example"));
        (p, 3)
    };
    let some_headers = || {
        let (mut p, n) = envelope();
        p.extend(rcpt());
        p.extend(frame(b'T', b""));
        for (name, value) in &headers[..3] {
            p.extend(header(name, value));
        }
        (p, n + 5)
    };
    let mid_body = || {
        let (mut p, n) = some_headers();
        for (name, value) in &headers[3..] {
            p.extend(header(name, value));
        }
        p.extend(frame(b'N', b""));
        p.extend(frame(b'B', &body.as_bytes()[..10]));
        (p, n + headers.len() - 3 + 2)
    };
    let in_a_packet = |(mut p, n): Packets| {
        p.extend(&frame(b'B', body.as_bytes())[..12]);
        (p, n)
    };
    let cases: Vec<(&str, Packets)> = vec![
        ("nothing sent", (Vec::new(), 0)),
        ("inside the length", (vec![0, 0], 0)),
        ("after MAIL", envelope()),
        ("after some headers", some_headers()),
        ("after a body chunk", mid_body()),
        ("inside a body packet", in_a_packet(mid_body())),
    ];
    for (case, (packets, replies)) in cases {
        for half_close in [true, false] {
            let mut raw = Raw::open(&milter).await;
            raw.send(&packets).await;
            raw.continues(replies).await;
            if half_close {
                raw.shutdown_write().await;
                raw.closed(case).await;
            } else {
                drop(raw);
            }
            wait_sessions(&milter.shared, 1).await;
        }
    }

    // Gone right after the end of message: the milter judges it and its replies go nowhere.
    let mut raw = Raw::open(&milter).await;
    raw.greet("192.0.2.10").await;
    let (message, _) = transaction("alice@sender.example", &msg);
    raw.send(&message).await;
    drop(raw);
    wait_sessions(&milter.shared, 1).await;

    by.finish().await;
    wait_sessions(&milter.shared, 0).await;
    let mut raw = Raw::open(&milter).await;
    raw.greet("192.0.2.10").await;
    raw.pass().await;
    milter.shutdown().await;
}

/// ABORT after the headers, ABORT after the body, or a new MAIL in the middle of a message:
/// the next message on the connection gets exactly the result it gets on a fresh connection.
/// The aborted message carries forged results of our authserv-id and a lookalike From, which
/// would show as header deletions and reasons.
#[tokio::test]
async fn abort_then_continue_gives_the_next_message_only_its_own_result() {
    let milter = Milter::spawn(&config("")).await;
    let by = Bystander::start(&milter).await;
    let good = signed();
    let b = b_tag(&good);
    let env = Envelope::default();
    let spoof = eml("forged-ar.eml").replace(
        "From: Alice Example <alice@sender.example>",
        "From: Microsoft Security <security@microsoft-securityprotection-support.xyz>",
    );
    let (spoof_headers, spoof_body) = split_message(&spoof);

    // What the spoof gets when it is finished: deletions and reasons.
    let (spoof_actions, _) = send(&milter, &env, &spoof, false).await;
    let deletions = |a: &indymilter_test::EomActions| {
        a.actions
            .iter()
            .filter(|x| matches!(x, EomAction::DeleteHeader { .. }))
            .count()
    };
    assert_eq!(deletions(&spoof_actions), 3, "{spoof_actions:?}");

    let mut conn = milter.connect().await;
    greet(&mut conn, &env).await;
    for cut in ["abort after headers", "abort after body", "MAIL again"] {
        conn.mail(["<alice@sender.example>"]).await.unwrap();
        conn.rcpt(["<bob@rcpt.example>"]).await.unwrap();
        conn.data().await.unwrap();
        for (name, value) in &spoof_headers {
            conn.header(name.as_str(), value.as_str()).await.unwrap();
        }
        if cut != "MAIL again" {
            conn.eoh().await.unwrap();
        }
        if cut == "abort after body" {
            conn.body(spoof_body.clone().into_bytes()).await.unwrap();
        }
        if cut != "MAIL again" {
            conn.abort().await.unwrap();
        }
        let (actions, status) = transact(&mut conn, &env, &good, false).await;
        assert_eq!(status, Status::Continue, "{cut}");
        assert_eq!(actions.actions, pass_actions(&b), "{cut}");
        conn.abort().await.unwrap();
    }
    conn.close().await.unwrap();

    by.finish().await;
    milter.shutdown().await;
}

/// QUIT_NC ends one SMTP connection and starts the next on the same milter connection
/// (CONNECT again, no new negotiation). The next connection sees none of the old one's
/// state: the same commands give the same replies as on a fresh milter connection.
#[tokio::test]
async fn quit_nc_starts_the_next_connection_without_old_state() {
    let milter = Milter::spawn(&config("")).await;
    let by = Bystander::start(&milter).await;

    // The second SMTP connection: another client that sends no HELO, then a null sender
    // (so SPF checks the HELO identity), with a message from a domain without records.
    let msg = eml("plain.eml").replace("alice@sender.example", "nobody@norecords.example");
    let mut second = conninfo("198.51.100.66");
    second.extend(frame(b'M', &cstrs(&[b"<>"])));
    second.extend(rcpt());
    second.extend(frame(b'T', b""));
    let (rest, continues) = content(&msg);
    second.extend(rest);

    let mut fresh = Raw::open(&milter).await;
    fresh.send(&second).await;
    fresh.continues(1 + 3 + continues).await;
    let mut expected = Vec::new();
    loop {
        let r = fresh.reply().await;
        expected.push(r.clone());
        if r == Reply::Continue {
            break;
        }
    }
    let Reply::InsertHeader { value, .. } = &expected[0] else {
        panic!("{expected:?}");
    };
    assert_eq!(
        value.to_str().unwrap(),
        format!(
            " {AUTHSERV_ID};\n\tspf=none smtp.helo=unknown;\n\tdkim=none;\n\tarc=none;\n\t\
             dmarc=none header.from=norecords.example"
        )
    );

    let mut raw = Raw::open(&milter).await;
    raw.greet("192.0.2.10").await;
    raw.pass().await;
    raw.send(&frame(b'K', b"")).await;
    raw.send(&second).await;
    raw.continues(1 + 3 + continues).await;
    for e in expected {
        assert_eq!(raw.reply().await, e);
    }
    raw.send(&frame(b'Q', b"")).await;
    raw.closed("QUIT").await;

    by.finish().await;
    milter.shutdown().await;
}

/// With `max_connections` sessions open, the next connection is not refused (the kernel
/// completes it) but not served either: it waits in the listen backlog until a session ends,
/// then it is negotiated and its message judged.
#[tokio::test]
async fn connections_past_max_connections_wait_until_a_session_ends() {
    let milter =
        Milter::spawn(&config("").replace("[milter]\n", "[milter]\nmax_connections = 2\n")).await;
    let by = Bystander::start(&milter).await;
    let mut idle = Raw::open(&milter).await;
    wait_sessions(&milter.shared, 2).await;

    let mut waiting = Vec::new();
    for _ in 0..3 {
        let mut raw = Raw::connect(&milter).await;
        raw.send(&offer()).await;
        waiting.push(raw);
    }
    for raw in &mut waiting {
        raw.silent_for(Duration::from_millis(500)).await;
    }
    assert_eq!(sessions(&milter.shared), 2);

    // The sessions already open are served as usual.
    idle.greet("192.0.2.10").await;
    by.finish().await;
    // The bystander's slot goes to the first waiting connection.
    let mut first = waiting.remove(0);
    assert_our_optneg(&first.reply().await, 6);
    first.greet("192.0.2.10").await;
    first.pass().await;
    for raw in &mut waiting {
        raw.silent_for(Duration::from_millis(300)).await;
    }
    // The idle one closes: the next is served.
    drop(idle);
    let mut second = waiting.remove(0);
    assert_our_optneg(&second.reply().await, 6);
    second.greet("192.0.2.10").await;
    second.pass().await;
    waiting[0].silent_for(Duration::from_millis(300)).await;
    drop(first);
    let mut third = waiting.remove(0);
    assert_our_optneg(&third.reply().await, 6);
    third.greet("192.0.2.10").await;
    third.pass().await;
    milter.shutdown().await;
}

/// The milter with `[milter] connection_timeout_secs` set.
async fn with_connection_timeout(secs: u64) -> Milter {
    Milter::spawn(&config("").replace(
        "[milter]\n",
        &format!("[milter]\nconnection_timeout_secs = {secs}\n"),
    ))
    .await
}

/// `connection_timeout_secs` bounds each read of a packet: a connection idle for longer
/// (before negotiation, after it, or in the middle of a message) is closed; a client that
/// sends a packet at least that often stays, however long its session.
#[tokio::test]
async fn idle_connections_are_closed_after_the_timeout() {
    let timeout_secs = 2;
    let milter = with_connection_timeout(timeout_secs).await;
    let mut by = Bystander::start(&milter).await;

    let mut silent = Raw::connect(&milter).await;
    let mut negotiated = Raw::open(&milter).await;
    let mut mid_message = Raw::open(&milter).await;
    mid_message.greet("192.0.2.10").await;
    mid_message.send(&mail("alice@sender.example")).await;
    mid_message.send(&rcpt()).await;
    mid_message.send(&header("Subject", " hello")).await;
    mid_message.continues(3).await;
    wait_sessions(&milter.shared, 3).await;

    let bounds = Duration::from_secs(timeout_secs) / 2..PATIENCE;
    let (a, b, c) = by
        .busy_until(async {
            tokio::join!(
                silent.closed("silent"),
                negotiated.closed("negotiated"),
                mid_message.closed("mid-message"),
            )
        })
        .await;
    for (what, took) in [("silent", a), ("negotiated", b), ("mid-message", c)] {
        assert!(bounds.contains(&took), "{what} closed after {took:?}");
    }
    wait_sessions(&milter.shared, 1).await;
    let lasted = by.finish().await;
    // The bystander was busy for longer than the time-out in total and was not dropped.
    assert!(lasted > Duration::from_secs(timeout_secs), "{lasted:?}");
    milter.shutdown().await;
}

/// The time-out covers a whole packet, not each read: a client dribbling one packet a byte
/// at a time, slower than the time-out in total, is dropped before the packet is complete,
/// while another connection is served meanwhile.
#[tokio::test]
async fn a_packet_dribbled_slower_than_the_timeout_is_dropped() {
    let timeout_secs = 2;
    let milter = with_connection_timeout(timeout_secs).await;
    let mut by = Bystander::start(&milter).await;

    let mut raw = Raw::open(&milter).await;
    raw.greet("192.0.2.10").await;
    raw.send(&mail("alice@sender.example")).await;
    raw.send(&rcpt()).await;
    raw.continues(2).await;
    // One byte every 400 ms: the whole packet would take longer than `PATIENCE`.
    let packet = header("Subject", " a subject dribbled byte by byte");
    let interval = Duration::from_millis(400);
    assert!(interval * u32::try_from(packet.len()).unwrap() > PATIENCE);
    let start = Instant::now();
    let (mut rd, mut wr) = raw.stream.split();
    let dribble = async {
        let mut sent = 0;
        let mut buf = [0u8; 64];
        loop {
            tokio::select! {
                biased;
                r = rd.read(&mut buf) => {
                    assert_eq!(r.unwrap(), 0, "expected the connection closed, got a reply");
                    return (start.elapsed(), sent);
                }
                () = sleep(interval), if sent < packet.len() => {
                    wr.write_all(&packet[sent..=sent]).await.unwrap();
                    sent += 1;
                }
            }
        }
    };
    let (took, sent) = by.busy_until(dribble).await;
    assert!(
        (Duration::from_secs(timeout_secs) / 2..PATIENCE).contains(&took),
        "closed after {took:?}"
    );
    assert!(sent < packet.len(), "the whole packet was sent");
    wait_sessions(&milter.shared, 1).await;
    by.finish().await;
    milter.shutdown().await;
}

/// Kills the child process it holds (by its handle) when dropped, also on a failed assert.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Accepting a connection can fail for reasons of its own, here EMFILE: the process is out of
/// file descriptors, as under a flood with `max_connections` above `ulimit -n`. The milter
/// keeps serving its open connections meanwhile and accepts again once descriptors are free.
/// (indymilter alone ends the milter, with every open connection, on the first accept error.)
/// Runs the binary, as the limit is per process, on a unix socket in a private directory.
#[tokio::test]
async fn running_out_of_file_descriptors_does_not_stop_the_milter() {
    use std::process::{Command, Stdio};
    use tokio::net::UnixStream;

    let zone = spoofguard::zone::Zone::parse(&zone_text()).unwrap();
    let dns = spoofguard::zone::ZoneServer::start(zone).await.unwrap();
    let dir = std::env::temp_dir().join(format!("sg-emfile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("milter.sock");
    let toml = config("")
        .replace(
            "[milter]\n",
            &format!("[milter]\nlisten = \"unix:{}\"\n", sock.display()),
        )
        .replace(
            "[dns]\n",
            &format!("[dns]\nnameservers = [\"{}\"]\n", dns.addr()),
        );
    let cfg = dir.join("milter.toml");
    std::fs::write(&cfg, toml).unwrap();
    let log_path = dir.join("log");
    let log = std::fs::File::create(&log_path).unwrap();
    // About 12 descriptors are in use once it listens: room for some 28 connections.
    let mut child = ChildGuard(
        Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 40 && exec \"$0\" serve --config \"$1\"")
            .arg(env!("CARGO_BIN_EXE_spoofguard"))
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let logged = |text: &str| std::fs::read_to_string(&log_path).unwrap().contains(text);
    let start = Instant::now();
    while !logged("spoofguard started") {
        assert!(start.elapsed() < PATIENCE, "not started");
        sleep(Duration::from_millis(20)).await;
    }
    let idle_fds = fds();
    let open = || async {
        TestConnection::configure()
            .exact_leading_space(true)
            .open_unix(&sock)
            .await
            .unwrap()
    };
    let mut by = Bystander::start_on(open().await).await;

    let mut flood = Vec::new();
    for _ in 0..40 {
        let mut s = UnixStream::connect(&sock).await.unwrap();
        // Errors are left to the asserts below: with the bug, the milter is gone.
        let _ = s.write_all(&offer()).await;
        flood.push(s);
    }
    let start = Instant::now();
    while !logged("Too many open files") {
        assert!(
            start.elapsed() < PATIENCE,
            "the flood did not exhaust descriptors"
        );
        sleep(Duration::from_millis(20)).await;
    }
    // Out of descriptors, the open connection is still served (indymilter alone has closed
    // it by now, and exited).
    assert!(by.step().await);
    assert!(child.0.try_wait().unwrap().is_none(), "the milter exited");

    // The flood goes away; the connections still in the backlog (fewer than the descriptors
    // now free) are accepted and closed.
    drop(flood);
    let start = Instant::now();
    while !logged("accepting connections again") || fds() > idle_fds + 1 {
        assert!(start.elapsed() < PATIENCE, "{} descriptors in use", fds());
        sleep(Duration::from_millis(20)).await;
    }
    by.finish().await;
    let msg = signed();
    let mut conn = open().await;
    greet(&mut conn, &Envelope::default()).await;
    let (actions, status) = transact(&mut conn, &Envelope::default(), &msg, false).await;
    assert_eq!(status, Status::Continue);
    assert_eq!(actions.actions, pass_actions(&b_tag(&msg)));
    conn.close().await.unwrap();
    assert!(child.0.try_wait().unwrap().is_none(), "the milter exited");
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The in-process milter on a unix socket in a private directory (`Milter` listens on TCP).
/// A client that does not read fills a unix socket's buffer (about 200 KiB) much sooner than
/// a loopback TCP connection's (megabytes).
struct UnixMilter {
    path: std::path::PathBuf,
    shared: SharedRuntime,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dns: spoofguard::zone::ZoneServer,
}

impl UnixMilter {
    async fn spawn(toml: &str, name: &str) -> UnixMilter {
        let zone = spoofguard::zone::Zone::parse(&zone_text()).unwrap();
        let dns = spoofguard::zone::ZoneServer::start(zone).await.unwrap();
        let mut config =
            spoofguard::config::Config::from_toml(toml, std::path::Path::new("test.toml")).unwrap();
        config.dns.nameservers = vec![dns.addr()];
        let dir = std::env::temp_dir().join(format!("sg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("milter.sock");
        let listener =
            indymilter::EitherListener::Unix(tokio::net::UnixListener::bind(&path).unwrap());
        let rt = spoofguard::runtime::Runtime::build(config, None).unwrap();
        let shared: SharedRuntime = Arc::new(std::sync::RwLock::new(Arc::new(rt)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(spoofguard::milter::serve(
            listener,
            shared.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        UnixMilter {
            path,
            shared,
            shutdown: Some(tx),
            handle: Some(handle),
            _dns: dns,
        }
    }

    async fn connect(&self) -> TestConnection {
        TestConnection::configure()
            .exact_leading_space(true)
            .open_unix(&self.path)
            .await
            .unwrap()
    }

    async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A client that sends commands but never reads the replies: once the milter's writes stall
/// for the time-out, its session ends and the socket is closed (indymilter alone would keep
/// the socket and a task for it as long as the client stays, flushing into a full buffer).
#[tokio::test]
async fn a_client_that_never_reads_its_replies_is_dropped() {
    use tokio::net::UnixStream;
    let milter = UnixMilter::spawn(
        &config("").replace("[milter]\n", "[milter]\nconnection_timeout_secs = 2\n"),
        "stall",
    )
    .await;
    let mut by = Bystander::start_on(milter.connect().await).await;

    let mut stream = UnixStream::connect(&milter.path).await.unwrap();
    stream.write_all(&offer()).await.unwrap();
    let reply = timeout(PATIENCE, message::read(&mut stream)).await.unwrap();
    assert_our_optneg(&Reply::parse_reply(reply.unwrap()).unwrap(), 6);
    stream.write_all(&conninfo("192.0.2.10")).await.unwrap();
    stream
        .write_all(&helo("mail.sender.example"))
        .await
        .unwrap();
    // UNKNOWN commands, each answered with Continue, a thousand at a time.
    let batch = frame(b'U', &cstrs(&[b"VRFY bob"])).repeat(1000);
    let flood = async {
        let mut sent = 0;
        loop {
            match timeout(PATIENCE, stream.write_all(&batch)).await {
                Ok(Ok(())) => sent += 1000,
                Ok(Err(e)) => return (e, sent),
                Err(_) => panic!("after {sent} commands the connection is neither read nor closed"),
            }
        }
    };
    let (err, sent) = by.busy_until(flood).await;
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "after {sent} commands: {err}"
    );
    wait_sessions(&milter.shared, 1).await;
    by.finish().await;
    milter.shutdown().await;
}
