//! Property: any resource epoxy writes reads back equal (through YAML and through the store).

use epoxy::api::*;
use epoxy::store::dir::DirStore;
use epoxy::store::{Precondition, Store};
use indexmap::IndexMap;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,20}[a-z0-9]"
}

fn text() -> impl Strategy<Value = String> {
    // Printable text, including YAML-significant characters and quotes.
    "[ -~]{0,24}"
}

fn extra() -> impl Strategy<Value = Extra> {
    prop::collection::btree_map(
        "x[A-Za-z]{1,8}",
        prop_oneof![
            text().prop_map(serde_json::Value::String),
            any::<i32>().prop_map(|n| serde_json::json!(n)),
            any::<bool>().prop_map(serde_json::Value::Bool),
            prop::collection::vec(text(), 0..3).prop_map(|v| serde_json::json!(v)),
        ],
        0..3,
    )
    .prop_map(|m| Extra(m.into_iter().collect()))
}

fn path() -> impl Strategy<Value = String> {
    "/[a-zA-Z0-9/_{}.-]{0,20}"
}

fn matcher() -> impl Strategy<Value = Matcher> {
    (
        prop_oneof![
            path().prop_map(|p| (Some(p), None, None)),
            path().prop_map(|p| (None, Some(p), None)),
            path().prop_map(|p| (None, None, Some(p)))
        ],
        prop::option::of(any::<bool>()),
        prop::collection::vec(
            (
                name(),
                prop::option::of(text()),
                prop::option::of(any::<bool>()),
                prop::option::of(any::<bool>()),
            ),
            0..3,
        ),
        prop::collection::vec((name(), prop::option::of(text())), 0..2),
        prop::collection::vec(
            prop_oneof![Just("GET".to_string()), Just("POST".to_string())],
            0..2,
        ),
        extra(),
    )
        .prop_map(
            |((prefix, exact, regex), case_sensitive, headers, query, methods, extra)| Matcher {
                prefix,
                exact,
                regex,
                case_sensitive,
                headers: headers
                    .into_iter()
                    .map(|(name, value, regex, invert_match)| HeaderMatcher {
                        name,
                        value,
                        regex,
                        invert_match,
                        extra: Extra::default(),
                    })
                    .collect(),
                query_parameters: query
                    .into_iter()
                    .map(|(name, value)| QueryParameterMatcher {
                        name,
                        value,
                        regex: None,
                        extra: Extra::default(),
                    })
                    .collect(),
                methods,
                extra,
            },
        )
}

