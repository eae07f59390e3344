//! Operating docqueue: the alert rules (docker/prometheus; scripts/test.sh runs
//! `promtool test rules` on them).

use std::collections::BTreeMap;
use std::path::Path;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// promtool passes a rule file whose alerts are never tested, and a test that only ever
/// expects silence: every alert must have a case where it fires and one where it does not.
#[test]
fn every_alert_rule_has_a_firing_and_a_quiet_case() {
    let rules = repo_file("docker/prometheus/alerts.yml");
    let tests = repo_file("docker/prometheus/alerts_test.yml");
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 7, "{alerts:?}");
    // alertname -> (firing cases, quiet cases); a quiet case reads `exp_alerts: []`.
    let mut cases: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.strip_prefix("alertname: ") {
            let entry = cases.entry(name).or_default();
            match lines.get(i + 1) {
                Some(&"exp_alerts: []") => entry.1 += 1,
                _ => entry.0 += 1,
            }
        }
    }
    for alert in &alerts {
        let (firing, quiet) = cases.get(alert).copied().unwrap_or_default();
        assert!(firing > 0 && quiet > 0, "{alert}: {firing} firing and {quiet} quiet cases");
    }
    let unknown: Vec<&&str> = cases.keys().filter(|name| !alerts.contains(name)).collect();
    assert!(unknown.is_empty(), "tests of alerts alerts.yml does not have: {unknown:?}");
}
