//! ARC (RFC 8617): the chain of custody a forwarder sealed. Reported, not scored; for a chain
//! that validates, each set's sealer and the passes its ARC-Authentication-Results recorded,
//! so that `evaluate` can trust a sealer the admin named (`[auth] trusted_arc_sealers`).

use super::dkim::map_dkim_result;
use super::dns::Caches;
use super::verdict::{ArcSet, ArcVerdict, AuthResult};
use mail_auth::{AuthenticatedMessage, MessageAuthenticator, Parameters};

/// Validates the ARC chain when `enabled` and the message has ARC sets; otherwise `none` with
/// the number of sets seen.
pub(super) async fn verify(
    auth: &MessageAuthenticator,
    caches: &Caches,
    message: &AuthenticatedMessage<'_>,
    enabled: bool,
) -> ArcVerdict {
    if enabled && !message.arc_seals().is_empty() {
        let out = auth
            .verify_arc(Parameters::new(message).with_cache(caches))
            .await;
        let result = map_dkim_result(out.result()).0;
        // Only a chain that validated says anything about its sets (RFC 8617, section 5.2).
        let chain = if result == AuthResult::Pass {
            out.chain()
                .iter()
                .rev()
                .map(|link| {
                    let mut set = recorded_passes(&String::from_utf8_lossy(link.results.value));
                    set.instance = link.seal.header.i;
                    set.sealer = link.seal.header.d.to_ascii_lowercase();
                    set
                })
                .collect()
        } else {
            Vec::new()
        };
        ArcVerdict {
            result,
            sets: out.chain().len(),
            chain,
        }
    } else {
        ArcVerdict {
            result: AuthResult::None,
            sets: message.arc_seals().len(),
            chain: Vec::new(),
        }
    }
}

/// The passes an ARC-Authentication-Results value records: `i=N; authserv-id; method=result
/// prop=value ...; ...` (RFC 8617, section 4.1.1; RFC 8601, section 2.2). Comments are dropped.
pub(super) fn recorded_passes(value: &str) -> ArcSet {
    let mut set = ArcSet::default();
    let text = strip_comments(value);
    for resinfo in text.split(';') {
        let mut words = resinfo.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        if !result.eq_ignore_ascii_case("pass") {
            continue;
        }
        let props: Vec<(String, String)> = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| {
                let v = v.trim_matches('"');
                let domain = v.rsplit_once('@').map_or(v, |(_, d)| d);
                (
                    k.to_ascii_lowercase(),
                    domain.trim_end_matches('.').to_ascii_lowercase(),
                )
            })
            .collect();
        let prop = |name: &str| {
            props
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let (list, value) = match method.to_ascii_lowercase().as_str() {
            "dmarc" => (&mut set.dmarc_pass, prop("header.from")),
            "dkim" => (&mut set.dkim_pass, prop("header.d")),
            "spf" => (&mut set.spf_pass, prop("smtp.mailfrom")),
            _ => continue,
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            list.push(v);
        }
    }
    set
}

fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_passes_reads_each_method() {
        let set = recorded_passes(
            " i=1; lists.example.org;\r\n\tdkim=pass (2048-bit key) header.d=Author.example \
             header.s=sel; spf=pass smtp.mailfrom=bounce@lists.example.org;\r\n\t\
             dmarc=pass (p=reject) header.from=author.example; dkim=fail header.d=x.example",
        );
        assert_eq!(set.dkim_pass, ["author.example"]);
        assert_eq!(set.spf_pass, ["lists.example.org"]);
        assert_eq!(set.dmarc_pass, ["author.example"]);
    }

    #[test]
    fn recorded_passes_ignores_failures_and_garbage() {
        let set = recorded_passes("i=2; mx; dmarc=fail header.from=a.example; (x=pass; ; =");
        assert_eq!(set, ArcSet::default());
    }
}
