//! RFC 7208, section 4.6.4's void-lookup limit, which mail-auth 0.15 does not enforce.
//!
//! "SPF implementations SHOULD limit "void lookups" to two. [...] Exceeding the limit
//! produces a "permerror" result." A void lookup is a DNS query made while evaluating a
//! term that answers NXDOMAIN, or NOERROR with no records of the asked type (NODATA).
//!
//! mail-auth consults the caches we hand it before every query and stores what it got
//! afterwards, so one SPF evaluation gets its own [`SpfCaches`]: they delegate to the shared
//! [`Caches`] and log every probe and store. Afterwards [`VoidLookups::exceeded`] reads the log.
//! A count over the limit at the end means the limit was passed during evaluation: every
//! query in the log belongs to a term evaluated before the result was decided (the `exp=`
//! explanation, looked up after, is TXT and not logged).
//!
//! What is counted, as pyspf (RFC 7208's reference implementation) counts it: every void
//! answer to an A, AAAA, MX or PTR query, across `include:`: `a`, `mx` and the addresses of
//! its exchanges, `ptr` and the addresses of its names, `exists`, and the PTR query of the
//! `%{p}` macro. A lookup answered from the cache counts like a query. TXT lookups are left
//! out, which changes no result: the domain's own record is not a term (none gives `none`),
//! an `include:` or `redirect=` target without a record is a permerror already (sections 5.2
//! and 6.1), and `exp=` is not part of the evaluation (section 6.2).
//!
//! Two answers never reach the caches: mail-auth does not store a negative answer without a
//! usable negative TTL (no SOA, or TTL 0), nor the outcome of an `exists` query. For those the
//! log holds only the probe; if they could decide the count, [`VoidLookups::exceeded`] asks
//! the same query again through mail-auth's own lookup helpers (usually answered from
//! hickory's cache) and counts a void answer.
//!
//! The limit decides the result but does not stop the queries: mail-auth evaluates on after
//! the third void lookup. The 10-term limit (which it does enforce) still bounds that work.

use super::dns::{Caches, TtlCache};
use mail_auth::{
    DnsCache, DnsError, Error, MessageAuthenticator, Mx, Negative, RecordSet, ResolverCache,
    SpfResult, TxtRecord,
};
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// RFC 7208, section 4.6.4: "SPF implementations SHOULD limit "void lookups" to two."
pub const MAX_VOID_LOOKUPS: usize = 2;

/// A cached answer of one of the logged record types.
type Answer<T> = Result<RecordSet<T>, Negative>;

/// The record types whose lookups are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Mx,
    Ipv4,
    Ipv6,
    Ptr,
}

/// What a cache probe returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Nothing cached: mail-auth queries next.
    Miss,
    /// A negative answer, or one with no records.
    Void,
    /// Records.
    Data,
}

/// One call mail-auth made on an [`SpfCaches`] cache. `key` is what the cache key feeds to
/// its `Hash` implementation (see [`key_bytes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Get {
        table: Table,
        key: Vec<u8>,
        seen: Seen,
    },
    Insert {
        table: Table,
        key: Vec<u8>,
        void: bool,
    },
}

/// What one lookup of the evaluation gave, as far as the log tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Void,
    Data,
    /// Queried, but the answer was not stored: a negative answer without a negative TTL, an
    /// `exists` query, or a DNS error.
    Unknown(Query),
}

/// A lookup to ask again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    Lookup { table: Table, key: Vec<u8> },
    Exists { key: Vec<u8> },
}

/// Turns the log into lookups, in evaluation order.
///
/// The call patterns are mail-auth 0.15's (`dns/lookup.rs`): a lookup probes its cache
/// and, after a query, stores the answer right away unless it is an uncacheable negative.
/// `exists` probes the A cache and then, unless that held addresses, the AAAA cache, and
/// never stores. Nothing else probes the AAAA cache right after the A cache for the same
/// name (`a`, `mx` and `ptr` use one address family, the client's), so that pair is always
/// one `exists` lookup.
pub fn lookups(events: &[Event]) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let Event::Get { table, key, seen } = &events[i] else {
            // A store without its probe: not a pattern mail-auth produces.
            i += 1;
            continue;
        };
        let next = events.get(i + 1);
        if *table == Table::Ipv4
            && *seen != Seen::Data
            && let Some(Event::Get {
                table: Table::Ipv6,
                key: key6,
                seen: seen6,
            }) = next
            && key6 == key
        {
            out.push(match (seen, seen6) {
                (_, Seen::Data) => Outcome::Data,
                (Seen::Void, Seen::Void) => Outcome::Void,
                _ => Outcome::Unknown(Query::Exists { key: key.clone() }),
            });
            i += 2;
            continue;
        }
        match seen {
            Seen::Void => out.push(Outcome::Void),
            Seen::Data => out.push(Outcome::Data),
            Seen::Miss => match next {
                Some(Event::Insert {
                    table: t,
                    key: k,
                    void,
                }) if t == table && k == key => {
                    out.push(if *void { Outcome::Void } else { Outcome::Data });
                    i += 1;
                }
                _ => out.push(Outcome::Unknown(Query::Lookup {
                    table: *table,
                    key: key.clone(),
                })),
            },
        }
        i += 1;
    }
    out
}

