//! The deployment files are checked here, since no Docker engine or
//! Kubernetes cluster runs where the tests do (deploy/README.md says what
//! that leaves unverified):
//!
//! - the Helm chart passes `helm lint --strict`, renders with the default
//!   values and with `ci/production-values.yaml`, and everything rendered
//!   passes `kubernetes-validate --strict` for Kubernetes 1.35 and yamllint;
//!   the rendered objects have the shape the chart promises (shard lists
//!   from the StatefulSets, as pod URLs or, with `shardDiscovery: srv` as
//!   the production values have it, as their SRV records; probes, drain times, the SIP Service's ports);
//! - docker-compose.yml (and its TLS/auth override) names only our image
//!   and well-known official ones, the cluster it promises, and only roles,
//!   HERALD_* variables and ports that Herald has, read from the real
//!   binary's `--help`;
//! - the Grafana dashboards parse, and every data source they use is
//!   provisioned; every Herald metric and label they query is listed in
//!   deploy/grafana/README.md;
//! - every YAML file of deploy/, the chart's values and the compose files
//!   pass yamllint.
//!
//! helm, kubernetes-validate and yamllint are found through HERALD_HELM,
//! HERALD_KUBERNETES_VALIDATE and HERALD_YAMLLINT, then on PATH, then in
//! .ci/tools/bin (where .ci/run installs them). A missing tool fails the
//! test, saying how to install it: a silent skip would let the deployment
//! rot unseen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use serde_yaml_ng::Value;
use testkit::Herald;

/// Names the deployment files use that a branch not yet merged adds to
/// Herald: until it is merged `herald --help` lacks them and the check
/// reports them without failing (HERALD_DEPLOY_STRICT=1 makes them fail).
/// Empty once everything is merged; keep it so.
const AWAITING_MERGE: &[&str] = &[];

/// Images docker-compose.yml may run besides the one built from
/// deploy/Dockerfile: official images, by repository.
const OFFICIAL_IMAGES: &[&str] = &[
    "redis",
    "otel/opentelemetry-collector",
    "otel/opentelemetry-collector-contrib",
    "prom/prometheus",
    "grafana/grafana",
];

const KUBERNETES_VERSION: &str = "1.35.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A validation tool: its env variable, then PATH, then .ci/tools/bin.
fn tool(name: &str, var: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Ok(PathBuf::from(path));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let local = root().join(".ci/tools/bin").join(name);
    if !local.is_file() {
        install_tools()
            .with_context(|| format!("{name} was not found ({var}, PATH, .ci/tools/bin)"))?;
    }
    ensure!(
        local.is_file(),
        "{name} is needed to validate the deployment files and was not found \
         ({var}, PATH, .ci/tools/bin) even after .ci/install-tools. Install {name} \
         and put it on PATH or in {var}."
    );
    Ok(local)
}

