//! `spoofguard check` and `spoofguard domain`: the same evaluation as the milter, offline,
//! printed as text or JSON lines; `spoofguard brands`: the brand catalogue in effect.

use crate::config::Config;
use crate::evaluate::{self, Envelope, Evaluation, Kind};
use crate::header;
use crate::intake::{Intake, Limits};
use crate::lookalike;
use crate::runtime::{Rules, Runtime};
use crate::score::Reason;
use crate::zone::{Zone, ZoneServer};
use serde_json::json;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `println!` for command output: when the reader has gone away (`spoofguard brands | head`),
/// stop quietly with status 0 instead of panicking on the broken pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("spoofguard: cannot write output: {e}");
            std::process::exit(2);
        }
    }};
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Options of `spoofguard check`.
pub struct CheckOptions {
    pub zone: Option<PathBuf>,
    pub ip: Option<IpAddr>,
    pub helo: Option<String>,
    pub mail_from: Option<String>,
    pub format: Format,
}

/// Evaluates each file and prints one report per file. Returns the number of files that
/// could not be read.
pub async fn run_check(
    mut config: Config,
    opts: &CheckOptions,
    files: &[PathBuf],
) -> anyhow::Result<usize> {
    let _server = match &opts.zone {
        Some(path) => {
            let zone = Zone::load(path)?;
            let server = ZoneServer::start(zone).await?;
            config.dns.nameservers = vec![server.addr()];
            config.dns.timeout = Duration::from_secs(2);
            config.dns.attempts = 1;
            Some(server)
        }
        None => None,
    };
    // Resolved as the milter resolves it, with this host's name for the MTA's.
    let authserv_id = evaluate::authserv_id(&config, None);
    let rt = Runtime::build(config, None)?;
    let limits = Limits::of(&rt.config);
    let mut failed = 0;
    for file in files {
        let raw = match std::fs::read(file) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: cannot read: {e}", file.display());
                failed += 1;
                continue;
            }
        };
        let envelope = Envelope {
            client_ip: opts.ip.map(evaluate::client_ip),
            helo: opts.helo.clone().unwrap_or_default(),
            mail_from: opts
                .mail_from
                .clone()
                .unwrap_or_else(|| default_mail_from(&raw)),
            recipients: Vec::new(),
            queue_id: "NONE".into(),
            authenticated: false,
            authserv_id: authserv_id.clone(),
        };
        // Taken in field by field within the same limits as the milter's, so an oversize
        // message or a forged-header flood gets the milter's outcome here too.
        let intake = Intake::from_message(limits, &raw, &authserv_id);
        let eval = evaluate::evaluate(&rt, &envelope, intake.input()).await;
        print_report(file, &eval, &intake, opts.format);
    }
    Ok(failed)
}

/// Return-Path, else the From address: what MAIL FROM most likely was.
fn default_mail_from(raw: &[u8]) -> String {
    let Some(msg) = mail_parser::MessageParser::new().parse(raw) else {
        return String::new();
    };
    if let Some(rp) = msg.return_address() {
        return rp.trim_matches(['<', '>']).to_owned();
    }
    msg.from()
        .and_then(|f| f.first().and_then(|m| m.address().map(str::to_owned)))
        .unwrap_or_default()
}

fn reasons_json(reasons: &[Reason]) -> serde_json::Value {
    serde_json::Value::Array(
        reasons
            .iter()
            .map(|r| json!({"code": r.code, "detail": r.detail, "weight": r.weight}))
            .collect(),
    )
}

