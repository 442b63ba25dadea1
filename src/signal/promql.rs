//! The single value of a Prometheus instant query (`GET /api/v1/query`).
//!
//! Prometheus answers `{"status":"success","data":{"resultType":…,"result":…}}`. A `scalar`
//! gives its value; a `vector` must hold exactly one series: none means the expression matched
//! nothing (a target gone, a metric renamed), several mean it does not say which one to judge.
//! Either is a failed check with the reason. A `matrix` (a range selector) or `string` is no
//! single number. Values arrive as strings (`"0.25"`, `"NaN"`, `"+Inf"`).

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

/// The number in a Prometheus sample value `[ <unix time>, "<value>" ]`.
fn sample_value(v: &Value) -> Result<f64, String> {
    let s = v.get(1).and_then(Value::as_str).ok_or_else(|| format!("a sample value is not [time, \"value\"]: {v}"))?;
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().map_err(|_| format!("`{s}` is not a number")),
    }
}

/// `{a="1",b="2"}` of a series' labels, for a message.
fn labels(series: &Value) -> String {
    let Some(m) = series.get("metric").and_then(Value::as_object) else { return "{}".into() };
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(","))
}

/// The value the answer `body` to an instant query gives.
///
/// # Errors
/// Not Prometheus JSON, an error answer, no series or several, or no single number.
pub fn single_value(body: &str) -> Result<f64, String> {
    let answer: Answer = serde_json::from_str(body)
        .map_err(|e| format!("not a Prometheus query answer ({e}): {}", body.chars().take(120).collect::<String>()))?;
    if answer.status != "success" {
        return Err(format!(
            "Prometheus answered {}: {} {}",
            answer.status,
            answer.error_type.unwrap_or_default(),
            answer.error.unwrap_or_default()
        ));
    }
    let data = answer.data.ok_or("Prometheus answered success without data")?;
    match data.result_type.as_str() {
        "scalar" => sample_value(&data.result),
        "vector" => {
            let series = data.result.as_array().ok_or("a vector result that is not a list")?;
            match series.as_slice() {
                [] => Err("the query matched no series (empty result)".into()),
                [one] => sample_value(one.get("value").ok_or("a series without a value")?),
                many => {
                    let shown: Vec<String> = many.iter().take(3).map(labels).collect();
                    Err(format!(
                        "the query is ambiguous: {} series ({}{}); aggregate it (sum, max …) to one",
                        many.len(),
                        shown.join(", "),
                        if many.len() > 3 { ", …" } else { "" }
                    ))
                }
            }
        }
        other => Err(format!("the query gives a {other}, not one number (use an instant vector or scalar)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_or_a_scalar_is_its_value() {
        let one = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"region":"primary"},"value":[1700000000.1,"0.25"]}]}}"#;
        assert_eq!(single_value(one), Ok(0.25));
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"7"]}}"#;
        assert_eq!(single_value(scalar), Ok(7.0));
        let nan = r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"NaN"]}}"#;
        assert!(single_value(nan).unwrap().is_nan());
    }

    #[test]
    fn empty_ambiguous_and_wrong_answers_are_failures_with_their_reason() {
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(single_value(empty).unwrap_err().contains("no series"));
        let two = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"a"},"value":[1,"1"]},{"metric":{"instance":"b"},"value":[1,"2"]}]}}"#;
        let e = single_value(two).unwrap_err();
        assert!(e.contains("ambiguous: 2 series") && e.contains("instance=\"b\""), "{e}");
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(single_value(matrix).unwrap_err().contains("matrix"));
        let err = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        assert_eq!(single_value(err).unwrap_err(), "Prometheus answered error: bad_data parse error at char 4");
        assert!(single_value("<html>").unwrap_err().starts_with("not a Prometheus query answer"));
        let text = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"many"]}}"#;
        assert!(single_value(text).unwrap_err().contains("not a number"));
    }
}
