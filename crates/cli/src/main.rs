//! `refresh`: F5 XC pipeline tokens and VCF access tokens from the shell, a
//! local sandbox of both APIs, and a demo of the whole story.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory as _, Parser, Subcommand};
use refresh_sdk::{ErrorKind, ExposeSecret, RetryPolicy, SecretString, TransportOptions};

/// `println!` that does not panic when stdout cannot be written (`refresh
/// ... | head`, a full disk): the rest of the output is dropped, and the
/// command exits 10 at its end, as one whose value was not delivered.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            crate::UNWRITTEN.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }};
}

/// Set when `out!` could not write: the command's output was lost.
static UNWRITTEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

mod api;
mod demo;
mod exit;
mod kept;
mod sandbox;
mod stop;

use exit::Failure;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the demo saw a step behave other than described, or the sandbox could not start
  2  usage, configuration or invalid input (nothing was sent)
  3  authentication or permission refused (401, 403)
  4  not found (404; for VCF refresh: the refresh token is expired or invalidated)
  5  rate limited (429)
  6  server error (5xx)
  7  timeout or transport failure (name not resolved, connection refused, TLS, reset)
  8  invalid response (not valid HTTP, an undecodable body, too many redirects, a redirect to another host)
  9  other rejected request (400, 409)
 10  stdout could not be written (a full disk, a closed pipe): the value was not delivered
129  stopped by SIGHUP, a closed terminal (not under nohup); `vcf api` logs out first
130  stopped by Ctrl-C; `vcf api` logs out first
143  stopped by SIGTERM; `vcf api` logs out first";

