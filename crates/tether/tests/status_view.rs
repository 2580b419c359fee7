//! `tether status` renders a fixed status document as the golden tables.

use tether::report::StatusReport;

#[test]
fn status_tables_match_the_golden_text() {
    let report: StatusReport =
        serde_json::from_str(include_str!("fixtures/status.json")).expect("fixture parses");
    let text = tether::status_view::render(&report);
    let golden = include_str!("fixtures/status.txt");
    assert_eq!(text, golden, "rendered:\n{text}");
}

#[test]
fn a_node_without_roles_renders_only_its_name() {
    let report = StatusReport {
        node: "idle".into(),
        version: "0.1.0".into(),
        ..StatusReport::default()
    };
    assert_eq!(
        tether::status_view::render(&report),
        "node idle  (tether 0.1.0, roles: none)\n"
    );
}