fn print_report(file: &Path, eval: &Evaluation, intake: &Intake, format: Format) {
    let ar = eval.authentication_results().map(|v| header::unfold(&v));
    let subject = eval.tagged_subject(intake.subject());
    match format {
        Format::Json => {
            let mut obj = json!({
                "file": file.display().to_string(),
                "verdict": eval.decision,
                "score": eval.score,
                "reasons": reasons_json(&eval.reasons),
                "action": eval.action,
                "headers": eval.headers.iter().map(|h| json!({"name": h.name, "value": h.value})).collect::<Vec<_>>(),
            });
            if let Some(v) = &eval.verdicts {
                obj["spf"] = json!(v.spf.result);
                obj["dkim"] = json!(v.dkim_summary());
                obj["dmarc"] = json!(v.dmarc.result);
                obj["arc"] = json!(v.arc.result);
            }
            if let Some(ar) = ar {
                obj["authentication_results"] = json!(ar);
            }
            if eval.kind != Kind::Judged {
                obj["not_judged"] = json!(eval.kind.reason());
            }
            if let Some(b) = &eval.brand {
                obj["brand"] = json!(b);
            }
            if let Some(w) = &eval.why {
                obj["why"] = json!(w);
            }
            if let Some(o) = eval.policy_override {
                obj["policy_override"] = json!(o.as_str());
            }
            if let Some(r) = &eval.reply {
                obj["reply"] = json!(r.to_string());
            }
            if let Some(s) = subject {
                obj["subject"] = json!(s);
            }
            out!("{obj}");
        }
        Format::Text => {
            out!(
                "{}: verdict={} score={:.1}",
                file.display(),
                eval.decision,
                eval.score
            );
            if let Some(ar) = ar {
                out!("  Authentication-Results: {ar}");
            }
            if eval.kind != Kind::Judged {
                out!("  not judged: {}", eval.kind.reason());
            }
            if let Some(w) = &eval.why {
                out!("  why: {w}");
            }
            if let Some(o) = eval.policy_override {
                out!("  policy_override: {}", o.as_str());
            }
            if let Some(r) = &eval.reply {
                out!("  reply: {r}");
            }
            if let Some(s) = subject {
                out!("  Subject: {s}");
            }
            for r in &eval.reasons {
                out!("  {:+6.1} {} {}", r.weight, r.code, r.detail);
            }
        }
    }
}

/// `spoofguard domain`: scores sender domains alone.
pub fn run_domain(rules: &Rules, domains: &[String], format: Format) -> anyhow::Result<()> {
    for domain in domains {
        let judged = evaluate::evaluate_domain(rules, domain);
        let (total, verdict, reasons, brand) =
            (judged.score, judged.decision, judged.reasons, judged.brand);
        match format {
            Format::Json => {
                let mut obj = json!({
                    "domain": domain,
                    "score": total,
                    "verdict": verdict,
                    "reasons": reasons_json(&reasons),
                });
                if let Some(b) = brand {
                    obj["brand"] = json!(b);
                }
                out!("{obj}");
            }
            Format::Text => {
                out!("{domain}: verdict={verdict} score={total:.1}");
                for r in &reasons {
                    out!("  {:+6.1} {} {}", r.weight, r.code, r.detail);
                }
            }
        }
    }
    Ok(())
}

/// `spoofguard brands`: the catalogue in effect (built-in brands merged with `[[brand]]`).
pub fn run_brands(rules: &Rules, format: Format) -> anyhow::Result<()> {
    let brands = rules.catalogue().brands();
    for b in brands {
        match format {
            Format::Json => {
                let obj = json!({
                    "name": b.name,
                    "origin": b.origin.as_str(),
                    "region": b.region,
                    "category": b.category,
                    "countries": b.countries,
                    "domains": b.domains,
                    "suffixes": b.suffixes,
                    "aliases": b.aliases,
                    "tokens": b.tokens,
                    "word_tokens": b.word_tokens,
                    "source": b.source,
                });
                out!("{obj}");
            }
            Format::Text => {
                let tag = if b.region.is_empty() {
                    "-".to_owned()
                } else {
                    format!("{}/{}", b.region, b.category)
                };
                out!("{} [{tag}] {}", b.name, b.origin.as_str());
                out!("  domains: {}", b.domains.join(", "));
                if !b.aliases.is_empty() {
                    out!("  aliases: {}", b.aliases.join(", "));
                }
            }
        }
    }
    if format == Format::Text {
        let builtin = brands
            .iter()
            .filter(|b| b.origin != lookalike::Origin::Config)
            .count();
        out!(
            "{} brands ({builtin} built-in, {} from config only)",
            brands.len(),
            brands.len() - builtin
        );
    }
    Ok(())
}