/// Get F5 Distributed Cloud pipeline tokens and VMware Cloud Foundation
/// access tokens.
///
/// Configuration comes from flags or the environment. F5 XC: VOLT_API_URL;
/// VOLT_API_TOKEN, or VOLT_API_P12_FILE or VES_P12_CONTENT (base64) with
/// VES_P12_PASSWORD, or VOLT_API_CERT and VOLT_API_KEY; VOLT_API_CA_CERT;
/// VOLT_ALLOW_INSECURE_HTTP. VCF: VCF_SDDC_MANAGER_HOST; one kind of
/// credentials: VCF_SDDC_MANAGER_USERNAME with VCF_SDDC_MANAGER_PASSWORD, or
/// VCF_SDDC_MANAGER_API_KEY, or VCF_SDDC_MANAGER_ID_TOKEN; VCF_REFRESH_TOKEN;
/// VCF_SDDC_MANAGER_CA_CERT (a PEM file of CAs to trust); VCF_ALLOW_UNVERIFIED_TLS;
/// VCF_ALLOW_INSECURE_HTTP (plain http:// is
/// refused for any host but loopback unless this is true). Each secret may
/// instead be in a file named by the same variable with _FILE appended
/// (VOLT_API_TOKEN_FILE, VES_P12_PASSWORD_FILE,
/// VCF_SDDC_MANAGER_PASSWORD_FILE, VCF_SDDC_MANAGER_API_KEY_FILE,
/// VCF_SDDC_MANAGER_ID_TOKEN_FILE), such as a mounted secret; one trailing
/// newline is dropped. Passwords and API tokens are read from the
/// environment only, never from flags, so they stay out of shell history and
/// `ps`; refresh token ids too unless given with --refresh-token ID.
#[derive(Parser, Debug)]
#[command(name = "refresh", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Global {
    /// Print a JSON object on stdout instead of the bare value.
    #[arg(long, global = true)]
    json: bool,
    /// Trace on stderr: -v one line per HTTP attempt (method, path, status, attempt, elapsed), -vv every library's debug events, -vvv trace. Secrets are never traced.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Per-attempt timeout in seconds.
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    timeout: Option<f64>,
    /// How many times to retry transient failures: connection errors, 429 and 503; 502 and 504 only where resending is harmless (never create-token).
    #[arg(long, global = true, value_name = "N")]
    retries: Option<u32>,
    /// Trust the CA certificates in this PEM file.
    #[arg(long, global = true, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Skip TLS certificate verification (self-signed SDDC Managers). Unsafe.
    #[arg(long, global = true)]
    insecure: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// F5 Distributed Cloud, AI Data BFDP.
    #[command(subcommand)]
    F5xc(F5Command),
    /// VMware Cloud Foundation SDDC Manager tokens.
    #[command(subcommand)]
    Vcf(VcfCommand),
    /// Serve both APIs locally and print their URLs and demo credentials.
    Sandbox {
        /// The address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Serve HTTPS with a generated self-signed certificate.
        #[arg(long)]
        tls: bool,
        /// Also serve METHOD PATH (GET, POST, PUT, PATCH or DELETE; an exact path) with FILE's JSON as a 200, to a live access token of the sandbox, as the sample SDDC Manager routes are served; repeatable; replaces a sample on the same method and path.
        #[arg(long, num_args = 3, value_names = ["METHOD", "PATH", "FILE"])]
        route: Vec<String>,
    },
    /// Walk the whole story against an in-process sandbox; exits 0 only if
    /// every step behaves as described.
    Demo,
    /// Print a completion script for a shell (bash, zsh, fish, powershell,
    /// elvish), e.g. `refresh completions bash > ~/.local/share/bash-completion/completions/refresh`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum F5Command {
    /// Get a token for a pipeline; prints the result text (JSON carrying the token).
    RefreshToken {
        /// The pipeline's name.
        #[arg(long, value_name = "NAME")]
        product_name: String,
        /// Tenant name, console URL or API URL [env: VOLT_API_URL].
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum VcfCommand {
    /// Log in; prints the access token, then the refresh token id, one per line.
    CreateToken {
        #[command(flatten)]
        host: VcfHost,
        /// The user [env: VCF_SDDC_MANAGER_USERNAME]; the password is read from VCF_SDDC_MANAGER_PASSWORD (or _FILE). Not with an API key or ID token.
        #[arg(long)]
        username: Option<String>,
    },
    /// Log in and keep the token pair for this host and user, so that `vcf
    /// api` and `vcf token` need no password and log in no more until `vcf
    /// logout`. Kept in $XDG_RUNTIME_DIR/refresh (else the cache directory),
    /// readable by this user only.
    Login {
        #[command(flatten)]
        host: VcfHost,
        /// The user [env: VCF_SDDC_MANAGER_USERNAME]; the password is read from VCF_SDDC_MANAGER_PASSWORD (or _FILE). Not with an API key or ID token.
        #[arg(long)]
        username: Option<String>,
    },
    /// Print the kept login's access token, renewed with its refresh token
    /// if needed (for `curl -H "Authorization: Bearer $(refresh vcf token)"`).
    Token {
        #[command(flatten)]
        host: VcfHost,
        /// The user of the kept login [env: VCF_SDDC_MANAGER_USERNAME].
        #[arg(long)]
        username: Option<String>,
    },
    /// Invalidate the kept login's refresh token and forget the login.
    Logout {
        #[command(flatten)]
        host: VcfHost,
        /// The user of the kept login [env: VCF_SDDC_MANAGER_USERNAME].
        #[arg(long)]
        username: Option<String>,
    },
    /// Get a new access token for a refresh token; prints the access token.
    RefreshToken {
        #[command(flatten)]
        host: VcfHost,
        #[command(flatten)]
        refresh_token: RefreshTokenArg,
    },
    /// Invalidate a refresh token.
    Invalidate {
        #[command(flatten)]
        host: VcfHost,
        #[command(flatten)]
        refresh_token: RefreshTokenArg,
    },
    /// Call any SDDC Manager API path with a fresh access token: logs in
    /// from the environment, prints the response body on stdout (the status
    /// on stderr when it is not 2xx), and logs out before exiting, so no
    /// refresh token outlives the run. A rejected token is renewed and the
    /// call sent once more. Exits by the status (4 for 404, ...). The body is
    /// printed as SDDC Manager sent it (JSON already), so --json changes
    /// nothing here.
    #[command(
        after_help = "Examples:\n  refresh vcf api GET /v1/domains\n  refresh vcf api -i GET /v1/system\n  refresh vcf api PATCH /v1/clusters/ID --data @spec.json\n  echo '{\"name\": \"w01\"}' | refresh vcf api POST /v1/domains --data -\n  refresh vcf api GET /v1/hosts -H 'Accept-Language: de'"
    )]
    Api {
        /// The HTTP method.
        #[arg(value_enum, ignore_case = true)]
        method: ApiMethod,
        /// The path on the SDDC Manager, from `/` (with a query if needed).
        path: String,
        /// A JSON body: the text itself, `@FILE` to read a file, or `-` for stdin.
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
        /// A request header, `Name: value` (repeatable). Not Authorization:
        /// the command sends the session's token itself.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Print the status line and the response headers before the body.
        #[arg(short = 'i', long)]
        include: bool,
        #[command(flatten)]
        host: VcfHost,
        /// The user [env: VCF_SDDC_MANAGER_USERNAME]; the password is read from VCF_SDDC_MANAGER_PASSWORD (or _FILE). Not with an API key or ID token.
        #[arg(long)]
        username: Option<String>,
    },
}

