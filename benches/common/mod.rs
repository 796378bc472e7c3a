//! Shared code of the benchmarks (`benches/fanout.rs`, `benches/inbound.rs`): child processes
//! (the release server, the reference servers) with kill-on-drop guards, a lean HTTP/1.1 client
//! and a lean WebSocket client for the load generator, a lock-free latency histogram, and small
//! helpers for PostgreSQL, RSS and the environment.
//!
//! The load generator is the benchmark process itself; every server it measures is a separate
//! process it starts (and kills when done), so each side has its own file-descriptor limit.

#![allow(dead_code)]

pub mod hist;
pub mod http;
pub mod proc;
pub mod record;
pub mod ws;

use std::time::Duration;

/// A `usize` from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            let v = v.trim().replace('_', "");
            v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number"))
        }
        _ => default,
    }
}

/// An `f64` from the environment, or `default`.
pub fn env_f64(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        _ => default,
    }
}

/// A comma-separated list of whole numbers from the environment (`1000,10000`; `_` allowed).
pub fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|s| s.trim().replace('_', ""))
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap_or_else(|_| panic!("{name}: {s:?} is not a whole number")))
            .collect(),
        _ => default.to_vec(),
    }
}

/// A comma-separated list of words from the environment.
pub fn env_words(name: &str, default: &[&str]) -> Vec<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.split(',').map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect()
        }
        _ => default.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn env_string(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

/// Milliseconds from microseconds: one decimal, two below 1 ms.
pub fn ms(us: u64) -> String {
    if us < 1000 { format!("{:.2}", us as f64 / 1000.0) } else { format!("{:.1}", us as f64 / 1000.0) }
}

/// A rate with thousands separators (`123,456`).
pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as KiB with one decimal.
pub fn kib(bytes: f64) -> String {
    format!("{:.2} KiB", bytes / 1024.0)
}

pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The date of the run (UTC), for the figures' heading.
pub fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A one-line description of the machine the figures come from.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cpus} CPU(s) {model}; load average at start {}", load.join(" "))
}

/// Print a table: a header row and rows, columns padded to their widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header.iter().map(|s| s.to_string()).collect());
    println!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
    for row in rows {
        line(row.clone());
    }
}
