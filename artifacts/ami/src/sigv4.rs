//! AWS Signature Version 4 (header signing), as pure functions.
//!
//! The steps of the AWS documentation, one function each: [`canonical_request`],
//! [`string_to_sign`], [`signing_key`] (the HMAC-SHA256 chain over date, region, service and
//! `aws4_request`), [`authorization`]. [`sign`] runs them over a [`Request`] and returns the
//! headers to send. The unit tests hold AWS's published test-suite vectors.
//!
//! Paths are given decoded (`/snapshots/snap-1/blocks/7`); [`canonical_uri`] encodes each
//! segment once, and the request goes out with that same encoded path, so what is signed is what
//! is sent. Query parameters are given decoded too and encoded by [`canonical_query`], which is
//! also the query string to send.

use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of a request whose body is not signed (its integrity is checked otherwise,
/// e.g. by the EBS block checksum).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// AWS credentials. `Debug` never shows the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary credentials' session token, sent (and signed) as `X-Amz-Security-Token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A request to sign. Header names in any case; `host` must be among them, exactly as sent.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Decoded path, starting with `/`.
    pub path: &'a str,
    /// Decoded query parameters, in any order.
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body, or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 (RFC 2104) of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// URI-encode as SigV4 wants: every byte but `A-Z a-z 0-9 - _ . ~` becomes `%XX` (upper-case
/// hex); `/` is kept when `keep_slash` (paths).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical (and sent) form of a decoded path: each segment URI-encoded; `/` if empty.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    uri_encode(path, true)
}

/// The canonical (and sent) query string: keys and values URI-encoded, sorted by key then value,
/// joined with `&`.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as signed: trimmed, runs of spaces collapsed to one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request and the signed-headers list (`host;x-amz-date`). Header names are
/// lower-cased and sorted; values of a repeated name are joined with `,` in the order given.
pub fn canonical_request(r: &Request) -> (String, String) {
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in r.headers {
        let name = name.to_ascii_lowercase();
        let value = canonical_value(value);
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&value);
            }
            None => headers.push((name, value)),
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let signed = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let creq = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        r.method,
        canonical_uri(r.path),
        canonical_query(r.query),
        canonical_headers,
        signed,
        r.payload_hash
    );
    (creq, signed)
}

/// `YYYYMMDD/region/service/aws4_request`.
pub fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string to sign for a canonical request at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signing key: HMAC("AWS4" + secret, date) → region → service → "aws4_request".
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// Hex HMAC of the string to sign under the signing key.
pub fn signature(key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(key, string_to_sign.as_bytes()))
}

/// The `Authorization` header value.
pub fn authorization(access_key_id: &str, scope: &str, signed: &str, signature: &str) -> String {
    format!("{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed}, Signature={signature}")
}

