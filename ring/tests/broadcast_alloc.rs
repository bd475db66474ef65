//! Proves that broadcast send/receive allocate nothing in steady state — including
//! overruns and blocking receives: a counting global allocator (per thread, so other
//! tests' threads do not disturb the count).

mod common;

use std::time::Duration;

use culvert_ring::broadcast::{Config, Reader, Ring, Writer};
use culvert_ring::{Deadline, Error, Region, WaitStrategy};
use culvert_testkit::alloc::{allocs, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn broadcast_steady_state_allocates_nothing() {
    let cfg = Config::new(16, 256);
    let region = Region::heap(Ring::required_size(&cfg).unwrap()).unwrap();
    Ring::init(&region, &cfg).unwrap();
    let mut w = Writer::attach(&region).unwrap();
    let mut fast = Reader::attach(&region).unwrap();
    let mut slow = Reader::attach(&region).unwrap();
    let mut blocking = Reader::attach(&region).unwrap();
    blocking.set_wait_strategy(WaitStrategy::Blocking);
    let msg = [7u8; 256];
    let mut buf = [0u8; 256];
    // Warm up (first clock reads, lazy statics).
    for _ in 0..64 {
        w.write(&msg).unwrap();
        fast.read(&mut buf, Deadline::after(Duration::from_secs(5)))
            .unwrap();
        blocking
            .read(&mut buf, Deadline::after(Duration::from_secs(5)))
            .unwrap();
    }
    let _ = slow.try_read(&mut buf);
    let before = allocs();
    let mut overruns = 0;
    for i in 0..10_000usize {
        let m = &msg[..i % 257];
        w.write(m).unwrap();
        assert_eq!(fast.try_read(&mut buf), Ok(m.len()));
        assert_eq!(
            blocking.read(&mut buf, Deadline::after(Duration::from_secs(5))),
            Ok(m.len())
        );
        assert_eq!(fast.try_read(&mut buf), Err(Error::WouldBlock));
        if i % 40 == 0 {
            // The slow reader is overrun, then catches up.
            loop {
                match slow.try_read(&mut buf) {
                    Ok(_) => {}
                    Err(Error::Overrun { .. }) => overruns += 1,
                    Err(Error::WouldBlock) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    // A receive that times out allocates nothing either.
    assert_eq!(
        fast.read(&mut buf, Deadline::after(Duration::from_millis(5))),
        Err(Error::Timeout)
    );
    assert_eq!(allocs() - before, 0, "broadcast ring allocated per message");
    assert!(overruns > 0);
}
