//! Cross-thread ring benchmarks, culvert against the in-process reference queues in
//! the same run:
//!
//! * `spsc_64B`: SPSC message ring vs `rtrb` and `crossbeam_queue::ArrayQueue`, 64-byte
//!   payloads;
//! * `mpmc_2x2_64B`: MPMC message ring, 2 producers × 2 consumers, vs `ArrayQueue`;
//! * `spsc_stream_{4KiB,64KiB}`: SPSC byte ring streaming chunks vs a `memcpy` loop
//!   into a ring-sized buffer.
//!
//! Every case measures the time for `iters` items to cross from producer thread(s) to
//! consumer thread(s), so the reported time per iteration is the cost of one item.
//! Run: `cargo bench --bench rings`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use culvert::ring::{mpmc, spsc, Region};

type Msg = [u8; 64];

fn spin_until<T>(mut f: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(v) = f() {
            return v;
        }
        std::hint::spin_loop();
    }
}

fn culvert_spsc(iters: u64) -> Duration {
    let config = spsc::Config::messages(64 * 1024, 64);
    let region = Region::heap(spsc::MessageRing::required_size(&config).unwrap()).unwrap();
    spsc::MessageRing::init(&region, &config).unwrap();
    let mut writer = spsc::MessageWriter::attach(&region).unwrap();
    let mut reader = spsc::MessageReader::attach(&region).unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let consumer = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        b.wait();
        for _ in 0..iters {
            spin_until(|| reader.try_read(&mut buf).ok());
            black_box(&buf);
        }
    });
    let msg: Msg = [7; 64];
    barrier.wait();
    let start = Instant::now();
    for _ in 0..iters {
        spin_until(|| writer.try_write(&msg).ok());
    }
    consumer.join().unwrap();
    start.elapsed()
}

fn rtrb_spsc(iters: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<Msg>::new(1024);
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let consumer = std::thread::spawn(move || {
        b.wait();
        for _ in 0..iters {
            black_box(spin_until(|| rx.pop().ok()));
        }
    });
    barrier.wait();
    let start = Instant::now();
    for _ in 0..iters {
        spin_until(|| tx.push([7; 64]).ok());
    }
    consumer.join().unwrap();
    start.elapsed()
}

fn array_queue(iters: u64, producers: u64, consumers: u64) -> Duration {
    let q = Arc::new(ArrayQueue::<Msg>::new(1024));
    let barrier = Arc::new(Barrier::new((producers + consumers + 1) as usize));
    let mut threads = Vec::new();
    for _ in 0..consumers {
        let (q, b) = (q.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || {
            b.wait();
            for _ in 0..iters / consumers {
                black_box(spin_until(|| q.pop()));
            }
        }));
    }
    for _ in 0..producers {
        let (q, b) = (q.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || {
            b.wait();
            for _ in 0..iters / producers {
                spin_until(|| q.push([7; 64]).ok());
            }
        }));
    }
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    start.elapsed()
}

fn culvert_mpmc(iters: u64, producers: u64, consumers: u64) -> Duration {
    let config = mpmc::Config::new(1024, 64);
    let region = Region::heap(mpmc::MessageRing::required_size(&config).unwrap()).unwrap();
    mpmc::MessageRing::init(&region, &config).unwrap();
    let barrier = Arc::new(Barrier::new((producers + consumers + 1) as usize));
    let mut threads = Vec::new();
    for _ in 0..consumers {
        let mut c = mpmc::MessageReader::attach(&region).unwrap();
        let b = barrier.clone();
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            b.wait();
            for _ in 0..iters / consumers {
                spin_until(|| c.try_read(&mut buf).ok());
                black_box(&buf);
            }
        }));
    }
    for _ in 0..producers {
        let mut p = mpmc::MessageWriter::attach(&region).unwrap();
        let b = barrier.clone();
        threads.push(std::thread::spawn(move || {
            let msg: Msg = [7; 64];
            b.wait();
            for _ in 0..iters / producers {
                spin_until(|| p.try_write(&msg).ok());
            }
        }));
    }
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    start.elapsed()
}

fn culvert_stream(chunks: u64, chunk: usize) -> Duration {
    let config = spsc::Config::bytes(1 << 20);
    let region = Region::heap(spsc::ByteRing::required_size(&config).unwrap()).unwrap();
    spsc::ByteRing::init(&region, &config).unwrap();
    let mut writer = spsc::ByteWriter::attach(&region).unwrap();
    let mut reader = spsc::ByteReader::attach(&region).unwrap();
    let total = chunks * chunk as u64;
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let consumer = std::thread::spawn(move || {
        let mut buf = vec![0u8; chunk];
        let mut got = 0u64;
        let mut sum = 0u64;
        b.wait();
        while got < total {
            if let Ok(n) = reader.try_read(&mut buf) {
                got += n as u64;
                sum = sum.wrapping_add(buf[n - 1] as u64);
            } else {
                std::hint::spin_loop();
            }
        }
        black_box(sum);
    });
    let src = vec![5u8; chunk];
    barrier.wait();
    let start = Instant::now();
    for _ in 0..chunks {
        let mut rest = &src[..];
        while !rest.is_empty() {
            match writer.try_write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(_) => std::hint::spin_loop(),
            }
        }
    }
    consumer.join().unwrap();
    start.elapsed()
}

/// The floor for streaming: one thread copying each chunk into a 1 MiB ring-sized
/// buffer and reading it back out (the two copies a ring makes), no synchronisation.
fn memcpy_stream(chunks: u64, chunk: usize) -> Duration {
    let mut ring = vec![0u8; 1 << 20];
    let src = vec![5u8; chunk];
    let mut dst = vec![0u8; chunk];
    let mut pos = 0usize;
    let start = Instant::now();
    for _ in 0..chunks {
        if pos + chunk > ring.len() {
            pos = 0;
        }
        ring[pos..pos + chunk].copy_from_slice(black_box(&src));
        dst.copy_from_slice(&ring[pos..pos + chunk]);
        black_box(&dst);
        pos += chunk;
    }
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("culvert", |b| b.iter_custom(culvert_spsc));
    g.bench_function("rtrb", |b| b.iter_custom(rtrb_spsc));
    g.bench_function("ArrayQueue", |b| b.iter_custom(|n| array_queue(n, 1, 1)));
    g.finish();

    let mut g = c.benchmark_group("mpmc_2x2_64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("culvert", |b| {
        b.iter_custom(|n| culvert_mpmc(n.next_multiple_of(2), 2, 2))
    });
    g.bench_function("ArrayQueue", |b| {
        b.iter_custom(|n| array_queue(n.next_multiple_of(2), 2, 2))
    });
    g.finish();

    for chunk in [4096usize, 65536] {
        let mut g = c.benchmark_group(format!("spsc_stream_{}KiB", chunk / 1024));
        g.throughput(Throughput::Bytes(chunk as u64));
        g.bench_with_input(BenchmarkId::new("culvert", chunk), &chunk, |b, &chunk| {
            b.iter_custom(|n| culvert_stream(n, chunk))
        });
        g.bench_with_input(BenchmarkId::new("memcpy", chunk), &chunk, |b, &chunk| {
            b.iter_custom(|n| memcpy_stream(n, chunk))
        });
        g.finish();
    }
}

criterion_group! {
    name = rings;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(rings);
