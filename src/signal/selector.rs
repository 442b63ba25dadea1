//! Metric selectors: `name` or `name{label="value",…}`, an exact match on the metric name and
//! on every label given (labels not given may have any value), as in PromQL without regex
//! matchers. A check reads the value of the one sample that matches.

use std::fmt;

use prometheus_parse::{Sample, Scrape, Value};

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Metric name.
    pub name: String,
    /// Labels that must match exactly, in the order written.
    pub labels: Vec<(String, String)>,
}

/// Whether `s` is a Prometheus metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (no `:` in
/// label names, which `colon` says).
fn is_name(s: &str, colon: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') || (!first && c.is_ascii_digit())
    };
    let mut chars = s.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

impl Selector {
    /// Parses `name{label="value",…}`.
    ///
    /// # Errors
    /// What is wrong, in words fit for a configuration error.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let s = s.trim();
        let (name, rest) = match s.find('{') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let name = name.trim();
        if !is_name(name, true) {
            return Err(format!(
                "`{name}` is not a metric name (letters, digits, `_` and `:`, not starting with a digit)"
            ));
        }
        let mut labels = Vec::new();
        if let Some(rest) = rest {
            let body = rest.strip_suffix('}').ok_or("the labels do not end with `}`")?;
            let mut chars = body.chars().peekable();
            loop {
                while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
                if chars.peek().is_none() {
                    break;
                }
                let mut label = String::new();
                while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
                    label.push(c);
                }
                if !is_name(&label, false) {
                    return Err(format!("`{label}` is not a label name"));
                }
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                if chars.next() != Some('=') || chars.peek() == Some(&'~') {
                    return Err(format!("label `{label}`: write {label}=\"value\" (only exact matches)"));
                }
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                if chars.next() != Some('"') {
                    return Err(format!("label `{label}`: the value must be in double quotes"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("label `{label}`: the value's quote is never closed")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(c @ ('\\' | '"')) => value.push(c),
                            _ => return Err(format!("label `{label}`: unknown escape in the value")),
                        },
                        Some(c) => value.push(c),
                    }
                }
                if labels.iter().any(|(l, _)| l == &label) {
                    return Err(format!("label `{label}` is given twice"));
                }
                labels.push((label, value));
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                match chars.next() {
                    None => break,
                    Some(',') => {}
                    Some(c) => return Err(format!("unexpected `{c}` after label `{}`", labels[labels.len() - 1].0)),
                }
            }
        }
        Ok(Selector { name: name.to_string(), labels })
    }

    /// Whether `sample` is one this selector names.
    pub fn matches(&self, sample: &Sample) -> bool {
        sample.metric == self.name && self.labels.iter().all(|(l, v)| sample.labels.get(l) == Some(v.as_str()))
    }

    /// The value of the one sample of `scrape` this selector matches.
    ///
    /// # Errors
    /// No sample matches, several do (the reason lists what tells them apart), or the one that
    /// matches is a histogram or summary (no single number).
    pub fn value_in(&self, scrape: &Scrape) -> Result<f64, String> {
        let found: Vec<&Sample> = scrape.samples.iter().filter(|s| self.matches(s)).collect();
        match found.as_slice() {
            [] => Err(format!("no sample {self} among the {} scraped", scrape.samples.len())),
            [one] => scalar(one).ok_or_else(|| format!("{self} is a histogram or summary, not one number")),
            many => {
                let shown: Vec<String> = many.iter().take(3).map(|s| format!("{}{}", s.metric, braces(s))).collect();
                Err(format!(
                    "{self} is ambiguous: {} samples match ({}{}); add labels to pick one",
                    many.len(),
                    shown.join(", "),
                    if many.len() > 3 { ", …" } else { "" }
                ))
            }
        }
    }
}

/// The number of a counter, gauge or untyped sample.
pub fn scalar(sample: &Sample) -> Option<f64> {
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
        Value::Histogram(_) | Value::Summary(_) => None,
    }
}

/// `{a="1",b="2"}` of a sample, labels sorted; empty without labels.
fn braces(s: &Sample) -> String {
    if s.labels.is_empty() { String::new() } else { format!("{{{}}}", s.labels) }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(l, v)| format!("{l}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            write!(f, "{{{}}}", labels.join(","))?;
        }
        Ok(())
    }
}

