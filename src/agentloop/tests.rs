use super::*;

#[test]
fn bounded_evicts_oldest_and_expires_by_age() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let mut b: Bounded<String, u32> = Bounded::new(2);
    assert_eq!(b.insert("a".into(), t0, 1), 0);
    assert_eq!(b.insert("b".into(), t0 + Duration::from_secs(1), 2), 0);
    assert_eq!(b.insert("c".into(), t0 + Duration::from_secs(2), 3), 1);
    assert!(b.get(&"a".into()).is_none());
    assert_eq!(
        b.expire(t0 + Duration::from_secs(2)),
        1,
        "b is older than the cutoff"
    );
    assert_eq!(b.get(&"c".into()), Some(&3));
    // Re-inserting moves a key to the back; the queue stays bounded.
    for i in 0..1000 {
        b.insert("c".into(), t0 + Duration::from_secs(3 + i), 4);
    }
    assert!(b.order.len() <= 2 * 16 + 1);
    assert_eq!(b.map.len(), 1);
}
