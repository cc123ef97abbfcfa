//! A small authoritative DNS server that answers from a zone file, on loopback.
//!
//! `spoofguard check --zone FILE` and the hermetic tests use it, so mail-auth's real resolver
//! path (hickory, UDP with TCP fallback, our cache) runs exactly as in production while every
//! answer comes from local data. Zone files use the standard master-file syntax (RFC 1035,
//! section 5), parsed by hickory-proto; names should be absolute. Any name not in the zone gets
//! an authoritative NXDOMAIN, so DMARC tree walks and SPF lookups end quickly. Names listed as
//! "silent" are never answered, to test time-outs; names listed as "no SOA" get negative
//! answers that cannot be cached (RFC 2308, section 5).
//!
//! A test and offline tool, not part of verification, so it lives outside `auth`. It is the one
//! module outside `auth` that names mail-auth: it reaches hickory-proto through
//! `mail_auth::hickory_resolver` (wire format, zone-file parser) so the project builds one
//! hickory version instead of depending on it a second time (CRATES.md, section 5).

use mail_auth::hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use mail_auth::hickory_resolver::proto::rr::rdata::SOA;
use mail_auth::hickory_resolver::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use mail_auth::hickory_resolver::proto::serialize::txt::Parser;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// Records loaded from a zone file, by owner name and type.
#[derive(Debug, Default)]
pub struct Zone {
    records: BTreeMap<RrKey, Vec<Record>>,
    names: HashSet<LowerName>,
    silent: Vec<LowerName>,
    servfail: Vec<LowerName>,
    tcp_only: Vec<LowerName>,
    no_soa: Vec<LowerName>,
}

