//! A tokio port client issuing a thousand concurrent calls, and a port server that
//! answers them from one task.
//!
//! Each call is `PortClient::call_async(..)?.await`: the request is sent at once and
//! the task sleeps until its own reply is filed (dropping the future would cancel the
//! call). The server takes connects and calls from one loop over
//! `PortServer::next_event_async`.
//!
//! ```sh
//! cargo run -p culvert --features tokio --example tokio_port_calls
//! ```

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use culvert::port::{PortClient, PortOptions, PortServer, ServerEvent};

const PORT: &str = "calls";
const CALLS: u32 = 1_000;

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let (root, created) = match std::env::var_os("CULVERT_ROOT") {
        Some(dir) => (PathBuf::from(dir), false),
        None => {
            let dir =
                std::env::temp_dir().join(format!("culvert-tokio-port-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (dir, true)
        }
    };
    let opts = PortOptions::default().root(&root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let server = PortServer::create(PORT, &opts)?;
        let serving = tokio::spawn(async move {
            let mut answered = 0;
            while answered < CALLS {
                match server.next_event_async().await? {
                    ServerEvent::Connect(request) => drop(request.accept(b"welcome")?),
                    ServerEvent::Message(call) => {
                        let n = u32::from_le_bytes(call.payload.as_slice().try_into().unwrap_or_default());
                        call.reply(&(n * 2).to_le_bytes())?;
                        answered += 1;
                    }
                }
            }
            Ok::<u32, culvert::Error>(answered)
        });

        let (client, welcome) =
            PortClient::connect_async(PORT, b"hello", Duration::from_secs(10), &opts).await?;
        println!("client: connected, server said {:?}", String::from_utf8_lossy(&welcome));
        let client = Arc::new(client);
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..CALLS {
            let client = client.clone();
            calls.spawn(async move {
                let reply = client.call_async(&n.to_le_bytes())?.await?;
                let doubled = u32::from_le_bytes(reply.as_slice().try_into().unwrap_or_default());
                Ok::<bool, culvert::Error>(doubled == n * 2)
            });
        }
        let mut right = 0;
        while let Some(r) = calls.join_next().await {
            if r?? {
                right += 1;
            }
        }
        let answered = serving.await??;
        println!("client: {right} of {CALLS} concurrent calls answered right; server answered {answered}");
        if right != CALLS {
            return Err::<(), BoxError>("wrong replies".into());
        }
        println!("tokio_port_calls: ok");
        Ok(())
    });
    if created {
        std::fs::remove_dir_all(&root)?;
    }
    result
}
