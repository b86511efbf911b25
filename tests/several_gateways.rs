//! Several gateways on one store: `epoxy proxy url` finds one that is running, whichever
//! started last or exited first.

mod common;

use common::Epoxy;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// Starts `epoxy gateway` and returns it with the URL it prints.
fn gateway(e: &Epoxy) -> (Child, String) {
    let mut c = e
        .command()
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn epoxy gateway");
    let mut line = String::new();
    BufReader::new(c.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (c, url)
}

fn stop(mut c: Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let _ = c.wait();
}

#[test]
fn proxy_url_finds_the_gateway_still_running() {
    let e = Epoxy::new();
    let (a, url_a) = gateway(&e);
    let (b, url_b) = gateway(&e);
    assert_ne!(url_a, url_b);
    assert_eq!(e.run(&["proxy", "url"]).ok().trim(), url_b);
    // The last one started exits: the first is still found.
    stop(b);
    assert_eq!(e.run(&["proxy", "url"]).ok().trim(), url_a);
    // And the other order: a new one, then the first exits.
    let (c, url_c) = gateway(&e);
    stop(a);
    assert_eq!(e.run(&["proxy", "url"]).ok().trim(), url_c);
    stop(c);
    let err = e.run(&["proxy", "url"]).refused();
    assert!(err.contains("no gateway is running"), "{err}");
}
