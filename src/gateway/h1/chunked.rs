//! Finds where a chunked body ends, so that the fast path can relay it as it came (chunk
//! headers and all) and know when the upstream connection is free again.

/// Where the scanner is within `size [; ext] CRLF data CRLF ... 0 CRLF [trailers] CRLF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size; `digits` says whether one was seen.
    Size {
        value: u64,
        digits: bool,
    },
    /// Chunk extensions (or whitespace) up to the CR.
    Extension,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

/// A malformed chunked body: the bytes of the piece fed before the first wrong one (the
/// only ones that may be relayed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct Malformed {
    pub valid: usize,
}

/// Scans a chunked body fed in pieces.
#[derive(Debug, Clone)]
pub struct ChunkScanner {
    state: State,
    size: u64,
}

impl Default for ChunkScanner {
    fn default() -> Self {
        ChunkScanner {
            state: State::Size {
                value: 0,
                digits: false,
            },
            size: 0,
        }
    }
}

impl ChunkScanner {
    /// Feeds the next bytes; `Some(n)` when the body ends after `n` of them.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, Malformed> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            self.state = match self.state {
                State::Size { value, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                        let value = value
                            .checked_mul(16)
                            .and_then(|v| v.checked_add(d))
                            .ok_or(Malformed { valid: i })?;
                        State::Size {
                            value,
                            digits: true,
                        }
                    }
                    b';' | b' ' | b'\t' if digits => {
                        self.size = value;
                        State::Extension
                    }
                    b'\r' if digits => {
                        self.size = value;
                        State::SizeLf
                    }
                    _ => return Err(Malformed { valid: i }),
                },
                State::Extension => match b {
                    b'\r' => State::SizeLf,
                    b'\n' => return Err(Malformed { valid: i }),
                    _ => State::Extension,
                },
                State::SizeLf if b == b'\n' => {
                    if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data(self.size)
                    }
                }
                State::Data(left) => {
                    let take = (data.len() - i).min(left as usize);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    continue;
                }
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size {
                    value: 0,
                    digits: false,
                },
                State::TrailerStart => match b {
                    b'\r' => State::EndLf,
                    b'\n' => return Err(Malformed { valid: i }),
                    _ => State::Trailer,
                },
                State::Trailer => match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return Err(Malformed { valid: i }),
                    _ => State::Trailer,
                },
                State::TrailerLf if b == b'\n' => State::TrailerStart,
                State::EndLf if b == b'\n' => {
                    self.state = State::Done;
                    return Ok(Some(i + 1));
                }
                State::Done => return Ok(Some(i)),
                _ => return Err(Malformed { valid: i }),
            };
            i += 1;
        }
        Ok((self.state == State::Done).then_some(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(body: &[u8]) -> Result<Option<usize>, Malformed> {
        ChunkScanner::default().feed(body)
    }

    #[test]
    fn finds_the_end_of_whole_bodies() {
        assert_eq!(whole(b"0\r\n\r\n"), Ok(Some(5)));
        assert_eq!(whole(b"2\r\nok\r\n0\r\n\r\nGET"), Ok(Some(12)));
        assert_eq!(
            whole(b"A;name=v\r\n0123456789\r\n0\r\nx-t: 1\r\n\r\n"),
            Ok(Some(35))
        );
        assert_eq!(whole(b"1f\r\n"), Ok(None));
    }

    #[test]
    fn any_split_gives_the_same_end() {
        let body = b"5\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\ntrailer: yes\r\n\r\n";
        for cut in 0..body.len() {
            let mut s = ChunkScanner::default();
            let first = s.feed(&body[..cut]).unwrap();
            assert_eq!(first, None, "cut at {cut}");
            let second = s.feed(&body[cut..]).unwrap();
            assert_eq!(second, Some(body.len() - cut), "cut at {cut}");
        }
    }

    #[test]
    fn refuses_malformed_bodies_where_they_go_wrong() {
        let at = |valid| Err(Malformed { valid });
        assert_eq!(whole(b"x\r\n"), at(0));
        assert_eq!(whole(b"\r\n"), at(0));
        assert_eq!(whole(b"2\r\nokX"), at(5), "a chunk not followed by CRLF");
        assert_eq!(whole(b"2\nok\r\n"), at(1), "a bare LF after the size");
        assert_eq!(
            whole(b"2\r\nok\n0\r\n\r\n"),
            at(5),
            "a bare LF after the data"
        );
        assert_eq!(
            whole(b"ffffffffffffffffff\r\n"),
            at(16),
            "a size that overflows"
        );
        assert_eq!(whole(b"0\r\n\n"), at(3));
        let mut s = ChunkScanner::default();
        assert_eq!(s.feed(b"3\r\nab"), Ok(None));
        assert_eq!(
            s.feed(b"cXHTTP/1.1 200 OK"),
            at(1),
            "counted within the piece"
        );
    }
}
