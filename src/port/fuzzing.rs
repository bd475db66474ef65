//! The bodies of the port fuzz targets: `port_decode` ([`decode`]: port records and
//! view descriptors decoded from hostile bytes, which must give typed errors and never
//! a panic, while every valid descriptor is accepted), `port_heap_hostile`
//! ([`heap_hostile`]: the view heap against a peer scribbling on its shared memory)
//! and `port_handshake_hostile` ([`handshake_hostile`]: the connect handshake against
//! a peer scribbling on connection slots, the port header and connection sections).

use culvert_section::Region;

use super::heap::{Descriptor, Heap, PAGE};
use super::wire;

mod handshake;
mod heap;
pub use handshake::handshake_hostile;
pub use heap::heap_hostile;

/// Decodes `data` as a request record, a reply record, and (from its first bytes) a
/// view descriptor checked against a small heap with a few live blocks. Never panics.
pub fn decode(data: &[u8]) {
    let requests = [wire::KIND_REQUEST, wire::KIND_DATAGRAM, wire::KIND_CANCEL];
    let replies = [
        wire::KIND_REPLY,
        wire::KIND_NO_REPLY,
        wire::KIND_REPLY_FAILED,
    ];
    let mut bodies = Vec::new();
    for allowed in [&requests[..], &replies[..]] {
        if let Ok((h, body)) = wire::decode(data, allowed) {
            // A decoded record re-encodes to the same bytes.
            let mut again = Vec::new();
            wire::encode(&mut again, h.kind, h.conn, h.epoch, h.id, body);
            assert_eq!(again, data, "record does not round-trip");
            if let wire::Body::View(d) = body {
                bodies.push(d);
            }
        }
    }
    let Some(region) = Heap::required_size(16 * PAGE).and_then(Region::heap) else {
        return;
    };
    if Heap::init(&region, 16 * PAGE).is_err() {
        return;
    }
    let Ok(heap) = Heap::attach(&region) else {
        return;
    };
    let me = 0x0000_0001_0000_0042;
    let blocks: Vec<_> = [100u64, 5000, 3 * 4096]
        .iter()
        .filter_map(|&len| heap.table().try_alloc(len, me))
        .collect();
    let word = |i: usize| -> u64 {
        let mut b = [0u8; 8];
        for (k, x) in b.iter_mut().enumerate() {
            *x = data.get(i * 8 + k).copied().unwrap_or(0);
        }
        u64::from_le_bytes(b)
    };
    bodies.push(Descriptor {
        offset: word(0),
        len: word(1),
        gen: word(2),
    });
    // Small offsets hit real blocks more often.
    bodies.push(Descriptor {
        offset: (word(0) % 20) * PAGE as u64,
        len: word(1) % (20 * PAGE as u64),
        gen: word(2) % 4,
    });
    // Every held block's own descriptor, and one of the input's length, is valid.
    for b in &blocks {
        bodies.push(b.descriptor());
        bodies.push(Descriptor {
            len: word(1) % (b.pages * PAGE + 1) as u64,
            ..b.descriptor()
        });
    }
    for d in bodies {
        // Exactly the descriptors naming a held block (offset, generation) with a
        // length that fits it (and the limit) are accepted.
        let valid = blocks.iter().any(|x| {
            d.offset == (x.head * PAGE) as u64
                && d.gen == x.gen
                && d.len <= (x.pages * PAGE) as u64
                && d.len <= 1 << 20
        });
        match heap.table().validate(&d, me, 1 << 20) {
            Ok(b) => {
                assert!(valid, "{d:?} accepted");
                // A valid block lies inside the heap and holds its length.
                assert!(b.head + b.pages <= heap.total_pages());
                assert!(b.len <= (b.pages * PAGE) as u64);
                assert_eq!(b.len, d.len);
            }
            Err(e) => assert!(!valid, "valid {d:?} refused: {e}"),
        }
    }
    for b in &blocks {
        heap.table().free(b, me);
    }
    assert_eq!(heap.stats().free_pages, 16);
}
