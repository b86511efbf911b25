//! WebSockets through the gateway, with tokio-tungstenite on both sides (an echo server as the
//! upstream, a client in front): the handshake's 101 passed on, messages both ways, the
//! connection counted in `/metrics` and reported in the access log, the idle timeout, and a
//! route that turns upgrades off. On both transports (the fast path hands upgrades to hyper).

mod common;
use common::gw::Harness;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket echo server on a free port; it answers plain HTTP requests with 400.
async fn echo_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() || m.is_binary() {
                        if ws.send(m).await.is_err() {
                            return;
                        }
                    } else if m.is_close() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
}

async fn gateway(fast_path: bool, stream_idle: Duration) -> Harness {
    let h = Harness::with(|c| {
        c.fast_path = fast_path;
        c.stream_idle_timeout = stream_idle;
    })
    .await;
    let up = echo_server().await;
    let routes = "    - matchers: [{prefix: /off}]\n      routeAction: {single: {upstream: {name: ws}}}\n      options: {upgrades: [{websocket: {enabled: false}}]}\n    - matchers: [{prefix: /}]\n      routeAction: {single: {upstream: {name: ws}}}\n";
    h.serve("ws", &[up], routes).await;
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_flow_both_ways_and_the_connection_is_reported() {
    for fast in [true, false] {
        let h = gateway(fast, Duration::from_secs(30)).await;
        let mut events = h.gw.events.subscribe();
        let url = format!("ws://{}/chat", h.handle.addr);
        let (mut ws, resp) = tokio_tungstenite::connect_async(&url)
            .await
            .unwrap_or_else(|e| panic!("fast={fast}: handshake through the gateway: {e}"));
        assert_eq!(resp.status(), 101);
        assert!(resp.headers().contains_key("sec-websocket-accept"));
        for text in ["hello", "wörld", &"x".repeat(100_000)] {
            ws.send(Message::text(text)).await.unwrap();
            let back = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("an echo")
                .unwrap()
                .unwrap();
            assert_eq!(back.to_text().unwrap(), text, "fast={fast}");
        }
        ws.send(Message::binary(vec![0u8, 1, 2, 255]))
            .await
            .unwrap();
        let back = ws.next().await.unwrap().unwrap();
        assert_eq!(back.into_data().as_ref(), &[0u8, 1, 2, 255]);
        ws.close(None).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
        drop(ws);

        // The access log's event comes when the connection ends, with what it carried.
        let event = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let e = events.recv().await.unwrap();
                if e.status == 101 {
                    return e;
                }
            }
        })
        .await
        .expect("an event for the upgraded connection");
        assert_eq!(event.path, "/chat");
        assert!(event.bytes_in > 100_000, "fast={fast}: {event:?}");
        assert!(event.bytes_out > 100_000, "fast={fast}: {event:?}");
        let m = h.metrics().await;
        assert_eq!(metric(&m, "epoxy_upgraded_connections_total"), 1.0);
        assert_eq!(metric(&m, "epoxy_upgraded_connections_active"), 0.0);
        assert!(metric(&m, "epoxy_upgraded_bytes_total{direction=\"from_client\"}") > 100_000.0);
        assert!(metric(&m, "epoxy_upgraded_bytes_total{direction=\"to_client\"}") > 100_000.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_websocket_is_closed_and_a_route_can_refuse_upgrades() {
    for fast in [true, false] {
        let h = gateway(fast, Duration::from_millis(600)).await;
        let url = format!("ws://{}/quiet", h.handle.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Message::text("one")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().to_text().unwrap(), "one");
        // Nothing moves for longer than the idle timeout: the gateway ends the connection.
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ws.next().await {
                    None | Some(Err(_)) => return,
                    Some(Ok(m)) if m.is_close() => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "fast={fast}: an idle tunnel is closed");
        let m = h.metrics().await;
        assert_eq!(metric(&m, "epoxy_upgraded_connections_active"), 0.0);

        // `upgrades: [{websocket: {enabled: false}}]`: the upgrade headers do not go upstream,
        // and the handshake fails (the echo server answers a plain request with 400).
        let url = format!("ws://{}/off", h.handle.addr);
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_ne!(r.status(), 101, "fast={fast}")
            }
            other => panic!("fast={fast}: expected a refused handshake, got {other:?}"),
        }
    }
}
