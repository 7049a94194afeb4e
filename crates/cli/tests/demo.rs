//! `refresh demo`: every step against its own sandbox, as text and as
//! `--json` lines.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn demo_walks_every_step_and_exits_zero() {
    let output = refresh(&["demo"], &[]).await;
    assert_eq!(
        code(&output),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    let text = stdout(&output);
    let ok_lines = text.lines().filter(|l| l.contains("] ok ")).count();
    assert_eq!(ok_lines, 8, "{text}");
    assert!(
        text.contains("404"),
        "the last step shows the expected 404: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_json_is_one_object_per_line() {
    let output = refresh(&["demo", "--json"], &[]).await;
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let objects: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let steps = objects
        .iter()
        .filter(|o| o["ok"] == true && o["step"].is_u64())
        .count();
    assert_eq!(steps, 8, "{objects:?}");
    assert_eq!(objects.last().expect("a summary")["spec_clean"], true);
    assert!(objects[0]["sandbox"]["vcf_url"].is_string());
}