/// Collects the log of one SPF evaluation. Make one per `verify_spf` call.
#[derive(Debug, Default)]
pub struct VoidLookups {
    events: Mutex<Vec<Event>>,
}

impl VoidLookups {
    pub fn new() -> Self {
        Self::default()
    }

    /// The caches to give mail-auth for the SPF evaluation.
    pub fn caches<'a>(&'a self, shared: &'a Caches) -> SpfCaches<'a> {
        SpfCaches {
            txt: &shared.txt,
            mx: Logged::new(&shared.mx, Table::Mx, &self.events),
            ipv4: Logged::new(&shared.ipv4, Table::Ipv4, &self.events),
            ipv6: Logged::new(&shared.ipv6, Table::Ipv6, &self.events),
            ptr: Logged::new(&shared.ptr, Table::Ptr, &self.events),
        }
    }

    /// The log so far.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// Whether the evaluation, which ended with `result`, made more than [`MAX_VOID_LOOKUPS`]
    /// void lookups. Lookups whose answer was not stored are asked again, in order, only
    /// while they could change the answer.
    pub async fn exceeded(
        &self,
        auth: &MessageAuthenticator,
        client_ip: IpAddr,
        result: SpfResult,
    ) -> bool {
        let mut lookups = lookups(&self.events());
        // mail-auth stops at the lookup that failed, so a temperror's last lookup is usually
        // that failure (a time-out, say): asking it again would only wait once more. When the
        // failure was a TXT lookup this skips a lookup that may have been void, which can
        // leave a temperror that should be a permerror, never the reverse.
        if result == SpfResult::TempError && matches!(lookups.last(), Some(Outcome::Unknown(_))) {
            lookups.pop();
        }
        let mut voids = lookups.iter().filter(|o| **o == Outcome::Void).count();
        let unknown: Vec<&Query> = lookups
            .iter()
            .filter_map(|o| match o {
                Outcome::Unknown(q) => Some(q),
                _ => None,
            })
            .collect();
        for (asked, query) in unknown.iter().enumerate() {
            if voids > MAX_VOID_LOOKUPS || voids + (unknown.len() - asked) <= MAX_VOID_LOOKUPS {
                break;
            }
            if is_void(auth, query, client_ip).await {
                voids += 1;
            }
        }
        voids > MAX_VOID_LOOKUPS
    }
}

/// Asks `query` again, as mail-auth asked it during the evaluation, without the caches.
async fn is_void(auth: &MessageAuthenticator, query: &Query, client_ip: IpAddr) -> bool {
    fn not_found<T>(r: &Result<RecordSet<T>, Error>) -> bool {
        match r {
            Ok(set) => set.records.is_empty(),
            Err(Error::Dns(DnsError::RecordNotFound(_))) => true,
            // A DNS error is a temperror, not a void lookup.
            Err(_) => false,
        }
    }
    match query {
        Query::Exists { key } => match name_of(key) {
            Some(name) => auth
                .exists(name, NO_IPV4, NO_IPV6)
                .await
                .is_ok_and(|found| !found),
            None => false,
        },
        Query::Lookup {
            table: Table::Ptr, ..
        } => not_found(&auth.ptr_lookup(client_ip, NO_PTR).await),
        Query::Lookup { table, key } => {
            let Some(name) = name_of(key) else {
                return false;
            };
            match table {
                Table::Mx => not_found(&auth.mx_lookup(name, NO_MX).await),
                Table::Ipv4 => not_found(&auth.ipv4_lookup(name, NO_IPV4).await),
                Table::Ipv6 => not_found(&auth.ipv6_lookup(name, NO_IPV6).await),
                Table::Ptr => false,
            }
        }
    }
}

