//! milter-load: a milter load generator that talks to a milter as Postfix does.
//!
//! C connections, each negotiating once and sending M messages (MAIL, RCPT, DATA, headers,
//! EOH, body chunks, EOM, then ABORT before the next message, as Postfix does), from real .eml
//! files with envelope data. Reports messages, msg/s, latency percentiles of the end-of-message
//! reply and of the whole transaction, and counts of each final reply, as text or JSON.
//! Loops are bounded by count and by time, and it only connects where it is told (use
//! loopback).
//!
//! `--chain SOCKET2` drives two milters per message the way Postfix does with
//! `smtpd_milters = A, B`: each SMTP event (connect, HELO, MAIL, RCPT, DATA) goes to A then B;
//! at end of data the whole message (headers, body, EOM) is replayed to A, then, with A's added
//! or inserted headers applied, to B. The EOM latency is then A's plus B's. `--warmup N` sends
//! N untimed messages first; `--hold N` only opens N idle connections (negotiate, connect,
//! HELO) for `--hold-secs`, to measure a milter's memory per connection.
//!
//! `--mix FILE` is the soak mode of integration/soak.py: a weighted JSON list of message kinds,
//! each with its own client IP, HELO and envelope sender; connections are reopened after a
//! random number of messages; `--abort-permille`, `--disconnect-permille` and
//! `--garbage-permille` cut messages short; `--eom-body-permille` sends the last body chunk
//! with EOM (on connections that do not offer SKIP, `--no-skip-permille`). It checks that each
//! message sent gets exactly one final reply and that every other reply is Continue, and
//! reports counts by kind and outcome as JSON (`--replies-file`: one line per message).
//!
//! ```text
//! cargo run --release --example milter_load -- --socket inet:127.0.0.1:8891 \
//!     --connections 8 --messages 200 --max-secs 60 --ip 192.0.2.10 \
//!     --mail-from alice@sender.example --helo mail.sender.example msg1.eml msg2.eml
//! ```
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use clap::Parser;
use indymilter::message::command::{
    Command, ConnInfoPayload, EnvAddrPayload, HeaderPayload, HeloPayload, MacroPayload,
    OptNegPayload,
};
use indymilter::message::reply::Reply;
use indymilter::message::{self, PROTOCOL_VERSION};
use indymilter::{Actions, MacroStage, ProtoOpts, SocketInfo};
use std::ffi::CString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

#[derive(Parser, Clone)]
#[command(about = "Milter load generator (speaks the milter protocol as an MTA does)")]
struct Args {
    /// Milter socket: inet:HOST:PORT or unix:/path
    #[arg(long, default_value = "inet:127.0.0.1:8891")]
    socket: String,
    /// Concurrent connections
    #[arg(short, long, default_value_t = 8)]
    connections: usize,
    /// Messages per connection
    #[arg(short, long, default_value_t = 100)]
    messages: usize,
    /// Stop starting new messages after this many seconds
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
    /// Client IP presented in the connect event (for SPF)
    #[arg(long, default_value = "192.0.2.10")]
    ip: IpAddr,
    #[arg(long, default_value = "mail.sender.example")]
    helo: String,
    /// Envelope sender
    #[arg(long, default_value = "alice@sender.example")]
    mail_from: String,
    #[arg(long, default_value = "bob@rcpt.example")]
    rcpt: String,
    /// Output format: text or json
    #[arg(long, default_value = "text")]
    format: String,
    /// A second milter socket: each message goes through --socket, then this one, the way
    /// Postfix drives `smtpd_milters = first, second` (header changes of the first are passed on)
    #[arg(long)]
    chain: Option<String>,
    /// Messages sent on one connection before timing starts (fills caches; not counted)
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Instead of sending mail: open this many connections (negotiate, connect, HELO), keep
    /// them idle for --hold-secs, then close them
    #[arg(long)]
    hold: Option<usize>,
    #[arg(long, default_value_t = 10)]
    hold_secs: u64,
    /// With --hold: write the number of open connections here once they are all open
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Print each milter's final reply and header changes for the first message (stderr)
    #[arg(long)]
    verbose: bool,
    /// Soak mode: a JSON list of message kinds, each {"name", "file", "ip", "helo",
    /// "mail_from", "weight", "pool"} (`{n}` in mail_from becomes the message number modulo
    /// pool). Connections are reopened after 1 to --per-connection messages, some messages are
    /// cut short (the *-permille options), and every message is checked to get exactly one
    /// final reply. --messages then bounds the messages of each of the --connections workers.
    #[arg(long)]
    mix: Option<PathBuf>,
    /// Soak: messages (per 1000) aborted part-way (SMFIC_ABORT), then the connection goes on
    #[arg(long, default_value_t = 0)]
    abort_permille: u32,
    /// Soak: messages (per 1000) during which the connection is closed
    #[arg(long, default_value_t = 0)]
    disconnect_permille: u32,
    /// Soak: messages (per 1000) interrupted by a malformed packet; the milter must close the
    /// connection without a reply
    #[arg(long, default_value_t = 0)]
    garbage_permille: u32,
    /// Soak: connections (per 1000) that do not offer SMFIP_SKIP, as an MTA without it
    #[arg(long, default_value_t = 0)]
    no_skip_permille: u32,
    /// Soak: on connections without SMFIP_SKIP, messages (per 1000) whose last body chunk
    /// travels in the end-of-message packet (allowed by the protocol; Postfix and Sendmail
    /// never do it)
    #[arg(long, default_value_t = 0)]
    eom_body_permille: u32,
    /// Soak: at most this many messages on one connection (each connection draws 1..=N)
    #[arg(long, default_value_t = 20)]
    per_connection: usize,
    /// Soak: a reply not received within this time counts as missing
    #[arg(long, default_value_t = 30)]
    reply_timeout_secs: u64,
    /// Soak: total messages per second to aim at (0: as fast as the milter answers)
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Soak: seed of the random choices
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Soak: queue ids are this prefix and the message number
    #[arg(long, default_value = "S")]
    qid_prefix: String,
    /// Soak: write one line "QUEUE_ID KIND OUTCOME" per message here
    #[arg(long)]
    replies_file: Option<PathBuf>,
    /// .eml files, used round-robin
    files: Vec<PathBuf>,
}

