//! The registry of issued VCF access tokens: which refresh token each came
//! from (so invalidating a refresh token kills its access tokens) and when
//! it was issued relative to the last revocation. The JWT's signature says
//! the sandbox issued a token; this registry says whether it is still live.

use std::collections::HashMap;

/// What the sandbox makes of an access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenStatus {
    /// Issued by this sandbox, unexpired, not invalidated, not revoked.
    Live,
    /// Not a token this sandbox issued (bad signature, not a JWT, another
    /// sandbox's key).
    Unknown,
    /// Past its `exp` by the sandbox's clock.
    Expired,
    /// Its refresh token was invalidated (`DELETE /v1/tokens/refresh-token`).
    Invalidated,
    /// Issued before `Faults::revoke_access_tokens`.
    Revoked,
}

/// One issued access token.
#[derive(Debug)]
struct Record {
    /// The refresh token id that created or refreshed it.
    refresh_id: String,
    /// Issue order, compared with the revocation mark.
    serial: u64,
    /// Its `exp` claim, so expired records can be dropped.
    exp: u64,
    invalidated: bool,
}

/// Below this many records the registry is never pruned.
const PRUNE_FLOOR: usize = 1024;

/// Issued access tokens by `jti`.
#[derive(Debug)]
pub(crate) struct AccessTokens {
    records: HashMap<String, Record>,
    next_serial: u64,
    /// Tokens with a serial below this were revoked.
    revoked_below: u64,
    /// Prune expired records when the registry reaches this size, so a
    /// long-running sandbox keeps only live tokens at amortized O(1) cost.
    prune_at: usize,
}

impl Default for AccessTokens {
    fn default() -> Self {
        AccessTokens {
            records: HashMap::new(),
            next_serial: 0,
            revoked_below: 0,
            prune_at: PRUNE_FLOOR,
        }
    }
}

impl AccessTokens {
    /// Records a token just issued for `refresh_id`; `now` is the sandbox's
    /// clock, for pruning.
    pub(crate) fn record(&mut self, jti: String, exp: u64, refresh_id: &str, now: u64) {
        if self.records.len() >= self.prune_at {
            // Only expired records go, and `status` judges expiry before it
            // looks a token up, so pruning never changes an answer.
            self.records.retain(|_, record| record.exp > now);
            self.prune_at = PRUNE_FLOOR.max(self.records.len().saturating_mul(2));
        }
        let serial = self.next_serial;
        self.next_serial = self.next_serial.saturating_add(1);
        self.records.insert(
            jti,
            Record {
                refresh_id: refresh_id.to_owned(),
                serial,
                exp,
                invalidated: false,
            },
        );
    }

    /// Every access token `refresh_id` created or refreshed is invalidated.
    pub(crate) fn invalidate_refresh(&mut self, refresh_id: &str) {
        for record in self.records.values_mut() {
            if record.refresh_id == refresh_id {
                record.invalidated = true;
            }
        }
    }

    /// Every access token issued so far is revoked; later ones are not.
    pub(crate) fn revoke_all(&mut self) {
        self.revoked_below = self.next_serial;
    }

    /// The status of a token whose signature verified, from its claims;
    /// `now` is the sandbox's clock. A token lives while `now < exp`.
    pub(crate) fn status(&self, jti: &str, exp: u64, now: u64) -> TokenStatus {
        if exp <= now {
            return TokenStatus::Expired;
        }
        match self.records.get(jti) {
            None => TokenStatus::Unknown,
            Some(record) if record.invalidated => TokenStatus::Invalidated,
            Some(record) if record.serial < self.revoked_below => TokenStatus::Revoked,
            Some(_) => TokenStatus::Live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lives_until_its_exp_second() {
        let mut tokens = AccessTokens::default();
        tokens.record("a".into(), 100, "r", 50);
        assert_eq!(tokens.status("a", 100, 99), TokenStatus::Live);
        assert_eq!(tokens.status("a", 100, 100), TokenStatus::Expired);
        assert_eq!(tokens.status("a", 100, 101), TokenStatus::Expired);
        assert_eq!(tokens.status("b", 100, 99), TokenStatus::Unknown);
    }

    #[test]
    fn invalidating_a_refresh_token_kills_only_its_access_tokens() {
        let mut tokens = AccessTokens::default();
        tokens.record("a1".into(), 100, "r1", 0);
        tokens.record("a2".into(), 100, "r1", 0);
        tokens.record("b".into(), 100, "r2", 0);
        tokens.invalidate_refresh("r1");
        assert_eq!(tokens.status("a1", 100, 1), TokenStatus::Invalidated);
        assert_eq!(tokens.status("a2", 100, 1), TokenStatus::Invalidated);
        assert_eq!(tokens.status("b", 100, 1), TokenStatus::Live);
    }

    #[test]
    fn revocation_spares_tokens_issued_after_it() {
        let mut tokens = AccessTokens::default();
        tokens.record("old".into(), 100, "r", 0);
        tokens.revoke_all();
        tokens.record("new".into(), 100, "r", 0);
        assert_eq!(tokens.status("old", 100, 1), TokenStatus::Revoked);
        assert_eq!(tokens.status("new", 100, 1), TokenStatus::Live);
        tokens.revoke_all();
        assert_eq!(tokens.status("new", 100, 1), TokenStatus::Revoked);
    }

    #[test]
    fn pruning_drops_only_expired_records() {
        let mut tokens = AccessTokens::default();
        for i in 0..PRUNE_FLOOR {
            let exp = if i % 2 == 0 { 10 } else { 1000 };
            tokens.record(format!("t{i}"), exp, "r", 0);
        }
        tokens.record("last".into(), 1000, "r", 500);
        assert_eq!(tokens.records.len(), PRUNE_FLOOR / 2 + 1);
        assert_eq!(tokens.status("t1", 1000, 500), TokenStatus::Live);
        assert_eq!(tokens.status("t0", 10, 500), TokenStatus::Expired);
        assert_eq!(tokens.status("last", 1000, 500), TokenStatus::Live);
    }
}
