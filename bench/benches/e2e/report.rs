//! The summary table: the median of each metric over the runs, one column per server, and
//! each tower-sse column over the row's reference peer: actix-web-lab if it ran the row's
//! scenario, else axum, on HTTP/1.1 or, for HTTP/2 scenarios, on HTTP/2 (`/h2`).

use std::collections::HashMap;

pub(crate) fn print(path: &str) {
    let text = std::fs::read_to_string(path).expect("results");
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut peers: Vec<String> = Vec::new();
    let mut values: HashMap<(String, String, String), Vec<f64>> = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let ["RESULT", scenario, metric, which, value] = fields.as_slice() else {
            continue;
        };
        let row = (scenario.to_string(), metric.to_string());
        if !rows.contains(&row) {
            rows.push(row);
        }
        if !peers.iter().any(|p| p == which) {
            peers.push(which.to_string());
        }
        if let Ok(value) = value.parse() {
            values
                .entry((scenario.to_string(), metric.to_string(), which.to_string()))
                .or_default()
                .push(value);
        }
    }
    // Ours first, then the peers, in the order they ran.
    peers.sort_by_key(|p| !p.starts_with("tower-sse"));
    // The first of these that has a value in a row is that row's reference.
    const REFERENCES: [&str; 4] = ["actix-web-lab", "actix-web-lab/h2", "axum", "axum/h2"];
    let ours: Vec<&String> = peers
        .iter()
        .filter(|p| p.starts_with("tower-sse"))
        .collect();
    let median = |scenario: &str, metric: &str, which: &str| {
        let key = (scenario.to_owned(), metric.to_owned(), which.to_owned());
        let mut v = values.get(&key).cloned().unwrap_or_default();
        v.sort_by(f64::total_cmp);
        (v.get(v.len() / 2).copied(), v.len())
    };
    let mut head = String::from("| scenario | metric |");
    let mut rule = String::from("| --- | --- |");
    for peer in &peers {
        head += &format!(" {peer} |");
        rule += " ---: |";
    }
    for peer in &ours {
        head += &format!(" {peer} / reference |");
        rule += " ---: |";
    }
    println!("{head} reference | runs |\n{rule} --- | ---: |");
    for (scenario, metric) in rows {
        let mut line = format!("| {scenario} | {metric} |");
        let mut runs = 0;
        for peer in &peers {
            let (value, n) = median(&scenario, &metric, peer);
            runs = runs.max(n);
            line += &format!(" {} |", value.map_or("-".into(), fmt));
        }
        let reference = REFERENCES
            .into_iter()
            .find_map(|r| Some((r, median(&scenario, &metric, r).0?)));
        for peer in &ours {
            let ratio = match (median(&scenario, &metric, peer).0, reference) {
                (Some(ours), Some((_, theirs))) if theirs != 0.0 => {
                    format!("{:.2}", ours / theirs)
                }
                _ => "-".into(),
            };
            line += &format!(" {ratio} |");
        }
        let reference = reference.map_or("-", |(name, _)| name);
        println!("{line} {reference} | {runs} |");
    }
}

fn fmt(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
