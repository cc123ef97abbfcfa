//! The resolver every verifier shares: mail-auth's hickory resolver, configured from `[dns]`,
//! behind one bounded cache per record type that honours each answer's TTL.

use crate::config::DnsSettings;
use crate::metric;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{
    DnsCache, MessageAuthenticator, Mx, Negative, RecordSet, ResolverCache, TxtRecord,
};
use std::borrow::Borrow;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

/// One record type's cache: bounded by entry count, each entry valid until its TTL runs out.
pub struct TtlCache<K, V> {
    inner: moka::sync::Cache<K, (V, Instant)>,
    /// The `record` label of `spoofguard_dns_cache_lookups_total`.
    record: &'static str,
}

impl<K, V> TtlCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(capacity: u64, record: &'static str) -> Self {
        Self {
            inner: moka::sync::Cache::new(capacity),
            record,
        }
    }

    /// Number of entries (approximate, for metrics and tests).
    pub fn entry_count(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.entry_count()
    }
}

impl<K, V> ResolverCache<K, V> for TtlCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some((value, valid_until)) = self.inner.get(name) else {
            metric::dns_cache_lookup(self.record, false);
            return None;
        };
        if valid_until > Instant::now() {
            metric::dns_cache_lookup(self.record, true);
            Some(value)
        } else {
            metric::dns_cache_lookup(self.record, false);
            self.inner.invalidate(name);
            None
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        self.inner.insert(key, (value, valid_until));
    }
}

/// The caches mail-auth consults before each query.
pub struct Caches {
    pub txt: TtlCache<Box<str>, TxtRecord>,
    pub mx: TtlCache<Box<str>, Result<RecordSet<Mx>, Negative>>,
    pub ipv4: TtlCache<Box<str>, Result<RecordSet<Ipv4Addr>, Negative>>,
    pub ipv6: TtlCache<Box<str>, Result<RecordSet<Ipv6Addr>, Negative>>,
    pub ptr: TtlCache<IpAddr, Result<RecordSet<Box<str>>, Negative>>,
}

impl Caches {
    /// Caches holding at most `entries` names per record type.
    pub fn new(entries: u64) -> Self {
        Self {
            txt: TtlCache::new(entries, "txt"),
            mx: TtlCache::new(entries, "mx"),
            ipv4: TtlCache::new(entries, "a"),
            ipv6: TtlCache::new(entries, "aaaa"),
            ptr: TtlCache::new(entries, "ptr"),
        }
    }
}

impl DnsCache for Caches {
    type Txt = TtlCache<Box<str>, TxtRecord>;
    type Mx = TtlCache<Box<str>, Result<RecordSet<Mx>, Negative>>;
    type Ipv4 = TtlCache<Box<str>, Result<RecordSet<Ipv4Addr>, Negative>>;
    type Ipv6 = TtlCache<Box<str>, Result<RecordSet<Ipv6Addr>, Negative>>;
    type Ptr = TtlCache<IpAddr, Result<RecordSet<Box<str>>, Negative>>;

    fn txt(&self) -> Option<&Self::Txt> {
        Some(&self.txt)
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

/// Builds the authenticator from `[dns]`: the listed nameservers (UDP, then TCP on truncation),
/// or the system resolver configuration when the list is empty.
pub fn build_authenticator(settings: &DnsSettings) -> Result<MessageAuthenticator, String> {
    let mut opts = ResolverOpts::default();
    opts.timeout = settings.timeout;
    opts.attempts = settings.attempts;
    // Our own caches hold the parsed records; hickory's answer cache stays small.
    opts.cache_size = 1024;
    if settings.nameservers.is_empty() {
        let (config, mut sys_opts) =
            mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
        sys_opts.timeout = settings.timeout;
        sys_opts.attempts = settings.attempts;
        sys_opts.cache_size = 1024;
        return MessageAuthenticator::new(config, sys_opts)
            .map_err(|e| format!("cannot create the resolver: {e}"));
    }
    let servers = settings
        .nameservers
        .iter()
        .map(|addr| {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
        })
        .collect();
    MessageAuthenticator::new(ResolverConfig::from_name_servers(servers), opts)
        .map_err(|e| format!("cannot create the resolver: {e}"))
}