/// A message split as the MTA sends it.
struct Prepared {
    headers: Vec<(CString, CString)>,
    body: Bytes,
}

fn prepare(raw: &[u8]) -> Prepared {
    // Bytes, not text: invalid UTF-8 and 8-bit header bytes reach the milter unchanged.
    let split = find(raw, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .into_iter()
        .chain(find(raw, b"\n\n").map(|i| (i, i + 2)))
        .min();
    let (head, body) = match split {
        Some((end, start)) => (&raw[..end], &raw[start..]),
        None => (raw, &b""[..]),
    };
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            // Folded lines are joined with LF, as Postfix hands them to a milter.
            if let Some(last) = headers.last_mut() {
                last.1.push(b'\n');
                last.1.extend_from_slice(line);
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            headers.push((line[..colon].to_vec(), line[colon + 1..].to_vec()));
        }
    }
    Prepared {
        headers: headers
            .into_iter()
            .map(|(n, v)| (cbytes(n), cbytes(v)))
            .collect(),
        body: Bytes::from(spoofguard::intake::to_crlf(body)),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A C string of these bytes without any NUL (the protocol cannot carry one).
fn cbytes(mut v: Vec<u8>) -> CString {
    v.retain(|&b| b != 0);
    CString::new(v).unwrap()
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap()
}

#[derive(Default)]
struct Stats {
    eom_us: Vec<u64>,
    txn_us: Vec<u64>,
    continue_: u64,
    accept: u64,
    reject: u64,
    tempfail: u64,
    discard: u64,
    quarantined: u64,
    errors: u64,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn open(spec: &str) -> std::io::Result<Box<dyn Stream>> {
    if let Some(path) = spec
        .strip_prefix("unix:")
        .or_else(|| spec.strip_prefix("local:"))
        .or_else(|| spec.starts_with('/').then_some(spec))
    {
        return Ok(Box::new(tokio::net::UnixStream::connect(path).await?));
    }
    let addr = spec
        .strip_prefix("inet:")
        .or_else(|| spec.strip_prefix("inet6:"))
        .unwrap_or(spec);
    // Postfix's inet:PORT@HOST form as well as HOST:PORT.
    let addr = match addr.split_once('@') {
        Some((port, host)) => format!("{host}:{port}"),
        None => addr.to_owned(),
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| std::io::Error::other(format!("bad socket {spec}")))?;
    let s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(Box::new(s))
}

async fn send(s: &mut Box<dyn Stream>, c: Command) -> std::io::Result<()> {
    message::write(s, c.into_message()).await
}

async fn reply(s: &mut Box<dyn Stream>) -> std::io::Result<Reply> {
    let msg = message::read(s).await?;
    Reply::parse_reply(msg).map_err(|e| std::io::Error::other(format!("bad reply: {e:?}")))
}

fn macros(stage: MacroStage, kv: &[(&str, &str)]) -> Command {
    Command::DefMacros(MacroPayload {
        stage,
        macros: kv
            .iter()
            .flat_map(|(k, v)| [cstring(k), cstring(v)])
            .collect(),
    })
}

/// One milter connection and what it negotiated.
struct Conn {
    s: Box<dyn Stream>,
    opts: ProtoOpts,
}

/// A header value as the MTA sends it: without LEADING_SPACE negotiated, the one space after
/// the colon is not sent.
fn header_value(value: &CString, opts: ProtoOpts) -> CString {
    let bytes = value.as_bytes();
    match bytes.strip_prefix(b" ") {
        Some(rest) if !opts.contains(ProtoOpts::LEADING_SPACE) => cbytes(rest.to_vec()),
        _ => value.clone(),
    }
}

/// What a milter answered at end of message.
enum Final {
    /// Continue (or Accept): the next milter, if any, sees the message with these headers added.
    Pass(Vec<(usize, CString, CString)>),
    /// Reject, tempfail, discard or an SMTP reply code: the MTA stops here.
    Stop,
}

impl Conn {
    fn answers(&self, no: ProtoOpts, noreply: ProtoOpts) -> bool {
        !self.opts.contains(no) && !self.opts.contains(noreply)
    }

    /// Opens the socket, negotiates, sends connect and HELO.
    async fn open(
        spec: &str,
        ip: IpAddr,
        helo: &str,
        id: usize,
        offer: ProtoOpts,
    ) -> std::io::Result<Self> {
        let mut s = open(spec).await?;
        send(
            &mut s,
            Command::OptNeg(OptNegPayload {
                version: PROTOCOL_VERSION,
                actions: Actions::all(),
                opts: offer,
            }),
        )
        .await?;
        let opts = match reply(&mut s).await? {
            Reply::OptNeg { opts, .. } => opts,
            other => return Err(std::io::Error::other(format!("negotiation: {other:?}"))),
        };
        let mut c = Conn { s, opts };
        let opts = c.opts;
        // As Postfix (milter8.c): an event negotiated away (NO_*) is not sent at all, and one
        // marked NOREPLY_* is sent without waiting for an answer.
        send(
            &mut c.s,
            macros(MacroStage::Connect, &[("j", "mx.load.test")]),
        )
        .await?;
        if !opts.contains(ProtoOpts::NO_CONNECT) {
            send(
                &mut c.s,
                Command::ConnInfo(ConnInfoPayload {
                    hostname: cstring("client.load.test"),
                    socket_info: SocketInfo::Inet(SocketAddr::new(ip, 40000 + (id % 20000) as u16)),
                }),
            )
            .await?;
            if !opts.contains(ProtoOpts::NOREPLY_CONNECT) {
                reply(&mut c.s).await?;
            }
        }
        if !opts.contains(ProtoOpts::NO_HELO) {
            send(
                &mut c.s,
                Command::Helo(HeloPayload {
                    hostname: cstring(helo),
                }),
            )
            .await?;
            if !opts.contains(ProtoOpts::NOREPLY_HELO) {
                reply(&mut c.s).await?;
            }
        }
        Ok(c)
    }

    /// MAIL FROM (with the queue id macro), RCPT TO and DATA.
    async fn envelope(&mut self, args: &Args, qid: &str) -> std::io::Result<()> {
        let opts = self.opts;
        send(&mut self.s, macros(MacroStage::Mail, &[("i", qid)])).await?;
        if !opts.contains(ProtoOpts::NO_MAIL) {
            send(
                &mut self.s,
                Command::Mail(EnvAddrPayload {
                    args: vec![cstring(&format!("<{}>", args.mail_from))],
                }),
            )
            .await?;
            if !opts.contains(ProtoOpts::NOREPLY_MAIL) {
                reply(&mut self.s).await?;
            }
        }
        if !opts.contains(ProtoOpts::NO_RCPT) {
            send(
                &mut self.s,
                Command::Rcpt(EnvAddrPayload {
                    args: vec![cstring(&format!("<{}>", args.rcpt))],
                }),
            )
            .await?;
            if !opts.contains(ProtoOpts::NOREPLY_RCPT) {
                reply(&mut self.s).await?;
            }
        }
        if !opts.contains(ProtoOpts::NO_DATA) {
            send(&mut self.s, Command::Data).await?;
            if !opts.contains(ProtoOpts::NOREPLY_DATA) {
                reply(&mut self.s).await?;
            }
        }
        Ok(())
    }

    /// Headers, end of headers, body chunks and end of message; counts the final reply in
    /// `st` and returns the time from sending EOM to the final reply.
    async fn content(
        &mut self,
        headers: &[(CString, CString)],
        body: &Bytes,
        qid: &str,
        st: &mut Stats,
        verbose: bool,
    ) -> std::io::Result<(Duration, Final)> {
        let opts = self.opts;
        if !opts.contains(ProtoOpts::NO_HEADER) {
            for (name, value) in headers {
                // With LEADING_SPACE the value keeps its space after the colon, as received.
                let value = header_value(value, opts);
                send(
                    &mut self.s,
                    Command::Header(HeaderPayload {
                        name: name.clone(),
                        value,
                    }),
                )
                .await?;
                if !opts.contains(ProtoOpts::NOREPLY_HEADER) {
                    reply(&mut self.s).await?;
                }
            }
        }
        if self.answers(ProtoOpts::NO_EOH, ProtoOpts::NOREPLY_EOH) {
            send(&mut self.s, Command::Eoh).await?;
            reply(&mut self.s).await?;
        } else if !opts.contains(ProtoOpts::NO_EOH) {
            send(&mut self.s, Command::Eoh).await?;
        }
        if !opts.contains(ProtoOpts::NO_BODY) {
            for chunk in body.chunks(65535) {
                send(&mut self.s, Command::BodyChunk(body.slice_ref(chunk))).await?;
                if !opts.contains(ProtoOpts::NOREPLY_BODY)
                    && matches!(reply(&mut self.s).await?, Reply::Skip)
                {
                    break;
                }
            }
        }
        send(&mut self.s, macros(MacroStage::Eom, &[("i", qid)])).await?;
        let t_eom = Instant::now();
        send(&mut self.s, Command::BodyEnd(Bytes::new())).await?;
        let mut added = Vec::new();
        let fin = loop {
            let r = reply(&mut self.s).await?;
            if verbose {
                eprintln!("{qid}: {r:?}");
            }
            match r {
                Reply::Continue => {
                    st.continue_ += 1;
                    break Final::Pass(added);
                }
                Reply::Accept => {
                    st.accept += 1;
                    break Final::Pass(added);
                }
                Reply::Reject => st.reject += 1,
                Reply::Tempfail => st.tempfail += 1,
                Reply::Discard => st.discard += 1,
                Reply::ReplyCode { reply } => {
                    if reply.as_bytes().starts_with(b"5") {
                        st.reject += 1
                    } else {
                        st.tempfail += 1
                    }
                }
                Reply::Quarantine { .. } => {
                    st.quarantined += 1;
                    continue;
                }
                Reply::InsertHeader { index, name, value } => {
                    added.push((index.max(0) as usize, name, value));
                    continue;
                }
                Reply::AddHeader { name, value } => {
                    added.push((usize::MAX, name, value));
                    continue;
                }
                _ => continue,
            }
            break Final::Stop;
        };
        Ok((t_eom.elapsed(), fin))
    }
}

/// Runs one connection; returns its stats.
async fn connection(
    id: usize,
    args: Arc<Args>,
    msgs: Arc<Vec<Prepared>>,
    deadline: Instant,
    count: usize,
) -> Stats {
    let mut st = Stats::default();
    if let Err(e) = run_connection(id, &args, &msgs, deadline, count, &mut st).await {
        eprintln!("connection {id}: {e}");
        st.errors += 1;
    }
    st
}

/// Applies the header changes of one milter to the header list the next milter sees, as
/// Postfix's cleanup server does before it replays the message to the next milter.
fn apply_added(
    headers: &[(CString, CString)],
    added: Vec<(usize, CString, CString)>,
) -> Vec<(CString, CString)> {
    let mut out = headers.to_vec();
    for (index, name, value) in added {
        // Received header values keep their space after the colon; give an added value one
        // unless the milter sent it (with LEADING_SPACE negotiated, as OpenDKIM does).
        let value = if value
            .as_bytes()
            .first()
            .is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            value
        } else {
            cstring(&format!(" {}", value.to_string_lossy()))
        };
        if index >= out.len() {
            out.push((name, value));
        } else {
            out.insert(index, (name, value));
        }
    }
    out
}

async fn run_connection(
    id: usize,
    args: &Args,
    msgs: &[Prepared],
    deadline: Instant,
    count: usize,
    st: &mut Stats,
) -> std::io::Result<()> {
    let mut first = Conn::open(&args.socket, args.ip, &args.helo, id, ProtoOpts::all()).await?;
    let mut second = match &args.chain {
        Some(spec) => Some(Conn::open(spec, args.ip, &args.helo, id, ProtoOpts::all()).await?),
        None => None,
    };
    for n in 0..count {
        if Instant::now() >= deadline {
            break;
        }
        let m = &msgs[(id + n) % msgs.len()];
        let qid = format!("L{id:03}{n:06}");
        let t0 = Instant::now();
        // Postfix's smtpd sends each SMTP event to every milter in turn ...
        first.envelope(args, &qid).await?;
        if let Some(c) = second.as_mut() {
            c.envelope(args, &qid).await?;
        }
        // ... and its cleanup server replays the whole message to each milter in turn, with
        // the earlier milters' header changes applied (milter8.c, cleanup_milter.c).
        let (mut eom, fin) = first
            .content(&m.headers, &m.body, &qid, st, args.verbose && n == 0)
            .await?;
        if let (Some(c), Final::Pass(added)) = (second.as_mut(), fin) {
            let headers = apply_added(&m.headers, added);
            let (eom2, _) = c
                .content(&headers, &m.body, &qid, st, args.verbose && n == 0)
                .await?;
            eom += eom2;
        }
        st.eom_us.push(eom.as_micros() as u64);
        st.txn_us.push(t0.elapsed().as_micros() as u64);
        send(&mut first.s, Command::Abort).await?;
        if let Some(c) = second.as_mut() {
            send(&mut c.s, Command::Abort).await?;
        }
    }
    send(&mut first.s, Command::Quit).await?;
    if let Some(c) = second.as_mut() {
        send(&mut c.s, Command::Quit).await?;
    }
    Ok(())
}

/// `--hold N`: opens N connections that negotiate, connect and HELO, then stay open and idle
/// for `--hold-secs` (while the caller reads the milter's memory), then quits them.
async fn hold(args: Arc<Args>, n: usize) {
    let mut conns = Vec::with_capacity(n);
    let mut errors = 0usize;
    let t0 = Instant::now();
    for id in 0..n {
        if t0.elapsed() > Duration::from_secs(args.max_secs) {
            break;
        }
        match Conn::open(&args.socket, args.ip, &args.helo, id, ProtoOpts::all()).await {
            Ok(c) => conns.push(c),
            Err(e) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("hold connection {id}: {e}");
                }
            }
        }
    }
    eprintln!("holding {} connections ({errors} failed)", conns.len());
    if let Some(path) = &args.ready_file {
        std::fs::write(path, format!("{}\n", conns.len())).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    for mut c in conns {
        let _ = send(&mut c.s, Command::Quit).await;
    }
    println!(
        "{}",
        serde_json::json!({"held": n - errors, "errors": errors})
    );
    if errors > 0 {
        std::process::exit(1);
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    if args.mix.is_some() {
        std::process::exit(soak::run(args).await);
    }
    if let Some(n) = args.hold {
        hold(args, n).await;
        return;
    }
    if args.files.is_empty() {
        eprintln!("no .eml files given");
        std::process::exit(2);
    }
    let msgs: Vec<Prepared> = args
        .files
        .iter()
        .map(|f| prepare(&std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()))))
        .collect();
    let msgs = Arc::new(msgs);
    if args.warmup > 0 {
        let deadline = Instant::now() + Duration::from_secs(args.max_secs);
        let st = connection(0, args.clone(), msgs.clone(), deadline, args.warmup).await;
        if st.errors > 0 {
            std::process::exit(1);
        }
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.max_secs);
    let tasks: Vec<_> = (0..args.connections)
        .map(|id| {
            tokio::spawn(connection(
                id,
                args.clone(),
                msgs.clone(),
                deadline,
                args.messages,
            ))
        })
        .collect();
    let mut total = Stats::default();
    for t in tasks {
        let st = t.await.unwrap();
        total.eom_us.extend(st.eom_us);
        total.txn_us.extend(st.txn_us);
        total.continue_ += st.continue_;
        total.accept += st.accept;
        total.reject += st.reject;
        total.tempfail += st.tempfail;
        total.discard += st.discard;
        total.quarantined += st.quarantined;
        total.errors += st.errors;
    }
    let elapsed = start.elapsed().as_secs_f64();
    total.eom_us.sort_unstable();
    total.txn_us.sort_unstable();
    let n = total.eom_us.len();
    let rate = n as f64 / elapsed;
    let lat = |v: &[u64]| {
        serde_json::json!({
            "p50_ms": pct(v, 0.50), "p90_ms": pct(v, 0.90), "p99_ms": pct(v, 0.99),
            "max_ms": v.last().map_or(0.0, |m| *m as f64 / 1000.0),
        })
    };
    let report = serde_json::json!({
        "connections": args.connections,
        "chain": args.chain.is_some(),
        "messages": n,
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "msg_per_s": (rate * 10.0).round() / 10.0,
        "eom": lat(&total.eom_us),
        "transaction": lat(&total.txn_us),
        "replies": {
            "continue": total.continue_, "accept": total.accept, "reject": total.reject,
            "tempfail": total.tempfail, "discard": total.discard, "quarantined": total.quarantined,
        },
        "errors": total.errors,
    });
    if args.format == "json" {
        println!("{report}");
    } else {
        println!(
            "{n} messages on {} connections in {elapsed:.2} s: {rate:.1} msg/s",
            args.connections
        );
        for (label, v) in [("eom", &total.eom_us), ("transaction", &total.txn_us)] {
            println!(
                "{label:>12}: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                pct(v, 0.5),
                pct(v, 0.9),
                pct(v, 0.99),
                v.last().map_or(0.0, |m| *m as f64 / 1000.0)
            );
        }
        println!(
            "     replies: continue {} accept {} reject {} tempfail {} discard {} (quarantined {}), errors {}",
            total.continue_,
            total.accept,
            total.reject,
            total.tempfail,
            total.discard,
            total.quarantined,
            total.errors
        );
    }
    if total.errors > 0 {
        std::process::exit(1);
    }
}

