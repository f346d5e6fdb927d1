//! LWA token exchange and bearer checks.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;

/// A token-exchange request, from a form or JSON body.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub refresh_token: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// Why an exchange was refused; maps onto LWA's error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LwaError {
    /// Malformed: `invalid_request`.
    Request,
    /// Bad client id or secret: `invalid_client`.
    Client,
    /// Unknown or revoked refresh token: `invalid_grant`.
    Grant,
}

/// An issued access token.
#[derive(Debug, Clone)]
struct AccessToken {
    refresh_token: String,
    expires_at: DateTime<Utc>,
}

/// The LWA app a token request must come from.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// Issued access tokens and revoked refresh tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    access: HashMap<String, AccessToken>,
    revoked: HashSet<String>,
}

impl Tokens {
    /// Checks a request from the app `client` and issues a new access token valid until
    /// `expires_at`.
    pub fn exchange(
        &mut self,
        req: &TokenRequest,
        client: &Client<'_>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(String, String), LwaError> {
        let (client_id, client_secret) = (client.id, client.secret);
        let (Some(grant), Some(refresh), Some(id), Some(secret)) = (
            req.grant_type.as_deref(),
            req.refresh_token.as_deref(),
            req.client_id.as_deref(),
            req.client_secret.as_deref(),
        ) else {
            return Err(LwaError::Request);
        };
        if grant != "refresh_token" || refresh.is_empty() {
            return Err(LwaError::Request);
        }
        if id != client_id || secret != client_secret {
            return Err(LwaError::Client);
        }
        if !refresh.starts_with("Atzr|") || self.revoked.contains(refresh) {
            return Err(LwaError::Grant);
        }
        self.access.retain(|_, t| t.expires_at > now);
        let suffix: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(64)
            .map(char::from)
            .collect();
        let token = format!("Atza|{suffix}");
        self.access.insert(
            token.clone(),
            AccessToken {
                refresh_token: refresh.to_owned(),
                expires_at,
            },
        );
        Ok((token, refresh.to_owned()))
    }

    /// True when `bearer` was issued, has not expired, and its refresh token is not revoked.
    pub fn is_valid(&self, bearer: &str, now: DateTime<Utc>) -> bool {
        self.access
            .get(bearer)
            .is_some_and(|t| t.expires_at > now && !self.revoked.contains(&t.refresh_token))
    }

    /// Forgets one access token, as if it had expired.
    pub fn invalidate(&mut self, bearer: &str) {
        self.access.remove(bearer);
    }

    /// Revokes a refresh token and, with it, every access token issued from it.
    pub fn revoke(&mut self, refresh_token: &str) {
        self.revoked.insert(refresh_token.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: Client<'static> = Client {
        id: "c",
        secret: "s",
    };

    fn req(refresh: &str, secret: &str) -> TokenRequest {
        TokenRequest {
            grant_type: Some("refresh_token".into()),
            refresh_token: Some(refresh.into()),
            client_id: Some("c".into()),
            client_secret: Some(secret.into()),
        }
    }

    #[test]
    fn exchange_checks_in_order() {
        let mut t = Tokens::default();
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(60);
        assert_eq!(
            t.exchange(&TokenRequest::default(), &APP, now, later),
            Err(LwaError::Request)
        );
        assert_eq!(
            t.exchange(&req("Atzr|x", "bad"), &APP, now, later),
            Err(LwaError::Client)
        );
        assert_eq!(
            t.exchange(&req("nope", "s"), &APP, now, later),
            Err(LwaError::Grant)
        );
        let (access, refresh) = t
            .exchange(&req("Atzr|x", "s"), &APP, now, later)
            .expect("ok");
        assert!(access.starts_with("Atza|"));
        assert_eq!(refresh, "Atzr|x");
        assert!(t.is_valid(&access, now));
        assert!(!t.is_valid(&access, later));
        t.revoke("Atzr|x");
        assert!(!t.is_valid(&access, now));
        assert_eq!(
            t.exchange(&req("Atzr|x", "s"), &APP, now, later),
            Err(LwaError::Grant)
        );
    }
}
