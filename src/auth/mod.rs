//! Authentication: SPF, DKIM, ARC and DMARC through mail-auth, behind one type, [`Verifier`].
//! Only this module names mail-auth; everything else gets [`AuthVerdicts`] and plain data.
//! A DNS failure is a verdict (`TempError`), never an `Err`.
//!
//! Layout: `verdict.rs` our result types; `spf.rs`, `dkim.rs`, `arc.rs` and `dmarc.rs` run one
//! protocol each and map mail-auth's output to a verdict; `dns.rs` the resolver and the shared
//! TTL-bounded cache; `void.rs` SPF's void-lookup limit, which mail-auth does not enforce.

mod arc;
mod dkim;
mod dmarc;
pub mod dns;
mod spf;
mod verdict;
pub mod void;

use crate::config::DnsSettings;
use mail_auth::{AuthenticatedMessage, MessageAuthenticator};
use std::net::IpAddr;
use std::sync::Arc;

pub use dkim::base64;
pub use dns::{Caches, build_authenticator};
pub use verdict::{
    ArcSet, ArcVerdict, AuthResult, AuthVerdicts, DkimVerdict, DmarcPolicy, DmarcRecordInfo,
    DmarcVerdict, SpfIdentity, SpfVerdict,
};

/// The SMTP envelope facts SPF needs.
#[derive(Clone, Debug, Default)]
pub struct SmtpIdentity<'a> {
    pub client_ip: Option<IpAddr>,
    pub helo: &'a str,
    /// MAIL FROM address without angle brackets; empty for the null reverse-path.
    pub mail_from: &'a str,
    /// Our host name, for SPF macros (`%{r}`).
    pub host_domain: &'a str,
}

/// What verifying one message found.
#[derive(Clone, Debug, PartialEq)]
pub struct Verification {
    pub verdicts: AuthVerdicts,
    /// Addresses in the From header(s) as mail-auth reads them (0 when the header section
    /// could not be parsed).
    pub from_addresses: usize,
}

/// Runs every verifier against one resolver and DNS cache. Built once per runtime; a reload
/// builds a new one and may hand it the old cache.
pub struct Verifier {
    authenticator: MessageAuthenticator,
    caches: Arc<Caches>,
    /// `[auth] arc`: validate ARC chains.
    arc: bool,
}

impl Verifier {
    /// Creates the resolver from `[dns]`. `caches` carries a previous verifier's DNS cache
    /// over a reload; without it a new cache of `dns.cache_entries` per record type is made.
    pub fn new(
        dns: &DnsSettings,
        caches: Option<Arc<Caches>>,
        arc: bool,
    ) -> Result<Verifier, String> {
        let authenticator = build_authenticator(dns)?;
        let caches = caches.unwrap_or_else(|| Arc::new(Caches::new(dns.cache_entries)));
        Ok(Verifier {
            authenticator,
            caches,
            arc,
        })
    }

    /// The DNS cache, to carry over a reload (and for tests to inspect).
    pub fn caches(&self) -> &Arc<Caches> {
        &self.caches
    }

    /// Verifies one message. `parsed` is `raw` as mail-parser read it; `None` when no header
    /// section could be parsed, and then only SPF is checked.
    pub async fn verify(
        &self,
        parsed: Option<&mail_parser::Message<'_>>,
        raw: &[u8],
        smtp: &SmtpIdentity<'_>,
    ) -> Verification {
        match parsed {
            Some(p) => {
                let message = AuthenticatedMessage::from_parsed(p, raw, true);
                let verdicts = self.verify_message(&message, smtp, self.arc).await;
                Verification {
                    verdicts,
                    from_addresses: message.from_addresses().len(),
                }
            }
            None => Verification {
                verdicts: self.verify_spf_only(smtp).await,
                from_addresses: 0,
            },
        }
    }

