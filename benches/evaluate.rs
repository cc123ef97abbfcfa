//! The evaluation path without I/O: parse, DKIM verify (Ed25519 and RSA-2048), SPF, DMARC,
//! lookalike checks and scoring, per message size. Every DNS answer the message needs is put in
//! the shared cache first, and the resolver points at a closed port, so any lookup that
//! escaped the cache would show up as a multi-second outlier.
//!
//! `cargo bench --bench evaluate`
#![allow(clippy::unwrap_used)]

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mail_auth::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::{DkimSigner, DomainKey};
use mail_auth::dmarc::DmarcRecord;
use mail_auth::dns::TxtRecordParser;
use mail_auth::headers::HeaderWriter;
use mail_auth::spf::SpfRecord;
use mail_auth::{ResolverCache, TxtRecord};
use spoofguard::auth::base64;
use spoofguard::config::Config;
use spoofguard::evaluate::{Envelope, Input, evaluate};
use spoofguard::runtime::Runtime;
use std::time::{Duration, Instant};

/// A message of about `size` bytes: headers, a text part and an HTML part with links.
fn message(size: usize) -> String {
    let mut body = String::from(
        "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Quarterly report</p>\r\n\
         <a href=\"https://www.sender.example/report\">https://www.sender.example/report</a>\r\n",
    );
    let line =
        "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.</p>\r\n";
    while body.len() < size {
        body.push_str(line);
    }
    body.push_str("</body></html>\r\n");
    format!(
        "From: Alice Example <alice@sender.example>\r\nTo: Bob <bob@rcpt.example>\r\n\
         Subject: Quarterly report\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\
         Message-ID: <bench@sender.example>\r\nMIME-Version: 1.0\r\n{body}"
    )
}

fn runtime(ed_pub: &str, rsa_pub: &str) -> Runtime {
    let mut config = Config::default();
    // Nothing listens there: a lookup that misses the cache fails after the timeout.
    config.dns.nameservers = vec!["127.0.0.1:9".parse().unwrap()];
    config.dns.timeout = Duration::from_secs(2);
    config.dns.attempts = 1;
    let rt = Runtime::build(config, None).unwrap();
    let until = Instant::now() + Duration::from_secs(86_400);
    let txt = &rt.verifier.caches().txt;
    txt.insert(
        "sender.example.".into(),
        SpfRecord::parse(b"v=spf1 ip4:192.0.2.10 -all").into(),
        until,
    );
    txt.insert(
        "_dmarc.sender.example.".into(),
        DmarcRecord::parse(b"v=DMARC1; p=reject").into(),
        until,
    );
    // DMARCbis's tree walk also asks the parent (RFC 9989): an NXDOMAIN answer, cached.
    let nxdomain = mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(
        mail_auth::hickory_resolver::proto::op::ResponseCode::NXDomain,
    ));
    txt.insert("_dmarc.example.".into(), TxtRecord::Error(nxdomain), until);
    txt.insert(
        "ed._domainkey.sender.example.".into(),
        DomainKey::parse(format!("v=DKIM1; k=ed25519; p={ed_pub}").as_bytes()).into(),
        until,
    );
    txt.insert(
        "rsa._domainkey.sender.example.".into(),
        DomainKey::parse(format!("v=DKIM1; k=rsa; p={rsa_pub}").as_bytes()).into(),
        until,
    );
    rt
}

fn bench(c: &mut Criterion) {
    let ed_der = Ed25519Key::generate_pkcs8().unwrap();
    let ed_pub = base64(&Ed25519Key::from_pkcs8_der(&ed_der).unwrap().public_key());
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let rsa_der = rsa.as_der().unwrap().as_ref().to_vec();
    let rsa_pub = base64(rsa.public_key().as_der().unwrap().as_ref());
    let rt = runtime(&ed_pub, &rsa_pub);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let env = Envelope {
        client_ip: Some("192.0.2.10".parse().unwrap()),
        helo: "mail.sender.example".into(),
        mail_from: "alice@sender.example".into(),
        recipients: vec!["bob@rcpt.example".into()],
        queue_id: "BENCH".into(),
        authenticated: false,
        authserv_id: "mx.bench.test".into(),
    };
    let headers = ["From", "To", "Subject", "Date", "Message-ID"];
    let mut group = c.benchmark_group("evaluate");
    for (label, size) in [("3kB", 3_000), ("50kB", 50_000), ("1MB", 1_000_000)] {
        let raw = message(size);
        let ed_sig = DkimSigner::from_key(Ed25519Key::from_pkcs8_der(&ed_der).unwrap())
            .domain("sender.example")
            .selector("ed")
            .headers(headers)
            .sign(raw.as_bytes())
            .unwrap();
        #[allow(deprecated)]
        let rsa_sig = DkimSigner::from_key(RsaKey::<Sha256>::from_pkcs8_der(&rsa_der).unwrap())
            .domain("sender.example")
            .selector("rsa")
            .headers(headers)
            .sign(raw.as_bytes())
            .unwrap();
        for (alg, sig) in [("ed25519", ed_sig), ("rsa2048", rsa_sig)] {
            let signed = format!("{}{raw}", sig.to_header()).into_bytes();
            // Check once that the cached path gives a full pass (and no DNS was needed).
            let started = Instant::now();
            let eval = tokio.block_on(evaluate(&rt, &env, Input::Message(&signed)));
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "a lookup missed the cache: {:?}",
                eval.verdicts
            );
            let verdicts = eval.verdicts.expect("judged");
            assert_eq!(verdicts.dkim[0].result, spoofguard::auth::AuthResult::Pass);
            assert_eq!(verdicts.dmarc.result, spoofguard::auth::AuthResult::Pass);
            group.throughput(Throughput::Bytes(signed.len() as u64));
            group.bench_with_input(BenchmarkId::new(alg, label), &signed, |b, m| {
                b.iter(|| tokio.block_on(evaluate(&rt, &env, Input::Message(m))))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
