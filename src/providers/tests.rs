use super::*;
use crate::dialects::post;

fn get<'a>(host: &'a str, path: &'a str) -> Target<'a> {
    Target {
        method: "GET",
        ..post(host, path)
    }
}

/// (provider, api, operation, model named by the path) of a POST.
fn routed(providers: &Providers, host: &str, path: &str) -> Option<(String, &'static str)> {
    providers
        .route(&post(host, path))
        .map(|r| (r.provider.name.to_string(), r.dialect.name))
}

#[test]
fn the_embedded_table_is_valid_and_names_each_host_once() {
    let table = Providers::builtin();
    let mut seen = std::collections::HashSet::new();
    for entry in table.entries() {
        assert!(!entry.apis.is_empty(), "{} speaks no api", entry.name);
        assert!(!entry.prices.is_empty(), "{} has no prices", entry.name);
        for host in &entry.hosts {
            assert!(seen.insert(host.as_str().to_owned()), "{host:?} twice");
        }
    }
}

#[test]
fn no_two_dialects_recognise_the_same_suffix() {
    // Order in DIALECTS and in a provider's `apis` must not matter.
    let suffixes = [
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/models/claude-sonnet-4-5@20250929:rawPredict",
        "/chat/completions",
        "/responses",
        "/models/gemini-2.5-pro:generateContent",
        "/v1internal:streamGenerateContent",
        "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/converse",
        "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/invoke",
    ];
    for path in suffixes {
        let target = post("h", path);
        let matching: Vec<&str> = DIALECTS
            .iter()
            .filter(|d| (d.detect)(&target).is_some())
            .map(|d| d.name)
            .collect();
        assert!(matching.len() <= 1, "{path}: {matching:?}");
    }
}

#[test]
fn first_party_endpoints_keep_their_routes() {
    let t = Providers::builtin();
    let r = |h, p| routed(&t, h, p);
    let anthropic = ("anthropic".to_owned(), "anthropic_messages");
    assert_eq!(
        r("api.anthropic.com", "/v1/messages"),
        Some(anthropic.clone())
    );
    assert_eq!(r("API.Anthropic.com", "/v1/messages/"), Some(anthropic));
    let count = t.route(&post("api.anthropic.com", "/v1/messages/count_tokens"));
    assert_eq!(count.map(|r| r.operation), Some(Operation::CountTokens));
    assert!(r("api.anthropic.com", "/v1/messages/batches").is_none());
    assert!(t.route(&get("api.anthropic.com", "/v1/messages")).is_none());
    assert!(
        t.route(&get("api.anthropic.com", "/api/claude_code/policy_limits"))
            .is_none()
    );
    assert_eq!(
        r("api.openai.com", "/v1/chat/completions"),
        Some(("openai".into(), "openai_chat_completions"))
    );
    assert_eq!(
        r("chatgpt.com", "/backend-api/codex/responses"),
        Some(("openai".into(), "openai_responses"))
    );
    let ws = Target {
        websocket: true,
        ..get("api.openai.com", "/v1/responses")
    };
    assert_eq!(
        t.route(&ws).map(|r| r.dialect.name),
        Some("openai_responses")
    );
    assert!(t.route(&get("api.openai.com", "/v1/responses")).is_none());
    assert!(
        t.route(&get("chatgpt.com", "/backend-api/codex/models"))
            .is_none()
    );
    let sse = Target {
        query: Some("alt=sse"),
        ..post(
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        )
    };
    let gemini = t.route(&sse).expect("gemini");
    assert_eq!(
        (&*gemini.provider.name, gemini.operation, gemini.framing),
        ("gcp.gemini", Operation::GenerateContent, Framing::Json)
    );
    let array = t.route(&post(
        "generativelanguage.googleapis.com",
        "/v1/models/gemini-2.5-pro:streamGenerateContent",
    ));
    assert_eq!(array.map(|r| r.framing), Some(Framing::JsonArray));
    assert!(
        r(
            "generativelanguage.googleapis.com",
            "/v1beta/models/x:embedContent"
        )
        .is_none()
    );
    assert_eq!(
        r(
            "generativelanguage.googleapis.com",
            "/v1beta/openai/chat/completions"
        ),
        Some(("gcp.gemini".into(), "openai_chat_completions"))
    );
    // Gemini CLI signed in with Google reports `gcp.gen_ai` for Code Assist itself.
    assert_eq!(
        r(
            "cloudcode-pa.googleapis.com",
            "/v1internal:streamGenerateContent"
        ),
        Some(("gcp.gen_ai".into(), "gemini_code_assist"))
    );
    // Not intercepted at all: no route.
    assert!(r("example.com", "/v1/messages").is_none());
}

