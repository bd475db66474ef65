//! MPMC rings against a scribbling peer, panicking callbacks and contention: a
//! corrupted position is `Corrupted`, not a spin; a callback that unwinds gives its
//! slot back; `try_*` wait briefly for live neighbours, then give up.

use super::*;

/// Runs `f` on a thread and returns its result, failing (not hanging) after 10 s.
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the call did not return within 10 s")
}

#[test]
fn positions_moved_back_whole_laps_are_corrupted_not_spun_through() {
    let cfg = Config::new(4, 8);
    let r = ring(4, 8);
    let raw = Raw { region: &r, cfg };
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    p.try_write(b"a").unwrap();
    p.try_write(b"b").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(c.try_read(&mut buf), Ok(1));
    // A scribbler moves both positions back by 2^40 (a whole number of laps).
    let back = 1u64 << 40;
    let enq = raw.ctl().enqueue_pos.0.load(Ordering::Relaxed);
    let deq = raw.ctl().dequeue_pos.0.load(Ordering::Relaxed);
    raw.ctl()
        .enqueue_pos
        .0
        .store(enq.wrapping_sub(back), Ordering::Relaxed);
    raw.ctl()
        .dequeue_pos
        .0
        .store(deq.wrapping_sub(back), Ordering::Relaxed);
    let (send, recv) = within_10s(move || {
        let mut buf = [0u8; 8];
        (p.try_write(b"c"), c.try_read(&mut buf))
    });
    assert!(matches!(send, Err(Error::Corrupted { .. })), "{send:?}");
    assert!(matches!(recv, Err(Error::Corrupted { .. })), "{recv:?}");
    // Fresh endpoints blocking with a deadline report it too, and do not hang.
    let mut p2 = MessageWriter::attach(&r).unwrap();
    let mut c2 = MessageReader::attach(&r).unwrap();
    let (send, recv) = within_10s(move || {
        let mut buf = [0u8; 8];
        (p2.write(b"c", secs(5)), c2.read(&mut buf, secs(5)))
    });
    assert!(matches!(send, Err(Error::Corrupted { .. })), "{send:?}");
    assert!(matches!(recv, Err(Error::Corrupted { .. })), "{recv:?}");
}

#[test]
fn a_tag_one_lap_ahead_left_by_a_dead_holder_is_helped_not_corrupted() {
    let cfg = Config::new(4, 8);
    let r = ring(4, 8);
    let raw = Raw { region: &r, cfg };
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    // Participant 5 claimed position 0 and died before helping `enqueue_pos` on.
    raw.part(5).store(DEAD, Ordering::Relaxed);
    raw.slot(0)
        .state
        .store(pack(0, WRITING, 5), Ordering::Relaxed);
    assert_eq!(c.reclaim_dead(), Ok(1));
    // Slot 0 is now EMPTY(4) while both positions are still 0: one lap ahead.
    assert_eq!(raw.ctl().enqueue_pos.0.load(Ordering::Relaxed), 0);
    let mut buf = [0u8; 8];
    assert_eq!(c.try_read(&mut buf), Err(Error::WouldBlock));
    p.try_write(b"x").unwrap();
    assert_eq!(c.try_read(&mut buf), Ok(1));
    assert_eq!(buf[0], b'x');
    assert_eq!(c.stats().abandoned_by_dead_producers, 1);
}

/// Runs `f`, which must panic, with the panic message kept off the test output.
fn expect_panic(f: impl FnOnce()) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    assert!(r.is_err(), "the callback did not panic");
}

#[test]
fn a_panicking_receive_callback_frees_its_slot_and_counts_the_message() {
    let r = ring(2, 8);
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    p.try_write(b"doomed").unwrap();
    expect_panic(|| {
        let _ = c.try_read_with(|_| -> () { panic!("callback fails") });
    });
    assert_eq!(c.stats().lost_to_dead_consumers, 1);
    // The consumer is alive and attached: the ring must still take `slots` messages.
    p.try_write(b"0").unwrap();
    p.try_write(b"1").unwrap();
    assert_eq!(p.try_write(b"2"), Err(Error::WouldBlock));
    assert_eq!(c.try_read_with(|m| m.to_vec()), Ok(b"0".to_vec()));
    assert_eq!(c.try_read_with(|m| m.to_vec()), Ok(b"1".to_vec()));
    assert_eq!(c.try_read_with(|m| m.len()), Err(Error::WouldBlock));
    // The blocking form likewise.
    p.try_write(b"doomed").unwrap();
    expect_panic(|| {
        let _ = c.read_with(|_| -> () { panic!("callback fails") }, secs(5));
    });
    assert_eq!(c.stats().lost_to_dead_consumers, 2);
    p.try_write(b"2").unwrap();
    p.try_write(b"3").unwrap();
    assert_eq!(c.read_with(|m| m.to_vec(), secs(5)), Ok(b"2".to_vec()));
    assert_eq!(c.read_with(|m| m.to_vec(), secs(5)), Ok(b"3".to_vec()));
    assert_eq!(c.stats().abandoned_by_dead_producers, 0);
}

