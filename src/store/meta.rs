//! The memcached meta protocol, as bytes: key checks, request encoding and a reply parser
//! that never panics and never trusts a length it has not bounded. No I/O here.
//!
//! Requests used: `mg <key> v O<n>` (get), `mg <key> v c` (get with its CAS token),
//! `ms <key> <len> T<exptime> M<E|S|R> [C<cas>]` (add/set/replace, compare-and-swap),
//! `md <key>` (delete), `ma <key> N<ttl> J1 D1 M<I|D> v t` (counters), and the classic
//! `version` and `stats`.
use std::io::Write as _;
use std::ops::Range;

use super::client::StoreError;

/// memcached's own key limit.
pub const MAX_KEY_LEN: usize = 250;
/// The largest value accepted in either direction (memcached's default item size limit).
pub const MAX_VALUE_LEN: usize = 1 << 20;
/// Reply lines are a status, a length and a few flags; anything much longer is not memcached.
pub const MAX_LINE_LEN: usize = 4096;
/// memcached reads `T` tokens as a signed 32-bit number.
const MAX_EXPTIME: u64 = i32::MAX as u64;
/// memcached reads an expiry up to 30 days as relative to now, and 0 as "never".
const MAX_RELATIVE_EXPTIME: u64 = 60 * 60 * 24 * 30;

/// 1..=250 bytes, no whitespace, no control characters (those would split or end the
/// command line, i.e. let a key inject a second command).
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty()
        || key.len() > MAX_KEY_LEN
        || match ascii_key_has_separator(key.as_bytes()) {
            Some(found) => found,
            None => key.chars().any(|c| c.is_whitespace() || c.is_control()),
        }
    {
        return Err(StoreError::InvalidKey);
    }
    Ok(())
}

/// For an ASCII key, whether it holds a byte that would end or split a command line (a
/// space, a control character or DEL); `None` when the key is not ASCII. Eight bytes at a
/// time: every request checks the three keys of its multi-get, and a byte loop over them
/// was a sixth of strict mode's own instructions (callgrind).
fn ascii_key_has_separator(key: &[u8]) -> Option<bool> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Bytes below 0x21 (with the top bit clear, which the ASCII test guarantees): the
    // classic "has less than" word trick.
    let below_33 = |w: u64| w.wrapping_sub(ONES * 0x21) & !w & HIGHS != 0;
    let has_del = |w: u64| {
        let x = w ^ (ONES * 0x7f);
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    let mut chunks = key.chunks_exact(8);
    let mut found = false;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        if w & HIGHS != 0 {
            return None;
        }
        found |= below_33(w) || has_del(w);
    }
    for &b in chunks.remainder() {
        if !b.is_ascii() {
            return None;
        }
        found |= b <= b' ' || b == 0x7f;
    }
    Some(found)
}

/// An absolute expiry as memcached must receive it. 0 and small values are refused rather
/// than sent: memcached would read them as "never expires" or as a relative TTL.
pub fn exptime_token(exptime: u64) -> Result<u64, StoreError> {
    if exptime <= MAX_RELATIVE_EXPTIME {
        return Err(StoreError::InvalidArgument(format!(
            "expiry {exptime} is not an absolute unix time (0 never expires, small values are \
             relative in memcached): refusing to write"
        )));
    }
    // Past 2038 memcached would reject the command; an expiry that far away is "never" for a
    // session, and still an absolute time.
    Ok(exptime.min(MAX_EXPTIME))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    /// Store only if absent (`ME`).
    Add,
    /// Store unconditionally (`MS`).
    Set,
    /// Store only if present (`MR`): never brings back an item deleted meanwhile.
    Replace,
}

/// `mg <key> v O<opaque>`: the opaque comes back with the reply (hit or miss), so a reply can
/// never be matched with the wrong key.
pub fn encode_get(buf: &mut Vec<u8>, key: &str, opaque: u32) {
    buf.extend_from_slice(b"mg ");
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b" v O");
    push_decimal(buf, opaque);
    buf.extend_from_slice(b"\r\n");
}

