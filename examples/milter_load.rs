//! milter-load: a milter load generator that talks to a milter as Postfix does.
//!
//! C connections, each negotiating once and sending M messages (MAIL, RCPT, DATA, headers,
//! EOH, body chunks, EOM, then ABORT before the next message, as Postfix does), from real .eml
//! files with envelope data. Reports messages, msg/s, latency percentiles of the end-of-message
//! reply and of the whole transaction, and counts of each final reply, as text or JSON.
//! Loops are bounded by count and by time, and it only connects where it is told (use
//! loopback).
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
    /// .eml files, used round-robin
    #[arg(required = true)]
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
    if let Some(path) = spec.strip_prefix("unix:") {
        return Ok(Box::new(tokio::net::UnixStream::connect(path).await?));
    }
    let addr = spec
        .strip_prefix("inet:")
        .or_else(|| spec.strip_prefix("inet6:"))
        .unwrap_or(spec);
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

/// Runs one connection; returns its stats.
async fn connection(
    id: usize,
    args: Arc<Args>,
    msgs: Arc<Vec<Prepared>>,
    deadline: Instant,
) -> Stats {
    let mut st = Stats::default();
    if let Err(e) = run_connection(id, &args, &msgs, deadline, &mut st).await {
        eprintln!("connection {id}: {e}");
        st.errors += 1;
    }
    st
}

async fn run_connection(
    id: usize,
    args: &Args,
    msgs: &[Prepared],
    deadline: Instant,
    st: &mut Stats,
) -> std::io::Result<()> {
    let mut s = open(&args.socket).await?;
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
    let answers = |no: ProtoOpts, noreply: ProtoOpts| !opts.contains(no) && !opts.contains(noreply);
    send(
        &mut s,
        macros(MacroStage::Connect, &[("j", "mx.load.test")]),
    )
    .await?;
    send(
        &mut s,
        Command::ConnInfo(ConnInfoPayload {
            hostname: cstring("client.load.test"),
            socket_info: SocketInfo::Inet(SocketAddr::new(args.ip, 40000 + id as u16)),
        }),
    )
    .await?;
    if answers(ProtoOpts::NO_CONNECT, ProtoOpts::NOREPLY_CONNECT) {
        reply(&mut s).await?;
    }
    send(
        &mut s,
        Command::Helo(HeloPayload {
            hostname: cstring(&args.helo),
        }),
    )
    .await?;
    if answers(ProtoOpts::NO_HELO, ProtoOpts::NOREPLY_HELO) {
        reply(&mut s).await?;
    }
    for n in 0..args.messages {
        if Instant::now() >= deadline {
            break;
        }
        let m = &msgs[(id + n) % msgs.len()];
        let qid = format!("L{id:03}{n:06}");
        let t0 = Instant::now();
        send(&mut s, macros(MacroStage::Mail, &[("i", &qid)])).await?;
        send(
            &mut s,
            Command::Mail(EnvAddrPayload {
                args: vec![cstring(&format!("<{}>", args.mail_from))],
            }),
        )
        .await?;
        if answers(ProtoOpts::NO_MAIL, ProtoOpts::NOREPLY_MAIL) {
            reply(&mut s).await?;
        }
        send(
            &mut s,
            Command::Rcpt(EnvAddrPayload {
                args: vec![cstring(&format!("<{}>", args.rcpt))],
            }),
        )
        .await?;
        if answers(ProtoOpts::NO_RCPT, ProtoOpts::NOREPLY_RCPT) {
            reply(&mut s).await?;
        }
        if !opts.contains(ProtoOpts::NO_DATA) {
            send(&mut s, Command::Data).await?;
            if !opts.contains(ProtoOpts::NOREPLY_DATA) {
                reply(&mut s).await?;
            }
        }
        if !opts.contains(ProtoOpts::NO_HEADER) {
            for (name, value) in &m.headers {
                // With LEADING_SPACE the value keeps its space after the colon, as received.
                let value = if opts.contains(ProtoOpts::LEADING_SPACE) {
                    value.clone()
                } else {
                    cstring(value.to_str().unwrap_or("").strip_prefix(' ').unwrap_or(""))
                };
                send(
                    &mut s,
                    Command::Header(HeaderPayload {
                        name: name.clone(),
                        value,
                    }),
                )
                .await?;
                if !opts.contains(ProtoOpts::NOREPLY_HEADER) {
                    reply(&mut s).await?;
                }
            }
        }
        if answers(ProtoOpts::NO_EOH, ProtoOpts::NOREPLY_EOH) {
            send(&mut s, Command::Eoh).await?;
            reply(&mut s).await?;
        } else if !opts.contains(ProtoOpts::NO_EOH) {
            send(&mut s, Command::Eoh).await?;
        }
        if !opts.contains(ProtoOpts::NO_BODY) {
            for chunk in m.body.chunks(65535) {
                send(&mut s, Command::BodyChunk(Bytes::copy_from_slice(chunk))).await?;
                if !opts.contains(ProtoOpts::NOREPLY_BODY)
                    && matches!(reply(&mut s).await?, Reply::Skip)
                {
                    break;
                }
            }
        }
        send(&mut s, macros(MacroStage::Eom, &[("i", &qid)])).await?;
        let t_eom = Instant::now();
        send(&mut s, Command::BodyEnd(Bytes::new())).await?;
        loop {
            match reply(&mut s).await? {
                Reply::Continue => st.continue_ += 1,
                Reply::Accept => st.accept += 1,
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
                _ => continue,
            }
            break;
        }
        let done = Instant::now();
        st.eom_us.push((done - t_eom).as_micros() as u64);
        st.txn_us.push((done - t0).as_micros() as u64);
        send(&mut s, Command::Abort).await?;
    }
    send(&mut s, Command::Quit).await?;
    Ok(())
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
    let msgs: Vec<Prepared> = args
        .files
        .iter()
        .map(|f| prepare(&std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()))))
        .collect();
    let msgs = Arc::new(msgs);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.max_secs);
    let tasks: Vec<_> = (0..args.connections)
        .map(|id| tokio::spawn(connection(id, args.clone(), msgs.clone(), deadline)))
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
