#![cfg(loom)]
//! loom models of the MPMC message ring: the production claim/commit/release protocol
//! and its Notifier wake-ups, on a 2-slot ring in heap memory.

use culvert_ring::mpmc::{Config, MessageReader, MessageRing, MessageWriter};
use culvert_ring::Endpoint as _;
use culvert_ring::{Deadline, Error, Region, WaitStrategy};
use loom::thread;

fn ring(slots: usize) -> Region {
    let cfg = Config::new(slots, 8).with_max_endpoints(8);
    let region = Region::heap(MessageRing::required_size(&cfg).unwrap()).unwrap();
    MessageRing::init(&region, &cfg).unwrap();
    region
}

/// 2 producers × 2 consumers, all four concurrent: each producer sends one message,
/// each consumer makes one `try_recv` attempt; the main thread then drains the rest.
/// Every message is received exactly once. (Consumers polling in a loop make the state
/// space too large for a couple of minutes; the blocking wake-up is modelled below.)
#[test]
fn two_by_two_each_message_once() {
    loom::model(|| {
        let r = ring(2);
        let mut producers = Vec::new();
        for id in 0..2u8 {
            let mut p = MessageWriter::attach(&r).unwrap();
            producers.push(thread::spawn(move || {
                p.try_write(&[id]).unwrap();
            }));
        }
        let mut consumers = Vec::new();
        for _ in 0..2 {
            let mut c = MessageReader::attach(&r).unwrap();
            consumers.push(thread::spawn(move || {
                let mut buf = [0u8; 8];
                match c.try_read(&mut buf) {
                    Ok(n) => {
                        assert_eq!(n, 1);
                        Some(buf[0])
                    }
                    Err(Error::WouldBlock) => None,
                    Err(e) => panic!("{e}"),
                }
            }));
        }
        for p in producers {
            p.join().unwrap();
        }
        let mut got: Vec<u8> = consumers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        let mut c = MessageReader::attach(&r).unwrap();
        let mut buf = [0u8; 8];
        while let Ok(n) = c.try_read(&mut buf) {
            assert_eq!(n, 1);
            got.push(buf[0]);
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 1]);
    });
}

/// 2 producers race one blocking consumer (woken through `not_empty`).
#[test]
fn two_producers_wake_a_blocked_consumer() {
    loom::model(|| {
        let r = ring(2);
        let mut producers = Vec::new();
        for id in 0..2u8 {
            let mut p = MessageWriter::attach(&r).unwrap();
            producers.push(thread::spawn(move || {
                p.try_write(&[id]).unwrap();
            }));
        }
        let mut c = MessageReader::attach(&r).unwrap();
        c.set_wait_strategy(WaitStrategy::Blocking);
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        for _ in 0..2 {
            assert_eq!(c.read(&mut buf, Deadline::never()), Ok(1));
            got.push(buf[0]);
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 1]);
        for p in producers {
            p.join().unwrap();
        }
    });
}

/// A producer blocked on a full ring is woken by the consumer's release, and FIFO holds.
#[test]
fn full_ring_wakes_the_producer() {
    loom::model(|| {
        let r = ring(2);
        let mut p = MessageWriter::attach(&r).unwrap();
        p.set_wait_strategy(WaitStrategy::Blocking);
        let mut c = MessageReader::attach(&r).unwrap();
        c.set_wait_strategy(WaitStrategy::Blocking);
        let producer = thread::spawn(move || {
            for i in 0..3u8 {
                p.write(&[i], Deadline::never()).unwrap();
            }
        });
        let mut buf = [0u8; 8];
        for i in 0..3u8 {
            assert_eq!(c.read(&mut buf, Deadline::never()), Ok(1));
            assert_eq!(buf[0], i);
        }
        producer.join().unwrap();
    });
}

/// Close wakes a blocked consumer, which first drains what was committed.
#[test]
fn close_wakes_and_drains() {
    loom::model(|| {
        let r = ring(2);
        let mut p = MessageWriter::attach(&r).unwrap();
        let mut c = MessageReader::attach(&r).unwrap();
        c.set_wait_strategy(WaitStrategy::Blocking);
        let producer = thread::spawn(move || {
            p.try_write(b"x").unwrap();
            p.close();
        });
        let mut buf = [0u8; 8];
        assert_eq!(c.read(&mut buf, Deadline::never()), Ok(1));
        assert_eq!(c.read(&mut buf, Deadline::never()), Err(Error::Closed));
        producer.join().unwrap();
    });
}
