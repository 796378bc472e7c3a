//! The `switchboard` command: `serve` (the default), `migrate`, `admin create`, `token create`,
//! `openapi`. Every command reads the same configuration as the server (environment variables,
//! optionally a TOML file). Kept thin: parse, resolve settings, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard::config::{RawConfig, Settings};
use switchboard::domain::Role;
use switchboard::domain::text::{clean_name, normalize_email};
use switchboard::server::{self, StartOptions};
use switchboard::store::{self, audit::Actor};
use switchboard::{auth, http, telemetry};

/// jemalloc rather than glibc malloc: the server keeps many small long-lived allocations per
/// socket and per conversation actor, made on several threads; glibc's per-thread arenas leave
/// them fragmented (ARCHITECTURE.md, dependencies, for the measurements).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Omnichannel help desk server")]
struct Cli {
    /// A TOML configuration file (also SWITCHBOARD_CONFIG). Environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage agents.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a super admin who can sign in to the dashboard.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for an agent; the token is the last word printed.
    Create {
        /// The agent the token acts as.
        #[arg(long)]
        email: String,
        /// What the token is for.
        #[arg(long)]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", http::openapi::document_json());
        return ExitCode::SUCCESS;
    }
    let settings = match RawConfig::load(cli.config.as_deref()).and_then(Settings::resolve) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&settings.log, settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command.unwrap_or(Command::Serve), settings));
    // Everything the server started was stopped and awaited by `RunningServer::wait`; what is left
    // is at most a blocking call still in progress, which must not hold the exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let running = server::start(settings, StartOptions::default()).await?;
            // Until SIGTERM/SIGINT, then the whole node stops within shutdown_grace_secs.
            running.wait().await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => {
            let store = store::Store::connect(&settings.database, 2).await?;
            let ran = store.migrate().await?;
            println!("{ran} migration(s) applied ({} database is up to date)", store.backend_name());
            Ok(())
        }
        Command::Admin { command: AdminCommand::Create { email, password, name } } => {
            let email =
                normalize_email(&email).ok_or_else(|| anyhow::anyhow!("--email is not a valid email address"))?;
            if password.chars().count() < auth::MIN_PASSWORD_LEN {
                anyhow::bail!("--password must be at least {} characters", auth::MIN_PASSWORD_LEN);
            }
            let name = match name {
                Some(n) => clean_name(&n, 100).ok_or_else(|| anyhow::anyhow!("--name must be 1–100 characters"))?,
                None => email.split('@').next().unwrap_or("Admin").to_owned(),
            };
            let store = server::open_store(&settings).await?;
            let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
                .await?
                .map_err(|e| anyhow::anyhow!(e))?;
            let agent = store::agents::create(
                &store,
                store::agents::CreateAgent { email, name, password_hash: Some(hash), role: Role::SuperAdmin },
                Actor::System,
            )
            .await?;
            println!(
                "Created super admin {} <{}> (id {}). Sign in at {}/",
                agent.name, agent.email, agent.id, settings.public_url
            );
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { email, name } } => {
            let email =
                normalize_email(&email).ok_or_else(|| anyhow::anyhow!("--email is not a valid email address"))?;
            let name = clean_name(&name, 100).ok_or_else(|| anyhow::anyhow!("--name must be 1–100 characters"))?;
            let store = server::open_store(&settings).await?;
            let agent = store::agents::by_email(&store, &email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no agent with email {email}"))?;
            let (token, prefix) = auth::new_api_token();
            store::auth::create_token(&store, agent.id, &name, &auth::secret_hash(&token), &prefix, Actor::System)
                .await?;
            println!("Created API token {name:?} for {email}. It is shown only once:\n{token}");
            Ok(())
        }
        Command::Openapi => unreachable!("handled before the runtime starts"),
    }
}