const NO_MX: Option<&TtlCache<Box<str>, Answer<Mx>>> = None;
const NO_IPV4: Option<&TtlCache<Box<str>, Answer<Ipv4Addr>>> = None;
const NO_IPV6: Option<&TtlCache<Box<str>, Answer<Ipv6Addr>>> = None;
const NO_PTR: Option<&TtlCache<IpAddr, Answer<Box<str>>>> = None;

fn lock(events: &Mutex<Vec<Event>>) -> MutexGuard<'_, Vec<Event>> {
    // A panic while pushing cannot leave the log half-written; keep using it.
    events.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared caches as one SPF evaluation sees them: TXT untouched, the others logged.
pub struct SpfCaches<'a> {
    txt: &'a TtlCache<Box<str>, TxtRecord>,
    mx: Logged<'a, Box<str>, Answer<Mx>>,
    ipv4: Logged<'a, Box<str>, Answer<Ipv4Addr>>,
    ipv6: Logged<'a, Box<str>, Answer<Ipv6Addr>>,
    ptr: Logged<'a, IpAddr, Answer<Box<str>>>,
}

impl<'a> DnsCache for SpfCaches<'a> {
    type Txt = TtlCache<Box<str>, TxtRecord>;
    type Mx = Logged<'a, Box<str>, Answer<Mx>>;
    type Ipv4 = Logged<'a, Box<str>, Answer<Ipv4Addr>>;
    type Ipv6 = Logged<'a, Box<str>, Answer<Ipv6Addr>>;
    type Ptr = Logged<'a, IpAddr, Answer<Box<str>>>;

    fn txt(&self) -> Option<&Self::Txt> {
        Some(self.txt)
    }
    fn mx(&self) -> Option<&Self::Mx> {
        Some(&self.mx)
    }
    fn ipv4(&self) -> Option<&Self::Ipv4> {
        Some(&self.ipv4)
    }
    fn ipv6(&self) -> Option<&Self::Ipv6> {
        Some(&self.ipv6)
    }
    fn ptr(&self) -> Option<&Self::Ptr> {
        Some(&self.ptr)
    }
}

/// One shared cache, with every probe and store logged.
pub struct Logged<'a, K, V> {
    inner: &'a TtlCache<K, V>,
    table: Table,
    events: &'a Mutex<Vec<Event>>,
}

impl<'a, K, V> Logged<'a, K, V> {
    fn new(inner: &'a TtlCache<K, V>, table: Table, events: &'a Mutex<Vec<Event>>) -> Self {
        Self {
            inner,
            table,
            events,
        }
    }
}

fn is_void_answer<T>(answer: &Answer<T>) -> bool {
    answer.as_ref().map_or(true, |set| set.records.is_empty())
}

impl<K, T> ResolverCache<K, Answer<T>> for Logged<'_, K, Answer<T>>
where
    K: Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
    TtlCache<K, Answer<T>>: ResolverCache<K, Answer<T>>,
{
    fn get<Q>(&self, name: &Q) -> Option<Answer<T>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let value = self.inner.get(name);
        let seen = match &value {
            None => Seen::Miss,
            Some(v) if is_void_answer(v) => Seen::Void,
            Some(_) => Seen::Data,
        };
        lock(self.events).push(Event::Get {
            table: self.table,
            key: key_bytes(name),
            seen,
        });
        value
    }

    fn remove<Q>(&self, name: &Q) -> Option<Answer<T>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.remove(name)
    }

    fn insert(&self, key: K, value: Answer<T>, valid_until: Instant) {
        lock(self.events).push(Event::Insert {
            table: self.table,
            key: key_bytes(&key),
            void: is_void_answer(&value),
        });
        self.inner.insert(key, value, valid_until);
    }
}

/// Records the bytes a value feeds to a `Hasher`.
struct Recorder(Vec<u8>);

