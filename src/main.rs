//! The `spoofguard` command: `serve`, `check`, `domain`, `brands`, `config-check`.

use anyhow::Context as _;
use clap::Parser;
use spoofguard::check::{self, CheckOptions};
use spoofguard::cli::{Cli, Command, DEFAULT_CONFIG};
use spoofguard::config::{Config, parse_listen};
use spoofguard::metric;
use spoofguard::milter::{self, SharedRuntime};
use spoofguard::runtime::{Rules, Runtime};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tracing::{error, info, warn};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("spoofguard: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// The configuration at `path`, or at the default path, or the built-in defaults when no path
/// was given and the default file does not exist.
fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None if Path::new(DEFAULT_CONFIG).exists() => Ok(Config::load(Path::new(DEFAULT_CONFIG))?),
        None => Ok(Config::default()),
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::ConfigCheck { config } => {
            let path = config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
            match Config::load(&path).and_then(Rules::compile) {
                Ok(rules) => {
                    spoofguard::out!(
                        "{}: ok (listen {}, {} rules, {} brand tables)",
                        path.display(),
                        rules.config().milter.listen,
                        rules.config().rules.len(),
                        rules.brand_tables()
                    );
                    Ok(0)
                }
                Err(e) => {
                    for line in e.lines() {
                        spoofguard::out!("{line}");
                    }
                    Ok(1)
                }
            }
        }
        Command::Domain {
            config,
            format,
            domains,
        } => {
            let rules = Rules::compile(load_config(config.as_deref())?)?;
            check::run_domain(&rules, &domains, format.into())?;
            Ok(0)
        }
        Command::Brands { config, format } => {
            let rules = Rules::compile(load_config(config.as_deref())?)?;
            check::run_brands(&rules, format.into())?;
            Ok(0)
        }
        Command::Check {
            config,
            zone,
            ip,
            helo,
            mail_from,
            format,
            files,
        } => {
            let config = load_config(config.as_deref())?;
            let opts = CheckOptions {
                zone,
                ip,
                helo,
                mail_from,
                format: format.into(),
            };
            let failed = tokio.block_on(check::run_check(config, &opts, &files))?;
            Ok(if failed > 0 { 2 } else { 0 })
        }
        Command::Serve {
            config,
            socket,
            log_level,
        } => {
            let path = config.or_else(|| {
                Path::new(DEFAULT_CONFIG)
                    .exists()
                    .then(|| PathBuf::from(DEFAULT_CONFIG))
            });
            let mut cfg = match &path {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            if let Some(s) = &socket {
                cfg.milter.listen =
                    parse_listen(s).map_err(|e| anyhow::anyhow!("--socket: {e}"))?;
            }
            if let Some(level) = &log_level {
                cfg.log.level = level.clone();
            }
            spoofguard::logging::init(&cfg.log);
            tokio.block_on(serve(cfg, path, socket, log_level))?;
            Ok(0)
        }
    }
}

async fn serve(
    cfg: Config,
    path: Option<PathBuf>,
    socket: Option<String>,
    log_level: Option<String>,
) -> anyhow::Result<()> {
    let listen = cfg.milter.listen.clone();
    let listener = milter::bind(&listen, cfg.milter.socket_mode)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    if let Some(addr) = cfg.metrics.listen {
        spoofguard::metric::install(addr)
            .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
    }
    let metrics = cfg
        .metrics
        .listen
        .map_or_else(|| "off".to_owned(), |a| a.to_string());
    let rt = Runtime::build(cfg, None)?;
    info!(
        metrics = %metrics,
        listen = %listen,
        config = %path.as_ref().map_or("built-in defaults".into(), |p| p.display().to_string()),
        brands = rt.catalogue.len(),
        dry_run = rt.config.milter.dry_run,
        "spoofguard started"
    );
    let shared: SharedRuntime = Arc::new(RwLock::new(Arc::new(rt)));

    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let reload_shared = shared.clone();
    let reload_task = tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload(
                &reload_shared,
                path.as_deref(),
                socket.as_deref(),
                log_level.as_deref(),
            );
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received, finishing open connections"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT received, finishing open connections"),
        }
    };
    let result = milter::serve(listener, shared, shutdown).await;
    reload_task.abort();
    if let spoofguard::config::ListenSpec::Unix(p) = &listen {
        let _ = std::fs::remove_file(p);
    }
    info!("spoofguard stopped");
    result.context("milter server failed")
}

/// SIGHUP: read the file again; keep the old configuration if the new one is invalid.
fn reload(
    shared: &SharedRuntime,
    path: Option<&Path>,
    socket: Option<&str>,
    log_level: Option<&str>,
) {
    let Some(path) = path else {
        info!("SIGHUP received, but running on built-in defaults: nothing to reload");
        return;
    };
    let mut cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "reload failed, keeping the old configuration");
            metric::config_reload(false);
            return;
        }
    };
    let old = milter::current(shared);
    if let Some(s) = socket
        && let Ok(l) = parse_listen(s)
    {
        cfg.milter.listen = l;
    }
    if let Some(level) = log_level {
        cfg.log.level = level.to_owned();
    }
    for (key, changed) in [
        (
            "milter.listen",
            cfg.milter.listen != old.config.milter.listen,
        ),
        (
            "milter.socket_mode",
            cfg.milter.socket_mode != old.config.milter.socket_mode,
        ),
        (
            "milter.max_connections",
            cfg.milter.max_connections != old.config.milter.max_connections,
        ),
        (
            "milter.connection_timeout_secs",
            cfg.milter.connection_timeout != old.config.milter.connection_timeout,
        ),
        ("log.level", cfg.log.level != old.config.log.level),
        ("log.format", cfg.log.format != old.config.log.format),
        ("metrics.listen", cfg.metrics != old.config.metrics),
    ] {
        if changed {
            warn!("parameter \"{key}\" changed, restart needed");
        }
    }
    let caches = (cfg.dns == old.config.dns).then(|| old.verifier.caches().clone());
    match Runtime::build(cfg, caches) {
        Ok(rt) => {
            let mut guard = match shared.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            *guard = Arc::new(rt);
            info!(config = %path.display(), "configuration reloaded");
            metric::config_reload(true);
        }
        Err(e) => {
            error!(error = %e, "reload failed, keeping the old configuration");
            metric::config_reload(false);
        }
    }
}
