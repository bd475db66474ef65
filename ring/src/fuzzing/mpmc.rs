//! Fuzz body for the MPMC rings: an operation script decoded from the input drives a
//! [`MessageRing`] (two producers, two consumers) and a [`ByteRing`] in heap memory,
//! checked step by step against `VecDeque` models.
//!
//! Script: byte 0 picks the slot count (2..=16) and byte 1 `max_message` (0..=63);
//! then each operation is one byte (`op % 12`) plus, for some, an argument byte.

use std::collections::VecDeque;

use culvert_section::Region;

use crate::mpmc::{
    ByteReader, ByteRing, ByteWriter, Config, MessageReader, MessageRing, MessageWriter,
};
use crate::Endpoint as _;
use crate::{Deadline, Error};

/// Runs the script in `data`; panics on any divergence from the model.
pub fn ops(data: &[u8]) {
    let mut it = data.iter().copied();
    let slots = 1usize << (1 + it.next().unwrap_or(0) % 4);
    let max = (it.next().unwrap_or(16) % 64) as usize;
    let cfg = Config::new(slots, max).with_max_endpoints(8);
    let Some(region) = Region::heap(MessageRing::required_size(&cfg).unwrap()) else {
        return;
    };
    MessageRing::init(&region, &cfg).unwrap();
    let mut producers = [
        MessageWriter::attach(&region).unwrap(),
        MessageWriter::attach(&region).unwrap(),
    ];
    let mut consumers = [
        MessageReader::attach(&region).unwrap(),
        MessageReader::attach(&region).unwrap(),
    ];
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut closed = false;

    let bmax = max.max(1);
    let bcfg = Config::bytes(slots, bmax).with_max_endpoints(4);
    let bregion = Region::heap(ByteRing::required_size(&bcfg).unwrap()).unwrap();
    ByteRing::init(&bregion, &bcfg).unwrap();
    let mut writer = ByteWriter::attach(&bregion).unwrap();
    let mut reader = ByteReader::attach(&bregion).unwrap();
    let mut stream: VecDeque<u8> = VecDeque::new();
    let mut records: VecDeque<usize> = VecDeque::new();
    let mut leftover = 0usize;
    let mut bclosed = false;

    let mut counter = 0u8;
    let mut buf = [0u8; 128];
    while let Some(op) = it.next() {
        let arg = it.next().unwrap_or(0) as usize;
        match op % 12 {
            0..=2 => {
                let len = arg % (max + 2);
                let msg: Vec<u8> = (0..len).map(|i| counter.wrapping_add(i as u8)).collect();
                counter = counter.wrapping_add(1);
                let p = &mut producers[op as usize % 2];
                let got = if op % 12 == 2 {
                    p.write(&msg, Deadline::now())
                } else {
                    p.try_write(&msg)
                };
                let want = if len > max {
                    Err(Error::MessageTooLarge { len, max })
                } else if closed {
                    Err(Error::Closed)
                } else if model.len() == slots {
                    Err(if op % 12 == 2 {
                        Error::Timeout
                    } else {
                        Error::WouldBlock
                    })
                } else {
                    model.push_back(msg);
                    Ok(())
                };
                assert_eq!(got, want);
            }
            3..=5 => {
                let size = arg % (max + 2);
                let c = &mut consumers[op as usize % 2];
                let got = if op % 12 == 5 {
                    c.read(&mut buf[..size], Deadline::now())
                } else {
                    c.try_read(&mut buf[..size])
                };
                match model.front() {
                    None => assert_eq!(
                        got,
                        Err(if closed {
                            Error::Closed
                        } else if op % 12 == 5 {
                            Error::Timeout
                        } else {
                            Error::WouldBlock
                        })
                    ),
                    Some(m) if m.len() > size => assert_eq!(
                        got,
                        Err(Error::BufferTooSmall {
                            needed: m.len(),
                            got: size
                        })
                    ),
                    Some(m) => {
                        assert_eq!(got, Ok(m.len()));
                        assert_eq!(&buf[..m.len()], &m[..]);
                        model.pop_front();
                    }
                }
            }
            6 => {
                let got = consumers[arg % 2].try_read_with(|m| m.to_vec());
                match model.pop_front() {
                    Some(m) => assert_eq!(got, Ok(m)),
                    None if closed => assert_eq!(got, Err(Error::Closed)),
                    None => assert_eq!(got, Err(Error::WouldBlock)),
                }
            }
            7 => {
                if arg % 4 == 0 {
                    producers[arg % 2].close();
                    closed = true;
                }
                assert_eq!(consumers[0].is_closed(), closed);
            }
            8 | 9 => {
                let len = arg % (3 * bmax + 1);
                let data: Vec<u8> = (0..len)
                    .map(|i| counter.wrapping_mul(7).wrapping_add(i as u8))
                    .collect();
                counter = counter.wrapping_add(1);
                let got = writer.try_write(&data);
                let free = slots - records.len();
                let want = if len == 0 {
                    Ok(0)
                } else if bclosed {
                    Err(Error::Closed)
                } else if free == 0 {
                    Err(Error::WouldBlock)
                } else if len <= bmax {
                    records.push_back(len);
                    Ok(len)
                } else {
                    let mut n = 0;
                    for chunk in data.chunks(bmax).take(free) {
                        records.push_back(chunk.len());
                        n += chunk.len();
                    }
                    Ok(n)
                };
                if let Ok(n) = want {
                    stream.extend(&data[..n]);
                }
                assert_eq!(got, want);
            }
            10 => {
                let size = arg % (2 * bmax + 2);
                let got = reader.try_read(&mut buf[..size]);
                if size == 0 {
                    assert_eq!(got, Ok(0));
                } else if stream.is_empty() {
                    assert_eq!(
                        got,
                        Err(if bclosed {
                            Error::Closed
                        } else {
                            Error::WouldBlock
                        })
                    );
                } else {
                    let n = got.unwrap();
                    assert!(n > 0 && n <= size);
                    for &b in &buf[..n] {
                        assert_eq!(Some(b), stream.pop_front());
                    }
                    let mut rest = n;
                    let from_left = rest.min(leftover);
                    leftover -= from_left;
                    rest -= from_left;
                    while rest > 0 {
                        let r = records.pop_front().expect("read more than written");
                        if r <= rest {
                            rest -= r;
                        } else {
                            leftover = r - rest;
                            rest = 0;
                        }
                    }
                    assert_eq!(reader.buffered(), leftover);
                }
            }
            _ => {
                if arg % 4 == 0 {
                    reader.close();
                    bclosed = true;
                }
            }
        }
    }
    // Drain both and compare with the models.
    for m in model.drain(..) {
        let n = consumers[0].try_read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &m[..]);
    }
    assert!(matches!(
        consumers[1].try_read(&mut buf),
        Err(Error::WouldBlock | Error::Closed)
    ));
    let mut got = Vec::new();
    while got.len() < stream.len() {
        let n = reader.try_read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.iter().eq(stream.iter()));
}