#[test]
fn cloud_and_compatible_endpoints_are_one_table_entry_each() {
    let t = Providers::builtin();
    let r = |h, p| routed(&t, h, p);
    let cases = [
        (
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream",
            "aws.bedrock",
            "bedrock_converse",
        ),
        (
            "bedrock-runtime.eu-west-3.amazonaws.com",
            "/model/anthropic.claude-haiku-4-5-20251001-v1:0/invoke-with-response-stream",
            "aws.bedrock",
            "bedrock_invoke",
        ),
        (
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse",
            "aws.bedrock",
            "bedrock_converse",
        ),
        (
            "us-east5-aiplatform.googleapis.com",
            "/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict",
            "gcp.vertex_ai",
            "anthropic_messages",
        ),
        (
            "aiplatform.googleapis.com",
            "/v1/projects/p-1/locations/global/publishers/google/models/gemini-2.5-pro:generateContent",
            "gcp.vertex_ai",
            "gemini_generate_content",
        ),
        (
            "my-res.openai.azure.com",
            "/openai/deployments/gpt4o-prod/chat/completions",
            "azure.ai.openai",
            "openai_chat_completions",
        ),
        (
            "my-res.openai.azure.com",
            "/openai/v1/responses",
            "azure.ai.openai",
            "openai_responses",
        ),
        (
            "my-res.openai.azure.com",
            "/openai/responses",
            "azure.ai.openai",
            "openai_responses",
        ),
        (
            "my-res.services.ai.azure.com",
            "/anthropic/v1/messages",
            "azure.ai.inference",
            "anthropic_messages",
        ),
        (
            "openrouter.ai",
            "/api/v1/chat/completions",
            "openrouter",
            "openai_chat_completions",
        ),
        (
            "openrouter.ai",
            "/api/v1/messages",
            "openrouter",
            "anthropic_messages",
        ),
        (
            "api.deepseek.com",
            "/chat/completions",
            "deepseek",
            "openai_chat_completions",
        ),
        (
            "api.deepseek.com",
            "/anthropic/v1/messages",
            "deepseek",
            "anthropic_messages",
        ),
        (
            "api.groq.com",
            "/openai/v1/chat/completions",
            "groq",
            "openai_chat_completions",
        ),
        (
            "api.x.ai",
            "/v1/chat/completions",
            "x_ai",
            "openai_chat_completions",
        ),
        (
            "api.mistral.ai",
            "/v1/chat/completions",
            "mistral_ai",
            "openai_chat_completions",
        ),
        (
            "api.moonshot.ai",
            "/anthropic/v1/messages",
            "moonshot_ai",
            "anthropic_messages",
        ),
        (
            "api.z.ai",
            "/api/paas/v4/chat/completions",
            "zai",
            "openai_chat_completions",
        ),
        (
            "api.together.xyz",
            "/v1/chat/completions",
            "together_ai",
            "openai_chat_completions",
        ),
        (
            "api.fireworks.ai",
            "/inference/v1/chat/completions",
            "fireworks_ai",
            "openai_chat_completions",
        ),
        (
            "api.cerebras.ai",
            "/v1/chat/completions",
            "cerebras",
            "openai_chat_completions",
        ),
        (
            "api.perplexity.ai",
            "/chat/completions",
            "perplexity",
            "openai_chat_completions",
        ),
    ];
    for (host, path, provider, api) in cases {
        assert_eq!(
            r(host, path),
            Some((provider.to_owned(), api)),
            "{host}{path}"
        );
    }
    // A prefix matches whole segments only, and a wildcard one label only.
    assert!(r("my-res.openai.azure.com", "/openaiX/v1/chat/completions").is_none());
    assert!(
        r(
            "evil.com.openai.azure.com.attacker.net",
            "/openai/v1/responses"
        )
        .is_none()
    );
    assert!(r("bedrock-runtime.amazonaws.com", "/model/x/converse").is_none());
    assert!(
        r(
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/x/get-async-invoke"
        )
        .is_none()
    );
    assert!(
        r(
            "us-east5-aiplatform.googleapis.com",
            "/v1/projects/p/locations/l/publishers/meta/models/llama:rawPredict"
        )
        .is_none()
    );
}