/// `n` in decimal, without the formatting machinery (every request encodes three gets).
fn push_decimal(buf: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

/// `mg <key> v c`: the value and its CAS token, for a compare-and-swap that follows.
pub fn encode_get_cas(buf: &mut Vec<u8>, key: &str) {
    buf.extend_from_slice(b"mg ");
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b" v c\r\n");
}

/// The `c` (CAS token) flag of a reply to [`encode_get_cas`].
pub fn cas_token(flags: &[u8]) -> Option<u64> {
    flags
        .split(|&b| b == b' ')
        .find_map(|token| token.strip_prefix(b"c"))
        .and_then(parse_decimal)
}

/// `ms <key> <len> T<exptime> M<mode> [C<cas>]` and the data block. The caller has validated
/// the key, bounded the value and turned the expiry into a token. With `cas`, memcached stores
/// only if the item still carries that token (`EX` otherwise, `NF` if it is gone).
pub fn encode_set(
    buf: &mut Vec<u8>,
    key: &str,
    value: &[u8],
    exptime_token: u64,
    mode: SetMode,
    cas: Option<u64>,
) {
    let mode = match mode {
        SetMode::Add => 'E',
        SetMode::Set => 'S',
        SetMode::Replace => 'R',
    };
    buf.extend_from_slice(b"ms ");
    buf.extend_from_slice(key.as_bytes());
    let _ = write!(buf, " {} T{exptime_token} M{mode}", value.len());
    if let Some(cas) = cas {
        let _ = write!(buf, " C{cas}");
    }
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// The longest life a counter may be created with: memcached reads an `N` token up to 30 days
/// as relative to now.
pub const MAX_COUNTER_TTL: u64 = MAX_RELATIVE_EXPTIME;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterStep {
    /// Add one; a missing counter is created holding 1, living `ttl` seconds from now.
    Up { ttl: u64 },
    /// Take one away (memcached stops at 0); a missing counter stays missing.
    Down,
}

/// `ma <key> v t` plus `N<ttl> J1` (auto-create holding 1: memcached does not apply the delta
/// to the item it creates) for a step up, `MD` for a step down. A step never changes the
/// counter's remaining life: the window starts when the counter is created and ends with it.
pub fn encode_counter(buf: &mut Vec<u8>, key: &str, step: CounterStep) {
    buf.extend_from_slice(b"ma ");
    buf.extend_from_slice(key.as_bytes());
    match step {
        CounterStep::Up { ttl } => {
            let ttl = ttl.clamp(1, MAX_COUNTER_TTL);
            let _ = write!(buf, " N{ttl} J1 v t\r\n");
        }
        CounterStep::Down => buf.extend_from_slice(b" MD v t\r\n"),
    }
}

/// A counter as `ma ... v t` returns it: its value, and its remaining life in seconds (`None`
/// for an item that never expires, `t-1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterValue {
    pub value: u64,
    pub ttl: Option<u64>,
}

/// Reads the value and the `t` flag of a `VA` reply to `ma`.
pub fn parse_counter(flags: &[u8], data: &[u8]) -> Result<CounterValue, StoreError> {
    let value = parse_decimal(data).ok_or_else(|| protocol("counter is not a number", data))?;
    let ttl = match flags
        .split(|&b| b == b' ')
        .find_map(|token| token.strip_prefix(b"t"))
    {
        Some(b"-1") => None,
        Some(token) => {
            Some(parse_decimal(token).ok_or_else(|| protocol("bad counter ttl", flags))?)
        }
        None => return Err(protocol("counter reply without its ttl", flags)),
    };
    Ok(CounterValue { value, ttl })
}

