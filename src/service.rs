//! Running as a Windows service, the counterpart of the systemd unit: `nasgate service install
//! [SERVE FLAGS...]` registers `nasgate service run [SERVE FLAGS...]` with the service control
//! manager (automatic start), `nasgate service uninstall` stops and removes it. The service reads
//! the same flags and NASGATE_* environment variables as `nasgate serve` (set them machine-wide,
//! or as flags at install); a stop request drains in-flight requests like SIGTERM does.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

/// The service's name in the service control manager.
pub const NAME: &str = "nasgate";

/// Registers the service with `serve_args` as its serve flags (checked here, so a typo fails
/// at install, not at the first start).
pub fn install(serve_args: &[OsString]) -> Result<ExitCode> {
    let mut check = vec![OsString::from("nasgate"), OsString::from("serve")];
    check.extend(serve_args.iter().cloned());
    crate::parse_serve(&check)?;
    let exe = std::env::current_exe().context("locating the nasgate executable")?;
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .context("connecting to the service control manager (run as administrator)")?;
    let mut launch = vec![OsString::from("service"), OsString::from("run")];
    launch.extend(serve_args.iter().cloned());
    let info = ServiceInfo {
        name: OsString::from(NAME),
        display_name: OsString::from("nasgate S3 gateway"),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: launch,
        dependencies: vec![],
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG)
        .context("creating the service")?;
    let _ = service.set_description("Serves a shared NAS directory as S3 (nasgate)");
    println!("installed service {NAME}; start it with: sc start {NAME}");
    Ok(ExitCode::SUCCESS)
}

/// Stops the service if it runs (waiting a bounded time for its drain) and removes it.
pub fn uninstall() -> Result<ExitCode> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .context("connecting to the service control manager (run as administrator)")?;
    let service = manager
        .open_service(
            NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .with_context(|| format!("opening service {NAME}"))?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        let _ = service.stop();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while service.query_status()?.current_state != ServiceState::Stopped {
            if std::time::Instant::now() >= deadline {
                anyhow::bail!("service {NAME} did not stop within 60 s; not removed");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    service.delete().context("removing the service")?;
    println!("removed service {NAME}");
    Ok(ExitCode::SUCCESS)
}

static SERVE_ARGS: OnceLock<Vec<OsString>> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Hands this process to the service control manager, which then calls `service_main`; only
/// the SCM may start a process this way.
pub fn run(serve_args: Vec<OsString>) -> Result<ExitCode> {
    let _ = SERVE_ARGS.set(serve_args);
    service_dispatcher::start(NAME, ffi_service_main)
        .context("not started by the service control manager (use sc start nasgate)")?;
    Ok(ExitCode::SUCCESS)
}

fn service_main(_arguments: Vec<OsString>) {
    let handler = |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            nasgate::server::request_stop();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(status) = service_control_handler::register(NAME, handler) else {
        return;
    };
    let report = |state, accept, code: u32, wait: Duration| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code: ServiceExitCode::Win32(code),
            checkpoint: 0,
            wait_hint: wait,
            process_id: None,
        });
    };
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        0,
        Duration::ZERO,
    );
    let mut argv = vec![OsString::from("nasgate"), OsString::from("serve")];
    argv.extend(SERVE_ARGS.get().cloned().unwrap_or_default());
    let code = match crate::parse_serve(&argv).and_then(crate::serve) {
        Ok(c) if c == ExitCode::SUCCESS => 0,
        Ok(_) => 1,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("nasgate: {e:#}");
            1
        }
    };
    report(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        code,
        Duration::ZERO,
    );
}
