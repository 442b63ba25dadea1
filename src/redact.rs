//! Redaction: the one way a secret-bearing string leaves the process. PURE.
//!
//! Every DSN, URL, header and free text that may carry a secret is printed
//! through here — the status, logs (the log writer passes every line through
//! [`text`]), events, transitions, errors and `check-config`. A secret becomes
//! [`MASK`]; everything else is kept so that the output still says which
//! host, database or endpoint is meant.
//!
//! - [`dsn`]: PostgreSQL DSNs in URL form (`postgres://user:pw@host/db?password=…`)
//!   and key=value form (`host=h password='a b'`, spaces around `=` and quoted
//!   values with `\'` escapes as libpq parses them).
//! - [`url`]: any URL: the password of its userinfo, and query or fragment
//!   parameters whose name says secret ([`is_secret_name`]).
//! - [`header`]: a header's value, masked when its name says secret.
//! - [`text`]: free text (an error message, a log line): every URL in it, and
//!   every `name=value` whose name says secret.
//!
//! A key=value DSN that cannot be parsed is not printed at all: it is
//! replaced by a note saying so, because a parser that gave up cannot say
//! where the password ends.

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Name endings that make a parameter, key or header name secret, matched on
/// each lower-cased word of the name (`X-Api-Key` → `x`, `api`, `key`;
/// `sslpassword`; `apiKey` → `apikey`).
const SECRET_ENDINGS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "key",
    "token",
    "tokens",
    "secret",
    "signature",
    "credential",
    "credentials",
    "cookie",
    "auth",
];

/// True when a parameter, key or header named `name` holds a secret:
/// password, passfile, sslpassword, sslkey, token, api_key, secret,
/// signature, authorization, cookie … (but not `signal`, `keepalives` or
/// `target_session_attrs`).
pub fn is_secret_name(name: &str) -> bool {
    name.split(|c: char| !c.is_ascii_alphanumeric()).map(str::to_ascii_lowercase).any(|w| {
        w.starts_with("pass")
            || w.starts_with("secret")
            || w.starts_with("token")
            || w == "sig"
            || w == "authorization"
            || SECRET_ENDINGS.iter().any(|e| w.ends_with(e))
    })
}

/// A DSN with its secrets masked (URL or key=value form).
pub fn dsn(dsn: &str) -> String {
    if dsn.contains("://") {
        return url(dsn);
    }
    match parse_key_values(dsn) {
        Some(pairs) => pairs
            .iter()
            .map(|(k, v)| if is_secret_name(k) { format!("{k}={MASK}") } else { format!("{k}={v}") })
            .collect::<Vec<_>>()
            .join(" "),
        None if !dsn.contains('=') => dsn.to_string(),
        None => "(a key=value DSN that could not be parsed; not shown)".to_string(),
    }
}

/// A URL with the password of its userinfo and its secret parameters masked.
pub fn url(u: &str) -> String {
    let Some(scheme_end) = u.find("://") else {
        return params(u);
    };
    let (scheme, rest) = u.split_at(scheme_end + 3);
    // The userinfo ends at the last `@` before the query: a password with an
    // unescaped `/` or `@` is still treated as part of it.
    let query_start = rest.find(['?', '#']).unwrap_or(rest.len());
    let (head, tail) = rest.split_at(query_start);
    let authority_end = head.find('/').unwrap_or(head.len());
    let at = head[..authority_end].rfind('@').or_else(|| head.rfind('@').filter(|&i| head[..i].contains(':')));
    let head = match at {
        Some(at) => {
            let userinfo = &head[..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}:{MASK}{}", &userinfo[..colon], &head[at..]),
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    format!("{scheme}{head}{}", params(tail))
}

/// `?a=1&password=x#token=y`: the values of secret parameters masked.
fn params(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['?', '#', '&', ';']) {
        out.push_str(&mask_param(&rest[..i]));
        out.push_str(&rest[i..=i]);
        rest = &rest[i + 1..];
    }
    out.push_str(&mask_param(rest));
    out
}

/// `name=value` with the value masked when the (percent-decoded) name says secret.
fn mask_param(pair: &str) -> String {
    match pair.split_once('=') {
        Some((name, _)) if is_secret_name(&percent_decode(name)) => format!("{name}={MASK}"),
        _ => pair.to_string(),
    }
}

/// Percent-decodes what it can; leaves malformed escapes as they are.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A header's value for display: masked when its name says secret.
pub fn header(name: &str, value: &str) -> String {
    if is_secret_name(name) { MASK.to_string() } else { value.to_string() }
}

/// Free text with every URL redacted ([`url`]) and every `name=value` or
/// `name: value` whose name says secret masked; the value ends at white
/// space (or its closing quote when quoted).
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        // A URL starts at its scheme, just before "://".
        if let Some(len) = url_at(s, i) {
            out.push_str(&url(&s[i..i + len]));
            i += len;
            continue;
        }
        if let Some((len, masked)) = secret_pair_at(s, i) {
            out.push_str(&masked);
            i += len;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Characters that end a URL inside text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '(' | ')' | '[' | ']' | '{' | '}' | '\\' | ',')
}

