//! Fuzz bodies for the SPSC rings: an operation script decoded from the input, run
//! against a heap ring and checked against a `VecDeque` model after every step.

use std::collections::VecDeque;

use crate::spsc::{
    ByteReader, ByteRing, ByteWriter, Config, MessageReader, MessageRing, MessageWriter,
};
use crate::Endpoint as _;
use crate::{Error, Region};

/// Reads bytes from the fuzz input; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Message ring script: write / read / small-buffer read / grant write / grant read /
/// close, checked against a queue of messages.
pub fn message_ops(data: &[u8]) {
    let mut input = Input(data);
    let capacity = 64usize << (input.byte() % 4);
    let max = 1 + (input.byte() as usize * 7) % (capacity - 8);
    let config = Config::messages(capacity, max);
    let region = Region::heap(MessageRing::required_size(&config).unwrap()).unwrap();
    MessageRing::init(&region, &config).unwrap();
    let mut writer = MessageWriter::attach(&region).unwrap();
    let mut reader = MessageReader::attach(&region).unwrap();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut buf = vec![0u8; max];
    let mut closed = false;
    let mut seq = 0u8;

    while !input.is_empty() {
        match input.byte() % 6 {
            0 | 1 => {
                let len = (input.byte() as usize * 3) % (max + 2);
                seq = seq.wrapping_add(1);
                let msg = vec![seq; len];
                match writer.try_write(&msg) {
                    Ok(()) => {
                        assert!(!closed && len <= max);
                        model.push_back(msg);
                    }
                    Err(Error::MessageTooLarge { .. }) => assert!(len > max),
                    Err(Error::Closed) => assert!(closed),
                    Err(Error::WouldBlock) => {
                        assert!(len <= max);
                        if model.is_empty() {
                            // Only a pad record can stand in the way: reading skips it.
                            assert_eq!(reader.try_read(&mut buf), Err(Error::WouldBlock));
                            writer.try_write(&msg).expect("empty ring must take it");
                            model.push_back(msg);
                        }
                    }
                    Err(e) => panic!("unexpected write error {e:?}"),
                }
            }
            2 => match reader.try_read(&mut buf) {
                Ok(n) => assert_eq!(Some(&buf[..n]), model.pop_front().as_deref()),
                Err(Error::WouldBlock) => assert!(model.is_empty() && !closed),
                Err(Error::Closed) => assert!(model.is_empty() && closed),
                Err(e) => panic!("unexpected read error {e:?}"),
            },
            3 => {
                let small = input.byte() as usize % (max + 1);
                match reader.try_read(&mut buf[..small]) {
                    Ok(n) => assert_eq!(Some(&buf[..n]), model.pop_front().as_deref()),
                    Err(Error::BufferTooSmall { needed, got }) => {
                        assert_eq!(got, small);
                        assert_eq!(Some(needed), model.front().map(Vec::len));
                    }
                    Err(Error::WouldBlock) => assert!(model.is_empty()),
                    Err(Error::Closed) => assert!(model.is_empty() && closed),
                    Err(e) => panic!("unexpected read error {e:?}"),
                }
            }
            4 => {
                let len = input.byte() as usize % (max + 1);
                let keep = input.byte() as usize % (len + 1);
                seq = seq.wrapping_add(1);
                if let Ok(mut grant) = writer.reserve(len) {
                    grant.as_mut_slice().fill(seq);
                    grant.commit(keep);
                    model.push_back(vec![seq; keep]);
                }
            }
            _ => {
                if input.byte() % 8 == 0 {
                    writer.close();
                    closed = true;
                } else if let Ok(grant) = reader.read_grant() {
                    assert_eq!(Some(grant.as_slice()), model.front().map(Vec::as_slice));
                    grant.release();
                    model.pop_front();
                }
            }
        }
    }
    // Drain: everything committed comes out, in order.
    while let Some(expected) = model.pop_front() {
        let n = reader.try_read(&mut buf).expect("committed message");
        assert_eq!(&buf[..n], &expected[..]);
    }
}

/// Byte ring script: write / read / grants / close against a byte queue; the ring
/// must hold exactly what the model holds (no loss, no reordering).
pub fn byte_ops(data: &[u8]) {
    let mut input = Input(data);
    let capacity = 64usize << (input.byte() % 3);
    let config = Config::bytes(capacity);
    let region = Region::heap(ByteRing::required_size(&config).unwrap()).unwrap();
    ByteRing::init(&region, &config).unwrap();
    let mut writer = ByteWriter::attach(&region).unwrap();
    let mut reader = ByteReader::attach(&region).unwrap();
    let mut model: VecDeque<u8> = VecDeque::new();
    let mut buf = vec![0u8; capacity * 2];
    let mut next = 0u8;

    while !input.is_empty() {
        let op = input.byte();
        let len = input.byte() as usize % (capacity * 2);
        match op % 4 {
            0 => {
                let src: Vec<u8> = (0..len).map(|i| next.wrapping_add(i as u8)).collect();
                match writer.try_write(&src) {
                    Ok(n) => {
                        assert_eq!(n, len.min(capacity - model.len()));
                        model.extend(&src[..n]);
                        next = next.wrapping_add(n as u8);
                    }
                    Err(Error::WouldBlock) => assert_eq!(model.len(), capacity),
                    Err(e) => panic!("unexpected write error {e:?}"),
                }
            }
            1 => match reader.try_read(&mut buf[..len]) {
                Ok(n) => {
                    assert_eq!(n, len.min(model.len()));
                    for b in &buf[..n] {
                        assert_eq!(Some(*b), model.pop_front());
                    }
                }
                Err(Error::WouldBlock) => assert!(model.is_empty()),
                Err(e) => panic!("unexpected read error {e:?}"),
            },
            2 => {
                if let Ok(mut grant) = writer.reserve(len) {
                    let n = grant.len();
                    for (i, b) in grant.as_mut_slice().iter_mut().enumerate() {
                        *b = next.wrapping_add(i as u8);
                    }
                    let keep = (op as usize) % (n + 1);
                    grant.commit(keep);
                    model.extend((0..keep).map(|i| next.wrapping_add(i as u8)));
                    next = next.wrapping_add(keep as u8);
                } else {
                    assert!(len == 0 || model.len() == capacity);
                }
            }
            _ => {
                if let Ok(grant) = reader.read_grant() {
                    let take = len % (grant.len() + 1);
                    for b in &grant.as_slice()[..take] {
                        assert_eq!(Some(*b), model.pop_front());
                    }
                    grant.release(take);
                } else {
                    assert!(model.is_empty());
                }
            }
        }
        assert_eq!(reader.bytes_available().unwrap(), model.len());
    }
}

/// Both scripts on the same input.
pub fn ops(data: &[u8]) {
    message_ops(data);
    byte_ops(data);
}
