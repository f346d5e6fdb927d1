//! Fresh LWA access tokens for this worker's AMC calls: `common::connection` caches them
//! encrypted and refreshes them ahead of expiry under the connection row's lock, so a
//! hundred concurrent submits cause one refresh; this worker lends it its database, cipher
//! and LWA client.

use crate::ctx::Ctx;
use common::connection::Tokens;

pub use common::connection::TokenError;

impl Ctx {
    /// What getting a token needs, from this worker's context.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens {
            db: &self.db,
            cipher: &self.cipher,
            lwa: &self.lwa,
        }
    }
}