    /// Runs all verifiers for a message.
    async fn verify_message(
        &self,
        message: &AuthenticatedMessage<'_>,
        smtp: &SmtpIdentity<'_>,
        arc_enabled: bool,
    ) -> AuthVerdicts {
        let (auth, caches) = (&self.authenticator, &*self.caches);
        let (dkim_out, dkim) = dkim::verify(auth, caches, message).await;
        let arc = arc::verify(auth, caches, message, arc_enabled).await;
        let (spf_out, spf) = spf::verify(auth, caches, smtp).await;
        let dmarc = dmarc::verify(
            auth,
            caches,
            message,
            &dkim_out,
            &spf.domain,
            spf_out.as_ref(),
        )
        .await;
        AuthVerdicts {
            spf,
            dkim,
            arc,
            dmarc,
        }
    }

    /// SPF alone, for a message whose header section could not be parsed.
    async fn verify_spf_only(&self, smtp: &SmtpIdentity<'_>) -> AuthVerdicts {
        // An empty but well-formed message: no From, no signatures; DMARC gives none.
        let empty = b"X-Spoofguard-Placeholder: 1\r\n\r\n";
        let msg = AuthenticatedMessage::parse(empty);
        match msg {
            Some(m) => {
                let mut v = self.verify_message(&m, smtp, false).await;
                v.dmarc.from_domain.clear();
                v
            }
            None => unreachable_verdicts(smtp),
        }
    }
}

/// Verdicts when not even a placeholder parses (never expected; keeps the milter answering).
fn unreachable_verdicts(smtp: &SmtpIdentity<'_>) -> AuthVerdicts {
    AuthVerdicts {
        spf: SpfVerdict {
            result: AuthResult::None,
            identity: SpfIdentity::Helo(smtp.helo.to_owned()),
            domain: smtp.helo.to_owned(),
            comment: None,
        },
        dkim: Vec::new(),
        arc: ArcVerdict {
            result: AuthResult::None,
            sets: 0,
            chain: Vec::new(),
        },
        dmarc: DmarcVerdict {
            result: AuthResult::None,
            from_domain: String::new(),
            policy: None,
            testing: false,
            record: None,
            other_authors: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{Zone, ZoneServer};
    use std::time::Duration;

    async fn verifier(zone: &str) -> (ZoneServer, Verifier) {
        let server = ZoneServer::start(Zone::parse(zone).unwrap()).await.unwrap();
        let dns = DnsSettings {
            nameservers: vec![server.addr()],
            timeout: Duration::from_secs(1),
            attempts: 1,
            cache_entries: 10,
        };
        let verifier = Verifier::new(&dns, None, true).unwrap();
        (server, verifier)
    }

    // A message without a parsable header section still gets SPF; the rest is none.
    #[tokio::test]
    async fn without_a_parsed_message_only_spf_is_checked() {
        let (_server, verifier) =
            verifier("sender.example. IN TXT \"v=spf1 ip4:192.0.2.1 -all\"\n").await;
        let smtp = SmtpIdentity {
            client_ip: Some("192.0.2.1".parse().unwrap()),
            helo: "mail.example",
            mail_from: "alice@sender.example",
            host_domain: "mx.test",
        };
        let v = verifier.verify(None, b"", &smtp).await;
        assert_eq!(v.from_addresses, 0);
        assert_eq!(v.verdicts.spf.result, AuthResult::Pass);
        assert_eq!(v.verdicts.spf.domain, "sender.example");
        assert!(v.verdicts.dkim.is_empty());
        assert_eq!(v.verdicts.arc.result, AuthResult::None);
        assert_eq!(v.verdicts.dmarc.result, AuthResult::None);
        assert_eq!(v.verdicts.dmarc.from_domain, "");
    }

    #[tokio::test]
    async fn a_parsed_message_reports_its_from_addresses() {
        let (_server, verifier) = verifier("").await;
        let raw = b"From: a@example.org, b@example.org\r\nSubject: x\r\n\r\nbody\r\n";
        let parsed = mail_parser::MessageParser::new().parse(raw).unwrap();
        let v = verifier
            .verify(Some(&parsed), raw, &SmtpIdentity::default())
            .await;
        assert_eq!(v.from_addresses, 2);
        assert_eq!(v.verdicts.spf.result, AuthResult::None);
        assert_eq!(v.verdicts.dmarc.from_domain, "example.org");
    }
}
