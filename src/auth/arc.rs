//! ARC (RFC 8617): the chain of custody a forwarder sealed. Reported, not scored.

use super::dkim::map_dkim_result;
use super::dns::Caches;
use super::verdict::{ArcVerdict, AuthResult};
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
        ArcVerdict {
            result: map_dkim_result(out.result()).0,
            sets: out.chain().len(),
        }
    } else {
        ArcVerdict {
            result: AuthResult::None,
            sets: message.arc_seals().len(),
        }
    }
}