/// `--mix`: the soak mode. Every message sent (EOM written) must get exactly one final reply;
/// messages cut short (abort, disconnect, malformed packet) must get none. Counts go to a JSON
/// report on stdout; anything else is a problem, listed there, and makes the exit status 1.
mod soak {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::timeout;

    /// One kind of message of the mix file.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        name: String,
        file: PathBuf,
        ip: IpAddr,
        helo: String,
        mail_from: String,
        #[serde(default = "one")]
        weight: u32,
        #[serde(default)]
        pool: u64,
    }

    fn one() -> u32 {
        1
    }

    struct Kind {
        e: Entry,
        msg: Prepared,
        /// Index of the client (ip, helo) this kind is sent from.
        client: usize,
    }

    impl Kind {
        fn mail_from(&self, seq: u64) -> String {
            let n = if self.e.pool > 0 {
                seq % self.e.pool
            } else {
                seq
            };
            self.e.mail_from.replace("{n}", &n.to_string())
        }
    }

    /// What is done to one message.
    #[derive(Clone, Copy)]
    enum Plan {
        Whole,
        /// The last body chunk in the end-of-message packet.
        EomBody,
        /// After `cut` steps: SMFIC_ABORT, then the connection goes on.
        Abort(usize),
        /// After `cut` steps the socket is closed.
        Disconnect(usize),
        /// After `cut` steps a malformed packet of the given variant.
        Garbage(usize, usize),
    }

    /// Malformed packets the milter must answer by closing the connection.
    const GARBAGE: [&str; 3] = ["unknown-command", "length-over-1MiB", "truncated-then-eof"];

    #[derive(Default)]
    struct Stats {
        connections: u64,
        /// Connections that did not offer SMFIP_SKIP.
        no_skip_connections: u64,
        /// Messages whose EOM was written.
        sent: u64,
        /// Final replies by kind: accept, continue, continue_modified, quarantine, reject,
        /// tempfail, discard.
        replies: BTreeMap<&'static str, u64>,
        by_kind: BTreeMap<String, BTreeMap<&'static str, u64>>,
        /// EOM written, no final reply (closed or timed out).
        no_reply: u64,
        /// Packets the milter sent that answered nothing (after a final reply, at QUIT).
        extra_replies: u64,
        /// A reply other than Continue (or Skip to a body chunk) before end of message.
        unexpected: u64,
        aborted: u64,
        disconnected: u64,
        garbage: BTreeMap<&'static str, u64>,
        eom_body: u64,
        io_errors: u64,
        eom_us: Vec<u64>,
        problems: Vec<String>,
        outcomes: Vec<(String, usize, &'static str)>,
    }

    impl Stats {
        fn problem(&mut self, what: String) {
            if self.problems.len() < 20 {
                self.problems.push(what);
            }
        }

        fn merge(&mut self, o: Stats) {
            self.connections += o.connections;
            self.no_skip_connections += o.no_skip_connections;
            self.sent += o.sent;
            for (k, v) in o.replies {
                *self.replies.entry(k).or_default() += v;
            }
            for (name, m) in o.by_kind {
                let e = self.by_kind.entry(name).or_default();
                for (k, v) in m {
                    *e.entry(k).or_default() += v;
                }
            }
            self.no_reply += o.no_reply;
            self.extra_replies += o.extra_replies;
            self.unexpected += o.unexpected;
            self.aborted += o.aborted;
            self.disconnected += o.disconnected;
            for (k, v) in o.garbage {
                *self.garbage.entry(k).or_default() += v;
            }
            self.eom_body += o.eom_body;
            self.io_errors += o.io_errors;
            self.eom_us.extend(o.eom_us);
            for p in o.problems {
                self.problem(p);
            }
            self.outcomes.extend(o.outcomes);
        }
    }

    /// Why a message stopped early.
    enum Stop {
        /// The connection is still usable (the message ended with a final reply or ABORT).
        Keep,
        /// The connection is gone (closed by us, or by the milter after garbage).
        Closed,
    }

    type Res<T> = Result<T, String>;

    struct Driver<'a> {
        args: &'a Args,
        kinds: &'a [Kind],
        wait: Duration,
    }

    impl Driver<'_> {
        async fn read(&self, c: &mut Conn) -> Res<Reply> {
            match timeout(self.wait, reply(&mut c.s)).await {
                Ok(r) => r.map_err(|e| format!("read: {e}")),
                Err(_) => Err(format!("no reply within {} s", self.wait.as_secs())),
            }
        }

        async fn write(&self, c: &mut Conn, cmd: Command) -> Res<()> {
            match timeout(self.wait, send(&mut c.s, cmd)).await {
                Ok(r) => r.map_err(|e| format!("write: {e}")),
                Err(_) => Err("write timed out".into()),
            }
        }

        /// Sends one step and checks its reply is Continue (`skip_ok`: or Skip). Returns true
        /// on Skip.
        async fn step(
            &self,
            c: &mut Conn,
            cmd: Command,
            no: ProtoOpts,
            noreply: ProtoOpts,
            skip_ok: bool,
            st: &mut Stats,
        ) -> Res<bool> {
            if c.opts.contains(no) {
                return Ok(false);
            }
            self.write(c, cmd).await?;
            if c.opts.contains(noreply) {
                return Ok(false);
            }
            match self.read(c).await? {
                Reply::Continue => Ok(false),
                Reply::Skip if skip_ok => Ok(true),
                other => {
                    st.unexpected += 1;
                    Err(format!("unexpected reply before end of message: {other:?}"))
                }
            }
        }

        /// One message on `c`, following `plan`.
        async fn message(
            &self,
            c: &mut Conn,
            k: usize,
            seq: u64,
            plan: Plan,
            st: &mut Stats,
        ) -> Res<Stop> {
            let kind = &self.kinds[k];
            let qid = format!("{}{seq:09}", self.args.qid_prefix);
            let m = &kind.msg;
            let cut = match plan {
                Plan::Abort(n) | Plan::Disconnect(n) | Plan::Garbage(n, _) => Some(n),
                _ => None,
            };
            let mut done = 0usize;
            macro_rules! cut_here {
                () => {
                    if cut == Some(done) {
                        return self.interrupt(c, plan, &qid, k, st).await;
                    }
                    done += 1;
                };
            }
            cut_here!();
            self.write(c, macros(MacroStage::Mail, &[("i", &qid)]))
                .await?;
            let from = format!("<{}>", kind.mail_from(seq));
            let mail = Command::Mail(EnvAddrPayload {
                args: vec![cstring(&from)],
            });
            self.step(
                c,
                mail,
                ProtoOpts::NO_MAIL,
                ProtoOpts::NOREPLY_MAIL,
                false,
                st,
            )
            .await?;
            cut_here!();
            let rcpt = Command::Rcpt(EnvAddrPayload {
                args: vec![cstring(&format!("<{}>", self.args.rcpt))],
            });
            self.step(
                c,
                rcpt,
                ProtoOpts::NO_RCPT,
                ProtoOpts::NOREPLY_RCPT,
                false,
                st,
            )
            .await?;
            cut_here!();
            self.step(
                c,
                Command::Data,
                ProtoOpts::NO_DATA,
                ProtoOpts::NOREPLY_DATA,
                false,
                st,
            )
            .await?;
            for (name, value) in &m.headers {
                cut_here!();
                let h = Command::Header(HeaderPayload {
                    name: name.clone(),
                    value: header_value(value, c.opts),
                });
                self.step(
                    c,
                    h,
                    ProtoOpts::NO_HEADER,
                    ProtoOpts::NOREPLY_HEADER,
                    false,
                    st,
                )
                .await?;
            }
            cut_here!();
            self.step(
                c,
                Command::Eoh,
                ProtoOpts::NO_EOH,
                ProtoOpts::NOREPLY_EOH,
                false,
                st,
            )
            .await?;
            let chunks: Vec<&[u8]> = m.body.chunks(65535).collect();
            let in_eom = matches!(plan, Plan::EomBody) && !chunks.is_empty();
            let mut last = Bytes::new();
            for (i, chunk) in chunks.iter().enumerate() {
                if in_eom && i + 1 == chunks.len() {
                    last = m.body.slice_ref(chunk);
                    break;
                }
                cut_here!();
                let b = Command::BodyChunk(m.body.slice_ref(chunk));
                if self
                    .step(c, b, ProtoOpts::NO_BODY, ProtoOpts::NOREPLY_BODY, true, st)
                    .await?
                {
                    last = Bytes::new();
                    break;
                }
            }
            // A cut is always drawn before end of message: never past the steps above.
            if cut.is_some() {
                return self.interrupt(c, plan, &qid, k, st).await;
            }
            if in_eom {
                st.eom_body += 1;
            }
            self.write(c, macros(MacroStage::Eom, &[("i", &qid)]))
                .await?;
            let t = Instant::now();
            self.write(c, Command::BodyEnd(last)).await?;
            st.sent += 1;
            let outcome = match self.final_reply(c).await {
                Ok(o) => o,
                Err(e) => {
                    st.no_reply += 1;
                    st.outcomes.push((qid.clone(), k, "no_reply"));
                    return Err(format!("{qid} ({}): {e}", kind.e.name));
                }
            };
            st.eom_us.push(t.elapsed().as_micros() as u64);
            *st.replies.entry(outcome).or_default() += 1;
            *st.by_kind
                .entry(kind.e.name.clone())
                .or_default()
                .entry(outcome)
                .or_default() += 1;
            st.outcomes.push((qid, k, outcome));
            // Postfix ends every message with ABORT, then sends MAIL for the next one.
            self.write(c, Command::Abort).await?;
            Ok(Stop::Keep)
        }

        /// Reads modification replies up to the final one; names the outcome.
        async fn final_reply(&self, c: &mut Conn) -> Res<&'static str> {
            let (mut modified, mut quarantined) = (false, false);
            loop {
                match self.read(c).await? {
                    Reply::Continue if quarantined => return Ok("quarantine"),
                    Reply::Continue if modified => return Ok("continue_modified"),
                    Reply::Continue => return Ok("continue"),
                    Reply::Accept => return Ok("accept"),
                    Reply::Reject => return Ok("reject"),
                    Reply::Tempfail => return Ok("tempfail"),
                    Reply::Discard => return Ok("discard"),
                    Reply::ReplyCode { reply } => {
                        return Ok(match reply.as_bytes().first() {
                            Some(b'5') => "reject",
                            Some(b'4') => "tempfail",
                            _ => return Err(format!("reply code {reply:?}")),
                        });
                    }
                    Reply::Quarantine { .. } => quarantined = true,
                    Reply::InsertHeader { .. }
                    | Reply::AddHeader { .. }
                    | Reply::ChangeHeader { .. } => modified = true,
                    Reply::Progress => {}
                    other => return Err(format!("unexpected reply to end of message: {other:?}")),
                }
            }
        }

        /// The hostile part of a plan, at its cut point.
        async fn interrupt(
            &self,
            c: &mut Conn,
            plan: Plan,
            qid: &str,
            k: usize,
            st: &mut Stats,
        ) -> Res<Stop> {
            match plan {
                Plan::Abort(_) => {
                    self.write(c, Command::Abort).await?;
                    st.aborted += 1;
                    st.outcomes.push((qid.to_owned(), k, "aborted"));
                    Ok(Stop::Keep)
                }
                Plan::Disconnect(_) => {
                    let _ = c.s.shutdown().await;
                    st.disconnected += 1;
                    st.outcomes.push((qid.to_owned(), k, "disconnected"));
                    Ok(Stop::Closed)
                }
                Plan::Garbage(_, v) => {
                    let bytes: &[u8] = match v {
                        // Length 5, command byte 'z' (no such command), 4 bytes of payload.
                        0 => b"\x00\x00\x00\x05zjunk",
                        // A length over indymilter's 1 MiB limit, command 'B'.
                        1 => b"\x7f\xff\xff\xf0B",
                        // A header packet announced as 200 bytes, 9 sent, then end of file.
                        _ => b"\x00\x00\x00\xc8LSubject\x00",
                    };
                    let w = async {
                        c.s.write_all(bytes).await?;
                        c.s.flush().await?;
                        if v == 2 {
                            c.s.shutdown().await?;
                        }
                        std::io::Result::Ok(())
                    };
                    match timeout(self.wait, w).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(format!("garbage write: {e}")),
                        Err(_) => return Err("garbage write timed out".into()),
                    }
                    *st.garbage.entry(GARBAGE[v]).or_default() += 1;
                    st.outcomes.push((qid.to_owned(), k, "garbage"));
                    // The milter must close the connection and answer nothing.
                    let extra = self.drain(c).await?;
                    if extra > 0 {
                        st.extra_replies += extra;
                        return Err(format!(
                            "{qid}: {extra} byte(s) answered a malformed packet ({})",
                            GARBAGE[v]
                        ));
                    }
                    Ok(Stop::Closed)
                }
                Plan::Whole | Plan::EomBody => Ok(Stop::Keep),
            }
        }

        /// Reads until the milter closes the connection; returns the bytes it sent.
        async fn drain(&self, c: &mut Conn) -> Res<u64> {
            let mut buf = [0u8; 4096];
            let mut n = 0u64;
            loop {
                match timeout(self.wait, c.s.read(&mut buf)).await {
                    Ok(Ok(0)) => return Ok(n),
                    Ok(Ok(k)) => n += k as u64,
                    // A reset after we wrote into a closing socket is a close too.
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(n),
                    Ok(Err(e)) => return Err(format!("read after close: {e}")),
                    Err(_) => {
                        return Err(format!(
                            "connection not closed within {} s",
                            self.wait.as_secs()
                        ));
                    }
                }
            }
        }
    }

    /// One worker: connections one after another until its message budget or the deadline.
    async fn worker(
        id: usize,
        args: Arc<Args>,
        kinds: Arc<Vec<Kind>>,
        clients: Arc<Vec<(IpAddr, String)>>,
        deadline: Instant,
        seq: Arc<AtomicU64>,
    ) -> Stats {
        let d = Driver {
            args: &args,
            kinds: &kinds,
            wait: Duration::from_secs(args.reply_timeout_secs),
        };
        let mut rng =
            fastrand::Rng::with_seed(args.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let pick = |rng: &mut fastrand::Rng, client: Option<usize>| -> usize {
            let w: u32 = kinds
                .iter()
                .filter(|k| client.is_none_or(|c| k.client == c))
                .map(|k| k.e.weight)
                .sum();
            let mut r = rng.u32(0..w.max(1));
            for (i, k) in kinds.iter().enumerate() {
                if client.is_some_and(|c| k.client != c) {
                    continue;
                }
                if r < k.e.weight {
                    return i;
                }
                r -= k.e.weight;
            }
            0
        };
        let pace = if args.rate > 0.0 {
            Some(Duration::from_secs_f64(args.connections as f64 / args.rate))
        } else {
            None
        };
        let mut next = Instant::now();
        let mut st = Stats::default();
        let mut left = args.messages;
        let cut_total = args.abort_permille + args.disconnect_permille + args.garbage_permille;
        while left > 0 && Instant::now() < deadline {
            let first = pick(&mut rng, None);
            let client = kinds[first].client;
            let (ip, helo) = &clients[client];
            // Some connections do not offer SKIP; only they send body data with EOM. With SKIP
            // negotiated, a SKIP answer to that data would be written twice and EOM never
            // handled (indymilter does as libmilter does), so a client must not combine them.
            let no_skip = rng.u32(0..1000) < args.no_skip_permille;
            let offer = if no_skip {
                ProtoOpts::all() - ProtoOpts::SKIP
            } else {
                ProtoOpts::all()
            };
            let open = Conn::open(&args.socket, *ip, helo, id, offer);
            let mut c = match timeout(d.wait, open).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    st.io_errors += 1;
                    st.problem(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(_) => {
                    st.io_errors += 1;
                    st.problem("connect: no answer to negotiation, connect or HELO".into());
                    continue;
                }
            };
            st.connections += 1;
            st.no_skip_connections += u64::from(no_skip);
            let n = rng.usize(1..=args.per_connection.max(1));
            let mut open = true;
            for i in 0..n {
                if left == 0 || Instant::now() >= deadline {
                    break;
                }
                left -= 1;
                if let Some(p) = pace {
                    next += p;
                    tokio::time::sleep_until(next.into()).await;
                    // After a stall, do not burst to catch up.
                    if let Some(floor) = Instant::now().checked_sub(p) {
                        next = next.max(floor);
                    }
                }
                let k = if i == 0 {
                    first
                } else {
                    pick(&mut rng, Some(client))
                };
                let steps =
                    5 + kinds[k].msg.headers.len() + kinds[k].msg.body.len().div_ceil(65535);
                let roll = rng.u32(0..1000);
                let plan = if roll < args.abort_permille {
                    Plan::Abort(rng.usize(0..steps))
                } else if roll < args.abort_permille + args.disconnect_permille {
                    Plan::Disconnect(rng.usize(0..steps))
                } else if roll < cut_total {
                    Plan::Garbage(rng.usize(0..steps), rng.usize(0..GARBAGE.len()))
                } else if no_skip && roll < cut_total + args.eom_body_permille {
                    Plan::EomBody
                } else {
                    Plan::Whole
                };
                let seq = seq.fetch_add(1, Ordering::Relaxed);
                match d.message(&mut c, k, seq, plan, &mut st).await {
                    Ok(Stop::Keep) => {}
                    Ok(Stop::Closed) => {
                        open = false;
                        break;
                    }
                    Err(e) => {
                        st.io_errors += 1;
                        st.problem(e);
                        open = false;
                        break;
                    }
                }
            }
            if open {
                // QUIT, then the milter closes: anything it still sends answered nothing.
                match d.write(&mut c, Command::Quit).await {
                    Ok(()) => match d.drain(&mut c).await {
                        Ok(0) => {}
                        Ok(n) => {
                            st.extra_replies += 1;
                            st.problem(format!("{n} byte(s) after QUIT"));
                        }
                        Err(e) => {
                            st.io_errors += 1;
                            st.problem(format!("after QUIT: {e}"));
                        }
                    },
                    Err(e) => {
                        st.io_errors += 1;
                        st.problem(format!("QUIT: {e}"));
                    }
                }
            }
        }
        st
    }

    /// Runs the soak; returns the exit status.
    pub async fn run(args: Arc<Args>) -> i32 {
        let Some(path) = &args.mix else { return 2 };
        let entries: Vec<Entry> = match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                return 2;
            }
        };
        let mut clients: Vec<(IpAddr, String)> = Vec::new();
        let mut kinds = Vec::new();
        for e in entries {
            let raw = match std::fs::read(&e.file) {
                Ok(r) => r,
                Err(err) => {
                    eprintln!("{}: {err}", e.file.display());
                    return 2;
                }
            };
            let key = (e.ip, e.helo.clone());
            let client = match clients.iter().position(|c| *c == key) {
                Some(i) => i,
                None => {
                    clients.push(key);
                    clients.len() - 1
                }
            };
            kinds.push(Kind {
                msg: prepare(&raw),
                e,
                client,
            });
        }
        if kinds.is_empty() || kinds.iter().all(|k| k.e.weight == 0) {
            eprintln!("{}: no message kind with a weight", path.display());
            return 2;
        }
        let kinds = Arc::new(kinds);
        let clients = Arc::new(clients);
        let seq = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(args.max_secs);
        let tasks: Vec<_> = (0..args.connections)
            .map(|id| {
                tokio::spawn(worker(
                    id,
                    args.clone(),
                    kinds.clone(),
                    clients.clone(),
                    deadline,
                    seq.clone(),
                ))
            })
            .collect();
        let mut st = Stats::default();
        for t in tasks {
            match t.await {
                Ok(s) => st.merge(s),
                Err(e) => {
                    st.io_errors += 1;
                    st.problem(format!("worker failed: {e}"));
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        if let Some(p) = &args.replies_file {
            let mut text = String::with_capacity(st.outcomes.len() * 40);
            for (qid, k, outcome) in &st.outcomes {
                text.push_str(&format!("{qid} {} {outcome}\n", kinds[*k].e.name));
            }
            if let Err(e) = std::fs::write(p, text) {
                eprintln!("{}: {e}", p.display());
                return 2;
            }
        }
        st.eom_us.sort_unstable();
        let replied: u64 = st.replies.values().sum();
        let ok = st.problems.is_empty()
            && st.no_reply == 0
            && st.extra_replies == 0
            && st.unexpected == 0
            && st.io_errors == 0
            && replied == st.sent;
        let report = serde_json::json!({
            "seconds": (secs * 1000.0).round() / 1000.0,
            "connections": st.connections,
            "no_skip_connections": st.no_skip_connections,
            "sent": st.sent,
            "replied": replied,
            "msg_per_s": ((st.sent as f64 / secs) * 10.0).round() / 10.0,
            "replies": st.replies,
            "by_kind": st.by_kind,
            "no_reply": st.no_reply,
            "extra_replies": st.extra_replies,
            "unexpected": st.unexpected,
            "aborted": st.aborted,
            "disconnected": st.disconnected,
            "garbage": st.garbage,
            "eom_body": st.eom_body,
            "io_errors": st.io_errors,
            "eom_ms": {
                "p50": pct(&st.eom_us, 0.5), "p99": pct(&st.eom_us, 0.99),
                "max": st.eom_us.last().map_or(0.0, |m| *m as f64 / 1000.0),
            },
            "problems": st.problems,
            "ok": ok,
        });
        println!("{report}");
        if ok { 0 } else { 1 }
    }
}