/// Why a zone file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Zone {
    /// Parses master-file text. `$TTL 300` applies unless the text sets its own.
    pub fn parse(text: &str) -> Result<Zone, String> {
        let input = format!("$TTL 300\n{text}\n");
        let (_origin, sets) = Parser::new(input, None, Some(Name::root()))
            .parse()
            .map_err(|e| e.to_string())?;
        let mut zone = Zone::default();
        for (key, set) in sets {
            zone.names.insert(key.name.clone());
            // An empty non-terminal (b.example when only a.b.example exists) answers NODATA.
            let mut parent = Name::from(key.name.clone());
            while parent.num_labels() > 1 {
                parent = parent.base_name();
                zone.names.insert(LowerName::new(&parent));
            }
            zone.records
                .insert(key, set.records_without_rrsigs().cloned().collect());
        }
        Ok(zone)
    }

    /// Reads and parses a zone file.
    pub fn load(path: &Path) -> Result<Zone, ZoneError> {
        let text = std::fs::read_to_string(path).map_err(|source| ZoneError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ZoneError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    /// Never answer queries for `name` and the names below it.
    pub fn silence(&mut self, name: &str) {
        if let Ok(n) = Name::from_ascii(name) {
            self.silent.push(LowerName::new(&n));
        }
    }

    /// Answer SERVFAIL for `name` and the names below it.
    pub fn servfail(&mut self, name: &str) {
        if let Ok(n) = Name::from_ascii(name) {
            self.servfail.push(LowerName::new(&n));
        }
    }

    /// Answer `name` and the names below it over UDP only with the TC bit set, so the client
    /// has to retry over TCP (RFC 1035, section 4.2.1; RFC 7766).
    pub fn tcp_only(&mut self, name: &str) {
        if let Ok(n) = Name::from_ascii(name) {
            self.tcp_only.push(LowerName::new(&n));
        }
    }

    /// Answer NXDOMAIN and NODATA for `name` and the names below it without the SOA record
    /// that gives a negative answer its TTL, so resolvers do not cache it (RFC 2308, section 5).
    pub fn no_soa(&mut self, name: &str) {
        if let Ok(n) = Name::from_ascii(name) {
            self.no_soa.push(LowerName::new(&n));
        }
    }

    fn is_silent(&self, name: &LowerName) -> bool {
        self.silent.iter().any(|s| s.zone_of(name))
    }

    fn needs_tcp(&self, request: &Message) -> bool {
        request.queries.first().is_some_and(|q| {
            self.tcp_only
                .iter()
                .any(|t| t.zone_of(&LowerName::new(q.name())))
        })
    }

    /// The response to one query message, or `None` to stay silent.
    fn answer(&self, request: &Message) -> Option<Message> {
        let mut response = Message::response(request.metadata.id, OpCode::Query);
        response.metadata.message_type = MessageType::Response;
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.authoritative = true;
        let Some(query) = request.queries.first() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return Some(response);
        };
        response.add_query(query.clone());
        let mut name = LowerName::new(query.name());
        if self.is_silent(&name) {
            return None;
        }
        if self.servfail.iter().any(|s| s.zone_of(&name)) {
            response.metadata.response_code = ResponseCode::ServFail;
            return Some(response);
        }
        let qtype = query.query_type();
        // Follow CNAMEs inside the zone, bounded so a loop ends.
        for _ in 0..8 {
            let exact = self.records.get(&RrKey::new(name.clone(), qtype));
            if let Some(records) = exact {
                response.add_answers(records.iter().cloned());
                return Some(response);
            }
            if qtype != RecordType::CNAME
                && let Some(cname) = self
                    .records
                    .get(&RrKey::new(name.clone(), RecordType::CNAME))
                && let Some(record) = cname.first()
            {
                response.add_answer(record.clone());
                if let RData::CNAME(target) = &record.data {
                    name = LowerName::new(&target.0);
                    continue;
                }
            }
            break;
        }
        if response.answers.is_empty() {
            if !self.names.contains(&name) {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            if !self.no_soa.iter().any(|s| s.zone_of(&name)) {
                response.add_authority(soa());
            }
        }
        Some(response)
    }
}

/// The SOA that makes negative answers cacheable (RFC 2308), 300 s.
fn soa() -> Record {
    let origin = Name::root();
    let rdata = SOA::new(
        Name::from_ascii("ns.zone.invalid.").expect("static name"),
        Name::from_ascii("hostmaster.zone.invalid.").expect("static name"),
        1,
        3600,
        600,
        86400,
        300,
    );
    Record::from_rdata(origin, 300, RData::SOA(rdata))
}

/// A running zone server; dropping it stops it.
pub struct ZoneServer {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl ZoneServer {
    /// Serves `zone` over UDP and TCP on 127.0.0.1, on a free port.
    pub async fn start(zone: Zone) -> std::io::Result<ZoneServer> {
        let zone = Arc::new(zone);
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let addr = tcp.local_addr()?;
        // The same port for UDP; if taken (unlikely), pick another pair.
        let udp = match UdpSocket::bind(addr).await {
            Ok(u) => u,
            Err(_) => return Box::pin(Self::start_retry(zone)).await,
        };
        Ok(Self::spawn(zone, udp, tcp, addr))
    }

    async fn start_retry(zone: Arc<Zone>) -> std::io::Result<ZoneServer> {
        for _ in 0..20 {
            let tcp = TcpListener::bind("127.0.0.1:0").await?;
            let addr = tcp.local_addr()?;
            if let Ok(udp) = UdpSocket::bind(addr).await {
                return Ok(Self::spawn(zone, udp, tcp, addr));
            }
        }
        Err(std::io::Error::other(
            "no free UDP+TCP port pair on 127.0.0.1",
        ))
    }

    fn spawn(zone: Arc<Zone>, udp: UdpSocket, tcp: TcpListener, addr: SocketAddr) -> ZoneServer {
        let udp_zone = zone.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
                let Ok(request) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let Some(response) = udp_zone.answer(&request) else {
                    continue;
                };
                let max = request
                    .edns
                    .as_ref()
                    .map_or(512, |e| e.max_payload().max(512)) as usize;
                let Ok(mut bytes) = response.to_vec() else {
                    continue;
                };
                if bytes.len() > max || udp_zone.needs_tcp(&request) {
                    // RFC 1035, section 4.2.1: too long for UDP; set TC so the client uses TCP.
                    let mut truncated = Message::response(request.metadata.id, OpCode::Query);
                    truncated.metadata.truncation = true;
                    truncated.metadata.authoritative = true;
                    truncated.metadata.recursion_desired = request.metadata.recursion_desired;
                    truncated.queries = response.queries.clone();
                    let Ok(b) = truncated.to_vec() else { continue };
                    bytes = b;
                }
                let _ = udp.send_to(&bytes, peer).await;
            }
        });
        let tcp_task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let zone = zone.clone();
                tokio::spawn(async move {
                    loop {
                        let Ok(len) = stream.read_u16().await else {
                            return;
                        };
                        let mut buf = vec![0u8; len as usize];
                        if stream.read_exact(&mut buf).await.is_err() {
                            return;
                        }
                        let Ok(request) = Message::from_vec(&buf) else {
                            return;
                        };
                        let Some(response) = zone.answer(&request) else {
                            continue;
                        };
                        let Ok(bytes) = response.to_vec() else { return };
                        let Ok(len) = u16::try_from(bytes.len()) else {
                            return;
                        };
                        if stream.write_u16(len).await.is_err()
                            || stream.write_all(&bytes).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        ZoneServer {
            addr,
            tasks: vec![udp_task, tcp_task],
        }
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ZoneServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_auth::hickory_resolver::proto::op::Query;

    fn ask(zone: &Zone, name: &str, qtype: RecordType) -> Message {
        let mut q = Message::query();
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        zone.answer(&q).unwrap()
    }

    #[test]
    fn zone_answers_data_nodata_nxdomain_and_cname() {
        let zone = Zone::parse(
            "a.example. IN TXT \"v=spf1 -all\"\n\
             alias.example. 60 IN CNAME a.example.\n\
             x.y.example. IN A 192.0.2.1\n",
        )
        .unwrap();
        let r = ask(&zone, "A.example.", RecordType::TXT);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        let r = ask(&zone, "a.example.", RecordType::MX);
        assert!(r.answers.is_empty());
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        let r = ask(&zone, "y.example.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        let r = ask(&zone, "nothing.example.", RecordType::TXT);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(r.authorities.len(), 1);
        let r = ask(&zone, "alias.example.", RecordType::TXT);
        assert_eq!(r.answers.len(), 2);
    }

    #[test]
    fn zone_silences_names_and_reports_parse_errors() {
        let mut zone = Zone::parse("a.example. IN A 192.0.2.1\n").unwrap();
        zone.silence("slow.example.");
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("_dmarc.slow.example.").unwrap(),
            RecordType::TXT,
        ));
        assert!(zone.answer(&q).is_none());
        assert!(Zone::parse("a.example. IN A not-an-ip\n").is_err());
    }

    #[test]
    fn zone_leaves_out_the_soa_for_no_soa_names() {
        let mut zone = Zone::parse("a.example. IN A 192.0.2.1\n").unwrap();
        zone.no_soa("nosoa.example.");
        let r = ask(&zone, "x.nosoa.example.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.authorities.is_empty());
        let r = ask(&zone, "x.other.example.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(r.authorities.len(), 1);
    }
}