/// The methods `refresh vcf api` sends.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
#[value(rename_all = "UPPER")]
enum ApiMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl ApiMethod {
    fn as_method(self) -> reqwest::Method {
        match self {
            ApiMethod::Get => reqwest::Method::GET,
            ApiMethod::Post => reqwest::Method::POST,
            ApiMethod::Put => reqwest::Method::PUT,
            ApiMethod::Patch => reqwest::Method::PATCH,
            ApiMethod::Delete => reqwest::Method::DELETE,
        }
    }
}

#[derive(Args, Debug)]
struct RefreshTokenArg {
    /// The refresh token id, best given in VCF_REFRESH_TOKEN or on stdin
    /// (`--refresh-token -`): an id on the command line is visible in `ps`
    /// and saved in shell history, and it is a secret.
    #[arg(long, value_name = "ID")]
    refresh_token: Option<String>,
}

impl RefreshTokenArg {
    /// The id from the flag, stdin (`-`) or `VCF_REFRESH_TOKEN`; an empty one
    /// is refused before anything is sent.
    fn read(&self) -> Result<SecretString, Failure> {
        let id = match self.refresh_token.as_deref() {
            Some("-") => {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| Failure::usage(format!("cannot read the refresh token id from stdin: {e}")))?;
                line
            }
            Some(id) => id.to_owned(),
            None => std::env::var("VCF_REFRESH_TOKEN").map_err(|_| {
                Failure::usage(
                    "no refresh token id: set VCF_REFRESH_TOKEN, or pass --refresh-token - and give it on stdin",
                )
            })?,
        };
        let id = id.trim();
        if id.is_empty() {
            return Err(Failure::usage("the refresh token id is empty"));
        }
        Ok(SecretString::from(id.to_owned()))
    }
}

#[derive(Args, Debug)]
struct VcfHost {
    /// SDDC Manager FQDN or URL [env: VCF_SDDC_MANAGER_HOST].
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
}

fn main() -> ExitCode {
    let cli = parse();
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::UNEXPECTED);
        }
    };
    let result = runtime.block_on(run(cli)).and_then(|()| {
        if UNWRITTEN.load(std::sync::atomic::Ordering::Relaxed) {
            Err(Failure::Output("cannot write to stdout".to_owned()))
        } else {
            Ok(())
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.code())
        }
    }
}

/// The command line. The transport flags are global (they may come before
/// the subcommand, as in `refresh --insecure vcf ...`) but mean nothing to
/// `demo` and `sandbox`, which build their own clients: they are hidden from
/// those commands' help, and refused there.
fn parse() -> Cli {
    use clap::FromArgMatches as _;

    const UNUSED: [&str; 4] = ["timeout", "retries", "ca_cert", "insecure"];
    let mut command = Cli::command();
    // A subcommand that has an argument of a global's id does not get the
    // global: give these two hidden copies, same parser, so that the flags
    // still parse (and are refused below with a clear message).
    let hidden: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| UNUSED.contains(&arg.get_id().as_str()))
        .map(|arg| arg.clone().global(false).hide(true))
        .collect();
    for name in ["demo", "sandbox", "completions"] {
        command = command.mut_subcommand(name, |sub| sub.args(hidden.clone()));
    }
    let matches = match command.try_get_matches_from_mut(std::env::args_os()) {
        Ok(matches) => matches,
        // Help and version go to stdout: one that cannot be written is a
        // failure (exit 10), as for every other value.
        Err(err)
            if matches!(
                err.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            use std::io::IsTerminal as _;
            let text = if std::io::stdout().is_terminal() {
                err.render().ansi().to_string()
            } else {
                err.render().to_string()
            };
            let code = match emit_bytes(text.as_bytes()) {
                Ok(()) => 0,
                Err(failure) => {
                    eprintln!("{failure}");
                    i32::from(failure.code())
                }
            };
            std::process::exit(code);
        }
        Err(err) => err.exit(),
    };
    if let Some((name, sub)) = matches.subcommand()
        && matches!(name, "demo" | "sandbox" | "completions")
        && let Some(used) = UNUSED
            .iter()
            .find(|arg| sub.value_source(arg) == Some(clap::parser::ValueSource::CommandLine))
    {
        let flag = format!("--{}", used.replace('_', "-"));
        command
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("{flag} does nothing for `refresh {name}`"),
            )
            .exit();
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

