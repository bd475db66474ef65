//! Proves that MPMC send/receive allocate nothing in steady state: a counting global
//! allocator (per thread, so other tests' threads do not disturb the count).

mod common;

use std::time::Duration;

use culvert_ring::mpmc::{
    ByteReader, ByteRing, ByteWriter, Config, MessageReader, MessageRing, MessageWriter,
};
use culvert_ring::{Deadline, Region};
use culvert_testkit::alloc::{allocs, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn mpmc_steady_state_allocates_nothing() {
    let cfg = Config::new(16, 256);
    let region = Region::heap(MessageRing::required_size(&cfg).unwrap()).unwrap();
    MessageRing::init(&region, &cfg).unwrap();
    let mut p = MessageWriter::attach(&region).unwrap();
    let mut c = MessageReader::attach(&region).unwrap();
    let msg = [7u8; 200];
    let mut buf = [0u8; 256];
    // Warm up (first liveness clock reads, lazy statics).
    for _ in 0..64 {
        p.write(&msg, Deadline::after(Duration::from_secs(5)))
            .unwrap();
        c.read(&mut buf, Deadline::after(Duration::from_secs(5)))
            .unwrap();
    }
    let _ = c.try_read(&mut buf);
    let before = allocs();
    for i in 0..10_000usize {
        let m = &msg[..i % 200];
        if i % 2 == 0 {
            p.try_write(m).unwrap();
            assert_eq!(c.try_read(&mut buf).unwrap(), m.len());
        } else {
            p.write(m, Deadline::after(Duration::from_secs(5))).unwrap();
            assert_eq!(
                c.read(&mut buf, Deadline::after(Duration::from_secs(5)))
                    .unwrap(),
                m.len()
            );
        }
        c.try_read_with(|_| ()).unwrap_err();
    }
    assert_eq!(allocs() - before, 0, "message ring allocated per message");

    let bcfg = Config::bytes(16, 128);
    let bregion = Region::heap(ByteRing::required_size(&bcfg).unwrap()).unwrap();
    ByteRing::init(&bregion, &bcfg).unwrap();
    let mut w = ByteWriter::attach(&bregion).unwrap();
    let mut r = ByteReader::attach(&bregion).unwrap();
    let data = [3u8; 300];
    let mut small = [0u8; 50];
    w.write_all(&data, Deadline::never()).unwrap();
    r.read_exact(&mut [0u8; 300], Deadline::never()).unwrap();
    let before = allocs();
    for _ in 0..2_000 {
        w.write_all(&data, Deadline::after(Duration::from_secs(5)))
            .unwrap();
        let mut got = 0;
        while got < data.len() {
            got += r
                .read(&mut small, Deadline::after(Duration::from_secs(5)))
                .unwrap();
        }
    }
    assert_eq!(allocs() - before, 0, "byte ring allocated per record");
}