/// Runs `.ci/install-tools` once per test run (the tests of this file run in
/// parallel threads and would otherwise install side by side), so the
/// README's test command works on a fresh checkout as `.ci/run` does.
fn install_tools() -> Result<()> {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let out = Command::new("bash")
                .arg(root().join(".ci/install-tools"))
                .current_dir(root())
                .output()
                .map_err(|e| format!("running .ci/install-tools: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    ".ci/install-tools failed (it needs network, npm, unzip and python3 \
                     with venv):\n{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

fn helm() -> Result<PathBuf> {
    tool("helm", "HERALD_HELM")
}

/// Runs a command; its stdout, or an error with everything it printed.
fn run(program: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "`{} {}` failed ({}):\n{}\n{}",
        program.display(),
        args.join(" "),
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(root().join(path)).with_context(|| format!("reading {path}"))
}

/// Every document of a YAML stream, with `<<` merge keys applied.
fn yaml_docs(text: &str, what: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let mut value =
            Value::deserialize(doc).with_context(|| format!("{what} is not valid YAML"))?;
        value
            .apply_merge()
            .with_context(|| format!("merge keys in {what}"))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

fn yaml(path: &str) -> Result<Value> {
    let mut docs = yaml_docs(&read(path)?, path)?;
    ensure!(docs.len() == 1, "{path}: expected one YAML document");
    Ok(docs.remove(0))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    cur.as_str()
}

fn map_entries(v: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Mapping(map)) = v else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.as_str()?.to_string(), value))
        })
        .collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Compose interpolation: `${VAR:-default}` and `${VAR:?msg}` become the
/// default (or empty), so values can be checked as the defaults give them.
fn interpolate(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.parse().ok()
}

// ---------------------------------------------------------------------------
// What Herald has: read from the binary's --help.

struct HeraldNames {
    env: BTreeSet<String>,
    roles: BTreeSet<String>,
}

fn herald_names() -> Result<HeraldNames> {
    let bin = Herald::binary()?;
    let help = run(&bin, &["--help"])?;
    let env = help
        .match_indices("[env: ")
        .filter_map(|(i, _)| {
            let name = &help[i + 6..];
            let end = name.find(['=', ']'])?;
            Some(name[..end].to_string())
        })
        .collect::<BTreeSet<_>>();
    ensure!(
        env.contains("HERALD_SIP_LISTEN"),
        "herald --help lists no HERALD_SIP_LISTEN; has its format changed?\n{help}"
    );
    let commands = help
        .split_once("Commands:")
        .context("herald --help lists no commands")?
        .1;
    let roles = commands
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect::<BTreeSet<_>>();
    ensure!(roles.contains("edge"), "herald --help lists no edge role");
    Ok(HeraldNames { env, roles })
}

/// Checks that Herald has every name used (`HERALD_*` or `role <name>`),
/// `used` mapping each to where it is used.
fn check_names_exist(used: &BTreeMap<String, BTreeSet<String>>) -> Result<()> {
    let herald = herald_names()?;
    let strict = std::env::var_os("HERALD_DEPLOY_STRICT").is_some();
    let mut missing = Vec::new();
    let mut awaiting = Vec::new();
    for (name, places) in used {
        let known = match name.strip_prefix("role ") {
            Some(role) => herald.roles.contains(role),
            None => herald.env.contains(name),
        };
        if known {
            if AWAITING_MERGE.contains(&name.as_str()) {
                eprintln!(
                    "deploy_validation: {name} is now in herald --help; remove it from \
                     AWAITING_MERGE in tests/deploy_validation.rs"
                );
            }
            continue;
        }
        let line = format!(
            "{name} (used in {})",
            places.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        if AWAITING_MERGE.contains(&name.as_str()) && !strict {
            awaiting.push(line);
        } else {
            missing.push(line);
        }
    }
    if !awaiting.is_empty() {
        eprintln!(
            "deploy_validation: AWAITING MERGE, not yet in herald --help:\n  {}",
            awaiting.join("\n  ")
        );
    }
    ensure!(
        missing.is_empty(),
        "the deployment files use names herald --help does not have:\n  {}",
        missing.join("\n  ")
    );
    Ok(())
}

fn note(used: &mut BTreeMap<String, BTreeSet<String>>, name: &str, place: &str) {
    used.entry(name.to_string())
        .or_default()
        .insert(place.to_string());
}

// ---------------------------------------------------------------------------
// Helm.

const CHART: &str = "helm/herald";
const PRODUCTION_VALUES: &str = "helm/herald/ci/production-values.yaml";

/// The chart rendered with the default values and with the production-like
/// ones, written to files for the validators.
fn render_chart(dir: &Path) -> Result<Vec<(String, PathBuf, Vec<Value>)>> {
    let helm = helm()?;
    let mut out = Vec::new();
    for (label, extra) in [
        ("default values", vec![]),
        ("production values", vec!["-f", PRODUCTION_VALUES]),
    ] {
        let mut args = vec![
            "template",
            "herald",
            CHART,
            "--namespace",
            "sip",
            "--kube-version",
            KUBERNETES_VERSION,
        ];
        args.extend(extra);
        let text = run(&helm, &args)?;
        // .yamllint.yaml lets lines in `rendered-chart/` run long (the
        // dashboards' JSON is embedded).
        let file = dir.join(format!("{}.yaml", label.replace(' ', "-")));
        std::fs::write(&file, &text)?;
        let docs = yaml_docs(&text, &format!("helm template with {label}"))?;
        out.push((label.to_string(), file, docs));
    }
    Ok(out)
}

fn kind_named<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| {
            str_at(d, &["kind"]) == Some(kind) && str_at(d, &["metadata", "name"]) == Some(name)
        })
        .with_context(|| format!("no {kind} {name} rendered"))
}

fn container(workload: &Value) -> Result<&Value> {
    workload
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("containers"))
        .and_then(|c| c.get(0))
        .context("workload has no container")
}

/// The container's env as name -> literal value (references as "<ref>").
fn env_of(c: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(Value::Sequence(items)) = c.get("env") {
        for item in items {
            if let Some(name) = str_at(item, &["name"]) {
                let value = str_at(item, &["value"]).unwrap_or("<ref>");
                env.insert(name.to_string(), value.to_string());
            }
        }
    }
    env
}

fn int_at(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    cur.as_i64()
}

