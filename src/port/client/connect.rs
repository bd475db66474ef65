//! `PortClient::connect`: the client side of the connect handshake — create its
//! connection section (rings and heap), claim a connection slot of the port, name the
//! section in it, and wait for the server to accept or reject.

use super::*;
use crate::port::slot::Withdrawal;
use crate::port::PortOptions;

static NONCE: culvert_sync::atomic::StaticCounter = culvert_sync::atomic::StaticCounter::new();

fn nonce() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ NONCE.next().rotate_left(40)
}

impl PortClient {
    /// Connects to the port `name` in the default namespace, sending `payload` (at most
    /// [`CONNECT_PAYLOAD_MAX`] bytes), and waits until `deadline` for the server's
    /// answer. Returns the client and the server's accept payload.
    ///
    /// `NotFound` if no live server has that port; `Busy` if every connection slot is
    /// taken; `Rejected { reason }` if the server rejected; `Timeout`; `PeerDied` if
    /// the server died meanwhile.
    pub fn connect(
        name: &str,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<(PortClient, Vec<u8>), ConnectError> {
        Self::connect_with(name, payload, deadline, &PortOptions::default())
    }

    /// [`connect_with`](Self::connect_with) as a future. The handshake runs on a thread
    /// of its own (connecting is rare; calls are asynchronous on the reactor: await
    /// the [`PendingCall`](super::PendingCall) of [`call_async`](Self::call_async)).
    ///
    /// # Errors
    /// As [`connect_with`](Self::connect_with).
    pub async fn connect_async(
        name: &str,
        payload: &[u8],
        deadline: impl Into<Deadline>,
        opts: &PortOptions,
    ) -> Result<(PortClient, Vec<u8>)> {
        let (name, payload, deadline, opts) = (
            name.to_string(),
            payload.to_vec(),
            deadline.into(),
            opts.clone(),
        );
        crate::asyncio::on_thread(move || Self::connect_with(&name, &payload, deadline, &opts))
            .await
    }

    /// [`connect`](Self::connect) in the namespace of `opts` ([`PortOptions::root`];
    /// its other fields come from the server).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_with(
        name: &str,
        payload: &[u8],
        deadline: impl Into<Deadline>,
        opts: &PortOptions,
    ) -> Result<(PortClient, Vec<u8>), ConnectError> {
        let deadline = deadline.into();
        if let Some(remote) = crate::remote::parse(name)? {
            // `//host/port`: the bridge connects there (the far server sees `payload`)
            // and makes a local one-connection proxy port that answers with the far
            // server's accept payload.
            let request = crate::remote::Request {
                kind: crate::remote::ObjectKind::Port,
                host: remote.host.to_string(),
                name: remote.name.to_string(),
                timeout: deadline.remaining(),
                payload: payload.to_vec(),
            };
            let proxy = crate::remote::redirect(&request, name, opts.root.as_deref(), deadline)
                .map_err(|e| match e {
                    Error::Busy {
                        reason: crate::BusyReason::NoFreeInstance { max_instances },
                    } => Error::Busy {
                        reason: crate::BusyReason::NoFreeConnection {
                            max_connections: max_instances,
                        },
                    },
                    e => e,
                })?;
            let local = std::time::Duration::from_secs(5);
            return Self::connect_with(&proxy, payload, local, opts);
        }
        let sopts = &opts.section_options();
        if payload.len() > CONNECT_PAYLOAD_MAX {
            return Err(Error::MessageTooLarge {
                len: payload.len(),
                max: CONNECT_PAYLOAD_MAX,
            });
        }
        let not_found = || Error::NotFound {
            name: name.to_string(),
        };
        let mut so = sopts.clone();
        so.expect_kind = Some(SectionKind::Port);
        let server_section = match Section::open(name, &so) {
            Ok(s) => s,
            Err(culvert_section::Error::Stale { .. } | culvert_section::Error::Poisoned { .. }) => {
                return Err(not_found())
            }
            Err(e) => return Err(e.into()),
        };
        let port = server_section.object("port")?;
        let hdr = at::<PortHeader>(&port, 0)?;
        let c = &hdr.config;
        if c.magic.load(Ordering::Acquire) != PORT_MAGIC
            || c.version.load(Ordering::Relaxed) != PORT_VERSION
        {
            return Err(corrupt("port header"));
        }
        let cfg = PortConfig {
            max_message: c.max_message.load(Ordering::Relaxed) as usize,
            inline_max: c.inline_max.load(Ordering::Relaxed) as usize,
            view_heap_size: c.view_heap_size.load(Ordering::Relaxed) as usize,
            max_connections: c.max_connections.load(Ordering::Relaxed) as usize,
            request_slots: c.request_slots.load(Ordering::Relaxed) as usize,
        };
        cfg.validate().map_err(|_| corrupt("port configuration"))?;
        let server = c.server.load(Ordering::Acquire);
        if c.state.load(Ordering::Acquire) != PORT_OPEN || !alive(server) {
            return Err(not_found());
        }
        let slots = server_section.object("slots")?;
        if slots.len() < cfg.max_connections * std::mem::size_of::<ConnSlot>() {
            return Err(corrupt("port slot table"));
        }
        let server_heap = Heap::attach(&server_section.object("heap")?)?;
        // The header's heap size sizes our own section (mapped populated): it must be
        // the size of the server's own heap, or one scribbled word would have us map
        // up to 4 TiB.
        if server_heap.total_pages() * crate::port::heap::PAGE != cfg.view_heap_size {
            return Err(corrupt("port view heap size"));
        }

        // Our connection section.
        let me = me();
        let conn_name = format!("{}{}-{:x}", conn_prefix(name), std::process::id(), nonce());
        debug_assert!(conn_name.len() <= SLOT_NAME_MAX);
        let mut cso = sopts.clone();
        cso.kind = SectionKind::PortConnection;
        cso.expect_kind = None;
        let reply_cfg = cfg.reply_ring();
        let ring_len = spsc::MessageRing::required_size(&reply_cfg)?;
        let request_cfg = cfg.request_ring();
        let request_len = spsc::MessageRing::required_size(&request_cfg)?;
        let heap_len = Heap::required_size(cfg.view_heap_size)
            .ok_or_else(|| corrupt("port view heap size"))?;
        let conn_len = std::mem::size_of::<ConnHeader>() + 2 * CONNECT_PAYLOAD_MAX;
        let total = conn_len + request_len + ring_len + heap_len + 5 * 4096;
        let mut cs = Section::create(&conn_name, total as u64, &cso)?;
        let built = (|| -> Result<_> {
            let conn = cs.add_object("conn", OBJ_CONN, conn_len as u64, 128)?;
            put(
                &conn,
                0,
                ConnHeader {
                    magic: AtomicU64::new(CONN_MAGIC),
                    payload_max: AtomicU64::new(CONNECT_PAYLOAD_MAX as u64),
                    connect_len: AtomicU64::new(payload.len() as u64),
                    answer_len: AtomicU64::new(0),
                },
            )?;
            copy_in(&conn, std::mem::size_of::<ConnHeader>(), payload)?;
            let requests = cs.add_object("requests", OBJ_REQUESTS, request_len as u64, 128)?;
            spsc::MessageRing::init(&requests, &request_cfg)?;
            let replies = cs.add_object("replies", OBJ_REPLIES, ring_len as u64, 128)?;
            spsc::MessageRing::init(&replies, &reply_cfg)?;
            let heap_region = cs.add_object("heap", OBJ_HEAP, heap_len as u64, 4096)?;
            Heap::init(&heap_region, cfg.view_heap_size)?;
            cs.mark_ready()?;
            let producer = spsc::MessageWriter::attach(&requests)?;
            let reader = spsc::MessageReader::attach(&replies)?;
            let my_heap = Heap::attach(&heap_region)?;
            Ok((conn, producer, reader, my_heap))
        })();
        let (conn, producer, reader, my_heap) = match built {
            Ok(b) => b,
            Err(e) => {
                let _ = Section::unlink(&conn_name, &cso);
                return Err(e);
            }
        };
        let answer = Self::handshake(hdr, &slots, &cfg, &conn_name, server, me, deadline);
        // Both sides have the section mapped (or the attempt is over): drop the name.
        let _ = Section::unlink(&conn_name, &cso);
        let (index, epoch) = answer?;
        let read_answer = || -> Result<Vec<u8>> {
            let h = at::<ConnHeader>(&conn, 0)?;
            let len = h.answer_len.load(Ordering::Acquire) as usize;
            if len > CONNECT_PAYLOAD_MAX {
                return Err(corrupt("answer payload length"));
            }
            copy_out(
                &conn,
                std::mem::size_of::<ConnHeader>() + CONNECT_PAYLOAD_MAX,
                len,
            )
        };
        let slot = slot_at(&slots, index)?;
        if slot.state.load(Ordering::Acquire) == SLOT_REJECTED {
            let reason = read_answer();
            if slot.begin_free(SLOT_REJECTED, me, me) {
                slot.finish_free();
            }
            return Err(Error::Rejected { reason: reason? });
        }
        let close = |e: Error| {
            leave_slot(slot, hdr);
            e
        };
        let accept = read_answer().map_err(close)?;
        let buf = vec![0u8; cfg.record_max()];
        let inner = ClientInner {
            port_name: name.to_string(),
            _server_section: server_section,
            port,
            slots,
            index: index as u32,
            epoch,
            server,
            me,
            cfg,
            producer: Mutex::new(super::Sender {
                ring: producer,
                scratch: Vec::with_capacity(wire::HEADER_LEN + cfg.inline_max),
            }),
            reply_notifier: {
                let mut addr = 0;
                culvert_sync::Waitable::notifiers(&reader, &mut |n| {
                    addr = n as *const culvert_sync::Notifier as usize;
                });
                addr
            },
            reader: Mutex::new((reader, buf, Instant::now())),
            table: Mutex::new(Table::default()),
            cv: Condvar::new(),
            filed: culvert_sync::Notifier::new(),
            my_heap,
            server_heap,
            next_id: AtomicU64::new(1),
            _conn_section: cs,
        };
        Ok((
            PortClient {
                inner: Arc::new(inner),
            },
            accept,
        ))
    }