#[test]
fn a_deployment_in_the_path_names_the_model() {
    let t = Providers::builtin();
    let route = t
        .route(&post(
            "my-res.openai.azure.com",
            "/openai/deployments/gpt%2D4o%20prod/chat/completions",
        ))
        .expect("azure deployment");
    assert_eq!(route.path_model.as_deref(), Some("gpt-4o prod"));
    let path = "/openai/deployments/gpt%2D4o%20prod/chat/completions";
    assert_eq!(&path[route.api_path..], "/chat/completions");
    let plain = t
        .route(&post(
            "my-res.openai.azure.com",
            "/openai/v1/chat/completions",
        ))
        .expect("v1");
    assert_eq!(plain.path_model, None);
}

#[test]
fn host_patterns_match_label_by_label() {
    let p = |s: &str| HostPattern::parse(s).expect(s);
    assert!(
        p("bedrock-runtime.*.amazonaws.com").matches("bedrock-runtime.us-east-1.amazonaws.com")
    );
    assert!(!p("bedrock-runtime.*.amazonaws.com").matches("bedrock-runtime.a.b.amazonaws.com"));
    assert!(!p("bedrock-runtime.*.amazonaws.com").matches("bedrock-runtime..amazonaws.com"));
    assert!(p("*-aiplatform.googleapis.com").matches("europe-west1-aiplatform.googleapis.com"));
    assert!(!p("*-aiplatform.googleapis.com").matches("-aiplatform.googleapis.com"));
    assert!(!p("*-aiplatform.googleapis.com").matches("aiplatform.googleapis.com"));
    assert!(p("API.Example.com").matches("api.example.com"));
    assert!(p("api.example.com").matches("api.example.com."));
    assert!(!p("api.example.com").matches("xapi.example.com"));
    assert!(p("[::1]").matches("::1"));
    assert!(p("127.0.0.1").matches("127.0.0.1"));
    assert!(!p("127.0.0.1").matches("127.0.0.2"));
    for bad in [
        "*",
        "*.com",
        "a.*",
        "bad host",
        "a..b",
        "**.example.com",
        "",
        "a_b.com",
    ] {
        assert!(HostPattern::parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn path_prefixes_are_checked() {
    for bad in ["v1", "/v1/", "//v1", "/**/v1", "/v1?x", "/a*b"] {
        assert!(PathPattern::parse(bad).is_err(), "{bad:?} accepted");
    }
    for good in [
        "",
        "/v1",
        "/openai/deployments/{model}",
        "/v1/projects/*/x",
        "/**",
    ] {
        assert!(PathPattern::parse(good).is_ok(), "{good:?} refused");
    }
}

#[test]
fn intercept_adds_hosts_and_no_intercept_removes_them() {
    let t = Providers::new(
        None,
        &["llm.corp.example".into(), "api.anthropic.com".into()],
        &["*.openai.azure.com".into(), "api.deepseek.com".into()],
    )
    .expect("valid");
    assert!(t.intercepts("llm.corp.example"));
    assert!(!t.intercepts("my-res.openai.azure.com"));
    assert!(!t.intercepts("api.deepseek.com"));
    assert!(t.intercepts("api.groq.com"));
    assert!(!t.intercepted().contains(&"api.deepseek.com"));
    // A host no entry names: its own provider, any API under any prefix.
    assert_eq!(
        routed(
            &t,
            "llm.corp.example",
            "/gateway/openai/v1/chat/completions"
        ),
        Some(("llm.corp.example".into(), "openai_chat_completions"))
    );
    assert_eq!(
        routed(&t, "llm.corp.example", "/v1/messages"),
        Some(("llm.corp.example".into(), "anthropic_messages"))
    );
    let generic = t.provider_of("llm.corp.example").expect("entry");
    assert_eq!(generic.price_namespaces(), FIRST_PARTY_PRICES);
    // A host already in the table keeps its entry.
    assert_eq!(
        t.provider_of("api.anthropic.com").map(|p| &*p.name),
        Some("anthropic")
    );
    let err = Providers::new(None, &["*.com".into()], &[]).expect_err("too wide");
    assert_eq!(err.entry, "--intercept");
    let err = Providers::new(None, &[], &["a b".into()]).expect_err("bad");
    assert_eq!(err.entry, "--no-intercept");
}

#[test]
fn a_providers_file_adds_and_replaces_entries() {
    let file = r#"{"providers": [
        {"name": "deepseek", "hosts": ["llm.deepseek.internal"],
         "apis": {"openai_chat_completions": ["/v9"]}, "prices": ["deepseek"]},
        {"name": "acme", "hosts": ["*.llm.acme.example"],
         "apis": {"anthropic_messages": ["/claude"], "openai_responses": ["/oai/v1"]},
         "prices": ["anthropic", "openai"], "context_windows": {"acme-large": 500000}}
    ]}"#;
    let t = Providers::new(Some(("p.json", file)), &[], &[]).expect("valid");
    assert_eq!(
        routed(&t, "eu.llm.acme.example", "/claude/v1/messages"),
        Some(("acme".into(), "anthropic_messages"))
    );
    assert_eq!(
        routed(&t, "llm.deepseek.internal", "/v9/chat/completions"),
        Some(("deepseek".into(), "openai_chat_completions"))
    );
    let acme = t.provider_of("eu.llm.acme.example").expect("acme");
    assert_eq!(acme.context_windows.get("acme-large"), Some(&500_000));
    // The replaced entry's hosts are no longer DeepSeek's.
    assert!(!t.intercepts("api.deepseek.com"));
    assert!(t.intercepts("api.anthropic.com"));

    let errors = [
        (
            r#"{"providers": [{"name": "x", "hosts": [], "apis": {"klingon": [""]}}]}"#,
            "unknown api",
        ),
        (
            r#"{"providers": [{"name": "x", "hosts": ["*.com"], "apis": {}}]}"#,
            "wildcard",
        ),
        (
            r#"{"providers": [{"name": "x", "hosts": [], "apis": {"openai_responses": ["v1"]}}]}"#,
            "must start with",
        ),
        (
            r#"{"providers": [{"name": "", "hosts": [], "apis": {}}]}"#,
            "name must be",
        ),
        (
            r#"{"providers": [{"name": "x", "hosts": [], "apis": {}, "color": 1}]}"#,
            "unknown field",
        ),
        (
            r#"{"providers": [{"name": "x", "hosts": [], "apis": {}}, {"name": "x", "hosts": [], "apis": {}}]}"#,
            "named twice",
        ),
        ("not json", "not a provider table"),
        (
            r#"{"providers": [{"name": "x", "hosts": [], "apis": {}, "context_windows": {"m": 0}}]}"#,
            "context window",
        ),
    ];
    for (text, want) in errors {
        let err = Providers::new(Some(("p.json", text)), &[], &[]).expect_err(text);
        assert!(err.to_string().contains(want), "{err} lacks {want:?}");
        assert!(err.entry.starts_with("p.json"), "{err}");
    }
}

#[test]
fn the_readme_lists_every_provider_with_its_hosts() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("### Providers")
        .nth(1)
        .expect("a Providers section");
    for entry in Providers::builtin().entries() {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", entry.name)))
            .unwrap_or_else(|| panic!("README has no row for {}", entry.name));
        for host in &entry.hosts {
            assert!(
                row.contains(&format!("`{}`", host.as_str())),
                "{}: README row lacks {}",
                entry.name,
                host.as_str()
            );
        }
        for namespace in &entry.prices {
            assert!(
                row.contains(&format!("`{namespace}`")),
                "{}: {namespace}",
                entry.name
            );
        }
    }
}