pub fn encode_delete(buf: &mut Vec<u8>, key: &str) {
    buf.extend_from_slice(b"md ");
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\r\n");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `VA <len>`: a value follows.
    Value,
    /// `HD`: success without a value (stored, deleted).
    Done,
    /// `EN`: miss.
    Miss,
    /// `NS`: not stored (add on an existing key).
    NotStored,
    /// `NF`: not found (delete of a missing key).
    NotFound,
    /// `EX`: CAS mismatch (the item changed since it was read).
    Exists,
    /// `MN`: the no-op marker.
    Noop,
}

/// One complete meta reply, as ranges into the buffer it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub status: Status,
    /// The flag tokens after the status (and after the length for `VA`).
    pub flags: Range<usize>,
    /// The data block of a `VA` reply, without its trailing CRLF; empty otherwise.
    pub data: Range<usize>,
    /// Bytes the whole reply occupies, line and data block included.
    pub len: usize,
}

/// The first line of `buf`, without its CRLF, and the bytes it occupies. `Ok(None)`: not all
/// there yet.
pub fn parse_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, StoreError> {
    let window = &buf[..buf.len().min(MAX_LINE_LEN + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) if nl > 0 && buf[nl - 1] == b'\r' => Ok(Some((&buf[..nl - 1], nl + 1))),
        Some(_) => Err(protocol(
            "reply line not terminated by CRLF",
            &buf[..buf.len().min(64)],
        )),
        None if buf.len() > MAX_LINE_LEN + 1 => Err(StoreError::Protocol(format!(
            "reply line longer than {MAX_LINE_LEN} bytes"
        ))),
        None => Ok(None),
    }
}

/// Parses one meta reply from the start of `buf`. `Ok(None)`: incomplete, read more.
/// `ERROR`, `CLIENT_ERROR` and `SERVER_ERROR` lines become [`StoreError::ServerError`];
/// anything else that is not a well-formed meta reply is [`StoreError::Protocol`].
pub fn parse_reply(buf: &[u8]) -> Result<Option<Frame>, StoreError> {
    let Some((line, line_len)) = parse_line(buf)? else {
        return Ok(None);
    };
    if let Some(error) = error_line(line) {
        return Err(error);
    }
    let (code, rest) = split_token(line);
    let rest_start = line_len - 2 - rest.len();
    let simple = |status| {
        Ok(Some(Frame {
            status,
            flags: rest_start..rest_start + rest.len(),
            data: 0..0,
            len: line_len,
        }))
    };
    match code {
        b"HD" => simple(Status::Done),
        b"EN" => simple(Status::Miss),
        b"NS" => simple(Status::NotStored),
        b"NF" => simple(Status::NotFound),
        b"EX" => simple(Status::Exists),
        b"MN" if rest.is_empty() => simple(Status::Noop),
        b"VA" => {
            let (size, flags) = split_token(rest);
            let size = parse_decimal(size).ok_or_else(|| protocol("bad value length", line))?;
            if size > MAX_VALUE_LEN as u64 {
                return Err(StoreError::Protocol(format!(
                    "value of {size} bytes exceeds the {MAX_VALUE_LEN}-byte cap"
                )));
            }
            let size = size as usize;
            let total = line_len + size + 2;
            if buf.len() < total {
                return Ok(None);
            }
            if &buf[line_len + size..total] != b"\r\n" {
                return Err(protocol("data block not terminated by CRLF", line));
            }
            let flags_start = line_len - 2 - flags.len();
            Ok(Some(Frame {
                status: Status::Value,
                flags: flags_start..flags_start + flags.len(),
                data: line_len..line_len + size,
                len: total,
            }))
        }
        _ => Err(protocol("unexpected reply", line)),
    }
}

/// The `O` (opaque) token among reply flags, if the server sent one back.
pub fn opaque(flags: &[u8]) -> Option<&[u8]> {
    flags
        .split(|&b| b == b' ')
        .find_map(|token| token.strip_prefix(b"O"))
}