/// The length of a URL starting at byte `i` of `s`, if one does: a scheme of
/// letters, digits, `+`, `-`, `.` (after a non-word character) followed by `://`.
fn url_at(s: &str, i: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    if !bytes[i].is_ascii_alphabetic() || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) {
        return None;
    }
    let scheme_len = s[i..].find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))?;
    if !s[i + scheme_len..].starts_with("://") {
        return None;
    }
    let body = &s[i + scheme_len + 3..];
    // A password may hold characters that end a URL elsewhere (a quote, a
    // comma): the userinfo runs to the `@` that ends the authority.
    let plain_end = body.find(ends_url).unwrap_or(body.len());
    let end = match body[..body.find(char::is_whitespace).unwrap_or(body.len())].rfind('@') {
        Some(at) if at > plain_end => at + 1 + body[at + 1..].find(ends_url).unwrap_or(body.len() - at - 1),
        _ => plain_end,
    };
    Some(scheme_len + 3 + end)
}

/// At byte `i`: a `name=value`, `name = value`, `name: value` or JSON
/// `"name":"value"` whose name says secret (a word of letters, digits, `_`,
/// `-`, `.` starting after a non-word character), as (bytes consumed, masked
/// text). A value `Bearer x` (or Basic, Token, Digest) is masked whole; after a colon a plain
/// number is not a secret.
fn secret_pair_at(s: &str, i: usize) -> Option<(usize, String)> {
    let bytes = s.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if !word(bytes[i]) || (i > 0 && word(bytes[i - 1])) {
        return None;
    }
    let name_len = s[i..].bytes().take_while(|&b| word(b)).count();
    if !is_secret_name(&s[i..i + name_len]) {
        return None;
    }
    let skip_spaces = |mut j: usize| {
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        j
    };
    let mut j = i + name_len;
    // A JSON key: `"password":`.
    if j < bytes.len() && bytes[j] == b'"' && i > 0 && bytes[i - 1] == b'"' {
        j += 1;
    }
    j = skip_spaces(j);
    if j >= bytes.len() || !(bytes[j] == b'=' || bytes[j] == b':') {
        return None;
    }
    let colon = bytes[j] == b':';
    j = skip_spaces(j + 1);
    let mut len = value_len(&s[j..]);
    if len == 0 {
        return None;
    }
    let value = &s[j..j + len];
    // Prose such as "tokens: 3" is a count, not a secret.
    if colon && value.trim_end_matches([',', '.', ';']).bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let quote = value.chars().next().filter(|c| matches!(c, '\'' | '"'));
    if quote.is_none() && ["bearer", "basic", "token", "digest"].contains(&value.to_ascii_lowercase().as_str()) {
        let after = skip_spaces(j + len);
        if after > j + len {
            len = after - j + value_len(&s[after..]);
        }
    }
    let masked = match quote {
        Some(q) => format!("{q}{MASK}{q}"),
        None => MASK.to_string(),
    };
    Some((j + len - i, format!("{}{masked}", &s[i..j])))
}

/// The length of a value at the start of `s`: a quoted one ('…' or "…", with
/// backslash escapes) to its closing quote, else up to white space.
fn value_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, q @ ('\'' | '"'))) => {
            let mut escaped = false;
            for (k, c) in chars {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    return k + 1;
                }
            }
            s.len()
        }
        Some(_) => s.find(char::is_whitespace).unwrap_or(s.len()),
        None => 0,
    }
}

/// Parses libpq's key=value form: `key = value` pairs separated by white
/// space, a value bare or single-quoted with `\'` and `\\` escapes. `None`
/// when it is not well formed (or not key=value at all).
fn parse_key_values(s: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
            key.push(c);
        }
        if key.is_empty() {
            return None;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.next_if_eq(&'=')?;
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            value.push('\'');
            loop {
                match chars.next()? {
                    '\\' => {
                        value.push('\\');
                        value.push(chars.next()?);
                    }
                    '\'' => break,
                    c => value.push(c),
                }
            }
            value.push('\'');
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push((key, value));
    }
    (!pairs.is_empty()).then_some(pairs)
}

#[cfg(test)]
mod tests;
