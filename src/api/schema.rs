//! Gloo's fields, level by level (from Gloo's protos: gateway/api/v1 virtual_service and
//! route_table, gloo/api/v1 proxy, upstream, virtual_host_options, route_options,
//! weighted_destination_options, core/matchers, options/*), and what epoxy does with each.
//!
//! A key that is not listed at its level is no Gloo field: a typo, refused (`strict`). A Gloo
//! field epoxy does not act on is kept with a warning; one whose absence would let traffic
//! through that Gloo would stop (auth, rate limits, TLS) is refused until epoxy enforces it.

/// What epoxy does with one of Gloo's fields.
#[derive(Debug, Clone, Copy)]
pub enum Use {
    /// Read and acted on; its value is checked against `Node`.
    Acted(Node),
    /// A Gloo field epoxy keeps verbatim but does not act on: a warning.
    Kept,
    /// A Gloo field epoxy cannot honour yet and must not ignore: the resource is rejected.
    Refused(&'static str),
    /// Bookkeeping, or a field another check reports on: nothing to say here.
    Quiet,
}

/// The shape of an acted-on field's value.
#[derive(Debug, Clone, Copy)]
pub enum Node {
    /// A scalar, or a list or map of scalars.
    Leaf,
    One(&'static [Field]),
    List(&'static [Field]),
    /// A map with the user's keys (function names, header names) to values of one level.
    Map(&'static [Field]),
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub use_: Use,
}

const fn leaf(name: &'static str) -> Field {
    Field {
        name,
        use_: Use::Acted(Node::Leaf),
    }
}
const fn one(name: &'static str, level: &'static [Field]) -> Field {
    Field {
        name,
        use_: Use::Acted(Node::One(level)),
    }
}
const fn list(name: &'static str, level: &'static [Field]) -> Field {
    Field {
        name,
        use_: Use::Acted(Node::List(level)),
    }
}
const fn map(name: &'static str, level: &'static [Field]) -> Field {
    Field {
        name,
        use_: Use::Acted(Node::Map(level)),
    }
}
const fn kept(name: &'static str) -> Field {
    Field {
        name,
        use_: Use::Kept,
    }
}
const fn quiet(name: &'static str) -> Field {
    Field {
        name,
        use_: Use::Quiet,
    }
}
const fn refused(name: &'static str, why: &'static str) -> Field {
    Field {
        name,
        use_: Use::Refused(why),
    }
}

const AUTH: &str = "epoxy does not enforce this kind of authorization yet; refused so that this traffic is not served without it";
const LIMIT: &str = "epoxy does not enforce this kind of rate limit yet; refused so that this traffic is not served unlimited";
const FILTER: &str = "epoxy does not run this request filter yet; refused so that this traffic is not served without it";
const PLUGINS: &str = "epoxy does not read plugin configurations (they may carry auth or rate limits); refused so that none is skipped";
const OPTION_REFS: &str = "epoxy does not read VirtualHostOption or RouteOption resources (they may carry auth or rate limits); refused so that none is skipped";

/// Options with a security effect, at every level that has them (virtual host, route); the
/// levels that differ (JWT, rate limits) are passed in.
macro_rules! security_options {
    ($($more:expr),* $(,)?) => {
        &[
            one("extauth", EXTAUTH),
            refused("rbac", AUTH),
            refused("waf", FILTER),
            refused("dlp", FILTER),
            refused("csrf", FILTER),
            refused("extProc", FILTER),
            refused("extProcEarly", FILTER),
            refused("extProcLate", FILTER),
            one("ratelimitBasic", INGRESS_RATE_LIMIT),
            refused("ratelimitEarly", LIMIT),
            refused("ratelimitRegular", LIMIT),
            refused("ratelimitRegex", LIMIT),
            one("rateLimitConfigs", RATE_LIMIT_CONFIG_REFS),
            one("rateLimitEarlyConfigs", RATE_LIMIT_CONFIG_REFS),
            one("rateLimitRegularConfigs", RATE_LIMIT_CONFIG_REFS),
            refused("ratelimitBeforeAuth", LIMIT),
            refused("extensions", PLUGINS),
            one("cors", CORS),
            kept("transformations"),
            kept("stagedTransformations"),
            kept("bufferPerRoute"),
            $($more),*
        ]
    };
}

// ---------------------------------------------------------------- policies (crate::policy)

const EXTAUTH: &[Field] = &[
    leaf("disable"),
    one("configRef", REF),
    refused(
        "customAuth",
        "epoxy does not run custom external auth servers; refused so that this traffic is not served without it",
    ),
];
const RATE_LIMIT_CONFIG_REFS: &[Field] = &[list("refs", REF)];
const RATE_LIMIT_UNIT: &[Field] = &[leaf("unit"), leaf("requestsPerUnit")];
const INGRESS_RATE_LIMIT: &[Field] = &[
    one("authorizedLimits", RATE_LIMIT_UNIT),
    one("anonymousLimits", RATE_LIMIT_UNIT),
];
const CORS: &[Field] = &[
    leaf("allowOrigin"),
    leaf("allowOriginRegex"),
    leaf("allowMethods"),
    leaf("allowHeaders"),
    leaf("exposeHeaders"),
    leaf("maxAge"),
    leaf("allowCredentials"),
    leaf("disableForRoute"),
];
const TOKEN_BUCKET: &[Field] = &[
    leaf("maxTokens"),
    leaf("tokensPerFill"),
    leaf("fillInterval"),
];
const INLINE_ACTIONS: &str = "epoxy counts global rate limits through RateLimitConfig resources (`rateLimitConfigs`), not inline actions; refused so that this traffic is not served unlimited";
const VHOST_RATELIMIT: &[Field] = &[
    one("localRatelimit", TOKEN_BUCKET),
    refused("rateLimits", INLINE_ACTIONS),
];
const ROUTE_RATELIMIT: &[Field] = &[
    one("localRatelimit", TOKEN_BUCKET),
    refused("rateLimits", INLINE_ACTIONS),
    refused("includeVhRateLimits", INLINE_ACTIONS),
];
const JWT_REMOTE: &[Field] = &[
    leaf("url"),
    one("upstreamRef", REF),
    leaf("cacheDuration"),
    kept("asyncFetch"),
];
const JWT_LOCAL: &[Field] = &[leaf("key")];
const JWKS: &[Field] = &[one("remote", JWT_REMOTE), one("local", JWT_LOCAL)];
const HEADER_SOURCE: &[Field] = &[leaf("header"), leaf("prefix")];
const TOKEN_SOURCE: &[Field] = &[list("headers", HEADER_SOURCE), leaf("queryParams")];
const CLAIM_TO_HEADER: &[Field] = &[leaf("claim"), leaf("header"), leaf("append")];
const JWT_PROVIDER: &[Field] = &[
    one("jwks", JWKS),
    leaf("audiences"),
    leaf("issuer"),
    one("tokenSource", TOKEN_SOURCE),
    leaf("keepToken"),
    list("claimsToHeaders", CLAIM_TO_HEADER),
    leaf("clockSkewSeconds"),
    kept("attachFailedStatusToMetadata"),
];
const JWT_VHOST: &[Field] = &[
    map("providers", JWT_PROVIDER),
    leaf("validationPolicy"),
    leaf("allowMissingOrFailedJwt"),
];
const JWT_VHOST_STAGED: &[Field] = &[
    one("beforeExtAuth", JWT_VHOST),
    one("afterExtAuth", JWT_VHOST),
];
const JWT_ROUTE: &[Field] = &[leaf("disable")];
const JWT_ROUTE_STAGED: &[Field] = &[
    one("beforeExtAuth", JWT_ROUTE),
    one("afterExtAuth", JWT_ROUTE),
];

// ---------------------------------------------------------------- shared

pub const REF: &[Field] = &[leaf("name"), leaf("namespace")];

pub const METADATA: &[Field] = &[
    leaf("name"),
    leaf("namespace"),
    leaf("labels"),
    leaf("annotations"),
    leaf("resourceVersion"),
    quiet("uid"),
    quiet("generation"),
    quiet("creationTimestamp"),
    quiet("deletionTimestamp"),
    quiet("deletionGracePeriodSeconds"),
    quiet("generateName"),
    quiet("selfLink"),
    quiet("managedFields"),
    quiet("ownerReferences"),
    quiet("finalizers"),
    quiet("cluster"),
];

/// The top of every object, around a kind's `spec`.
pub const fn object(spec: &'static [Field]) -> [Field; 5] {
    [
        leaf("apiVersion"),
        leaf("kind"),
        one("metadata", METADATA),
        one("spec", spec),
        quiet("status"),
    ]
}

// ---------------------------------------------------------------- routes

const HEADER_MATCHER: &[Field] = &[
    leaf("name"),
    leaf("value"),
    leaf("regex"),
    leaf("invertMatch"),
];
const QUERY_MATCHER: &[Field] = &[leaf("name"), leaf("value"), leaf("regex")];
const MATCHER: &[Field] = &[
    leaf("prefix"),
    leaf("exact"),
    leaf("regex"),
    leaf("caseSensitive"),
    list("headers", HEADER_MATCHER),
    list("queryParameters", QUERY_MATCHER),
    leaf("methods"),
    // Ignored, the matcher would match every path.
    refused(
        "connectMatcher",
        "epoxy does not match CONNECT requests; ignoring this would match every path",
    ),
];

const PARAMETERS: &[Field] = &[leaf("headers"), leaf("path")];
const REST_DESTINATION: &[Field] = &[
    leaf("functionName"),
    one("parameters", PARAMETERS),
    kept("responseTransformation"),
];
const GRPC_DESTINATION: &[Field] = &[
    leaf("package"),
    leaf("service"),
    leaf("function"),
    one("parameters", PARAMETERS),
];
const AWS_DESTINATION: &[Field] = &[
    leaf("logicalName"),
    leaf("invocationStyle"),
    leaf("unwrapAsApiGateway"),
    leaf("wrapAsApiGateway"),
    kept("requestTransformation"),
    kept("responseTransformation"),
    refused(
        "unwrapAsAlb",
        "epoxy does not unwrap ALB responses; the payload would be answered as it is",
    ),
];
const DESTINATION_SPEC: &[Field] = &[
    one("rest", REST_DESTINATION),
    one("grpc", GRPC_DESTINATION),
    one("aws", AWS_DESTINATION),
    kept("azure"),
];
const KUBE_DESTINATION: &[Field] = &[one("ref", REF), leaf("port")];
const DESTINATION: &[Field] = &[
    one("upstream", REF),
    one("kube", KUBE_DESTINATION),
    // Reported by validation.
    quiet("consul"),
    one("destinationSpec", DESTINATION_SPEC),
    kept("subset"),
];
const WEIGHTED_OPTIONS: &[Field] = &[
    refused(
        "extauth",
        "epoxy does not run external auth per weighted destination; refused so that this traffic is not served without it",
    ),
    refused("extensions", PLUGINS),
    kept("headerManipulation"),
    kept("transformations"),
    kept("stagedTransformations"),
    kept("bufferPerRoute"),
    refused("csrf", FILTER),
];
pub const WEIGHTED_DESTINATION: &[Field] = &[
    one("destination", DESTINATION),
    leaf("weight"),
    one("options", WEIGHTED_OPTIONS),
];
const MULTI: &[Field] = &[list("destinations", WEIGHTED_DESTINATION)];
const ROUTE_ACTION: &[Field] = &[
    one("single", DESTINATION),
    one("multi", MULTI),
    one("upstreamGroup", REF),
    refused("clusterHeader", "epoxy does not route by a cluster header"),
    refused("dynamicForwardProxy", "epoxy is not a forward proxy"),
];
const REGEX_MATCHER: &[Field] = &[leaf("regex"), quiet("googleRe2")];
const REGEX_REWRITE: &[Field] = &[one("pattern", REGEX_MATCHER), leaf("substitution")];
const REDIRECT: &[Field] = &[
    leaf("hostRedirect"),
    leaf("pathRedirect"),
    leaf("prefixRewrite"),
    leaf("responseCode"),
    leaf("httpsRedirect"),
    leaf("stripQuery"),
    kept("regexRewrite"),
    kept("portRedirect"),
];
const DIRECT: &[Field] = &[leaf("status"), leaf("body")];
const SELECTOR: &[Field] = &[
    leaf("labels"),
    leaf("namespaces"),
    refused(
        "expressions",
        "epoxy does not evaluate selector expressions; ignoring them would delegate to more route tables",
    ),
];
const DELEGATE: &[Field] = &[
    one("ref", REF),
    one("selector", SELECTOR),
    leaf("name"),
    leaf("namespace"),
];
const RETRIES: &[Field] = &[
    leaf("retryOn"),
    leaf("numRetries"),
    leaf("perTryTimeout"),
    leaf("retriableStatusCodes"),
    one("retryBackOff", RETRY_BACK_OFF),
    kept("previousPriorities"),
    kept("rateLimitedRetryBackOff"),
];
const RETRY_BACK_OFF: &[Field] = &[leaf("baseInterval"), leaf("maxInterval")];
const UPGRADE_SPEC: &[Field] = &[leaf("enabled")];
const UPGRADE: &[Field] = &[one("websocket", UPGRADE_SPEC), kept("connect")];
const HEADER_VALUE: &[Field] = &[leaf("key"), leaf("value")];
const HEADER_VALUE_OPTION: &[Field] = &[
    one("header", HEADER_VALUE),
    leaf("append"),
    kept("headerSecretRef"),
];
const HEADER_MANIPULATION: &[Field] = &[
    list("requestHeadersToAdd", HEADER_VALUE_OPTION),
    leaf("requestHeadersToRemove"),
    list("responseHeadersToAdd", HEADER_VALUE_OPTION),
    leaf("responseHeadersToRemove"),
];
const SHADOWING: &[Field] = &[
    one("upstream", REF),
    leaf("percentage"),
    kept("disableShadowHostSuffixAppend"),
    kept("hostRewriteLiteral"),
];
const FAULT_ABORT: &[Field] = &[leaf("percentage"), leaf("httpStatus")];
const FAULT_DELAY: &[Field] = &[leaf("percentage"), leaf("fixedDelay")];
const FAULTS: &[Field] = &[one("abort", FAULT_ABORT), one("delay", FAULT_DELAY)];
const ROUTE_OPTIONS: &[Field] = security_options![
    one("jwt", JWT_ROUTE),
    one("jwtStaged", JWT_ROUTE_STAGED),
    one("jwtProvidersStaged", JWT_VHOST_STAGED),
    one("ratelimit", ROUTE_RATELIMIT),
    leaf("prefixRewrite"),
    one("regexRewrite", REGEX_REWRITE),
    leaf("hostRewrite"),
    leaf("timeout"),
    one("retries", RETRIES),
    one("headerManipulation", HEADER_MANIPULATION),
    one("shadowing", SHADOWING),
    one("faults", FAULTS),
    kept("tracing"),
    leaf("autoHostRewrite"),
    kept("hostRewritePathRegex"),
    kept("hostRewriteHeader"),
    kept("appendXForwardedHost"),
    kept("lbHash"),
    list("upgrades", UPGRADE),
    kept("envoyMetadata"),
    kept("maxStreamDuration"),
    kept("idleTimeout"),
    kept("ai"),
];

pub const ROUTE: &[Field] = &[
    list("matchers", MATCHER),
    kept("inheritableMatchers"),
    kept("inheritablePathMatchers"),
    one("routeAction", ROUTE_ACTION),
    one("redirectAction", REDIRECT),
    one("directResponseAction", DIRECT),
    one("delegateAction", DELEGATE),
    one("options", ROUTE_OPTIONS),
    leaf("name"),
    refused("optionsConfigRefs", OPTION_REFS),
];

/// The field `name` at `level`.
pub fn field(level: &'static [Field], name: &str) -> Option<&'static Field> {
    level.iter().find(|f| f.name == name)
}

// ---------------------------------------------------------------- the four kinds

const VIRTUAL_HOST_OPTIONS: &[Field] = security_options![
    one("jwt", JWT_VHOST),
    one("jwtStaged", JWT_VHOST_STAGED),
    one("ratelimit", VHOST_RATELIMIT),
    kept("retries"),
    kept("stats"),
    kept("headerManipulation"),
    kept("includeRequestAttemptCount"),
    kept("includeAttemptCountInResponse"),
    kept("corsPolicyMergeSettings"),
];
const VIRTUAL_HOST: &[Field] = &[
    leaf("domains"),
    list("routes", ROUTE),
    one("options", VIRTUAL_HOST_OPTIONS),
    refused("optionsConfigRefs", OPTION_REFS),
];
const SSL_FILES: &[Field] = &[
    leaf("tlsCert"),
    leaf("tlsKey"),
    leaf("rootCa"),
    kept("ocspStaple"),
];
const SSL_PARAMETERS: &[Field] = &[
    leaf("minimumProtocolVersion"),
    leaf("maximumProtocolVersion"),
    leaf("cipherSuites"),
    kept("ecdhCurves"),
];
const SDS: &str = "epoxy does not read certificates from a secret discovery service; refused so that this is not served without its certificate";
const SSL_CONFIG: &[Field] = &[
    one("secretRef", REF),
    one("sslFiles", SSL_FILES),
    refused("sds", SDS),
    leaf("sniDomains"),
    leaf("verifySubjectAltName"),
    one("parameters", SSL_PARAMETERS),
    leaf("alpnProtocols"),
    leaf("oneWayTls"),
    kept("disableTlsSessionResumption"),
    kept("transportSocketConnectTimeout"),
    kept("ocspStaplePolicy"),
];
const UPSTREAM_SSL_CONFIG: &[Field] = &[
    one("secretRef", REF),
    one("sslFiles", SSL_FILES),
    refused("sds", SDS),
    leaf("sni"),
    leaf("verifySubjectAltName"),
    one("parameters", SSL_PARAMETERS),
    leaf("alpnProtocols"),
    kept("allowRenegotiation"),
];
pub const VIRTUAL_SERVICE: &[Field] = &[
    one("virtualHost", VIRTUAL_HOST),
    one("sslConfig", SSL_CONFIG),
    kept("displayName"),
    quiet("namespacedStatuses"),
];
const GLOO_TLS_SECRET: &[Field] = &[
    leaf("certChain"),
    leaf("privateKey"),
    leaf("rootCa"),
    kept("ocspStaple"),
];
/// A Kubernetes `Secret` is no Gloo object with a `spec`: its fields are at the top.
pub const SECRET: &[Field] = &[
    leaf("apiVersion"),
    leaf("kind"),
    one("metadata", METADATA),
    leaf("type"),
    leaf("data"),
    leaf("stringData"),
    quiet("immutable"),
    // Gloo's secret forms (gloo/api/v1/secret.proto): `tls` is read as tls.crt/tls.key/ca.crt.
    one("tls", GLOO_TLS_SECRET),
    kept("aws"),
    kept("azure"),
    kept("apiKey"),
    kept("header"),
    kept("credentials"),
    kept("oauth"),
    kept("extensions"),
];
pub const ROUTE_TABLE: &[Field] = &[
    list("routes", ROUTE),
    leaf("weight"),
    quiet("namespacedStatuses"),
];
pub const UPSTREAM_GROUP: &[Field] = &[
    list("destinations", WEIGHTED_DESTINATION),
    quiet("namespacedStatuses"),
];

const TEMPLATE: &[Field] = &[leaf("text"), quiet("passthrough")];
const TRANSFORMATION: &[Field] = &[
    map("headers", TEMPLATE),
    one("body", TEMPLATE),
    // Acted on: the client's body goes on.
    quiet("passthrough"),
    kept("advancedTemplates"),
    kept("extractors"),
    kept("headersToAppend"),
    kept("headersToRemove"),
    kept("mergeExtractorsToBody"),
    kept("mergeJsonKeys"),
    kept("parseBodyBehavior"),
    kept("ignoreErrorOnParse"),
    kept("dynamicMetadataValues"),
    kept("escapeCharacters"),
    kept("spanTransformer"),
];
const SWAGGER_INFO: &[Field] = &[leaf("url"), leaf("inline")];
const REST_SERVICE: &[Field] = &[
    map("transformations", TRANSFORMATION),
    one("swaggerInfo", SWAGGER_INFO),
];
const GRPC_SERVICE: &[Field] = &[
    leaf("packageName"),
    leaf("serviceName"),
    leaf("functionNames"),
];
const GRPC_SPEC: &[Field] = &[leaf("descriptors"), list("grpcServices", GRPC_SERVICE)];
const PRINT_OPTIONS: &[Field] = &[
    leaf("addWhitespace"),
    leaf("alwaysPrintPrimitiveFields"),
    leaf("alwaysPrintEnumsAsInts"),
    leaf("preserveProtoFieldNames"),
];
/// Gloo's `GrpcJsonTranscoder` (options/grpc_json/grpc_json.proto).
const GRPC_JSON_TRANSCODER: &[Field] = &[
    leaf("protoDescriptor"),
    leaf("protoDescriptorBin"),
    refused(
        "protoDescriptorConfigMap",
        "epoxy does not read ConfigMaps; give the descriptor set as `protoDescriptorBin` (base64) or a `protoDescriptor` file",
    ),
    leaf("services"),
    one("printOptions", PRINT_OPTIONS),
    leaf("matchIncomingRequestRoute"),
    leaf("ignoredQueryParameters"),
    leaf("autoMapping"),
    leaf("ignoreUnknownQueryParameters"),
    leaf("convertGrpcStatus"),
];
const SERVICE_SPEC: &[Field] = &[
    one("rest", REST_SERVICE),
    one("grpc", GRPC_SPEC),
    one("grpcJsonTranscoder", GRPC_JSON_TRANSCODER),
];
const STATIC_HOST: &[Field] = &[
    leaf("addr"),
    leaf("port"),
    kept("sniAddr"),
    kept("loadBalancingWeight"),
    kept("healthCheckConfig"),
    kept("metadata"),
];
const STATIC: &[Field] = &[
    list("hosts", STATIC_HOST),
    leaf("useTls"),
    one("serviceSpec", SERVICE_SPEC),
    kept("autoSniRewrite"),
];
const KUBE: &[Field] = &[
    leaf("serviceName"),
    leaf("serviceNamespace"),
    leaf("servicePort"),
    leaf("selector"),
    one("serviceSpec", SERVICE_SPEC),
    kept("subsetSpec"),
];
const DISCOVERY_METADATA: &[Field] = &[leaf("labels")];
const LAMBDA_FUNCTION: &[Field] = &[
    leaf("logicalName"),
    leaf("lambdaFunctionName"),
    leaf("qualifier"),
];
const AWS: &[Field] = &[
    leaf("region"),
    one("secretRef", REF),
    list("lambdaFunctions", LAMBDA_FUNCTION),
    kept("roleArn"),
    kept("awsAccountId"),
    kept("disableRoleChaining"),
    kept("destinationOverrides"),
];
pub const UPSTREAM: &[Field] = &[
    one("kube", KUBE),
    one("static", STATIC),
    one("discoveryMetadata", DISCOVERY_METADATA),
    // Other upstream types: reported by validation.
    quiet("pipe"),
    one("aws", AWS),
    quiet("azure"),
    quiet("consul"),
    quiet("awsEc2"),
    quiet("gcp"),
    quiet("ai"),
    quiet("failover"),
    one("sslConfig", UPSTREAM_SSL_CONFIG),
    kept("circuitBreakers"),
    kept("loadBalancerConfig"),
    kept("healthChecks"),
    kept("outlierDetection"),
    kept("connectionConfig"),
    kept("protocolSelection"),
    leaf("useHttp2"),
    kept("initialStreamWindowSize"),
    kept("initialConnectionWindowSize"),
    kept("maxConcurrentStreams"),
    kept("overrideStreamErrorOnInvalidHttpMessage"),
    kept("httpProxyHostname"),
    kept("httpConnectSslConfig"),
    kept("httpConnectHeaders"),
    kept("ignoreHealthOnHostRemoval"),
    kept("dnsRefreshRate"),
    kept("disableIstioAutoMtls"),
    kept("respectDnsTtl"),
    kept("preconnectPolicy"),
    kept("proxyProtocolVersion"),
    quiet("namespacedStatuses"),
];

// ---------------------------------------------------------------- AuthConfig, RateLimitConfig

const UNSUPPORTED_AUTH: &str = "epoxy does not run this kind of external auth; refused so that this traffic is not served without it";
const APR_USER: &[Field] = &[leaf("salt"), leaf("hashedPassword")];
const APR: &[Field] = &[map("users", APR_USER)];
const BASIC_AUTH: &[Field] = &[
    leaf("realm"),
    one("apr", APR),
    refused("encryption", UNSUPPORTED_AUTH),
    refused("userList", UNSUPPORTED_AUTH),
];
const PASS_THROUGH_REQUEST: &[Field] = &[
    leaf("allowedHeaders"),
    leaf("headersToAdd"),
    kept("passThroughState"),
    kept("passThroughFilterMetadata"),
    kept("passThroughBody"),
];
const PASS_THROUGH_RESPONSE: &[Field] = &[
    leaf("allowedUpstreamHeaders"),
    leaf("allowedClientHeadersOnDenied"),
    kept("readStateFromResponse"),
    leaf("allowedUpstreamHeadersToOverwrite"),
    kept("allowedClientHeadersOnSuccess"),
];
const PASS_THROUGH_HTTP: &[Field] = &[
    leaf("url"),
    one("request", PASS_THROUGH_REQUEST),
    one("response", PASS_THROUGH_RESPONSE),
    leaf("connectionTimeout"),
    refused(
        "tlsConfig",
        "epoxy does not configure TLS for pass-through auth; refused so that the auth server is not asked in another way than configured",
    ),
    kept("responseHeaderTimeout"),
    kept("connectionPool"),
];
const PASS_THROUGH: &[Field] = &[
    one("http", PASS_THROUGH_HTTP),
    refused("grpc", UNSUPPORTED_AUTH),
    kept("config"),
    leaf("failureModeAllow"),
];
const METADATA_ENTRY: &[Field] = &[leaf("name"), leaf("required")];
const API_KEY_STORAGE: &[Field] = &[leaf("labelSelector"), list("apiKeySecretRefs", REF)];
const API_KEY_AUTH: &[Field] = &[
    leaf("headerName"),
    list("apiKeySecretRefs", REF),
    leaf("labelSelector"),
    one("k8sSecretApikeyStorage", API_KEY_STORAGE),
    map("headersFromMetadataEntry", METADATA_ENTRY),
    kept("skipMetadataValidation"),
    refused("headersFromMetadata", UNSUPPORTED_AUTH),
    refused("aerospikeApikeyStorage", UNSUPPORTED_AUTH),
    refused("hmac", UNSUPPORTED_AUTH),
    refused("digest", UNSUPPORTED_AUTH),
    refused("match", UNSUPPORTED_AUTH),
];
const AUTH_CONFIG_ENTRY: &[Field] = &[
    leaf("name"),
    one("basicAuth", BASIC_AUTH),
    one("passThroughAuth", PASS_THROUGH),
    one("apiKeyAuth", API_KEY_AUTH),
    refused("oauth", UNSUPPORTED_AUTH),
    refused("oauth2", UNSUPPORTED_AUTH),
    refused("pluginAuth", UNSUPPORTED_AUTH),
    refused("opaAuth", UNSUPPORTED_AUTH),
    refused("ldap", UNSUPPORTED_AUTH),
    refused("ldapInternal", UNSUPPORTED_AUTH),
    refused("jwt", UNSUPPORTED_AUTH),
    refused("hmacAuth", UNSUPPORTED_AUTH),
    refused("opaServerAuth", UNSUPPORTED_AUTH),
    refused("portalAuth", UNSUPPORTED_AUTH),
];
pub const AUTH_CONFIG: &[Field] = &[
    list("configs", AUTH_CONFIG_ENTRY),
    refused(
        "booleanExpr",
        "epoxy requires every config of an AuthConfig to pass (Gloo's default); refused so that no other combination is assumed",
    ),
    kept("failOnRedirect"),
    quiet("namespacedStatuses"),
];
const RATE_LIMIT_ACTION: &[Field] = &[
    leaf("genericKey"),
    leaf("remoteAddress"),
    leaf("requestHeaders"),
    refused("sourceCluster", UNSUPPORTED_ACTION),
    refused("destinationCluster", UNSUPPORTED_ACTION),
    refused("headerValueMatch", UNSUPPORTED_ACTION),
    refused("metadata", UNSUPPORTED_ACTION),
];
const UNSUPPORTED_ACTION: &str = "epoxy does not produce this rate-limit action; refused so that this traffic is not served unlimited";
const RATE_LIMIT_ACTIONS: &[Field] = &[
    list("actions", RATE_LIMIT_ACTION),
    refused("setActions", UNSUPPORTED_ACTION),
    refused("limit", UNSUPPORTED_ACTION),
];
const RATE_LIMIT_RAW: &[Field] = &[
    // Nested descriptors: checked field by field by `crate::policy::spec`.
    leaf("descriptors"),
    list("rateLimits", RATE_LIMIT_ACTIONS),
    refused("setDescriptors", UNSUPPORTED_ACTION),
];
pub const RATE_LIMIT_CONFIG: &[Field] = &[one("raw", RATE_LIMIT_RAW), quiet("namespacedStatuses")];

// ---------------------------------------------------------------- Gateway

const NOT_SERVED_PROTECTION: &str = "epoxy does not run this listener filter; refused so that this traffic is not served without it";
const HTTP_LOCAL_RATELIMIT: &[Field] = &[
    one("defaultLimit", TOKEN_BUCKET),
    leaf("enableXRatelimitHeaders"),
    // `true` is refused by validation (one bucket per connection is not built).
    leaf("localRateLimitPerDownstreamConnection"),
];
/// Gloo's `HttpListenerOptions` (http_listener_options.proto).
const HTTP_LISTENER_OPTIONS: &[Field] = &[
    one("httpLocalRatelimit", HTTP_LOCAL_RATELIMIT),
    kept("grpcWeb"),
    kept("httpConnectionManagerSettings"),
    kept("healthCheck"),
    kept("extensions"),
    refused("waf", NOT_SERVED_PROTECTION),
    refused("dlp", NOT_SERVED_PROTECTION),
    kept("wasm"),
    // Settings of the external auth and rate-limit servers: epoxy runs its own.
    kept("extauth"),
    kept("ratelimitServer"),
    kept("caching"),
    kept("disableExtProcEarly"),
    refused("extProcEarly", NOT_SERVED_PROTECTION),
    kept("disableExtProc"),
    refused("extProc", NOT_SERVED_PROTECTION),
    kept("disableExtProcLate"),
    refused("extProcLate", NOT_SERVED_PROTECTION),
    kept("gzip"),
    kept("proxyLatency"),
    kept("buffer"),
    refused("csrf", NOT_SERVED_PROTECTION),
    kept("grpcJsonTranscoder"),
    kept("sanitizeClusterHeader"),
    kept("leftmostXffAddress"),
    kept("dynamicForwardProxy"),
    refused("connectionLimit", NOT_SERVED_PROTECTION),
    refused("networkLocalRatelimit", NOT_SERVED_PROTECTION),
    kept("router"),
    kept("tap"),
    kept("statefulSession"),
    kept("headerValidationSettings"),
];
const HTTP_GATEWAY: &[Field] = &[
    list("virtualServices", REF),
    leaf("virtualServiceSelector"),
    refused(
        "virtualServiceExpressions",
        "epoxy selects virtual services by refs, labels (virtualServiceSelector) or namespaces; refused so that no other virtual services are served on this listener",
    ),
    leaf("virtualServiceNamespaces"),
    one("options", HTTP_LISTENER_OPTIONS),
];
/// Gloo's `ListenerOptions` (listener_options.proto).
const LISTENER_OPTIONS: &[Field] = &[
    kept("accessLoggingService"),
    kept("extensions"),
    kept("perConnectionBufferLimitBytes"),
    kept("socketOptions"),
    refused(
        "proxyProtocol",
        "epoxy does not read the PROXY protocol; refused: every connection would fail to parse",
    ),
    kept("connectionBalanceConfig"),
    kept("listenerAccessLoggingService"),
    kept("tcpStats"),
];
pub const GATEWAY: &[Field] = &[
    leaf("ssl"),
    leaf("bindAddress"),
    leaf("bindPort"),
    one("options", LISTENER_OPTIONS),
    // `true` is refused by validation; `false` says what epoxy does.
    leaf("useProxyProto"),
    one("httpGateway", HTTP_GATEWAY),
    refused(
        "tcpGateway",
        "epoxy serves HTTP gateways only; refused so that this port is not served as HTTP",
    ),
    refused(
        "hybridGateway",
        "epoxy serves HTTP gateways only (no matchers by source or SNI); refused so that no traffic is served under other terms",
    ),
    // One gateway process serves every Gateway of the store.
    kept("proxyNames"),
    kept("routeOptions"),
    quiet("namespacedStatuses"),
];