fn destination() -> impl Strategy<Value = Destination> {
    (
        name(),
        prop::option::of(name()),
        prop::option::of((name(), prop::collection::vec((text(), text()), 0..3))),
        extra(),
    )
        .prop_map(|(up, ns, function, extra)| Destination {
            upstream: Some(ResourceRef {
                name: up,
                namespace: ns,
                ..Default::default()
            }),
            destination_spec: function.map(|(f, params)| DestinationSpec {
                rest: Some(RestDestination {
                    function_name: f,
                    parameters: (!params.is_empty()).then(|| Parameters {
                        headers: params.into_iter().collect::<IndexMap<_, _>>(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            kube: None,
            extra,
        })
}

fn route() -> impl Strategy<Value = Route> {
    (
        prop::collection::vec(matcher(), 0..3),
        prop_oneof![
            destination().prop_map(|d| (
                Some(RouteAction {
                    single: Some(d),
                    ..Default::default()
                }),
                None
            )),
            prop::collection::vec((destination(), prop::option::of(0u32..100)), 1..3).prop_map(
                |ds| (
                    Some(RouteAction {
                        multi: Some(MultiDestination {
                            destinations: ds
                                .into_iter()
                                .map(|(destination, weight)| WeightedDestination {
                                    destination,
                                    weight,
                                    extra: Extra::default()
                                })
                                .collect(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    None
                )
            ),
            (100u32..600, prop::option::of(text())).prop_map(|(status, body)| (
                None,
                Some(DirectResponseAction {
                    status,
                    body,
                    extra: Extra::default()
                })
            )),
        ],
        prop::option::of((prop::option::of(path()), prop::option::of("[0-9]{1,3}s"))),
        extra(),
    )
        .prop_map(|(matchers, (route_action, direct), options, extra)| Route {
            matchers,
            route_action: route_action.map(Box::new),
            direct_response_action: direct.map(Box::new),
            options: options.map(|(prefix_rewrite, timeout)| {
                Box::new(RouteOptions {
                    prefix_rewrite,
                    timeout,
                    ..Default::default()
                })
            }),
            extra,
            ..Default::default()
        })
}

fn resource() -> impl Strategy<Value = Resource> {
    prop_oneof![
        (
            name(),
            prop::collection::vec(
                prop_oneof![Just("*".to_string()), "[a-z]{1,10}\\.com"],
                0..3
            ),
            prop::collection::vec(route(), 0..4),
            extra()
        )
            .prop_map(|(n, domains, routes, extra)| {
                let mut vs = Object::new(
                    Kind::VirtualService,
                    "gloo-system",
                    &n,
                    VirtualServiceSpec {
                        virtual_host: VirtualHost {
                            domains,
                            routes,
                            ..Default::default()
                        },
                        ssl_config: None,
                        extra,
                    },
                );
                vs.metadata.labels.insert("app".into(), "x".into());
                Resource::VirtualService(vs)
            }),
        (
            name(),
            prop::collection::vec(("[a-z0-9.]{1,15}", 1u32..65536), 1..3),
            prop::collection::vec((name(), text(), prop::option::of(text())), 0..3),
            extra()
        )
            .prop_map(|(n, hosts, fns, extra)| {
                let transformations = fns
                    .into_iter()
                    .map(|(f, path, body)| {
                        let mut headers = IndexMap::new();
                        headers.insert(
                            ":path".to_string(),
                            Template {
                                text: Some(path),
                                extra: Extra::default(),
                            },
                        );
                        (
                            f,
                            Transformation {
                                headers,
                                body: body.map(|b| Template {
                                    text: Some(b),
                                    extra: Extra::default(),
                                }),
                                extra: Extra::default(),
                            },
                        )
                    })
                    .collect();
                Resource::Upstream(Object::new(
                    Kind::Upstream,
                    "gloo-system",
                    &n,
                    UpstreamSpec {
                        static_: Some(StaticUpstream {
                            hosts: hosts
                                .into_iter()
                                .map(|(addr, port)| StaticHost {
                                    addr,
                                    port,
                                    extra: Extra::default(),
                                })
                                .collect(),
                            service_spec: Some(ServiceSpec {
                                rest: Some(RestServiceSpec {
                                    transformations,
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        extra,
                        ..Default::default()
                    },
                ))
            }),
        (name(), prop::collection::vec(route(), 0..4)).prop_map(
            |(n, routes)| Resource::RouteTable(Object::new(
                Kind::RouteTable,
                "gloo-system",
                &n,
                RouteTableSpec {
                    routes,
                    ..Default::default()
                }
            ))
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn yaml_round_trip(r in resource()) {
        let yaml = r.to_yaml();
        let back = parse_one(&yaml, "generated").map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(back, r, "{}", yaml);
    }

    #[test]
    fn json_round_trip(r in resource()) {
        let json = serde_json::to_string(&r.to_value()).unwrap();
        let back = parse_one(&json, "generated").map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(back, r);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn store_round_trip(r in resource()) {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let stored = rt.block_on(store.put(r.clone(), Precondition::Any)).unwrap();
        let back = rt.block_on(store.get(&r.key())).unwrap();
        prop_assert_eq!(&back, &stored);
        let mut plain = back;
        plain.meta_mut().resource_version = None;
        prop_assert_eq!(plain, r);
    }
}

/// Strings that a YAML writer must quote to keep them strings.
#[test]
fn ambiguous_scalars_stay_strings() {
    let tricky = [
        "true",
        "no",
        "null",
        "~",
        "",
        "123",
        "1.0",
        "0x1F",
        " lead",
        "trail ",
        "a: b",
        "- x",
        "#x",
        "'q'",
        "\"d\"",
        "@x",
        "{id}",
        "1e3",
        ".inf",
        "2001-12-14",
        "multi\nline",
        "tab\there",
        "ünïcödé",
    ];
    for t in tricky {
        let mut headers = IndexMap::new();
        headers.insert(t.to_string(), t.to_string());
        let vs = Resource::VirtualService(Object::new(
            Kind::VirtualService,
            "gloo-system",
            "v",
            VirtualServiceSpec {
                virtual_host: VirtualHost {
                    domains: vec![t.to_string()],
                    routes: vec![Route {
                        matchers: vec![Matcher {
                            exact: Some(t.to_string()),
                            ..Default::default()
                        }],
                        route_action: Some(Box::new(RouteAction {
                            single: Some(Destination {
                                upstream: Some(ResourceRef {
                                    name: "u".into(),
                                    namespace: None,
                                    ..Default::default()
                                }),
                                destination_spec: Some(DestinationSpec {
                                    rest: Some(RestDestination {
                                        function_name: t.to_string(),
                                        parameters: Some(Parameters {
                                            headers,
                                            ..Default::default()
                                        }),
                                        ..Default::default()
                                    }),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ..Default::default()
            },
        ));
        let yaml = vs.to_yaml();
        let back = parse_one(&yaml, "t").unwrap_or_else(|e| panic!("{t:?}: {e}\n{yaml}"));
        assert_eq!(back, vs, "{t:?}\n{yaml}");
    }
}

/// A key set to null, or to nothing, is absent (as Kubernetes reads it): the resource equals
/// the one without the key, and is written back without it.
#[test]
fn null_keys_read_as_absent() {
    let plain = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: v\nspec:\n  virtualHost:\n    routes:\n    - matchers:\n      - prefix: /\n      directResponseAction:\n        status: 200\n";
    let with_nulls = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata:\n  name: v\n  annotations:\n  labels: null\nspec:\n  virtualHost:\n    domains: ~\n    options: null\n    routes:\n    - matchers:\n      - prefix: /\n        headers:\n      options:\n      directResponseAction:\n        status: 200\n        body: null\n";
    let a = parse_one(plain, "plain").unwrap();
    let b = parse_one(with_nulls, "nulls").unwrap();
    assert_eq!(a, b);
    assert!(!b.to_yaml().contains("null"), "{}", b.to_yaml());
    assert_eq!(parse_one(&b.to_yaml(), "again").unwrap(), a);
}