/// `-v`: the SDK's own events (one line per HTTP attempt: method, path,
/// status, attempt, elapsed), warnings from everything else; `-vv`: every
/// crate's debug events (connection pool, TLS); `-vvv`: trace.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = match verbose {
        0 => return,
        1 => Targets::new()
            .with_default(LevelFilter::WARN)
            .with_target("refresh_sdk", LevelFilter::DEBUG),
        2 => Targets::new().with_default(LevelFilter::DEBUG),
        _ => Targets::new().with_default(LevelFilter::TRACE),
    };
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
}

/// Every variable the command reads: the SDK's, and the refresh-token id.
fn env_variables() -> impl Iterator<Item = &'static str> {
    refresh_sdk::F5Config::VARIABLES
        .into_iter()
        .chain(refresh_sdk::VcfConfig::VARIABLES)
        .chain(["VCF_REFRESH_TOKEN"])
}

async fn run(cli: Cli) -> Result<(), Failure> {
    // A variable set to bytes that are not UTF-8 is set, not missing: say so
    // (without the value) rather than let it read as unset.
    if let Some(name) =
        env_variables().find(|name| std::env::var_os(name).is_some_and(|v| v.to_str().is_none()))
    {
        return Err(Failure::usage(format!(
            "{name} is set but its value is not valid UTF-8"
        )));
    }
    let global = &cli.global;
    match cli.command {
        Command::F5xc(F5Command::RefreshToken { product_name, url }) => {
            let lookup = overlay(&[("VOLT_API_URL", url)]);
            let config = refresh_sdk::F5Config::from_lookup(&lookup)?.transport(transport(global)?);
            warn_opt_ins(global, None, "VOLT_ALLOW_INSECURE_HTTP", &lookup);
            let client = refresh_sdk::F5Client::new(config)?;
            let token = client.refresh_token(&product_name).await?;
            let result = token.secret().expose_secret();
            if global.json {
                // The result is JSON carrying the token: decoded, not quoted.
                let value = serde_json::from_str::<serde_json::Value>(result)
                    .unwrap_or_else(|_| serde_json::Value::String(result.to_owned()));
                emit(&serde_json::json!({ "result": value }).to_string())?;
            } else {
                emit(result)?;
            }
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "refresh", &mut script);
            emit_bytes(&script)?;
        }
        Command::Vcf(command) => vcf(global, command).await?,
        Command::Sandbox { listen, tls, route } => {
            sandbox::serve(global.json, listen, tls, &route).await?
        }
        Command::Demo => demo::run(global.json).await?,
    }
    Ok(())
}