#[test]
fn a_wildcard_never_crosses_a_dot() {
    // An S3 bucket named `bedrock-runtime.x` is not Bedrock.
    let t = Providers::builtin();
    assert!(!t.intercepts("bedrock-runtime.x.s3.amazonaws.com"));
    assert!(t.intercepts("bedrock-runtime.us-east-1.amazonaws.com"));
    assert!(!t.intercepts("x.y.openai.azure.com.evil.example"));
}

/// A `**` prefix (every `--intercept` host without an entry) once tried every `/` of the
/// path, and each dialect read the whole rest: a 64 KiB path of slashes was quadratic work
/// on a runtime thread. Only the last few boundaries are tried now.
#[test]
fn a_path_of_slashes_on_a_gateway_host_costs_linear_work() {
    let t = Providers::new(None, &["gw.corp.example".into()], &[]).expect("valid");
    let slashes = "/".repeat(65_534);
    let candidates = PathPattern::parse("/**").expect("valid").ends(&slashes);
    assert!(
        candidates.len() <= MAX_SUFFIX_SEGMENTS,
        "{}",
        candidates.len()
    );
    assert!(t.route(&post("gw.corp.example", &slashes)).is_none());
    let deep = format!("{}/v1/chat/completions", "/a".repeat(10_000));
    assert_eq!(
        routed(&t, "gw.corp.example", &deep),
        Some(("gw.corp.example".into(), "openai_chat_completions"))
    );
}