#[test]
fn a_panicking_fill_gives_its_slot_back_uncommitted() {
    use super::control::KIND_MPMC_MESSAGE;
    let r = ring(2, 8);
    let mut core = super::core::MpmcCore::attach(&r, KIND_MPMC_MESSAGE).unwrap();
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    expect_panic(|| {
        let _ = core.try_write_with(1, super::core::Poll::Try, |_| panic!("fill fails"));
    });
    assert_eq!(c.stats().abandoned_by_dead_producers, 1);
    let mut buf = [0u8; 8];
    assert_eq!(c.try_read(&mut buf), Err(Error::WouldBlock));
    p.try_write(b"0").unwrap();
    p.try_write(b"1").unwrap();
    assert_eq!(c.try_read(&mut buf), Ok(1));
    assert_eq!(buf[0], b'0');
    assert_eq!(c.try_read(&mut buf), Ok(1));
    assert_eq!(buf[0], b'1');
    assert_eq!(c.stats().lost_to_dead_consumers, 0);
}

/// crossbeam's `linearizable` test: with as many slots as threads and each thread
/// alternating one `try_write` and one `try_read`, the ring is never full for a sender
/// nor empty for a receiver. A `WouldBlock` is allowed only when the call waited out
/// its whole patience (some thread stalled mid-operation past the documented bound,
/// which a loaded machine can cause); one returned sooner is a spurious failure.
#[test]
fn try_send_and_try_recv_are_linearizable() {
    const THREADS: usize = 2;
    const ITERS: u64 = 100_000;
    let r = ring(THREADS, 8);
    let stalls = Arc::new(AtomicU64::new(0));
    let hs: Vec<_> = (0..THREADS)
        .map(|id| {
            let mut p = MessageWriter::attach(&r).unwrap();
            let mut c = MessageReader::attach(&r).unwrap();
            let stalls = stalls.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8];
                let patient = |what: &str, i: u64, start: Instant| {
                    let took = start.elapsed();
                    assert!(
                        took >= super::core::PATIENCE,
                        "thread {id}, iteration {i}: spurious WouldBlock from {what} after {took:?}"
                    );
                    stalls.fetch_add(1, Ordering::Relaxed);
                };
                for i in 0..ITERS {
                    let msg = (id as u64) << 32 | i;
                    loop {
                        let start = Instant::now();
                        match p.try_write(&msg.to_le_bytes()) {
                            Ok(()) => break,
                            Err(Error::WouldBlock) => patient("try_write", i, start),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    loop {
                        let start = Instant::now();
                        match c.try_read(&mut buf) {
                            Ok(n) => {
                                assert_eq!(n, 8);
                                break;
                            }
                            Err(Error::WouldBlock) => patient("try_read", i, start),
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let stalls = stalls.load(Ordering::Relaxed);
    eprintln!("{stalls} calls gave up after a stall of more than the patience bound");
    let calls = 2 * THREADS as u64 * ITERS;
    assert!(stalls <= calls / 100, "{stalls} stalls in {calls} calls");
}

/// A consumer inside its in-place callback for well under the patience bound: a
/// `try_write` that finds only that slot busy waits for it instead of failing.
#[test]
fn try_send_waits_for_a_slot_being_read_briefly() {
    const HOLD: Duration = Duration::from_micros(200);
    let r = ring(2, 8);
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut judged = 0;
    for round in 0..20 {
        let mut c = MessageReader::attach(&r).unwrap();
        p.try_write(b"0").unwrap();
        p.try_write(b"1").unwrap();
        let inside = Arc::new(AtomicU64::new(0));
        let flag = inside.clone();
        let reader = std::thread::spawn(move || {
            let held = c
                .try_read_with(|m| {
                    assert_eq!(m, b"0");
                    let start = Instant::now();
                    flag.store(1, Ordering::Release);
                    // Busy, not asleep: a sleeping thread may wake far later.
                    while start.elapsed() < HOLD {
                        std::hint::spin_loop();
                    }
                    start.elapsed()
                })
                .unwrap();
            (c, held)
        });
        while inside.load(Ordering::Acquire) == 0 {
            std::hint::spin_loop();
        }
        // One message in a 2-slot ring: there is room, in the slot being read.
        let sent = p.try_write(b"2");
        let (mut c, held) = reader.join().unwrap();
        if held < super::core::PATIENCE / 2 {
            judged += 1;
            assert_eq!(sent, Ok(()), "round {round}: slot held {held:?}");
        }
        let mut buf = [0u8; 8];
        while c.try_read(&mut buf).is_ok() {}
    }
    assert!(judged >= 10, "only {judged} rounds ran without a stall");
}

/// A slot held for much longer than the patience bound: `try_write` gives up with
/// `WouldBlock` instead of waiting for it.
#[test]
fn try_send_gives_up_on_a_slot_held_past_the_bound() {
    let r = ring(2, 8);
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    p.try_write(b"0").unwrap();
    p.try_write(b"1").unwrap();
    let inside = Arc::new(AtomicU64::new(0));
    let release = Arc::new(AtomicU64::new(0));
    let (flag, go) = (inside.clone(), release.clone());
    let reader = std::thread::spawn(move || {
        c.try_read_with(|_| {
            flag.store(1, Ordering::Release);
            let start = Instant::now();
            while go.load(Ordering::Acquire) == 0 && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    });
    while inside.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    let start = Instant::now();
    assert_eq!(p.try_write(b"2"), Err(Error::WouldBlock));
    let took = start.elapsed();
    release.store(1, Ordering::Release);
    reader.join().unwrap();
    assert!(took >= super::core::PATIENCE, "gave up after {took:?}");
    assert!(took < Duration::from_secs(5), "waited {took:?}");
    // Blocking calls are unchanged: they sleep until the slot is released.
    p.write(b"2", secs(5)).unwrap();
}