async fn vcf(global: &Global, command: VcfCommand) -> Result<(), Failure> {
    let (host, username) = match &command {
        VcfCommand::CreateToken { host, username }
        | VcfCommand::Login { host, username }
        | VcfCommand::Token { host, username }
        | VcfCommand::Logout { host, username }
        | VcfCommand::Api { host, username, .. } => (host, username.clone()),
        VcfCommand::RefreshToken { host, .. } | VcfCommand::Invalidate { host, .. } => (host, None),
    };
    let lookup = overlay(&[
        ("VCF_SDDC_MANAGER_HOST", host.host.clone()),
        ("VCF_SDDC_MANAGER_USERNAME", username),
    ]);
    let config = refresh_sdk::VcfConfig::from_lookup(&lookup)?;
    warn_opt_ins(
        global,
        Some("VCF_ALLOW_UNVERIFIED_TLS"),
        "VCF_ALLOW_INSECURE_HTTP",
        &lookup,
    );
    // VCF_ALLOW_UNVERIFIED_TLS and VCF_ALLOW_INSECURE_HTTP were read with the
    // configuration, and the flags' options leave them as they are unless set.
    let client = refresh_sdk::VcfClient::new(config.transport(transport(global)?))?;
    let host = client.base_url().to_owned();
    // Keyed by the user; API-key and ID-token logins have none.
    let user = lookup("VCF_SDDC_MANAGER_USERNAME").unwrap_or_else(|| "(no username)".to_owned());
    let kept = |store: kept::Store| kept::KeptSource {
        store,
        client: client.clone(),
        host: host.clone(),
        user: user.clone(),
    };
    match command {
        VcfCommand::Login { .. } => {
            let credentials = refresh_sdk::VcfCredentials::from_lookup(&lookup)?;
            let store = kept::Store::open()?;
            let locked = store.lock(&host, &user)?;
            locked.check_refusals(&host, &user)?;
            let created = client.create_token(&credentials).await;
            locked.record_login(&created)?;
            let pair = created?;
            let previous = locked.read().ok().flatten();
            locked.write(&kept::Kept::new(pair.access_token, pair.refresh_token))?;
            if let Some(previous) = previous {
                // The login it replaces is of no more use to anyone.
                let _ = client.invalidate_refresh_token(&previous.refresh).await;
            }
            eprintln!("Logged in as {user} at {host}; `refresh vcf logout` ends it.");
            if global.json {
                emit(
                    &serde_json::json!({ "logged_in": true, "host": host, "username": user })
                        .to_string(),
                )?;
            }
        }
        VcfCommand::Token { .. } => {
            let token = kept(kept::Store::open()?).token().await?;
            print_value(
                global,
                "access_token",
                &SecretString::from(token.expose_secret().to_owned()),
            )?;
        }
        VcfCommand::Logout { .. } => {
            let store = kept::Store::open()?;
            let locked = store.lock(&host, &user)?;
            let Some(login) = locked.read()? else {
                return Err(Failure::Sdk(refresh_sdk::Error::custom(
                    ErrorKind::Auth,
                    format!("not logged in as {user} at {host}"),
                )));
            };
            match client.invalidate_refresh_token(&login.refresh).await {
                Ok(()) => {}
                // Already gone: nothing left to invalidate.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    eprintln!(
                        "warning: the kept login stays, so that `refresh vcf logout` can be tried again"
                    );
                    return Err(Failure::Sdk(e));
                }
            }
            locked.remove()?;
            if global.json {
                emit(&serde_json::json!({ "logged_out": true }).to_string())?;
            }
        }
        VcfCommand::Api {
            method,
            path,
            data,
            headers,
            include,
            ..
        } => {
            let request = api::Request {
                method: method.as_method(),
                path,
                data,
                headers: api::headers(&headers)?,
                include,
            };
            let store = kept::Store::open();
            match store {
                // A kept login: no password, no login, no logout.
                Ok(store) if store.has_login(&host, &user) => {
                    api::with_kept(client.clone(), kept(store), request).await?;
                }
                store => {
                    let credentials = refresh_sdk::VcfCredentials::from_lookup(&lookup)?;
                    let gate = match store {
                        Ok(store) => {
                            let locked = store.lock(&host, &user)?;
                            locked.check_refusals(&host, &user)?;
                            Some(locked)
                        }
                        Err(failure) => {
                            eprintln!(
                                "warning: refused logins cannot be remembered across runs: {failure}"
                            );
                            None
                        }
                    };
                    api::call(client, credentials, request, gate).await?;
                }
            }
        }
        VcfCommand::CreateToken { .. } => {
            let credentials = refresh_sdk::VcfCredentials::from_lookup(&lookup)?;
            let locked = kept::Store::open().and_then(|store| store.lock(&host, &user));
            if let Ok(locked) = &locked {
                locked.check_refusals(&host, &user)?;
            }
            let created = client.create_token(&credentials).await;
            if let Ok(locked) = &locked {
                locked.record_login(&created)?;
            }
            drop(locked);
            let pair = created?;
            let text = if global.json {
                serde_json::json!({
                    "access_token": pair.access_token.expose_secret(),
                    "refresh_token": pair.refresh_token.expose_secret(),
                })
                .to_string()
            } else {
                format!(
                    "{}\n{}",
                    pair.access_token.expose_secret(),
                    pair.refresh_token.expose_secret()
                )
            };
            if let Err(failure) = emit(&text) {
                // Nobody received the pair: leave no live session behind.
                let invalidated = client.invalidate_refresh_token(&pair.refresh_token).await;
                return Err(match failure {
                    Failure::Output(reason) => Failure::Output(format!(
                        "{reason}; {}",
                        if invalidated.is_ok() {
                            "the new refresh token was invalidated"
                        } else {
                            "the new refresh token could not be invalidated either"
                        }
                    )),
                    other => other,
                });
            }
        }
        VcfCommand::RefreshToken { refresh_token, .. } => {
            let token = client.refresh_access_token(&refresh_token.read()?).await?;
            print_value(global, "access_token", &token)?;
        }
        VcfCommand::Invalidate { refresh_token, .. } => {
            client
                .invalidate_refresh_token(&refresh_token.read()?)
                .await?;
            if global.json {
                emit(&serde_json::json!({ "invalidated": true }).to_string())?;
            }
        }
    }
    Ok(())
}