/// Whether the flags carry no opaque, or exactly `expected`.
pub fn opaque_matches(flags: &[u8], expected: u32) -> bool {
    match opaque(flags) {
        None => true,
        Some(token) => parse_decimal(token) == Some(u64::from(expected)),
    }
}

/// A classic protocol error line (`ERROR`, `CLIENT_ERROR ...`, `SERVER_ERROR ...`).
pub fn error_line(line: &[u8]) -> Option<StoreError> {
    let (code, rest) = split_token(line);
    let message = match code {
        // A server that predates the meta protocol answers every `mg` with this.
        b"ERROR" => "ERROR (unknown command: memcached 1.6 or newer is required)".to_string(),
        b"CLIENT_ERROR" | b"SERVER_ERROR" => {
            let code = String::from_utf8_lossy(code);
            format!("{code} {}", printable(rest, 200))
                .trim_end()
                .to_string()
        }
        _ => return None,
    };
    Some(StoreError::ServerError(message))
}

fn split_token(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &[]),
    }
}

/// Plain ASCII digits only: no sign, no spaces, at most 19 digits (fits a u64).
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

/// Server bytes shown in an error message: escaped and shortened, so a hostile or broken
/// server cannot flood or forge log lines.
pub fn printable(bytes: &[u8], max: usize) -> String {
    let mut text = bytes[..bytes.len().min(max)].escape_ascii().to_string();
    if bytes.len() > max {
        text.push_str("...");
    }
    text
}

