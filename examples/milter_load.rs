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
    /// .eml files, used round-robin
    files: Vec<PathBuf>,
}

/// A message split as the MTA sends it.
struct Prepared {
    headers: Vec<(CString, CString)>,
    body: Bytes,
}

fn prepare(raw: &[u8]) -> Prepared {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push('\n');
                last.1.push_str(line);
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.to_owned(), v.to_owned()));
        }
    }
    Prepared {
        headers: headers
            .into_iter()
            .map(|(n, v)| (cstring(&n), cstring(&v)))
            .collect(),
        body: Bytes::from(body.replace('\n', "\r\n")),
    }
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
    async fn open(spec: &str, args: &Args, id: usize) -> std::io::Result<Self> {
        let mut s = open(spec).await?;
        send(
            &mut s,
            Command::OptNeg(OptNegPayload {
                version: PROTOCOL_VERSION,
                actions: Actions::all(),
                opts: ProtoOpts::all(),
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
                    socket_info: SocketInfo::Inet(SocketAddr::new(
                        args.ip,
                        40000 + (id % 20000) as u16,
                    )),
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
                    hostname: cstring(&args.helo),
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
                let value = if opts.contains(ProtoOpts::LEADING_SPACE) {
                    value.clone()
                } else {
                    cstring(value.to_str().unwrap_or("").strip_prefix(' ').unwrap_or(""))
                };
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
    let mut first = Conn::open(&args.socket, args, id).await?;
    let mut second = match &args.chain {
        Some(spec) => Some(Conn::open(spec, args, id).await?),
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
        match Conn::open(&args.socket, &args, id).await {
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
