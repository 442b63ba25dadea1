use proptest::prelude::*;

use super::*;

#[test]
fn url_form_dsns_lose_the_password_of_the_userinfo_and_of_the_query() {
    assert_eq!(dsn("postgres://u:p@h:5/db"), "postgres://u:***@h:5/db");
    assert_eq!(dsn("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(
        dsn("postgresql://u@h1:5432,h2:5433/db?sslmode=require&password=s3&sslpassword=x&application_name=fo"),
        "postgresql://u@h1:5432,h2:5433/db?sslmode=require&password=***&sslpassword=***&application_name=fo"
    );
    assert_eq!(dsn("postgres://u:pa/ss@h/db"), "postgres://u:***@h/db");
    assert_eq!(dsn("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
}

#[test]
fn key_value_dsns_lose_every_secret_value_quoted_or_not() {
    assert_eq!(dsn("host=h password=x user=u"), "host=h password=*** user=u");
    assert_eq!(dsn("host=h  password = 'a b\\' c'  user=u"), "host=h password=*** user=u");
    assert_eq!(dsn("host=h sslkey=/k passfile=/p dbname='my db'"), "host=h sslkey=*** passfile=*** dbname='my db'");
    assert_eq!(dsn("host=h password='never closed"), "(a key=value DSN that could not be parsed; not shown)");
    assert_eq!(dsn("service-name"), "service-name");
}

#[test]
fn urls_lose_passwords_and_secret_parameters_but_keep_the_rest() {
    assert_eq!(url("https://u:pw@api.example/x?a=1&token=t#frag"), "https://u:***@api.example/x?a=1&token=***#frag");
    assert_eq!(
        url("https://s3/b?X-Amz-Signature=abc&X-Amz-Credential=c&X-Amz-Date=d"),
        "https://s3/b?X-Amz-Signature=***&X-Amz-Credential=***&X-Amz-Date=d"
    );
    assert_eq!(url("http://h/cb#access_token=t&state=s"), "http://h/cb#access_token=***&state=s");
    assert_eq!(url("http://h/x?api%5Fkey=v"), "http://h/x?api%5Fkey=***");
    assert_eq!(url("http://127.0.0.1:8080/health"), "http://127.0.0.1:8080/health");
}

#[test]
fn secret_names_are_told_from_look_alikes() {
    for secret in
        ["password", "PGPASSWORD", "passfile", "sslkey", "X-Api-Key", "apiKey", "Authorization", "sig", "client_secret"]
    {
        assert!(is_secret_name(secret), "{secret}");
    }
    for plain in ["signal", "keepalives", "target_session_attrs", "host", "dbname", "application_name", "author"] {
        assert!(!is_secret_name(plain), "{plain}");
    }
}

#[test]
fn headers_are_masked_by_name() {
    assert_eq!(header("Authorization", "Bearer abc"), MASK);
    assert_eq!(header("X-API-Key", "abc"), MASK);
    assert_eq!(header("Content-Type", "application/json"), "application/json");
}

#[test]
fn free_text_loses_urls_secrets_pairs_and_bearer_tokens() {
    assert_eq!(
        text("error sending request for url (http://u:pw@127.0.0.1:1/x?token=t): connection refused"),
        "error sending request for url (http://u:***@127.0.0.1:1/x?token=***): connection refused"
    );
    assert_eq!(text("connecting with password=hunter2 failed"), "connecting with password=*** failed");
    assert_eq!(text("Authorization: Bearer abc.def ok"), "Authorization: *** ok");
    assert_eq!(text(r#"{"password":"x y","host":"h"}"#), r#"{"password":"***","host":"h"}"#);
    assert_eq!(text("signal=SIGTERM reason=\"shutdown\""), "signal=SIGTERM reason=\"shutdown\"");
    assert_eq!(text("plain text, no secrets: 42 ms"), "plain text, no secrets: 42 ms");
}

/// A secret that cannot occur by chance in the rest of a generated string:
/// it starts with `Zq` and the other parts are lower-case.
fn secret() -> impl Strategy<Value = String> {
    "Zq[A-Z0-9]{6,14}"
}

/// A secret with characters that need quoting or escaping.
fn awkward_secret() -> impl Strategy<Value = String> {
    ("Zq[A-Z0-9]{3,6}", prop::sample::select(vec![" ", "'", "\\", "@", "/", ":", "#", "&", ",", "\""]), "[A-Z0-9]{2,6}")
        .prop_map(|(a, b, c)| format!("{a}{b}{c}"))
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,7}"
}

fn secret_key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["password", "sslpassword", "passfile", "sslkey"])
}

fn secret_param() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "password",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "secret",
        "client_secret",
        "signature",
        "X-Amz-Signature",
        "sig",
        "key",
        "auth",
    ])
}