/// What the chart promises, checked on the rendered objects.
fn check_rendered_shape(label: &str, docs: &[Value], values: &Value) -> Result<()> {
    let config = kind_named(docs, "ConfigMap", "herald-config")?;
    for role in ["presence", "messaging"] {
        let name = format!("herald-{role}");
        let sts = kind_named(docs, "StatefulSet", &name)?;
        let replicas = int_at(sts, &["spec", "replicas"]).context("StatefulSet replicas")?;
        let svc = kind_named(docs, "Service", &name)?;
        ensure!(
            str_at(svc, &["spec", "clusterIP"]) == Some("None"),
            "{label}: Service {name} is not headless"
        );
        ensure!(
            str_at(sts, &["spec", "serviceName"]) == Some(name.as_str()),
            "{label}: StatefulSet {name} does not use its headless Service"
        );
        let var = format!("HERALD_{}_SHARDS", role.to_uppercase());
        let list = str_at(config, &["data", &var]).with_context(|| format!("{label}: no {var}"))?;
        let srv = str_at(values, &["shardDiscovery"]) == Some("srv");
        let not_ready = svc
            .get("spec")
            .and_then(|s| s.get("publishNotReadyAddresses"))
            .and_then(Value::as_bool);
        if srv {
            // The SRV records of the Service's port named grpc, which list
            // ready pods only (a pod joins once it has loaded its slots).
            let expect = format!("dns+srv:_grpc._tcp.{name}.sip.svc.");
            ensure!(
                list.starts_with(&expect),
                "{label}: {var} is {list}, not the SRV records {expect}..."
            );
            let grpc_port = svc
                .get("spec")
                .and_then(|s| s.get("ports"))
                .and_then(Value::as_sequence)
                .is_some_and(|ports| ports.iter().any(|p| str_at(p, &["name"]) == Some("grpc")));
            ensure!(grpc_port, "{label}: Service {name} has no port named grpc");
            ensure!(
                not_ready == Some(false),
                "{label}: Service {name} lists pods before they are ready"
            );
            ensure!(
                str_at(config, &["data", "HERALD_SHARD_DNS_INTERVAL"]).is_some(),
                "{label}: no HERALD_SHARD_DNS_INTERVAL with SRV discovery"
            );
        } else {
            let urls: Vec<&str> = list.split(',').collect();
            ensure!(
                urls.len() as i64 == replicas,
                "{label}: {var} has {} shards, the StatefulSet {replicas} replicas",
                urls.len()
            );
            for (i, url) in urls.iter().enumerate() {
                let expect = format!("http://{name}-{i}.{name}.sip.svc.");
                ensure!(
                    url.starts_with(&expect),
                    "{label}: shard {i} of {var} is {url}, not the pod {name}-{i}"
                );
            }
        }
        let env = env_of(container(sts)?);
        ensure!(
            env.contains_key("HERALD_SHARD_ID"),
            "{label}: {name} sets no HERALD_SHARD_ID"
        );
        kind_named(docs, "PodDisruptionBudget", &name)?;
    }

    let edge = kind_named(docs, "Deployment", "herald-edge")?;
    let c = container(edge)?;
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        ensure!(
            str_at(c, &[probe, "httpGet", "path"]) == Some(path),
            "{label}: the edge's {probe} is not on {path}"
        );
    }
    ensure!(
        c.get("resources").and_then(|r| r.get("limits")).is_some()
            && c.get("resources").and_then(|r| r.get("requests")).is_some(),
        "{label}: the edge has no resource requests and limits"
    );
    let env = env_of(c);
    let drain: i64 = env
        .get("HERALD_DRAIN_TIMEOUT")
        .context("edge sets no HERALD_DRAIN_TIMEOUT")?
        .parse()?;
    let sleep = int_at(c, &["lifecycle", "preStop", "sleep", "seconds"]).context("edge preStop")?;
    let grace = int_at(
        edge,
        &["spec", "template", "spec", "terminationGracePeriodSeconds"],
    )
    .context("edge terminationGracePeriodSeconds")?;
    ensure!(
        grace > drain + sleep,
        "{label}: the edge's grace period {grace}s does not cover preStop {sleep}s + drain {drain}s"
    );
    kind_named(docs, "HorizontalPodAutoscaler", "herald-edge")?;
    kind_named(docs, "PodDisruptionBudget", "herald-edge")?;

    let tls = values
        .get("tls")
        .and_then(|t| t.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let sip = kind_named(docs, "Service", "herald-sip")?;
    let mut ports = BTreeSet::new();
    if let Some(Value::Sequence(items)) = sip.get("spec").and_then(|s| s.get("ports")) {
        for p in items {
            ports.insert(format!(
                "{}/{}",
                int_at(p, &["port"]).unwrap_or(0),
                str_at(p, &["protocol"]).unwrap_or("TCP")
            ));
        }
    }
    let mut expected = vec!["5060/UDP", "5060/TCP", "5066/TCP"];
    if tls {
        expected.extend(["5061/TCP", "7443/TCP"]);
    }
    for port in expected {
        ensure!(
            ports.contains(port),
            "{label}: the SIP Service does not serve {port} (it has {ports:?})"
        );
    }
    if tls {
        ensure!(
            env.contains_key("HERALD_TLS_CERT") && env.contains_key("HERALD_WSS_LISTEN"),
            "{label}: TLS is enabled but the edge is not configured for it"
        );
    }
    let xcap = kind_named(docs, "Deployment", "herald-xcap")?;
    ensure!(
        env_of(container(xcap)?).contains_key("HERALD_XCAP_LISTEN"),
        "{label}: the XCAP server has no HERALD_XCAP_LISTEN"
    );
    kind_named(docs, "Service", "herald-xcap")?;

    // Edges check digest against users in Redis with the shared nonce
    // secret; the XCAP server tells the presence shards of document changes
    // and they name its URL in xcap-diff NOTIFYs; the limits are values.
    for (role, workload) in [("edge", edge), ("xcap", xcap)] {
        let c = container(workload)?;
        let env = env_of(c);
        for var in ["HERALD_REDIS", "HERALD_NONCE_SECRET"] {
            ensure!(env.contains_key(var), "{label}: the {role} gets no {var}");
        }
        let config_name = str_at(config, &["metadata", "name"]).unwrap_or_default();
        let from_config = match c.get("envFrom") {
            Some(Value::Sequence(items)) => items
                .iter()
                .any(|i| str_at(i, &["configMapRef", "name"]) == Some(config_name)),
            _ => false,
        };
        ensure!(
            from_config,
            "{label}: the {role} does not read the ConfigMap {config_name}"
        );
    }
    let realm = str_at(values, &["herald", "realm"]).unwrap_or_default();
    ensure!(
        str_at(config, &["data", "HERALD_REALM"]).unwrap_or_default() == realm,
        "{label}: HERALD_REALM is not herald.realm ({realm:?})"
    );
    for var in [
        "HERALD_PRESENCE_SHARDS",
        "HERALD_XCAP_URL",
        "HERALD_MAX_CONNECTIONS_PER_IP",
        "HERALD_MAX_REQUESTS_PER_IP",
        "HERALD_MAX_REQUESTS_PER_USER",
        "HERALD_MAX_SUBSCRIPTIONS_PER_WATCHER",
    ] {
        ensure!(
            str_at(config, &["data", var]).is_some(),
            "{label}: the ConfigMap sets no {var}"
        );
    }
    if let Some(otlp) = str_at(values, &["telemetry", "otlpEndpoint"]).filter(|e| !e.is_empty()) {
        ensure!(
            str_at(config, &["data", "HERALD_OTLP_ENDPOINT"]) == Some(otlp),
            "{label}: HERALD_OTLP_ENDPOINT is not telemetry.otlpEndpoint"
        );
    }

    // Dashboards as ConfigMaps for Grafana's sidecar, when asked for: all of
    // deploy/grafana/dashboards (the chart reads them through a symlink).
    let wanted = values
        .get("grafanaDashboards")
        .and_then(|g| g.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let dashboards: Vec<&Value> = docs
        .iter()
        .filter(|d| str_at(d, &["metadata", "labels", "grafana_dashboard"]).is_some())
        .collect();
    if wanted {
        let files = std::fs::read_dir(root().join("deploy/grafana/dashboards"))?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count();
        ensure!(
            dashboards.len() == files,
            "{label}: {} dashboard ConfigMaps for {files} dashboards",
            dashboards.len()
        );
        for d in dashboards {
            for (key, json) in map_entries(d.get("data")) {
                serde_json::from_str::<serde_json::Value>(&json)
                    .with_context(|| format!("{label}: ConfigMap entry {key} is not JSON"))?;
            }
        }
    } else {
        ensure!(
            dashboards.is_empty(),
            "{label}: dashboards rendered though not enabled"
        );
    }
    Ok(())
}

/// HERALD_* names and roles the rendered objects use.
fn rendered_names(label: &str, docs: &[Value], used: &mut BTreeMap<String, BTreeSet<String>>) {
    let place = format!("helm template ({label})");
    for doc in docs {
        if str_at(doc, &["kind"]) == Some("ConfigMap") {
            for (k, _) in map_entries(doc.get("data")) {
                if k.starts_with("HERALD_") {
                    note(used, &k, &place);
                }
            }
        }
        if let Ok(c) = container(doc) {
            for name in env_of(c).keys().filter(|k| k.starts_with("HERALD_")) {
                note(used, name, &place);
            }
            if let Some(role) = strings(c.get("args")).first() {
                note(used, &format!("role {role}"), &place);
            }
        }
    }
}

#[test]
fn helm_chart_lints_renders_and_validates_for_kubernetes() -> Result<()> {
    let helm = helm()?;
    let validate = tool("kubernetes-validate", "HERALD_KUBERNETES_VALIDATE")?;
    let yamllint = tool("yamllint", "HERALD_YAMLLINT")?;
    run(&helm, &["lint", "--strict", CHART])?;
    run(&helm, &["lint", "--strict", CHART, "-f", PRODUCTION_VALUES])?;

    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("rendered-chart");
    std::fs::create_dir(&dir)?;
    let rendered = render_chart(&dir)?;
    let mut used = BTreeMap::new();
    for (label, file, docs) in &rendered {
        let file = file.to_str().context("temp path")?;
        run(
            &validate,
            &["-k", KUBERNETES_VERSION, "--strict", "--quiet", file],
        )
        .with_context(|| format!("kubernetes-validate on the chart rendered with {label}"))?;
        run(&yamllint, &["--strict", "-c", ".yamllint.yaml", file])
            .with_context(|| format!("yamllint on the chart rendered with {label}"))?;
        let values = if label == "production values" {
            yaml(PRODUCTION_VALUES)?
        } else {
            yaml("helm/herald/values.yaml")?
        };
        check_rendered_shape(label, docs, &values)?;
        rendered_names(label, docs, &mut used);
    }
    check_names_exist(&used)
}

#[test]
fn helm_chart_refuses_a_grace_period_shorter_than_the_drain() -> Result<()> {
    let helm = helm()?;
    let out = Command::new(&helm)
        .args([
            "template",
            "herald",
            CHART,
            "--set",
            "edge.drainTimeoutSeconds=30",
            "--set",
            "edge.terminationGracePeriodSeconds=20",
        ])
        .current_dir(root())
        .output()?;
    ensure!(
        !out.status.success(),
        "the chart rendered an edge that would be killed mid-drain"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("terminationGracePeriodSeconds"), "{err}");
    // And the schema catches a mistyped value.
    let out = Command::new(&helm)
        .args(["template", "herald", CHART, "--set", "edge.replica=3"])
        .current_dir(root())
        .output()?;
    ensure!(
        !out.status.success(),
        "values.schema.json accepted an unknown key edge.replica"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// docker-compose.yml.

/// The ports deploy/Dockerfile exposes and the HERALD_* defaults it sets.
fn dockerfile() -> Result<(BTreeSet<String>, BTreeMap<String, String>)> {
    let text = read("deploy/Dockerfile")?.replace("\\\n", " ");
    let mut exposed = BTreeSet::new();
    let mut env = BTreeMap::new();
    let mut runtime = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("FROM ") {
            runtime = !line.contains(" AS ");
        }
        if !runtime {
            continue;
        }
        if let Some(ports) = line.strip_prefix("EXPOSE ") {
            exposed.extend(ports.split_whitespace().map(str::to_string));
        }
        if let Some(vars) = line.strip_prefix("ENV ") {
            for pair in vars.split_whitespace() {
                if let Some((k, v)) = pair.split_once('=') {
                    env.insert(k.to_string(), v.to_string());
                }
            }
        }
    }
    ensure!(!exposed.is_empty(), "deploy/Dockerfile exposes no port");
    Ok((exposed, env))
}

fn is_official(image: &str) -> bool {
    let repo = image.split('@').next().unwrap_or(image);
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    let repo = repo.strip_prefix("library/").unwrap_or(repo);
    OFFICIAL_IMAGES.contains(&repo)
}

/// Checks one compose file's services; `base` holds the base file's
/// services when `file` is an override.
fn check_compose(
    file: &str,
    base: Option<&Value>,
    used: &mut BTreeMap<String, BTreeSet<String>>,
) -> Result<Value> {
    let doc = yaml(file)?;
    let (exposed, image_env) = dockerfile()?;
    let Some(Value::Mapping(services)) = doc.get("services") else {
        bail!("{file} has no services");
    };
    for (name, svc) in services {
        let name = name.as_str().context("service name")?;
        let base_svc = base
            .and_then(|b| b.get("services"))
            .and_then(|s| s.get(name));
        if base.is_some() {
            ensure!(
                base_svc.is_some(),
                "{file} overrides {name}, which docker-compose.yml does not define"
            );
        }
        let image = str_at(svc, &["image"])
            .or_else(|| base_svc.and_then(|b| str_at(b, &["image"])))
            .with_context(|| format!("{file}: service {name} names no image"))?;
        let built = svc
            .get("build")
            .or_else(|| base_svc.and_then(|b| b.get("build")));
        let ours = match built {
            Some(build) => {
                ensure!(
                    str_at(build, &["dockerfile"]) == Some("deploy/Dockerfile")
                        && str_at(build, &["context"]) == Some("."),
                    "{file}: {name} builds from something other than deploy/Dockerfile"
                );
                true
            }
            None => false,
        };
        ensure!(
            ours || is_official(image),
            "{file}: service {name} runs {image}, neither built from deploy/Dockerfile \
             nor an official image ({OFFICIAL_IMAGES:?})"
        );

        // Files mounted from the repository must exist (deploy/tls is the
        // operator's, see deploy/compose.secure.yml).
        for volume in strings(svc.get("volumes")) {
            if let Some(src) = volume.split(':').next().filter(|s| s.starts_with("./")) {
                if src != "./deploy/tls" {
                    ensure!(
                        root().join(src).exists(),
                        "{file}: {name} mounts {src}, which does not exist"
                    );
                }
            }
        }
        if !ours {
            continue;
        }

        let place = format!("{file} service {name}");
        let command = strings(svc.get("command"))
            .into_iter()
            .chain(
                base_svc
                    .map(|b| strings(b.get("command")))
                    .unwrap_or_default(),
            )
            .next()
            .with_context(|| format!("{place} names no role"))?;
        note(used, &format!("role {command}"), &place);

        let mut env: BTreeMap<String, String> = image_env.clone();
        if let Some(b) = base_svc {
            env.extend(map_entries(b.get("environment")));
        }
        let own = map_entries(svc.get("environment"));
        for (k, _) in &own {
            ensure!(
                k.starts_with("HERALD_"),
                "{place}: {k} is not a HERALD_* variable"
            );
            note(used, k, &place);
        }
        env.extend(own);
        let env: BTreeMap<String, String> =
            env.into_iter().map(|(k, v)| (k, interpolate(&v))).collect();

        // Every published container port is one this service listens on
        // and one the image exposes.
        for mapping in strings(svc.get("ports")) {
            let (ports, proto) = mapping.split_once('/').unwrap_or((&mapping, "tcp"));
            let target: u16 = ports
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .with_context(|| format!("{place}: bad port mapping {mapping}"))?;
            ensure!(
                exposed.contains(&format!("{target}/{proto}")),
                "{place} publishes {target}/{proto}, which deploy/Dockerfile does not expose"
            );
            let listening = env.iter().any(|(k, v)| {
                k.ends_with("_LISTEN")
                    && (proto == "tcp" || k == "HERALD_SIP_LISTEN")
                    && v.split(',').any(|a| port_of(a) == Some(target))
            });
            ensure!(
                listening,
                "{place} publishes {target}/{proto} but listens on no such port ({env:?})"
            );
        }
        // Shard and edge URLs name services of this compose file and their
        // gRPC port.
        for var in [
            "HERALD_PRESENCE_SHARDS",
            "HERALD_MESSAGING_SHARDS",
            "HERALD_EDGES",
            "HERALD_PUBLIC_GRPC",
        ] {
            for url in env.get(var).map(|v| v.split(',')).into_iter().flatten() {
                let hostport = url.trim_start_matches("http://");
                let (host, port) = hostport
                    .split_once(':')
                    .with_context(|| format!("{place}: {var} entry {url} has no port"))?;
                let all = base.unwrap_or(&doc);
                ensure!(
                    all.get("services").and_then(|s| s.get(host)).is_some(),
                    "{place}: {var} names {host}, which is not a service"
                );
                let grpc = env.get("HERALD_GRPC_LISTEN").and_then(|a| port_of(a));
                ensure!(
                    grpc == port.parse().ok(),
                    "{place}: {var} entry {url} is not on the gRPC port"
                );
            }
        }
    }
    Ok(doc)
}

#[test]
fn docker_compose_uses_our_image_official_ones_and_herald_names() -> Result<()> {
    let mut used = BTreeMap::new();
    for name in dockerfile()?.1.keys() {
        note(&mut used, name, "deploy/Dockerfile");
    }
    let compose = check_compose("docker-compose.yml", None, &mut used)?;
    check_compose("deploy/compose.secure.yml", Some(&compose), &mut used)?;

    // The cluster the issue asks for.
    let services = compose.get("services").context("services")?;
    let role_count = |role: &str| {
        let Value::Mapping(map) = services else {
            return 0;
        };
        map.values()
            .filter(|s| strings(s.get("command")).first().map(String::as_str) == Some(role))
            .count()
    };
    for (role, n) in [("edge", 2), ("presence", 2), ("messaging", 1), ("xcap", 1)] {
        ensure!(
            role_count(role) == n,
            "compose runs {} {role}, not {n}",
            role_count(role)
        );
    }
    for svc in ["redis", "otel-collector", "prometheus", "grafana"] {
        ensure!(services.get(svc).is_some(), "compose has no {svc}");
    }
    // What each role needs of the flags: users in Redis for the edges'
    // digest, the presence shards for the XCAP server's change events, the
    // limits and the OTLP endpoint everywhere.
    let env_of_service = |name: &str, doc: &Value| -> BTreeMap<String, String> {
        let svc = doc.get("services").and_then(|s| s.get(name));
        map_entries(svc.and_then(|s| s.get("environment")))
            .into_iter()
            .collect()
    };
    let required: &[(&str, &[&str])] = &[
        ("edge-0", &["HERALD_REDIS", "HERALD_OTLP_ENDPOINT"]),
        ("edge-1", &["HERALD_REDIS", "HERALD_OTLP_ENDPOINT"]),
        (
            "xcap",
            &[
                "HERALD_REDIS",
                "HERALD_PRESENCE_SHARDS",
                "HERALD_XCAP_LISTEN",
                "HERALD_OTLP_ENDPOINT",
            ],
        ),
        (
            "presence-0",
            &["HERALD_XCAP_URL", "HERALD_MAX_SUBSCRIPTIONS_PER_WATCHER"],
        ),
        (
            "edge-0",
            &[
                "HERALD_MAX_CONNECTIONS_PER_IP",
                "HERALD_MAX_REQUESTS_PER_IP",
                "HERALD_MAX_REQUESTS_PER_USER",
            ],
        ),
    ];
    for (name, vars) in required {
        let env = env_of_service(name, &compose);
        for var in *vars {
            ensure!(
                env.contains_key(*var),
                "docker-compose.yml: {name} sets no {var}"
            );
        }
    }
    let secure = yaml("deploy/compose.secure.yml")?;
    for name in ["edge-0", "edge-1", "xcap"] {
        let env = env_of_service(name, &secure);
        for var in ["HERALD_REALM", "HERALD_NONCE_SECRET"] {
            ensure!(
                env.contains_key(var),
                "deploy/compose.secure.yml: {name} sets no {var}"
            );
        }
    }
    for name in ["edge-0", "edge-1"] {
        let env = env_of_service(name, &secure);
        for var in [
            "HERALD_TLS_LISTEN",
            "HERALD_WSS_LISTEN",
            "HERALD_TLS_CERT",
            "HERALD_TLS_KEY",
        ] {
            ensure!(
                env.contains_key(var),
                "deploy/compose.secure.yml: {name} sets no {var}"
            );
        }
    }
    // Each shard's id is its place in the shard list.
    let Value::Mapping(map) = services else {
        bail!("services is not a map");
    };
    for (name, svc) in map {
        let name = name.as_str().context("service name")?;
        let env = map_entries(svc.get("environment"))
            .into_iter()
            .collect::<BTreeMap<_, _>>();
        let Some(id) = env.get("HERALD_SHARD_ID") else {
            continue;
        };
        let role = strings(svc.get("command"))
            .first()
            .cloned()
            .unwrap_or_default();
        let list = env
            .get(&format!("HERALD_{}_SHARDS", role.to_uppercase()))
            .context("shard list")?;
        let me = env.get("HERALD_PUBLIC_GRPC").context("public gRPC")?;
        let at = list.split(',').position(|u| u == me);
        ensure!(
            at.map(|i| i.to_string()).as_ref() == Some(id),
            "{name}: HERALD_SHARD_ID {id} is not its place in {list}"
        );
    }

    // Prometheus scrapes every Herald service on its health port.
    let prometheus = yaml("deploy/prometheus.yml")?;
    let mut targets = BTreeSet::new();
    if let Some(Value::Sequence(jobs)) = prometheus.get("scrape_configs") {
        for job in jobs {
            if let Some(Value::Sequence(groups)) = job.get("static_configs") {
                for g in groups {
                    targets.extend(strings(g.get("targets")));
                }
            }
        }
    }
    for (name, svc) in map {
        let name = name.as_str().context("name")?;
        if svc.get("build").is_some() {
            let health = map_entries(svc.get("environment"))
                .into_iter()
                .find(|(k, _)| k == "HERALD_HEALTH_LISTEN")
                .and_then(|(_, v)| port_of(&v))
                .context("HERALD_HEALTH_LISTEN")?;
            ensure!(
                targets.contains(&format!("{name}:{health}")),
                "deploy/prometheus.yml does not scrape {name}:{health}"
            );
        }
    }
    for target in &targets {
        let host = target.split(':').next().unwrap_or_default();
        ensure!(
            services.get(host).is_some(),
            "prometheus scrapes {target}, not a service"
        );
    }

    // The chart's container ports are ones the image exposes.
    let (exposed, _) = dockerfile()?;
    let values = yaml("helm/herald/values.yaml")?;
    for (name, port) in map_entries(values.get("ports")) {
        ensure!(
            exposed.contains(&format!("{port}/tcp")),
            "helm value ports.{name} = {port} is not exposed by deploy/Dockerfile"
        );
    }
    check_names_exist(&used)
}

// ---------------------------------------------------------------------------
// Grafana.

#[test]
fn grafana_dashboards_parse_and_use_provisioned_data_sources() -> Result<()> {
    let provisioned: BTreeSet<String> = {
        let doc = yaml("deploy/grafana/provisioning/datasources/prometheus.yaml")?;
        let mut uids = BTreeSet::new();
        if let Some(Value::Sequence(items)) = doc.get("datasources") {
            for d in items {
                uids.insert(
                    str_at(d, &["uid"])
                        .context("a data source without uid")?
                        .to_string(),
                );
            }
        }
        uids
    };
    ensure!(!provisioned.is_empty(), "no data source is provisioned");
    let provider = yaml("deploy/grafana/provisioning/dashboards/herald.yaml")?;
    let path = provider
        .get("providers")
        .and_then(|p| p.get(0))
        .and_then(|p| str_at(p, &["options", "path"]))
        .context("dashboard provider path")?;
    let compose = read("docker-compose.yml")?;
    ensure!(
        compose.contains(&format!("./deploy/grafana/dashboards:{path}")),
        "compose does not mount the dashboards where the provider reads them ({path})"
    );

    let documented = read("deploy/grafana/README.md")?;
    let dir = root().join("deploy/grafana/dashboards");
    let mut uids = BTreeSet::new();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        count += 1;
        let what = path.display().to_string();
        let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("{what} is not JSON"))?;
        check_dashboard(&what, &dash, &provisioned, &documented)?;
        let uid = dash["uid"].as_str().context("uid")?.to_string();
        ensure!(
            uids.insert(uid.clone()),
            "dashboard uid {uid} is used twice"
        );
    }
    ensure!(
        count >= 5,
        "expected the five Herald dashboards, found {count}"
    );
    Ok(())
}