impl Hasher for Recorder {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

/// The bytes `key` hashes: `K: Borrow<Q>` promises the same for a key and its borrowed form,
/// so a probe (`&str`) and the store after it (`Box<str>`) give equal bytes.
///
/// Implementation note: `ResolverCache::get` receives the name only as `Q: Hash + Eq`, so this
/// is the one way to read it. `str` hashes as its bytes followed by 0xff (the default
/// `Hasher::write_str`); [`name_of`] undoes that, and a unit test pins it.
pub fn key_bytes<Q: Hash + ?Sized>(key: &Q) -> Vec<u8> {
    let mut recorder = Recorder(Vec::new());
    key.hash(&mut recorder);
    recorder.0
}

/// The domain name in a key's bytes (see [`key_bytes`]).
pub fn name_of(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key.strip_suffix(&[0xff])?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
    use mail_auth::hickory_resolver::proto::op::ResponseCode;
    use std::sync::Arc;
    use std::time::Duration;

    fn key(name: &str) -> Vec<u8> {
        key_bytes(name)
    }

    fn get(table: Table, name: &str, seen: Seen) -> Event {
        Event::Get {
            table,
            key: key(name),
            seen,
        }
    }

    fn insert(table: Table, name: &str, void: bool) -> Event {
        Event::Insert {
            table,
            key: key(name),
            void,
        }
    }

    #[test]
    fn key_bytes_give_back_the_name_for_str_and_box_str() {
        let boxed: Box<str> = "nx.example.".into();
        assert_eq!(key_bytes("nx.example."), key_bytes(&boxed));
        assert_eq!(name_of(&key_bytes("nx.example.")), Some("nx.example."));
        assert_eq!(name_of(&key_bytes(&boxed)), Some("nx.example."));
        assert_eq!(name_of(b"no marker"), None);
    }

    #[test]
    fn lookups_pair_probes_with_stores_and_count_hits() {
        use Table::*;
        let events = [
            // a:nx1 queried, NXDOMAIN stored.
            get(Ipv4, "nx1.", Seen::Miss),
            insert(Ipv4, "nx1.", true),
            // a:host from the cache.
            get(Ipv4, "host.", Seen::Data),
            // a:nx2, a cached negative.
            get(Ipv4, "nx2.", Seen::Void),
            // mx:m queried, records stored, then its exchange's address, stored.
            get(Mx, "m.", Seen::Miss),
            insert(Mx, "m.", false),
            get(Ipv4, "mail.m.", Seen::Miss),
            insert(Ipv4, "mail.m.", false),
            // a:nosoa queried, a negative answer without a TTL: nothing stored.
            get(Ipv4, "nosoa.", Seen::Miss),
            // ptr: PTR from the cache, none.
            get(Ptr, "192.0.2.1", Seen::Void),
        ];
        assert_eq!(
            lookups(&events),
            vec![
                Outcome::Void,
                Outcome::Data,
                Outcome::Void,
                Outcome::Data,
                Outcome::Data,
                Outcome::Unknown(Query::Lookup {
                    table: Ipv4,
                    key: key("nosoa.")
                }),
                Outcome::Void,
            ]
        );
    }

    #[test]
    fn lookups_read_an_a_then_aaaa_probe_of_one_name_as_one_exists() {
        use Table::*;
        let events = [
            // exists:e1, both cached negative: decided from the cache.
            get(Ipv4, "e1.", Seen::Void),
            get(Ipv6, "e1.", Seen::Void),
            // exists:e2, nothing cached: queried, never stored.
            get(Ipv4, "e2.", Seen::Miss),
            get(Ipv6, "e2.", Seen::Miss),
            // exists:e3, AAAA cached.
            get(Ipv4, "e3.", Seen::Void),
            get(Ipv6, "e3.", Seen::Data),
            // exists:e4, A cached: the AAAA cache is not probed.
            get(Ipv4, "e4.", Seen::Data),
            // a:e5 (IPv4 client) then exists:e5.
            get(Ipv4, "e5.", Seen::Miss),
            insert(Ipv4, "e5.", true),
            get(Ipv4, "e5.", Seen::Void),
            get(Ipv6, "e5.", Seen::Miss),
            // An IPv6 client's a:e6 after a different name's A probe is its own lookup.
            get(Ipv4, "e4.", Seen::Data),
            get(Ipv6, "e6.", Seen::Void),
        ];
        assert_eq!(
            lookups(&events),
            vec![
                Outcome::Void,
                Outcome::Unknown(Query::Exists { key: key("e2.") }),
                Outcome::Data,
                Outcome::Data,
                Outcome::Void,
                Outcome::Unknown(Query::Exists { key: key("e5.") }),
                Outcome::Data,
                Outcome::Void,
            ]
        );
    }

    fn offline_authenticator() -> MessageAuthenticator {
        // No nameservers: any query would fail, so a result proves the caches decided it.
        MessageAuthenticator::new(
            ResolverConfig::from_name_servers(vec![]),
            ResolverOpts::default(),
        )
        .unwrap()
    }

    fn nxdomain<T>() -> Answer<T> {
        Err(Negative {
            code: ResponseCode::NXDomain,
        })
    }

    // Pins the mail-auth 0.15 call patterns `lookups` relies on, through its public helpers.
    #[tokio::test]
    async fn mail_auth_probes_and_stores_as_the_log_expects() {
        let auth = offline_authenticator();
        let shared = Caches::new(100);
        let later = Instant::now() + Duration::from_secs(60);
        shared.ipv4.insert("nx.example.".into(), nxdomain(), later);
        shared.ipv6.insert("nx.example.".into(), nxdomain(), later);
        shared.ipv4.insert(
            "host.example.".into(),
            Ok(RecordSet {
                records: Arc::from(vec![Ipv4Addr::new(192, 0, 2, 1)]),
                dnssec_status: mail_auth::dns::DnssecStatus::Indeterminate,
            }),
            later,
        );
        let voids = VoidLookups::new();
        let caches = voids.caches(&shared);
        assert_eq!(
            auth.exists("nx.example", caches.ipv4(), caches.ipv6())
                .await,
            Ok(false)
        );
        assert_eq!(
            auth.exists("host.example", caches.ipv4(), caches.ipv6())
                .await,
            Ok(true)
        );
        assert!(auth.ipv4_lookup("nx.example", caches.ipv4()).await.is_err());
        assert!(
            auth.ipv4_lookup("host.example", caches.ipv4())
                .await
                .is_ok()
        );
        assert_eq!(
            voids.events(),
            vec![
                get(Table::Ipv4, "nx.example.", Seen::Void),
                get(Table::Ipv6, "nx.example.", Seen::Void),
                get(Table::Ipv4, "host.example.", Seen::Data),
                get(Table::Ipv4, "nx.example.", Seen::Void),
                get(Table::Ipv4, "host.example.", Seen::Data),
            ]
        );
        assert_eq!(
            lookups(&voids.events()),
            vec![Outcome::Void, Outcome::Data, Outcome::Void, Outcome::Data]
        );
        // Two voids: at the limit, not over it; no query needed to say so.
        let ip = "192.0.2.9".parse().unwrap();
        assert!(!voids.exceeded(&auth, ip, SpfResult::Pass).await);
        assert_eq!(
            auth.exists("nx.example", caches.ipv4(), caches.ipv6())
                .await,
            Ok(false)
        );
        assert!(voids.exceeded(&auth, ip, SpfResult::Pass).await);
    }

    // Lookups that never reached the cache are asked again; a temperror's last one is not.
    #[tokio::test]
    async fn unstored_lookups_are_asked_again_unless_they_ended_a_temperror() {
        use crate::config::DnsSettings;
        use crate::zone::{Zone, ZoneServer};
        let server = ZoneServer::start(Zone::parse("host.test. IN A 192.0.2.1\n").unwrap())
            .await
            .unwrap();
        let auth = crate::auth::build_authenticator(&DnsSettings {
            nameservers: vec![server.addr()],
            timeout: Duration::from_secs(1),
            attempts: 1,
            cache_entries: 10,
        })
        .unwrap();
        let ip = "192.0.2.9".parse().unwrap();
        let log = |last: Event| VoidLookups {
            events: Mutex::new(vec![
                get(Table::Ipv4, "nx1.test.", Seen::Void),
                get(Table::Ipv4, "nx2.test.", Seen::Void),
                last,
            ]),
        };
        // An A query answered NXDOMAIN but not stored, an exists query: both void.
        let a = get(Table::Ipv4, "nx3.test.", Seen::Miss);
        assert!(log(a.clone()).exceeded(&auth, ip, SpfResult::Pass).await);
        let exists = [
            get(Table::Ipv4, "nx1.test.", Seen::Void),
            get(Table::Ipv4, "nx2.test.", Seen::Void),
            get(Table::Ipv4, "nx3.test.", Seen::Miss),
            get(Table::Ipv6, "nx3.test.", Seen::Miss),
        ];
        let voids = VoidLookups {
            events: Mutex::new(exists.to_vec()),
        };
        assert!(voids.exceeded(&auth, ip, SpfResult::Pass).await);
        // The same name with addresses is not void.
        let host = get(Table::Ipv4, "host.test.", Seen::Miss);
        assert!(!log(host).exceeded(&auth, ip, SpfResult::Neutral).await);
        // After a temperror the last lookup is taken for the one that failed.
        assert!(!log(a).exceeded(&auth, ip, SpfResult::TempError).await);
    }
}