/// libpq's quoting of a key=value value.
fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Percent-encodes everything but unreserved characters.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Neither the secret nor any of its encodings appears in `out`.
fn leaks(out: &str, secret: &str) -> bool {
    out.contains(secret) || out.contains(&encode(secret)) || out.contains(&secret[..secret.len().min(8)])
}

proptest! {
    #![proptest_config(crate::proptest_cases::safety())]

    #[test]
    fn no_secret_survives_a_key_value_dsn(
        before in prop::collection::vec((word(), word()), 0..3),
        after in prop::collection::vec((word(), word()), 0..3),
        key in secret_key(), plain in secret(), awkward in awkward_secret(),
        quoted in any::<bool>(), spaces in any::<bool>(),
    ) {
        let value = if quoted { quote(&awkward) } else { plain.clone() };
        let s = if quoted { &awkward } else { &plain };
        let eq = if spaces { " = " } else { "=" };
        let mut parts: Vec<String> = before.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("{key}{eq}{value}"));
        parts.extend(after.iter().map(|(k, v)| format!("{k}={v}")));
        let d = parts.join(" ");
        for out in [dsn(&d), text(&d)] {
            prop_assert!(!leaks(&out, s), "{d} → {out}");
        }
    }

    #[test]
    fn no_secret_survives_a_url_in_any_position(
        scheme in prop::sample::select(vec!["postgres", "postgresql", "http", "https"]),
        user in word(), host in word(), path in prop::collection::vec(word(), 0..3),
        pw in awkward_secret(), encoded_pw in any::<bool>(),
        params_before in prop::collection::vec((word(), word()), 0..3),
        name in secret_param(), value in secret(), in_fragment in any::<bool>(),
        where_ in 0..3u8,
    ) {
        let pw_text = if encoded_pw { encode(&pw) } else { pw.replace(['#', '?', ' ', '"', ','], "x") };
        let mut u = match where_ {
            // Secret in the userinfo, in a parameter, or both.
            0 | 2 => format!("{scheme}://{user}:{pw_text}@{host}/{}", path.join("/")),
            _ => format!("{scheme}://{user}@{host}/{}", path.join("/")),
        };
        let mut q: Vec<String> = params_before.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if where_ >= 1 {
            q.push(format!("{name}={value}"));
        }
        if !q.is_empty() {
            u.push(if in_fragment { '#' } else { '?' });
            u.push_str(&q.join("&"));
        }
        let embedded = format!("error sending request for url ({u}): refused");
        for out in [url(&u), dsn(&u), text(&u), text(&embedded)] {
            if where_ != 1 {
                prop_assert!(!leaks(&out, &pw_text) && !leaks(&out, &pw), "{u} → {out}");
            }
            if where_ >= 1 {
                prop_assert!(!leaks(&out, &value), "{u} → {out}");
            }
            prop_assert!(out.contains(&host), "the host is kept: {u} → {out}");
        }
    }

    #[test]
    fn no_secret_survives_free_text_pairs_and_headers(
        lead in "[a-z ]{0,12}", trail in "[a-z ]{0,12}",
        name in secret_param(), value in secret(), awkward in awkward_secret(),
        form in 0..4u8,
    ) {
        let (t, s) = match form {
            0 => (format!("{lead} {name}={value} {trail}"), value.clone()),
            1 => (format!("{lead} {name}: {value} {trail}"), value.clone()),
            2 => (format!("{lead} {{\"{name}\":\"{}\"}} {trail}", awkward.replace(['"', '\\'], "x")), awkward.replace(['"', '\\'], "x")),
            _ => (format!("{lead} Authorization: Bearer {value} {trail}"), value.clone()),
        };
        let out = text(&t);
        prop_assert!(!leaks(&out, &s), "{t} → {out}");
        prop_assert_eq!(header(name, &value), MASK);
    }
}

#[test]
fn a_percent_sign_before_a_multibyte_character_is_kept_as_it_is() {
    assert_eq!(url("http://h/x?%aé=1&password=p"), "http://h/x?%aé=1&password=***");
    assert_eq!(url("http://h/x?%é=1"), "http://h/x?%é=1");
    assert_eq!(text("see http://h/x?%aé=1&token=t now"), "see http://h/x?%aé=1&token=*** now");
}

proptest! {
    #![proptest_config(crate::proptest_cases::safety())]

    /// Redaction runs on every error and log line: no input, however broken its escapes,
    /// quotes or multibyte characters, may make it panic.
    #[test]
    fn redaction_never_panics(
        pieces in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    "%", "%a", "%4", "%41", "é", "€", "😀", "://", "http://", "u:p@", "@", "?", "&", "#",
                    "=", " = ", ":", "'", "\"", "\\", "password", "token", "Bearer ", " ",
                ]).prop_map(str::to_string),
                any::<String>(),
            ],
            0..12,
        ),
    ) {
        let s = pieces.concat();
        let _ = (dsn(&s), url(&s), text(&s), header("X-Api-Key", &s), header(&s, "v"));
    }
}