/// Parses exposition text (Prometheus text format 0.0.4) taken at `at`.
///
/// # Errors
/// Never for text; kept fallible for the parser's reader interface.
pub fn parse_scrape(text: &str, at: chrono::DateTime<chrono::Utc>) -> Result<Scrape, String> {
    Scrape::parse_at(text.lines().map(|l| Ok(l.to_string())), at).map_err(|e| format!("unreadable exposition: {e}"))
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    const TEXT: &str = "\
# HELP node_filesystem_avail_bytes Filesystem space available.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 6e+10
node_filesystem_avail_bytes{device=\"tmpfs\",fstype=\"tmpfs\",mountpoint=\"/run\"} 1.5e+09
# TYPE app_errors_ratio gauge
app_errors_ratio 0.02
# TYPE req_seconds histogram
req_seconds_bucket{le=\"0.1\"} 3
req_seconds_bucket{le=\"+Inf\"} 4
req_seconds_sum 0.5
req_seconds_count 4
";

    fn scrape() -> Scrape {
        parse_scrape(TEXT, DateTime::from_timestamp(1_700_000_000, 0).unwrap()).unwrap()
    }

    #[test]
    fn selectors_parse_names_and_exact_labels() {
        assert_eq!(Selector::parse("up").unwrap(), Selector { name: "up".into(), labels: vec![] });
        let s = Selector::parse(r#" node_filesystem_avail_bytes{ mountpoint = "/", fstype="ext4", } "#).unwrap();
        assert_eq!(s.labels, vec![("mountpoint".into(), "/".into()), ("fstype".into(), "ext4".into())]);
        assert_eq!(s.to_string(), r#"node_filesystem_avail_bytes{mountpoint="/",fstype="ext4"}"#);
        assert_eq!(Selector::parse(r#"x{a="q\"uote"}"#).unwrap().labels[0].1, "q\"uote");
        assert_eq!(
            Selector::parse(&Selector::parse(r#"x{a="q\"u\\ote"}"#).unwrap().to_string()).unwrap().labels[0].1,
            "q\"u\\ote"
        );
    }

    #[test]
    fn bad_selectors_say_what_is_wrong() {
        for (bad, says) in [
            ("", "not a metric name"),
            ("9lives", "not a metric name"),
            ("a{b=\"c\"", "do not end with"),
            ("a{b=~\"c\"}", "only exact matches"),
            ("a{b=c}", "double quotes"),
            ("a{b=\"c}", "never closed"),
            ("a{b:x=\"c\"}", "not a label name"),
            ("a{b=\"1\",b=\"2\"}", "given twice"),
            ("a{b=\"1\" c=\"2\"}", "unexpected `c`"),
        ] {
            let e = Selector::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn one_match_is_its_value_none_or_several_are_failures() {
        let sc = scrape();
        let root = Selector::parse(r#"node_filesystem_avail_bytes{mountpoint="/"}"#).unwrap();
        assert_eq!(root.value_in(&sc), Ok(6e10));
        assert_eq!(Selector::parse("app_errors_ratio").unwrap().value_in(&sc), Ok(0.02));
        let e = Selector::parse("node_filesystem_avail_bytes").unwrap().value_in(&sc).unwrap_err();
        assert!(e.contains("ambiguous: 2 samples match") && e.contains("mountpoint=\"/run\""), "{e}");
        let e =
            Selector::parse(r#"node_filesystem_avail_bytes{mountpoint="/home"}"#).unwrap().value_in(&sc).unwrap_err();
        assert!(e.starts_with("no sample node_filesystem_avail_bytes{mountpoint=\"/home\"}"), "{e}");
        let e = Selector::parse("req_seconds").unwrap().value_in(&sc).unwrap_err();
        assert!(e.contains("histogram"), "{e}");
        let empty = parse_scrape("", DateTime::from_timestamp(0, 0).unwrap()).unwrap();
        assert!(root.value_in(&empty).unwrap_err().contains("among the 0 scraped"));
    }
}
