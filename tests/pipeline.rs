//! The request pipeline's stages (`gateway::pipeline`) through the real gateway, on both
//! transports (the HTTP/1.1 fast path and hyper alone): the same answer either way, and the
//! upstream never sees a request a stage answered.

mod common;
use common::gw::Harness;
use common::upstream;
use std::time::{Duration, Instant};

async fn gateway(fast_path: bool) -> Harness {
    Harness::with(|c| c.fast_path = fast_path).await
}

fn route(path: &str, up: &str, faults: &str) -> String {
    format!(
        "    - matchers: [{{prefix: {path}}}]\n      options: {{faults: {faults}}}\n      routeAction: {{single: {{upstream: {{name: {up}}}}}}}\n"
    )
}

#[tokio::test]
async fn faults_abort_delay_and_pass_on_both_transports() {
    for fast_path in [true, false] {
        let h = gateway(fast_path).await;
        let up = upstream::start("faulty");
        let routes = [
            route(
                "/abort",
                "faulty",
                "{abort: {percentage: 100, httpStatus: 418}}",
            ),
            route(
                "/delay",
                "faulty",
                "{delay: {percentage: 100, fixedDelay: 0.3s}}",
            ),
            route(
                "/never",
                "faulty",
                "{abort: {percentage: 0, httpStatus: 503}}",
            ),
        ]
        .concat();
        h.serve("faulty", &[up.host_port()], &routes).await;
        let client = Harness::client();

        let r = client
            .get(format!("{}/abort/x", h.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 418, "fast_path={fast_path}");
        assert_eq!(r.text().await.unwrap(), "fault filter abort");
        assert_eq!(
            up.hits(),
            0,
            "an aborted request never reaches the upstream"
        );

        let started = Instant::now();
        let r = client
            .get(format!("{}/delay/x", h.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "fast_path={fast_path}"
        );
        assert_eq!(up.hits(), 1);

        let r = client
            .get(format!("{}/never/x", h.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(up.hits(), 2);

        // The aborted request is counted on its route like any answer.
        let aborted = |m: &str| {
            m.lines().any(|l| {
                l.starts_with("epoxy_route_responses_total")
                    && l.contains("class=\"4xx\"")
                    && l.ends_with(" 1")
            })
        };
        let metrics = h.metrics_when(aborted).await;
        assert!(aborted(&metrics), "fast_path={fast_path}\n{metrics}");
    }
}

#[tokio::test]
async fn a_fault_the_gateway_cannot_inject_refuses_the_route() {
    let h = gateway(true).await;
    let up = upstream::start("x");
    let yaml = format!(
        "{}---\n{}",
        common::gw::static_upstream("x", &[up.host_port()]),
        common::gw::vs(
            "default",
            "['*']",
            &route("/", "x", "{abort: {percentage: 150, httpStatus: 99}}")
        )
    );
    let r = epoxy::api::parse_resources(&yaml, "test").unwrap();
    let mut refused = Vec::new();
    for res in r {
        if let Err(e) =
            epoxy::control::writes::write(h.store.as_ref(), res, epoxy::store::Precondition::Any)
                .await
        {
            refused.push(e.to_string());
        }
    }
    let all = refused.join("\n");
    assert!(all.contains("faults.abort.percentage"), "{all}");
    assert!(all.contains("faults.abort.httpStatus"), "{all}");
}
