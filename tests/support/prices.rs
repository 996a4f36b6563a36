//! An oracle for the cost of a call, read straight from the embedded price table
//! (`src/pricing/prices.json`) rather than through llmtap's pricing code: uncached input at
//! the input rate, cache reads, 5m and 1h writes at theirs, output at the output rate. For
//! calls without a long-context or service-tier price (the tests pick such calls).

use serde_json::Value;

fn table() -> &'static Value {
    static TABLE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(include_str!("../../src/pricing/prices.json")).expect("prices.json")
    })
}

/// What `usage` (a record's normalized usage, as JSON) costs at `namespace`/`model`'s prices.
pub fn cost(namespace: &str, model: &str, usage: &Value) -> f64 {
    let price = &table()["namespaces"][namespace]["models"][model];
    assert!(price.is_object(), "no price for {namespace}/{model}");
    let n = |k: &str| usage[k].as_u64().unwrap_or(0) as f64;
    let p = |k: &str| price[k].as_f64().unwrap_or(0.0);
    let uncached = n("input") - n("cache_read") - n("cache_write_5m") - n("cache_write_1h");
    uncached * p("input")
        + n("cache_read") * p("cache_read")
        + n("cache_write_5m") * p("cache_write_5m")
        + n("cache_write_1h") * p("cache_write_1h")
        + n("output") * p("output")
}

/// Equal within float noise.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 + 1e-9 * b.abs()
}