/// Sign `r` at `amz_date`: returns every header to send, the request's own plus `X-Amz-Date`,
/// `X-Amz-Security-Token` (with a session token) and `Authorization`.
pub fn sign(
    r: &Request,
    creds: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Vec<(String, String)> {
    let mut headers = r.headers.to_vec();
    headers.push(("X-Amz-Date".into(), amz_date.into()));
    if let Some(token) = &creds.session_token {
        headers.push(("X-Amz-Security-Token".into(), token.clone()));
    }
    let (creq, signed) = canonical_request(&Request {
        headers: &headers,
        ..*r
    });
    let date = &amz_date[..8];
    let scope = scope(date, region, service);
    let sts = string_to_sign(amz_date, &scope, &creq);
    let key = signing_key(&creds.secret_access_key, date, region, service);
    let auth = authorization(
        &creds.access_key_id,
        &scope,
        &signed,
        &signature(&key, &sts),
    );
    headers.push(("Authorization".into(), auth));
    headers
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch (UTC).
pub fn amz_date(unix: u64) -> String {
    let t = util::time::Utc::from_unix(unix);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    //! Vectors from AWS's SigV4 test suite (as kept in awslabs/aws-c-auth
    //! `tests/aws-signing-test-suite/v4/<name>/` and in the AWS SDK for JavaScript's suite
    //! fixture) and the IAM `ListUsers` example of the AWS signing documentation.
    use super::*;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20150830T123600Z";
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
            session_token: token.map(str::to_string),
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Sign a suite request (host example.amazonaws.com, service "service") and return the
    /// Authorization header.
    fn suite(
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        payload_hash: &str,
        token: Option<&str>,
    ) -> String {
        let mut headers = pairs(&[("Host", "example.amazonaws.com")]);
        headers.extend(pairs(extra));
        let query = pairs(query);
        let r = Request {
            method,
            path,
            query: &query,
            headers: &headers,
            payload_hash,
        };
        let out = sign(&r, &creds(token), "us-east-1", "service", DATE);
        out.into_iter()
            .find(|(n, _)| n == "Authorization")
            .unwrap()
            .1
    }

    fn want(signed: &str, sig: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={sig}")
    }

    #[test]
    fn get_vanilla_every_step() {
        let headers = pairs(&[("Host", "example.amazonaws.com"), ("X-Amz-Date", DATE)]);
        let r = Request {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY,
        };
        let (creq, signed) = canonical_request(&r);
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed, "host;x-amz-date");
        let scope = scope("20150830", "us-east-1", "service");
        assert_eq!(
            string_to_sign(DATE, &scope, &creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(
            suite("GET", "/", &[], &[], EMPTY, None),
            want(
                "host;x-amz-date",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        let q = [("Param2", "value2"), ("Param1", "value1")];
        assert_eq!(canonical_query(&pairs(&q)), "Param1=value1&Param2=value2");
        assert_eq!(
            suite("GET", "/", &q, &[], EMPTY, None),
            want(
                "host;x-amz-date",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            )
        );
    }

    #[test]
    fn query_vectors() {
        // get-vanilla-query-unreserved: unreserved characters are not encoded.
        let u = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        assert_eq!(
            suite("GET", "/", &[(u, u)], &[], EMPTY, None),
            want(
                "host;x-amz-date",
                "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
            )
        );
        // get-vanilla-utf8-query
        assert_eq!(canonical_query(&pairs(&[("ሴ", "bar")])), "%E1%88%B4=bar");
        assert_eq!(
            suite("GET", "/", &[("ሴ", "bar")], &[], EMPTY, None),
            want(
                "host;x-amz-date",
                "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
            )
        );
        // post-vanilla-query
        assert_eq!(
            suite("POST", "/", &[("Param1", "value1")], &[], EMPTY, None),
            want(
                "host;x-amz-date",
                "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
            )
        );
    }

    #[test]
    fn get_utf8_path() {
        assert_eq!(canonical_uri("/ሴ"), "/%E1%88%B4");
        assert_eq!(
            suite("GET", "/ሴ", &[], &[], EMPTY, None),
            want(
                "host;x-amz-date",
                "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
            )
        );
    }

    #[test]
    fn header_vectors() {
        // get-header-value-trim: values trimmed, inner runs of spaces collapsed.
        assert_eq!(
            suite(
                "GET",
                "/",
                &[],
                &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
                EMPTY,
                None
            ),
            want(
                "host;my-header1;my-header2;x-amz-date",
                "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
            )
        );
        // get-header-key-duplicate: repeated names joined with commas, in order.
        assert_eq!(
            suite(
                "GET",
                "/",
                &[],
                &[
                    ("My-Header1", "value2"),
                    ("My-Header1", "value2"),
                    ("My-Header1", "value1")
                ],
                EMPTY,
                None
            ),
            want(
                "host;my-header1;x-amz-date",
                "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"
            )
        );
    }

    #[test]
    fn get_vanilla_with_session_token() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        assert_eq!(
            suite("GET", "/", &[], &[], EMPTY, Some(token)),
            want(
                "host;x-amz-date;x-amz-security-token",
                "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
            )
        );
    }

    #[test]
    fn post_x_www_form_urlencoded() {
        let body_hash = sha256_hex(b"Param1=value1");
        assert_eq!(
            body_hash,
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        );
        // The original suite: content-type signed, the body's hash as payload hash.
        assert_eq!(
            suite(
                "POST",
                "/",
                &[],
                &[("Content-Type", "application/x-www-form-urlencoded")],
                &body_hash,
                None
            ),
            want(
                "content-type;host;x-amz-date",
                "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
            )
        );
        // aws-c-auth's version also signs Content-Length and x-amz-content-sha256.
        assert_eq!(
            suite(
                "POST",
                "/",
                &[],
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Content-Length", "13"),
                    ("x-amz-content-sha256", &body_hash)
                ],
                &body_hash,
                None
            ),
            want(
                "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
                "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
            )
        );
    }

    #[test]
    fn iam_list_users_documentation_example() {
        let headers = pairs(&[
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Host", "iam.amazonaws.com"),
            ("X-Amz-Date", DATE),
        ]);
        let query = pairs(&[("Action", "ListUsers"), ("Version", "2010-05-08")]);
        let (creq, signed) = canonical_request(&Request {
            method: "GET",
            path: "/",
            query: &query,
            headers: &headers,
            payload_hash: EMPTY,
        });
        assert_eq!(
            sha256_hex(creq.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let key = signing_key(SECRET, "20150830", "us-east-1", "iam");
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        let scope = scope("20150830", "us-east-1", "iam");
        let sig = signature(&key, &string_to_sign(DATE, &scope, &creq));
        assert_eq!(
            authorization(AKID, &scope, &signed, &sig),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn hmac_rfc4231() {
        // Test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn encoding_rules() {
        assert_eq!(uri_encode("a b/c~d*e+f=", false), "a%20b%2Fc~d%2Ae%2Bf%3D");
        assert_eq!(uri_encode("/a b/c", true), "/a%20b/c");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(
            canonical_query(&pairs(&[("b", "2"), ("a", "x y"), ("A", "0"), ("a", "1")])),
            "A=0&a=1&a=x%20y&b=2"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(amz_date(1_440_938_160), DATE);
        assert_eq!(amz_date(0), "19700101T000000Z");
        // 2024-02-29 23:59:59, a leap day.
        assert_eq!(amz_date(1_709_251_199), "20240229T235959Z");
    }

    #[test]
    fn debug_hides_secrets() {
        let d = format!("{:?}", creds(Some("SESSIONXYZ")));
        assert!(!d.contains(SECRET) && !d.contains("SESSIONXYZ"), "{d}");
        assert!(d.contains(AKID));
    }
}
