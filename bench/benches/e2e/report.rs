//! The summary table: the median of each metric over the runs, one column per server, and
//! each tower-sse column over the reference peer (actix-web-lab if it ran, else axum).

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
    let reference = ["actix-web-lab", "axum"]
        .into_iter()
        .find(|r| peers.iter().any(|p| p == r));
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
    if let Some(reference) = reference {
        for peer in &ours {
            head += &format!(" {peer} / {reference} |");
            rule += " ---: |";
        }
    }
    println!("{head} runs |\n{rule} ---: |");
    for (scenario, metric) in rows {
        let mut line = format!("| {scenario} | {metric} |");
        let mut runs = 0;
        for peer in &peers {
            let (value, n) = median(&scenario, &metric, peer);
            runs = runs.max(n);
            line += &format!(" {} |", value.map_or("-".into(), fmt));
        }
        if let Some(reference) = reference {
            let theirs = median(&scenario, &metric, reference).0;
            for peer in &ours {
                let ratio = match (median(&scenario, &metric, peer).0, theirs) {
                    (Some(ours), Some(theirs)) if theirs != 0.0 => format!("{:.2}", ours / theirs),
                    _ => "-".into(),
                };
                line += &format!(" {ratio} |");
            }
        }
        println!("{line} {runs} |");
    }
}

fn fmt(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
