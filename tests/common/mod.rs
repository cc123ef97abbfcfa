//! Test harness: DKIM keys generated per run, a zone server on loopback answering from a
//! zone built with those keys, the milter running in-process on 127.0.0.1:0, and a
//! milter-protocol client (indymilter-test) that replays a message as an MTA would.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use indymilter_test::{EomActions, Status, TestConnection};
use mail_auth::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::DkimSigner;
use spoofguard::auth::base64;
use spoofguard::config::Config;
use spoofguard::milter::{self, SharedRuntime};
use spoofguard::runtime::Runtime;
use spoofguard::zone::{Zone, ZoneServer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The authserv-id every test config uses.
pub const AUTHSERV_ID: &str = "mx.spoofguard.test";

/// Keys generated once per test run.
pub struct Keys {
    pub ed_pkcs8: Vec<u8>,
    pub ed_public: String,
    pub rsa_pkcs8: Vec<u8>,
    pub rsa_public: String,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ed_pkcs8 = Ed25519Key::generate_pkcs8().expect("ed25519 key");
        let ed = Ed25519Key::from_pkcs8_der(&ed_pkcs8).expect("ed25519 key parses");
        let rsa =
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa key");
        let rsa_pkcs8 = rsa.as_der().expect("pkcs8").as_ref().to_vec();
        let rsa_spki = rsa.public_key().as_der().expect("spki").as_ref().to_vec();
        Keys {
            ed_public: base64(&ed.public_key()),
            ed_pkcs8,
            rsa_public: base64(&rsa_spki),
            rsa_pkcs8,
        }
    })
}

/// A TXT record value split into 255-byte strings, as zone files need.
fn txt(value: &str) -> String {
    value
        .as_bytes()
        .chunks(200)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The test zone: the fixture file plus the generated DKIM keys.
pub fn zone_text() -> String {
    let k = keys();
    let base = std::fs::read_to_string(fixture("zones/test.zone")).expect("test.zone");
    let mut z = base;
    for domain in [
        "sender.example",
        "quarantine.example",
        "none.example",
        "pct.example",
        "microsoft-securityprotection-support.xyz",
        "accountprotection.microsoft.com",
        "tcp.example",
        "forwarder.example",
        "contoso-it.onmicrosoft.com",
    ] {
        z.push_str(&format!(
            "ed._domainkey.{domain}. IN TXT {}\n",
            txt(&format!("v=DKIM1; k=ed25519; p={}", k.ed_public))
        ));
        z.push_str(&format!(
            "rsa._domainkey.{domain}. IN TXT {}\n",
            txt(&format!("v=DKIM1; k=rsa; p={}", k.rsa_public))
        ));
    }
    z
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// LF to CRLF.
pub fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Signs `raw` (any line endings; signed as CRLF) and returns the signed message in CRLF.
pub fn sign(raw: &str, domain: &str, selector: &str, ed25519: bool) -> String {
    let raw = crlf(raw);
    let k = keys();
    let headers = ["From", "To", "Subject", "Date", "Message-ID"];
    let sig = if ed25519 {
        DkimSigner::from_key(Ed25519Key::from_pkcs8_der(&k.ed_pkcs8).expect("ed key"))
            .domain(domain)
            .selector(selector)
            .headers(headers)
            .sign(raw.as_bytes())
            .expect("sign")
    } else {
        #[allow(deprecated)]
        DkimSigner::from_key(RsaKey::<Sha256>::from_pkcs8_der(&k.rsa_pkcs8).expect("rsa key"))
            .domain(domain)
            .selector(selector)
            .headers(headers)
            .sign(raw.as_bytes())
            .expect("sign")
    };
    use mail_auth::headers::HeaderWriter;
    format!("{}{}", sig.to_header(), raw)
}

/// An in-process milter with its own zone server.
pub struct Milter {
    pub addr: SocketAddr,
    pub shared: SharedRuntime,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    _zone: ZoneServer,
}

impl Milter {
    /// Starts the milter with `toml` (the [dns] nameservers are set to the zone server).
    pub async fn spawn(toml: &str) -> Milter {
        Self::spawn_with(toml, |_| {}).await
    }

    /// As `spawn`, with a hook to change the zone (e.g. silence names).
    pub async fn spawn_with(toml: &str, edit: impl FnOnce(&mut Zone)) -> Milter {
        let mut zone = Zone::parse(&zone_text()).expect("zone parses");
        edit(&mut zone);
        let server = ZoneServer::start(zone).await.expect("zone server");
        let mut config = Config::from_toml(toml, Path::new("test.toml")).expect("config");
        config.dns.nameservers = vec![server.addr()];
        let listen = "127.0.0.1:0".parse().expect("addr");
        let tcp = tokio::net::TcpListener::bind::<SocketAddr>(listen)
            .await
            .expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let listener = indymilter::EitherListener::Tcp(milter::NoDelayListener(tcp));
        let rt = Runtime::build(config, None).expect("runtime");
        let shared: SharedRuntime = Arc::new(RwLock::new(Arc::new(rt)));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(milter::serve(listener, shared.clone(), async move {
            let _ = rx.await;
        }));
        Milter {
            addr,
            shared,
            shutdown: Some(tx),
            handle: Some(handle),
            _zone: server,
        }
    }

    /// The zone server's address (for test code that resolves on its own).
    pub fn dns_addr(&self) -> SocketAddr {
        self._zone.addr()
    }

    pub async fn connect(&self) -> TestConnection {
        TestConnection::configure()
            .exact_leading_space(true)
            .open_tcp(self.addr)
            .await
            .expect("connect")
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("serve");
        }
    }
}

/// The SMTP side of one message.
pub struct Envelope<'a> {
    pub ip: &'a str,
    pub helo: &'a str,
    pub mail_from: &'a str,
    pub rcpts: &'a [&'a str],
    pub queue_id: &'a str,
    pub auth: Option<&'a str>,
}

