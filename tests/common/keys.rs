//! Keys made by `openssl` and tokens minted with them, for the JWT tests: by `jsonwebtoken`,
//! and (RS256) by `openssl dgst` alone, an implementation independent of the gateway's; basic
//! credentials hashed by `htpasswd`.
#![allow(dead_code)]

use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// A private key (PKCS#8 PEM) and its public key (SPKI PEM).
pub struct KeyPair {
    pub alg: Algorithm,
    pub private: String,
    pub public: String,
    pub kid: String,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut c = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is needed for these tests");
    if let Some(i) = input {
        c.stdin.take().unwrap().write_all(i).unwrap();
    } else {
        drop(c.stdin.take());
    }
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl KeyPair {
    /// A new key for `alg` (RS256, ES256 or EdDSA) named `kid`.
    pub fn new(alg: Algorithm, kid: &str) -> KeyPair {
        let private = match alg {
            Algorithm::RS256 => openssl(
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ],
                None,
            ),
            Algorithm::ES256 => openssl(
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ],
                None,
            ),
            Algorithm::EdDSA => openssl(&["genpkey", "-algorithm", "ed25519"], None),
            other => panic!("no key for {other:?}"),
        };
        let public = openssl(&["pkey", "-pubout"], Some(&private));
        KeyPair {
            alg,
            private: String::from_utf8(private).unwrap(),
            public: String::from_utf8(public).unwrap(),
            kid: kid.to_string(),
        }
    }

    fn encoding(&self) -> EncodingKey {
        let p = self.private.as_bytes();
        match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(p).unwrap(),
            Algorithm::ES256 => EncodingKey::from_ec_pem(p).unwrap(),
            _ => EncodingKey::from_ed_pem(p).unwrap(),
        }
    }

    /// A token with these claims, signed with this key (its `kid` in the header).
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.encoding()).unwrap()
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let mut j = Jwk::from_encoding_key(&self.encoding(), self.alg).unwrap();
        j.common.key_id = Some(self.kid.clone());
        serde_json::to_value(j).unwrap()
    }

    /// An RS256 token signed by `openssl dgst` (PKCS#1 v1.5 over SHA-256), not by jsonwebtoken.
    pub fn sign_with_openssl(&self, claims: &Value) -> String {
        assert_eq!(self.alg, Algorithm::RS256);
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        std::fs::write(&key, &self.private).unwrap();
        let sig = openssl(
            &["dgst", "-sha256", "-sign", key.to_str().unwrap()],
            Some(input.as_bytes()),
        );
        format!("{input}.{}", b64(&sig))
    }
}

/// A JWKS of these JWKs.
pub fn jwks(keys: &[Value]) -> String {
    let set: JwkSet = serde_json::from_value(json!({ "keys": keys })).unwrap();
    serde_json::to_string(&set).unwrap()
}

/// An HS256 key as a JWK (`kty: oct`) and a token signed with it.
pub fn hs256(secret: &[u8], kid: &str, claims: &Value) -> (Value, String) {
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let jwk = json!({"kty": "oct", "k": k, "alg": "HS256", "kid": kid});
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.into());
    let token =
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret).unwrap()).unwrap();
    (jwk, token)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a token for `aud` from `iss`, valid for an hour (or expired an hour ago).
pub fn claims(iss: &str, aud: &str, sub: &str, expired: bool) -> Value {
    let exp = if expired { now() - 3600 } else { now() + 3600 };
    json!({"iss": iss, "aud": aud, "sub": sub, "exp": exp, "iat": now() - 10})
}

/// `htpasswd -nbm`'s apr1 salt and hash of `password` (Apache's own implementation).
pub fn htpasswd(user: &str, password: &str) -> (String, String) {
    let out = std::process::Command::new("htpasswd")
        .args(["-nbm", user, password])
        .output()
        .expect("htpasswd (apache2-utils) is needed for this test");
    let line = String::from_utf8(out.stdout).unwrap();
    let apr = line.trim().split_once(':').unwrap().1.to_string();
    let parts: Vec<&str> = apr.split('$').collect();
    assert_eq!(parts[1], "apr1", "{apr}");
    (parts[2].to_string(), parts[3].to_string())
}

/// An `Authorization: Basic` value.
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}