#[test]
fn ip_patterns_compare_addresses_not_spellings() {
    let t = Providers::new(None, &["2001:db8::1".into()], &[]).expect("valid");
    assert!(t.intercepts("[2001:DB8:0::1]"));
    let t =
        Providers::new(None, &["2001:db8::1".into()], &["2001:DB8:0::1".into()]).expect("valid");
    assert!(!t.intercepts("2001:db8::1"), "--no-intercept wins");
}

#[test]
fn a_regional_price_namespace_takes_the_region_from_the_host() {
    let t = Providers::builtin();
    let bedrock = t
        .provider_of("bedrock-runtime.us-gov-west-1.amazonaws.com")
        .expect("bedrock");
    assert_eq!(
        bedrock.price_namespaces_for("bedrock-runtime.us-gov-west-1.amazonaws.com"),
        ["bedrock/us-gov-west-1", "bedrock"]
    );
    // A host whose pattern has no wildcard says no region: the namespace is left out.
    assert_eq!(
        bedrock.price_namespaces_for("elsewhere.example"),
        ["bedrock"]
    );
    let p = HostPattern::parse("*-aiplatform.googleapis.com").expect("valid");
    assert_eq!(
        p.capture("europe-west4-aiplatform.googleapis.com"),
        Some("europe-west4")
    );
    assert_eq!(
        HostPattern::parse("api.x.ai")
            .expect("valid")
            .capture("api.x.ai"),
        Some("")
    );
}