impl Default for Envelope<'_> {
    fn default() -> Self {
        Envelope {
            ip: "192.0.2.10",
            helo: "mail.sender.example",
            mail_from: "alice@sender.example",
            rcpts: &["bob@rcpt.example"],
            queue_id: "4ABCDE",
            auth: None,
        }
    }
}

/// Splits a message into (name, value-after-colon with folding as LF) pairs and the body.
pub fn split_message(raw: &str) -> (Vec<(String, String)>, String) {
    let raw = crlf(raw);
    let (head, body) = match raw.find("\r\n\r\n") {
        Some(i) => (&raw[..i + 2], raw[i + 4..].to_owned()),
        None => (raw.as_str(), String::new()),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split_inclusive("\r\n") {
        let line = line.trim_end_matches("\r\n");
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push('\n');
                last.1.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    (headers, body)
}

/// Runs one message through an open connection, as Postfix does (body in CRLF unless
/// `lf_body`), and returns the end-of-message actions and status.
pub async fn transact(
    conn: &mut TestConnection,
    env: &Envelope<'_>,
    raw: &str,
    lf_body: bool,
) -> (EomActions, Status) {
    use indymilter::MacroStage;
    if let Some(user) = env.auth {
        conn.macros(MacroStage::Mail, [("{auth_authen}", user)])
            .await
            .expect("macros");
    }
    assert_eq!(
        conn.mail([format!("<{}>", env.mail_from)])
            .await
            .expect("mail"),
        Status::Continue
    );
    for r in env.rcpts {
        conn.rcpt([format!("<{r}>")]).await.expect("rcpt");
    }
    conn.data().await.expect("data");
    let (headers, body) = split_message(raw);
    for (name, value) in headers {
        conn.header(name, value).await.expect("header");
    }
    conn.eoh().await.expect("eoh");
    let body = if lf_body {
        body.replace("\r\n", "\n")
    } else {
        body
    };
    for chunk in body.as_bytes().chunks(65535) {
        let status = conn.body(chunk.to_vec()).await.expect("body");
        if status == Status::Skip {
            break;
        }
    }
    conn.macros(MacroStage::Eom, [("i", env.queue_id)])
        .await
        .expect("macros");
    conn.eom().await.expect("eom")
}

/// Opens a connection, greets, and runs one message.
pub async fn send(
    milter: &Milter,
    env: &Envelope<'_>,
    raw: &str,
    lf_body: bool,
) -> (EomActions, Status) {
    let mut conn = milter.connect().await;
    greet(&mut conn, env).await;
    let result = transact(&mut conn, env, raw, lf_body).await;
    conn.close().await.expect("close");
    result
}

pub async fn greet(conn: &mut TestConnection, env: &Envelope<'_>) {
    use indymilter::MacroStage;
    conn.macros(MacroStage::Connect, [("j", "mta.spoofguard.test")])
        .await
        .expect("macros");
    let ip: std::net::IpAddr = env.ip.parse().expect("ip");
    assert_eq!(
        conn.connect("client.example", (ip, 40000))
            .await
            .expect("connect"),
        Status::Continue
    );
    assert_eq!(conn.helo(env.helo).await.expect("helo"), Status::Continue);
}

/// The value of the first header named `name` that the milter inserted or added, without the
/// one leading space it sends when SMFIP_HDR_LEADSPC is negotiated (as the test client does).
pub fn added(actions: &EomActions, name: &str) -> Option<String> {
    added_raw(actions, name).map(|v| {
        assert!(
            v.starts_with(' '),
            "{name} value has no leading space: {v:?}"
        );
        v[1..].to_owned()
    })
}

/// Whether the milter added or inserted `name` with exactly `value` (see `added`).
pub fn has_header(actions: &EomActions, name: &str, value: &str) -> bool {
    added(actions, name).as_deref() == Some(value)
}

/// The value exactly as sent.
pub fn added_raw(actions: &EomActions, name: &str) -> Option<String> {
    use indymilter_test::EomAction;
    actions.actions.iter().find_map(|a| match a {
        EomAction::InsertHeader { name: n, value, .. }
        | EomAction::AddHeader { name: n, value }
            if n.to_str().ok() == Some(name) =>
        {
            Some(value.to_string_lossy().into_owned())
        }
        _ => None,
    })
}

/// The standard test config.
pub fn config(extra: &str) -> String {
    format!(
        "[milter]\nauthserv_id = \"{AUTHSERV_ID}\"\n[dns]\ntimeout_secs = 1\nattempts = 1\n\
         [auth]\ntrusted_networks = [\"203.0.113.0/24\"]\n{extra}"
    )
}

/// Reads an .eml fixture.
pub fn eml(name: &str) -> String {
    std::fs::read_to_string(fixture(&format!("eml/{name}"))).expect("fixture")
}

/// The SMTP reply of a reject or tempfail with text, or the status itself.
pub fn reply(status: &Status) -> String {
    match status {
        Status::Reject { message: Some(m) } | Status::Tempfail { message: Some(m) } => {
            m.to_string_lossy().into_owned()
        }
        other => format!("{other:?}"),
    }
}
