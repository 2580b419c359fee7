//! `tether demo` runs to its summary with nothing but the binary and root, and leaves no
//! namespace behind.

use std::process::Command;

#[test]
fn the_demo_completes_prints_its_summary_and_cleans_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("demo")
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("summary"), "{stdout}");
    assert!(
        stdout.contains("24 of 24 complete"),
        "every stream verified: {stdout}"
    );
    assert!(stdout.contains("failed=0"), "{stdout}");
    assert!(
        stdout.contains("lab removed: no namespace left behind"),
        "{stdout}"
    );
    let left = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let names = String::from_utf8_lossy(&left.stdout);
    assert!(
        !names.lines().any(|l| l.starts_with("tdemo")),
        "demo namespaces left:\n{names}"
    );
}
