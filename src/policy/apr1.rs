//! Apache's apr1 MD5 password hash (`htpasswd -m`), the one Gloo's `basicAuth.apr` stores as
//! `salt` and `hashedPassword` (the parts of `$apr1$<salt>$<hash>`).

const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const MAGIC: &[u8] = b"$apr1$";

/// The 22-character hash of `password` with `salt` (at most its first 8 characters count).
pub fn hash(password: &[u8], salt: &str) -> String {
    let salt = &salt.as_bytes()[..salt.len().min(8)];
    let alt = {
        let mut c = md5::Context::new();
        c.consume(password);
        c.consume(salt);
        c.consume(password);
        c.finalize().0
    };
    let mut c = md5::Context::new();
    c.consume(password);
    c.consume(MAGIC);
    c.consume(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        c.consume(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            c.consume([0u8]);
        } else {
            c.consume(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = c.finalize().0;
    for round in 0..1000 {
        let mut c = md5::Context::new();
        if round & 1 == 1 {
            c.consume(password);
        } else {
            c.consume(fin);
        }
        if round % 3 != 0 {
            c.consume(salt);
        }
        if round % 7 != 0 {
            c.consume(password);
        }
        if round & 1 == 1 {
            c.consume(fin);
        } else {
            c.consume(password);
        }
        fin = c.finalize().0;
    }
    let mut out = String::with_capacity(22);
    let mut to64 = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ALPHABET[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    let b = |i: usize| u32::from(fin[i]);
    to64((b(0) << 16) | (b(6) << 8) | b(12), 4);
    to64((b(1) << 16) | (b(7) << 8) | b(13), 4);
    to64((b(2) << 16) | (b(8) << 8) | b(14), 4);
    to64((b(3) << 16) | (b(9) << 8) | b(15), 4);
    to64((b(4) << 16) | (b(10) << 8) | b(5), 4);
    to64(b(11), 2);
    out
}

/// Whether `password` hashes to `hashed` with `salt`, compared in constant time.
pub fn verify(password: &[u8], salt: &str, hashed: &str) -> bool {
    let mine = hash(password, salt);
    mine.len() == hashed.len()
        && mine
            .bytes()
            .zip(hashed.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl passwd -apr1 -salt TYf6OHt1 password`, an implementation independent of this one.
    #[test]
    fn matches_openssl() {
        let Ok(out) = std::process::Command::new("openssl")
            .args(["passwd", "-apr1", "-salt", "TYf6OHt1", "p@ss word"])
            .output()
        else {
            panic!("openssl is needed for this test");
        };
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            line,
            format!("$apr1$TYf6OHt1${}", hash(b"p@ss word", "TYf6OHt1"))
        );
        assert!(verify(
            b"p@ss word",
            "TYf6OHt1",
            line.rsplit('$').next().unwrap_or("")
        ));
        assert!(!verify(
            b"p@ss wore",
            "TYf6OHt1",
            line.rsplit('$').next().unwrap_or("")
        ));
    }
}
