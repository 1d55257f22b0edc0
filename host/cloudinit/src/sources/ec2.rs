//! EC2 instance metadata with IMDSv2 session tokens (SPECS.md S15 "aws"; AWS "Use the Instance
//! Metadata Service to access instance metadata").
//!
//! `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: 21600` gives a token that
//! every later `GET` carries in `X-aws-ec2-metadata-token`. Then `GET /latest/user-data` (404: the
//! instance has none, which is not an error: the metadata still applies) and from
//! `/latest/meta-data/`: `local-ipv4`, `public-ipv4`, `hostname`, and the keys listed by
//! `public-keys/` (`0=name` lines; `public-keys/N/openssh-key` each). A missing metadata item
//! (404) is left out. EC2-compatible services that do not know tokens answer the `PUT` with 404
//! or 405; the agent then asks without a token (IMDSv1).
//!
//! The base URL is [`DEFAULT_BASE_URL`], injectable for tests (`--ec2-metadata-url`).

use cloudconfig::Addresses;

use super::http::{Http, HttpError};
use super::{Found, SourceError};
use crate::metadata::Metadata;

pub const DEFAULT_BASE_URL: &str = "http://169.254.169.254";
pub const TOKEN_PATH: &str = "/latest/api/token";
pub const TOKEN_TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";
pub const TOKEN_TTL_SECS: u32 = 21600; // 6 hours, the maximum
pub const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";
pub const USER_DATA_PATH: &str = "/latest/user-data";
pub const META_DATA_PATH: &str = "/latest/meta-data/";

/// Reads user-data and metadata from the service at `base_url`.
pub fn fetch(http: &Http, base_url: &str) -> Result<Found, SourceError> {
    let base = base_url.trim_end_matches('/');
    let ttl = TOKEN_TTL_SECS.to_string();
    let token = match http.put(&format!("{base}{TOKEN_PATH}"), &[(TOKEN_TTL_HEADER, &ttl)]) {
        Ok(body) => Some(String::from_utf8_lossy(&body).trim().to_string()),
        Err(e) if matches!(e.status(), Some(404 | 405)) => None,
        Err(e) => return Err(e.into()),
    };
    let headers: Vec<(&str, &str)> = token.iter().map(|t| (TOKEN_HEADER, t.as_str())).collect();
    let get = |path: &str| -> Result<Option<Vec<u8>>, HttpError> {
        match http.get(&format!("{base}{path}"), &headers) {
            Ok(body) => Ok(Some(body)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let meta = |item: &str| -> Result<Option<String>, HttpError> {
        let text = get(&format!("{META_DATA_PATH}{item}"))?
            .map(|b| String::from_utf8_lossy(&b).trim().to_string());
        Ok(text.filter(|t| !t.is_empty()))
    };
    let user_data = get(USER_DATA_PATH)?.unwrap_or_default();
    let mut keys = Vec::new();
    if let Some(list) = meta("public-keys/")? {
        for index in key_indices(&list) {
            if let Some(key) = meta(&format!("public-keys/{index}/openssh-key"))? {
                keys.push(key);
            }
        }
    }
    let hostname = meta("hostname")?.and_then(|h| h.split_whitespace().next().map(str::to_string));
    Ok(Found {
        source: format!("EC2 instance metadata {base}"),
        user_data,
        metadata: Metadata {
            hostname,
            ssh_public_keys: keys,
            addresses: Addresses {
                private_ipv4: meta("local-ipv4")?,
                public_ipv4: meta("public-ipv4")?,
                ..Addresses::default()
            },
            ..Metadata::default()
        },
    })
}

/// The indices of a `public-keys/` listing (`0=my-key` lines).
pub fn key_indices(listing: &str) -> Vec<u32> {
    listing
        .lines()
        .filter_map(|l| l.split_once('=')?.0.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_listing() {
        assert_eq!(key_indices("0=my-key\n1=other\n"), [0, 1]);
        assert_eq!(key_indices("0=a\nbad\nx=y\n12=z"), [0, 12]);
        assert!(key_indices("").is_empty());
    }
}