/// One warning line on stderr for each opt-in that lowers security, at any
/// verbosity: the user chose it, and should see what it costs.
fn warn_opt_ins(
    global: &Global,
    unverified_tls: Option<&str>,
    insecure_http: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) {
    let set = |name: &str| {
        lookup(name)
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
    };
    let tls = if global.insecure {
        Some("--insecure".to_owned())
    } else {
        unverified_tls
            .filter(|name| set(name))
            .map(|name| format!("{name}=true"))
    };
    if let Some(by) = tls {
        eprintln!(
            "warning: TLS certificate verification is off ({by}): anyone on the network path \
             can read the credentials and tokens; pass --ca-cert with the server's CA instead"
        );
    }
    if set(insecure_http) {
        eprintln!(
            "warning: plain http:// is allowed to any host ({insecure_http}=true): credentials \
             and tokens may cross the network in clear text"
        );
    }
}

/// Flags override the environment: the facade's `from_lookup` reads through
/// this.
fn overlay(flags: &[(&'static str, Option<String>)]) -> impl Fn(&str) -> Option<String> + use<> {
    let flags: Vec<(&'static str, String)> = flags
        .iter()
        .filter_map(|(name, value)| value.clone().map(|v| (*name, v)))
        .collect();
    move |name| {
        flags
            .iter()
            .find(|(flag, _)| *flag == name)
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var(name).ok())
    }
}

/// The options the flags give; settings they do not mention (the
/// environment's CA bundle and TLS and plain-HTTP permissions) stay as the
/// configuration read them.
fn transport(global: &Global) -> Result<TransportOptions, Failure> {
    let mut options = TransportOptions::default();
    if global.insecure {
        options = options.allow_unverified_tls(true);
    }
    if let Some(secs) = global.timeout {
        let timeout = Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--timeout must be a positive number of seconds, not {secs}"
                ))
            })?;
        options = options.attempt_timeout(timeout).connect_timeout(timeout);
    }
    if let Some(retries) = global.retries {
        options = options.retry(RetryPolicy::default().max_attempts(retries.saturating_add(1)));
    }
    if let Some(path) = &global.ca_cert {
        options = options.ca_bundle_file(path)?;
    }
    Ok(options)
}

fn print_value(global: &Global, key: &str, value: &SecretString) -> Result<(), Failure> {
    if global.json {
        emit(&serde_json::json!({ key: value.expose_secret() }).to_string())
    } else {
        emit(value.expose_secret())
    }
}

/// Writes a value and a newline to stdout and flushes: a value that did not
/// reach the reader is a failure (exit 10), not a success with nothing shown.
fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Output(format!("cannot write to stdout: {}", e.kind())))
}

/// Writes bytes as they are to stdout and flushes; see [`emit`].
fn emit_bytes(bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Output(format!("cannot write to stdout: {}", e.kind())))
}

/// The exit code for an SDK error's kind.
fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Config | ErrorKind::InvalidInput => exit::USAGE,
        ErrorKind::Auth => exit::AUTH,
        ErrorKind::NotFound => exit::NOT_FOUND,
        ErrorKind::RateLimited => exit::RATE_LIMITED,
        ErrorKind::Server => exit::SERVER,
        ErrorKind::Timeout | ErrorKind::Transport => exit::TRANSPORT,
        ErrorKind::InvalidResponse => exit::INVALID_RESPONSE,
        _ => exit::REJECTED,
    }
}