    /// Claims a slot, posts the request and waits for the answer. Returns the slot
    /// index and epoch once the slot is `ACCEPTED` or `REJECTED`.
    fn handshake(
        hdr: &PortHeader,
        slots: &Region,
        cfg: &PortConfig,
        conn_name: &str,
        server: u64,
        me: u64,
        deadline: Deadline,
    ) -> Result<(usize, u32)> {
        let index = loop {
            let mut waiting_on_dead = false;
            let mut found = None;
            for i in 0..cfg.max_connections {
                let slot = slot_at(slots, i)?;
                let client = slot.client.load(Ordering::Acquire);
                if client == 0 {
                    if slot.try_claim(me) {
                        found = Some(i);
                        break;
                    }
                } else if matches!(
                    slot.state.load(Ordering::Acquire),
                    SLOT_CLOSING | SLOT_FREEING | SLOT_WITHDRAWN | SLOT_REJECTED
                ) || !alive(client)
                {
                    waiting_on_dead = true;
                }
            }
            if let Some(i) = found {
                break i;
            }
            // Every slot is taken. Slots of departed clients are freed by the server
            // shortly: wait for those, but fail at once when all holders live.
            if !waiting_on_dead || deadline.has_passed() {
                return Err(Error::Busy {
                    reason: crate::BusyReason::NoFreeConnection {
                        max_connections: cfg.max_connections,
                    },
                });
            }
            hdr.listen.connect.notify();
            std::thread::sleep(Duration::from_millis(5));
        };
        let slot = slot_at(slots, index)?;
        let epoch = slot.post_request(conn_name.as_bytes());
        hdr.listen.connect.notify();
        let waited = wait_for(
            &slot.answered,
            WaitStrategy::Adaptive,
            deadline,
            |ctx| -> Result<Option<()>> {
                match slot.state.load(Ordering::Acquire) {
                    SLOT_ACCEPTED | SLOT_REJECTED => return Ok(Some(())),
                    SLOT_REQUESTED | SLOT_REVIEWING => {}
                    _ => return Err(Error::Closed),
                }
                if slot.epoch.load(Ordering::Acquire) != epoch {
                    return Err(Error::Closed);
                }
                if hdr.config.state.load(Ordering::Acquire) != PORT_OPEN {
                    return Err(Error::Closed);
                }
                if ctx.liveness_due && !alive(server) {
                    return Err(Error::PeerDied);
                }
                Ok(None)
            },
        );
        match waited {
            Ok(()) => Ok((index, epoch)),
            Err(Error::Timeout) => match slot.withdraw(me) {
                Withdrawal::Answered => Ok((index, epoch)),
                Withdrawal::Withdrawn => {
                    hdr.listen.connect.notify();
                    Err(Error::Timeout)
                }
                Withdrawal::Freed | Withdrawal::Lost => Err(Error::Timeout),
            },
            Err(e) => Err(e),
        }
    }
}