fn check_dashboard(
    what: &str,
    dash: &serde_json::Value,
    provisioned: &BTreeSet<String>,
    documented: &str,
) -> Result<()> {
    for key in ["uid", "title"] {
        ensure!(
            dash[key].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: no {key}"
        );
    }
    ensure!(
        dash["uid"].as_str().is_some_and(|u| u.len() <= 40),
        "{what}: uid longer than Grafana's 40 characters"
    );
    ensure!(dash["schemaVersion"].is_u64(), "{what}: no schemaVersion");
    let vars = dash["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ds_vars: BTreeSet<String> = vars
        .iter()
        .filter(|v| v["type"] == "datasource")
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    for v in vars.iter().filter(|v| v["type"] == "datasource") {
        let current = v["current"]["value"].as_str().unwrap_or_default();
        ensure!(
            provisioned.contains(current),
            "{what}: data source variable defaults to {current}, which is not provisioned"
        );
    }

    // Every datasource reference anywhere in the dashboard.
    fn walk(v: &serde_json::Value, found: &mut Vec<serde_json::Value>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map {
                    if k == "datasource" {
                        found.push(child.clone());
                    }
                    walk(child, found);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, found)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(dash, &mut refs);
    for r in refs {
        let uid = r["uid"]
            .as_str()
            .with_context(|| format!("{what}: a datasource reference without uid: {r}"))?;
        let var = uid
            .strip_prefix("${")
            .and_then(|u| u.strip_suffix('}'))
            .or_else(|| uid.strip_prefix('$'));
        let ok = match var {
            Some(name) => ds_vars.contains(name),
            None => provisioned.contains(uid),
        };
        ensure!(
            ok,
            "{what}: data source {uid} is neither provisioned nor a data source variable"
        );
    }

    let panels = dash["panels"].as_array().context("panels")?;
    ensure!(!panels.is_empty(), "{what}: no panels");
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?");
        let id = p["id"]
            .as_u64()
            .with_context(|| format!("{what}: panel {title} has no id"))?;
        ensure!(ids.insert(id), "{what}: panel id {id} used twice");
        ensure!(p["type"].is_string(), "{what}: panel {title} has no type");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64(), g["w"].as_u64());
        ensure!(
            g["h"].is_u64() && g["y"].is_u64() && x.zip(w).is_some_and(|(x, w)| x + w <= 24),
            "{what}: panel {title} has no place on the 24-column grid"
        );
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().context("targets")?;
        ensure!(!targets.is_empty(), "{what}: panel {title} queries nothing");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            ensure!(
                t["refId"].is_string() && !expr.is_empty(),
                "{what}: panel {title} has a query without refId or expr"
            );
            for metric in herald_metrics(expr) {
                ensure!(
                    documented.contains(&format!("`{metric}`")),
                    "{what}: {metric} is not listed in deploy/grafana/README.md"
                );
            }
        }
    }
    Ok(())
}

/// Herald's metric and label names in a PromQL expression (those starting
/// `herald_`, `sip_` or `rpc_`), without the histogram series suffixes.
fn herald_metrics(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for word in expr.split(|c: char| !is_word(c)) {
        if !["herald_", "sip_", "rpc_"]
            .iter()
            .any(|p| word.starts_with(p))
        {
            continue;
        }
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| word.strip_suffix(s))
            .unwrap_or(word);
        out.insert(base.to_string());
    }
    out
}

// ---------------------------------------------------------------------------
// YAML style.

#[test]
fn deployment_yaml_passes_yamllint() -> Result<()> {
    let yamllint = tool("yamllint", "HERALD_YAMLLINT")?;
    run(
        &yamllint,
        &[
            "--strict",
            "-c",
            ".yamllint.yaml",
            "docker-compose.yml",
            "deploy",
            "helm/herald/values.yaml",
            "helm/herald/Chart.yaml",
            "helm/herald/ci",
        ],
    )?;
    Ok(())
}