fn protocol(what: &str, line: &[u8]) -> StoreError {
    StoreError::Protocol(format!("{what}: \"{}\"", printable(line, 64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed reply with its ranges resolved: status, flags, data, length.
    type View<'a> = (Status, &'a [u8], &'a [u8], usize);

    fn parse(buf: &[u8]) -> Result<Option<View<'_>>, StoreError> {
        Ok(parse_reply(buf)?.map(|f| (f.status, &buf[f.flags], &buf[f.data], f.len)))
    }

    fn is_protocol(r: Result<Option<Frame>, StoreError>) -> bool {
        matches!(r, Err(StoreError::Protocol(_)))
    }

    #[test]
    fn encodes_counter_steps() {
        let mut buf = Vec::new();
        encode_counter(&mut buf, "p:b:abc", CounterStep::Up { ttl: 600 });
        assert_eq!(buf, b"ma p:b:abc N600 J1 v t\r\n");
        buf.clear();
        encode_counter(&mut buf, "k", CounterStep::Down);
        assert_eq!(buf, b"ma k MD v t\r\n");
        // A TTL memcached would read as "never" (0) or as an absolute time is clamped.
        buf.clear();
        encode_counter(&mut buf, "k", CounterStep::Up { ttl: 0 });
        assert_eq!(buf, b"ma k N1 J1 v t\r\n");
        buf.clear();
        encode_counter(&mut buf, "k", CounterStep::Up { ttl: u64::MAX });
        assert_eq!(buf, b"ma k N2592000 J1 v t\r\n");
    }

    #[test]
    fn parses_counter_replies() {
        assert_eq!(
            parse_counter(b"t593", b"4").unwrap(),
            CounterValue {
                value: 4,
                ttl: Some(593)
            }
        );
        assert_eq!(
            parse_counter(b"O2 t-1", b"0").unwrap(),
            CounterValue {
                value: 0,
                ttl: None
            }
        );
        for (flags, data) in [
            (&b"t5"[..], &b"x"[..]),
            (b"t5", b""),
            (b"t5", b"-1"),
            (b"", b"3"),
            (b"tx", b"3"),
        ] {
            assert!(
                matches!(parse_counter(flags, data), Err(StoreError::Protocol(_))),
                "{flags:?} {data:?}"
            );
        }
    }

    #[test]
    fn parses_status_replies() {
        assert_eq!(
            parse(b"HD\r\n").unwrap(),
            Some((Status::Done, &b""[..], &b""[..], 4))
        );
        assert_eq!(
            parse(b"EN\r\n").unwrap(),
            Some((Status::Miss, &b""[..], &b""[..], 4))
        );
        assert_eq!(
            parse(b"EN O7\r\n").unwrap(),
            Some((Status::Miss, &b"O7"[..], &b""[..], 7))
        );
        assert_eq!(parse(b"NS\r\n").unwrap().unwrap().0, Status::NotStored);
        assert_eq!(parse(b"NF\r\n").unwrap().unwrap().0, Status::NotFound);
        assert_eq!(parse(b"EX\r\n").unwrap().unwrap().0, Status::Exists);
        assert_eq!(parse(b"MN\r\n").unwrap().unwrap().0, Status::Noop);
        assert_eq!(
            parse(b"HD O3 k\r\nEN\r\n").unwrap(),
            Some((Status::Done, &b"O3 k"[..], &b""[..], 9))
        );
    }

    #[test]
    fn parses_values_including_binary_and_empty() {
        let buf = b"VA 5 O9 t98\r\nab\r\nc\r\nHD\r\n";
        assert_eq!(
            parse(buf).unwrap(),
            Some((Status::Value, &b"O9 t98"[..], &b"ab\r\nc"[..], 20))
        );
        assert_eq!(
            parse(b"VA 0\r\n\r\n").unwrap(),
            Some((Status::Value, &b""[..], &b""[..], 8))
        );
        let mut all = b"VA 256\r\n".to_vec();
        all.extend(0..=255u8);
        all.extend_from_slice(b"\r\n");
        let (_, _, data, len) = parse(&all).unwrap().unwrap();
        assert_eq!(data, (0..=255u8).collect::<Vec<_>>().as_slice());
        assert_eq!(len, all.len());
    }

    #[test]
    fn truncated_replies_ask_for_more() {
        let full = b"VA 5 O1\r\nhello\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse_reply(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse_reply(full).unwrap().is_some());
        assert_eq!(parse_reply(b"H").unwrap(), None);
        assert_eq!(parse_reply(b"HD\r").unwrap(), None);
    }

    #[test]
    fn server_and_client_errors_carry_the_message() {
        assert_eq!(
            parse_reply(b"SERVER_ERROR out of memory storing object\r\n"),
            Err(StoreError::ServerError(
                "SERVER_ERROR out of memory storing object".into()
            ))
        );
        assert_eq!(
            parse_reply(b"CLIENT_ERROR bad data chunk\r\n"),
            Err(StoreError::ServerError(
                "CLIENT_ERROR bad data chunk".into()
            ))
        );
        let Err(StoreError::ServerError(m)) = parse_reply(b"ERROR\r\n") else {
            panic!()
        };
        assert!(m.contains("1.6"), "{m}");
        let Err(StoreError::ServerError(m)) = parse_reply(b"SERVER_ERROR \x1b[31m\x00\r\n") else {
            panic!()
        };
        assert!(
            m.is_ascii() && !m.contains('\x1b') && !m.contains('\0'),
            "{m}"
        );
    }

    #[test]
    fn oversized_values_are_refused_before_reading_them() {
        assert!(is_protocol(parse_reply(b"VA 1048577\r\n")));
        assert!(is_protocol(parse_reply(b"VA 99999999999999999999\r\n")));
        assert!(is_protocol(parse_reply(b"VA 18446744073709551615\r\n")));
        assert_eq!(
            parse_reply(b"VA 1048576\r\n").unwrap(),
            None,
            "the cap itself is fine"
        );
    }

    #[test]
    fn the_line_bound_is_exact_for_a_line_still_arriving_and_a_whole_one() {
        // MAX_LINE_LEN + 1 bytes without a newline may still be a whole line (its CR read,
        // its LF not yet): wait. One more byte cannot be.
        let mut arriving = b"HD ".to_vec();
        arriving.resize(MAX_LINE_LEN + 1, b'x');
        assert_eq!(parse_line(&arriving).unwrap(), None);
        arriving.push(b'x');
        assert!(matches!(
            parse_line(&arriving),
            Err(StoreError::Protocol(_))
        ));
        // A line of exactly MAX_LINE_LEN + 1 bytes and its CRLF is too long, whatever follows.
        let mut long = b"HD ".to_vec();
        long.resize(MAX_LINE_LEN + 1, b'x');
        long.extend_from_slice(b"\r\nHD\r\n");
        assert!(matches!(parse_line(&long), Err(StoreError::Protocol(_))));
    }

    #[test]
    fn decimals_fit_a_u64_and_printable_text_is_cut_only_when_longer() {
        assert_eq!(
            parse_decimal(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse_decimal(b"10000000000000000000"), None, "20 digits");
        assert_eq!(printable(b"abc", 3), "abc");
        assert_eq!(printable(b"abcd", 3), "abc...");
        assert_eq!(printable(b"a\nb", 8), "a\\nb");
    }

    #[test]
    fn the_fast_key_check_answers_for_every_ascii_key() {
        // The eight-bytes-at-a-time scan, not the char fallback, decides ASCII keys (the
        // fallback is for the rare key that is not ASCII).
        assert_eq!(
            ascii_key_has_separator(b"memsession:s:abcdefgh"),
            Some(false)
        );
        assert_eq!(ascii_key_has_separator(b"abcdefg h"), Some(true));
        assert_eq!(ascii_key_has_separator(b"abcdefgh\x7fi"), Some(true));
        assert_eq!(ascii_key_has_separator(b"abcdefghij\x01"), Some(true));
        assert_eq!(ascii_key_has_separator(b"abcdefgh\xc3\xa9"), None);
        assert_eq!(ascii_key_has_separator("\u{e9}abcdefgh".as_bytes()), None);
    }

    #[test]
    fn overlong_lines_are_refused() {
        let mut line = b"HD ".to_vec();
        line.resize(MAX_LINE_LEN + 2, b'x');
        assert!(is_protocol(parse_reply(&line)));
        let mut ok = b"HD ".to_vec();
        ok.resize(MAX_LINE_LEN, b'x');
        ok.extend_from_slice(b"\r\n");
        assert!(parse_reply(&ok).unwrap().is_some());
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let cases: &[&[u8]] = &[
            b"\r\n",
            b"HD\n",
            b"\n",
            b"hd\r\n",
            b"VALUE k 0 1\r\nx\r\nEND\r\n",
            b"STORED\r\n",
            b"VA\r\n",
            b"VA -1\r\n",
            b"VA +5\r\nhello\r\n",
            b"VA 5x\r\nhello\r\n",
            b"VA  5\r\nhello\r\n",
            b"VA 5\r\nhelloXY",
            b"VA 5\r\nhello\n\r",
            b"MN extra\r\n",
            b"\x00\x01\x02\r\n",
            b"HDHD\r\n",
        ];
        for &case in cases {
            assert!(
                is_protocol(parse_reply(case)),
                "{:?}",
                case.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: every prefix of many pseudo-random byte strings built
        // from protocol fragments.
        let pieces: &[&[u8]] = &[
            b"VA ",
            b"HD",
            b"EN",
            b"\r",
            b"\n",
            b"1",
            b"0",
            b"5 ",
            b"O",
            b" ",
            b"x",
            b"\xff",
            b"SERVER_ERROR",
            b"MN",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5000 {
            let mut buf = Vec::new();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                buf.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            for cut in 0..=buf.len() {
                if let Ok(Some(f)) = parse_reply(&buf[..cut]) {
                    assert!(f.len <= cut && f.data.end <= f.len && f.flags.end <= f.len);
                }
            }
        }
    }

    #[test]
    fn opaque_tokens() {
        assert_eq!(opaque(b"O12 t5"), Some(&b"12"[..]));
        assert_eq!(opaque(b"t5 O12"), Some(&b"12"[..]));
        assert_eq!(opaque(b""), None);
        assert!(opaque_matches(b"", 3));
        assert!(opaque_matches(b"O3", 3));
        assert!(!opaque_matches(b"O4", 3));
        assert!(!opaque_matches(b"O", 3));
        assert!(!opaque_matches(b"O3x", 3));
    }

    #[test]
    fn gets_carry_their_opaque_in_decimal() {
        for n in [0u32, 7, 10, 31, 4_294_967_295] {
            let mut buf = Vec::new();
            encode_get(&mut buf, "k", n);
            assert_eq!(buf, format!("mg k v O{n}\r\n").into_bytes());
        }
    }

    #[test]
    fn every_separator_is_found_at_every_position() {
        for len in 1..=40 {
            for at in 0..len {
                for bad in (0u8..=b' ').chain([0x7f]) {
                    let mut key = vec![b'k'; len];
                    key[at] = bad;
                    let key = String::from_utf8(key).unwrap();
                    assert_eq!(validate_key(&key), Err(StoreError::InvalidKey), "{key:?}");
                }
            }
            let good: String = (0..len)
                .map(|i| char::from(b'!' + (i % 94) as u8))
                .collect();
            assert!(validate_key(&good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn keys_are_checked() {
        assert!(validate_key("memsession:s:abc-_.~").is_ok());
        assert!(validate_key(&"k".repeat(250)).is_ok());
        assert!(validate_key("clé").is_ok());
        for bad in [
            "", "a b", "a\r\nmn", "a\tb", "a\0", "a\x7f", "a\u{85}", "a\u{a0}b",
        ] {
            assert_eq!(validate_key(bad), Err(StoreError::InvalidKey), "{bad:?}");
        }
        assert_eq!(validate_key(&"k".repeat(251)), Err(StoreError::InvalidKey));
    }

    #[test]
    fn encodes_requests() {
        let mut buf = Vec::new();
        encode_get(&mut buf, "a:b", 17);
        encode_delete(&mut buf, "k");
        assert_eq!(buf, b"mg a:b v O17\r\nmd k\r\n");
        buf.clear();
        encode_set(&mut buf, "k", b"x\r\ny", 1_900_000_000, SetMode::Add, None);
        assert_eq!(buf, b"ms k 4 T1900000000 ME\r\nx\r\ny\r\n");
        buf.clear();
        encode_set(&mut buf, "k", b"", 1_900_000_000, SetMode::Set, None);
        assert_eq!(buf, b"ms k 0 T1900000000 MS\r\n\r\n");
        buf.clear();
        encode_get_cas(&mut buf, "k");
        encode_set(&mut buf, "k", b"v", 0, SetMode::Set, Some(42));
        assert_eq!(buf, b"mg k v c\r\nms k 1 T0 MS C42\r\nv\r\n");
    }

    #[test]
    fn reads_the_cas_token() {
        assert_eq!(cas_token(b"c1234"), Some(1234));
        assert_eq!(cas_token(b"O7 c99 t-1"), Some(99));
        assert_eq!(cas_token(b"O7"), None);
        assert_eq!(cas_token(b"c-1"), None);
    }

    #[test]
    fn expiry_must_be_absolute() {
        assert!(matches!(
            exptime_token(0),
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            exptime_token(3600),
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            exptime_token(2_592_000),
            Err(StoreError::InvalidArgument(_))
        ));
        assert_eq!(exptime_token(2_592_001), Ok(2_592_001));
        assert_eq!(exptime_token(1_900_000_000), Ok(1_900_000_000));
        assert_eq!(exptime_token(u64::MAX), Ok(i32::MAX as u64));
    }
}
