//! The Prometheus provider: one instant query (`GET {address}/api/v1/query?query=...`) per
//! measurement. A vector becomes a list of numbers (`result[0]` is the first series' value), a
//! scalar a number. A query Prometheus rejects, an unreachable Prometheus, an answer of another
//! type (a range vector, a string) are errors that say so, which the run records as Error
//! measurements.

use std::time::Duration;

use serde_json::Value as Json;

use super::expr::{Value, format_number};
use super::types::PrometheusMetric;

/// Seconds a query may take unless the metric says otherwise (`timeout`).
pub(super) const DEFAULT_TIMEOUT_SECS: i64 = 30;

/// What a query gave.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Answer {
    /// The value conditions see as `result`.
    pub(super) result: Value,
    /// The value as Argo Rollouts writes it in a measurement: `0.5` or `[0.5,0.7]`.
    pub(super) shown: String,
    /// Prometheus' warnings, if any.
    pub(super) warnings: Vec<String>,
}

/// The URL of the instant query `query` at `address`.
pub(super) fn query_url(address: &str, query: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
    format!(
        "{}/api/v1/query?query={encoded}",
        address.trim_end_matches('/')
    )
}

/// Runs the metric's query. The error says what went wrong and names the address.
pub(super) async fn query(
    http: &ferry_http::Client,
    p: &PrometheusMetric,
) -> Result<Answer, String> {
    let address = p.address.trim();
    if address.is_empty() {
        return Err("provider.prometheus.address is empty: give Prometheus' URL, such as http://prometheus.monitoring:9090".into());
    }
    if p.query.trim().is_empty() {
        return Err("provider.prometheus.query is empty".into());
    }
    let timeout = p.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if timeout <= 0 {
        return Err(format!(
            "provider.prometheus.timeout {timeout} must be a positive number of seconds"
        ));
    }
    let url = query_url(address, &p.query);
    let headers: Vec<(&str, &str)> = p
        .headers
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_str()))
        .collect();
    let answer = tokio::time::timeout(
        Duration::from_secs(timeout as u64),
        http.get_json(&url, &headers),
    )
    .await
    .map_err(|_| format!("Prometheus at {address} gave no answer within {timeout} s"))?;
    match answer {
        Ok(response) => {
            parse_answer(&response.body).map_err(|e| format!("Prometheus at {address}: {e}"))
        }
        Err(ferry_http::HttpError::Status {
            status, snippet, ..
        }) => Err(match rejection(&snippet) {
            Some(why) => format!("Prometheus at {address} rejected the query: {why}"),
            None => format!("Prometheus at {address} answered HTTP {status}: {snippet}"),
        }),
        Err(e) => Err(format!("Prometheus at {address}: {e}")),
    }
}

/// Prometheus' own error from the body of a non-2xx answer
/// (`{"status":"error","errorType":"bad_data","error":"..."}`).
fn rejection(body: &str) -> Option<String> {
    let json: Json = serde_json::from_str(body).ok()?;
    error_of(&json)
}

fn error_of(json: &Json) -> Option<String> {
    if json["status"] != "error" {
        return None;
    }
    let error = json["error"].as_str().unwrap_or("no error message");
    Some(match json["errorType"].as_str() {
        Some(kind) if !kind.is_empty() => format!("{kind}: {error}"),
        _ => error.to_string(),
    })
}

/// Reads the body of a query's answer.
pub(super) fn parse_answer(body: &Json) -> Result<Answer, String> {
    if let Some(why) = error_of(body) {
        return Err(format!("the query was rejected: {why}"));
    }
    if body["status"] != "success" {
        return Err(format!(
            "the answer has status {} (expected \"success\")",
            body["status"]
        ));
    }
    let warnings = body["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let data = &body["data"];
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("scalar") => {
            let n = sample(result)?;
            Ok(Answer {
                result: Value::Num(n),
                shown: format_number(n),
                warnings,
            })
        }
        Some("vector") => {
            let series = result
                .as_array()
                .ok_or("data.result of a vector is not a list")?;
            let mut values = Vec::with_capacity(series.len());
            for s in series {
                values.push(sample(&s["value"])?);
            }
            Ok(Answer {
                shown: format!(
                    "[{}]",
                    values
                        .iter()
                        .map(|n| format_number(*n))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                result: Value::List(values.into_iter().map(Value::Num).collect()),
                warnings,
            })
        }
        Some("matrix") => Err("the query gives a range vector (matrix); ferry reads instant vectors and scalars: drop the [range] or wrap it in a function such as rate() or avg_over_time()".into()),
        Some(other) => Err(format!(
            "the query gives a {other}; ferry reads instant vectors and scalars"
        )),
        None => Err("the answer has no data.resultType".into()),
    }
}

/// A `[timestamp, "value"]` pair's value.
fn sample(pair: &Json) -> Result<f64, String> {
    let text = pair
        .get(1)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("a sample is not [time, \"value\"]: {pair}"))?;
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse()
            .map_err(|_| format!("a sample's value {text:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_query_is_url_encoded() {
        assert_eq!(
            query_url("http://p:9090/", "sum(rate(x{a=\"b c\"}[1m])) > 0 & y"),
            "http://p:9090/api/v1/query?query=sum%28rate%28x%7Ba%3D%22b+c%22%7D%5B1m%5D%29%29+%3E+0+%26+y"
        );
        assert_eq!(
            query_url("http://p/prom", "up"),
            "http://p/prom/api/v1/query?query=up"
        );
    }

    #[test]
    fn a_vector_is_a_list_and_a_scalar_a_number() {
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"a": "1"}, "value": [1.5, "0.25"]},
            {"metric": {"a": "2"}, "value": [1.5, "NaN"]},
            {"metric": {"a": "3"}, "value": [1.5, "+Inf"]}
        ]}});
        let a = parse_answer(&vector).unwrap();
        assert_eq!(a.shown, "[0.25,NaN,+Inf]");
        let Value::List(items) = &a.result else {
            panic!("{a:?}")
        };
        assert_eq!(items[0], Value::Num(0.25));
        assert!(matches!(items[1], Value::Num(n) if n.is_nan()));
        let empty = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        let a = parse_answer(&empty).unwrap();
        assert_eq!((a.result, a.shown.as_str()), (Value::List(vec![]), "[]"));
        let scalar = json!({"status": "success", "warnings": ["careful"],
            "data": {"resultType": "scalar", "result": [1.5, "3"]}});
        let a = parse_answer(&scalar).unwrap();
        assert_eq!(
            (a.result, a.shown.as_str(), a.warnings),
            (Value::Num(3.0), "3", vec!["careful".to_string()])
        );
    }

    #[test]
    fn other_answers_are_errors_that_say_why() {
        let cases = [
            (
                json!({"status": "error", "errorType": "bad_data", "error": "parse error"}),
                "rejected: bad_data: parse error",
            ),
            (
                json!({"status": "success", "data": {"resultType": "matrix", "result": []}}),
                "range vector",
            ),
            (
                json!({"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}),
                "gives a string",
            ),
            (json!({"hello": 1}), "status null"),
            (
                json!({"status": "success", "data": {"resultType": "scalar", "result": [1, "abc"]}}),
                "\"abc\" is not a number",
            ),
        ];
        for (body, want) in cases {
            let e = parse_answer(&body).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
        assert_eq!(
            rejection(
                r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\""}"#
            ),
            Some("bad_data: invalid parameter \"query\"".into())
        );
        assert_eq!(rejection("<html>"), None);
    }
}
